"""Unsupervised GP-GAN: a DCGAN generator ``G(z)`` and blending by latent optimisation.

The paper's second variant (SPEC.md, "Unsupervised GP-GAN"; Wu et al. 2019, Sec. 4.3):
instead of a Blending GAN that maps a composite to a blended image, a plain WGAN
generator of natural 64x64 scenes is fitted to the low-resolution copy-paste
composite by optimising its input ``z``; the fitted ``G(z*)`` is the colour image of
the same Gaussian-Poisson pyramid as ``gp-gan``'s.

Architecture (paper configuration ``image_size=64, nz=100, base_width=64``)::

    LatentGenerator  z (nz, 1, 1)   (gpgan.models.LatentGenerator)
                     deconv nz->512 k4s1p0, BN, ReLU                      1 -> 4
                     deconv 512->256 / 256->128 / 128->64 k4s2p1, BN, ReLU 4 -> 32
                     deconv 64->3 k4s2p1, tanh                            32 -> 64

the Blending GAN's decoder (:func:`gpgan.models.dcgan_decoder`), no biases, held in a
``decoder`` list indexed like the authors' Chainer ``DCGAN_G`` ChainList (activations
count), so ``unsupervised_blending_gan.npz``'s ``<i>/W`` is our ``decoder.<i>.weight``.
The paper generator has 3,576,704 parameters. Its critic is
:class:`gpgan.models.Critic` (the authors' ``DCGAN_D``). Both are trained by
:func:`gpgan.train.train` with ``model: unsupervised``
(:data:`gpgan.trainconfig.PAPER_UNSUPERVISED_CONFIG`, ``docs/training.md``).

Blending (:func:`fit_latent`): ``z0 ~ N(0, 1)`` from a seeded generator, then
``z* = argmin_z MSE(G(z), x)`` over the [-1, 1] composite ``x`` by SciPy's L-BFGS-B
with the exact gradient (``jac=True``), ``maxiter`` 1000 as in the original (which
hands it the mean; we hand it the sum of squares, the same minimiser, because
SciPy's absolute tolerances stop the mean's 1/(3 S^2)-scaled gradients at once); the
colour image is ``clip((G(z*) + 1) / 2, 0, 1)``. On the CPU the fit runs on one torch
thread whatever ``torch.get_num_threads()`` says (restored afterwards): its passes are
at batch 1, where more threads only add synchronisation between the many short torch
calls and SciPy's steps (measured on 2 cores, demo ``G(z)``, 200 iterations: 0.73 s on
one thread, 8.2-9.5 s on two), and the result is then a pure function of the inputs
and the seed.

References
----------
.. [1] H. Wu, S. Zheng, J. Zhang and K. Huang, "GP-GAN: Towards Realistic
   High-Resolution Image Blending", ACM Multimedia 2019, arXiv:1703.07195.
.. [2] A. Radford, L. Metz and S. Chintala, "Unsupervised Representation Learning with
   Deep Convolutional Generative Adversarial Networks", ICLR 2016 (the generator).
.. [3] R. H. Byrd, P. Lu, J. Nocedal and C. Zhu, "A Limited Memory Algorithm for Bound
   Constrained Optimization", SIAM J. Sci. Comput. 16(5):1190-1208, 1995 (L-BFGS-B).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import minimize
from torch import nn

from .errors import ConfigError, ModelError
from .models import LatentGenerator

__all__ = ["LatentGenerator", "fit_latent", "DEFAULT_LATENT_ITERS"]

#: L-BFGS-B iterations of the latent fit (the original's ``maxiter``).
DEFAULT_LATENT_ITERS = 1000


def fit_latent(generator: LatentGenerator, composite: np.ndarray, *, seed: int = 0,
               maxiter: int = DEFAULT_LATENT_ITERS) -> tuple[np.ndarray, dict]:
    """Fit ``G(z)`` to a low-resolution composite by L-BFGS-B over ``z``.

    Parameters
    ----------
    generator : LatentGenerator
        Switched to eval mode (batch norm uses its running statistics).
    composite : numpy.ndarray
        ``float32 (S, S, 3)`` in [0, 1], ``S = generator.arch["image_size"]``.
    seed : int
        Seed of the starting point ``z0 ~ N(0, 1)``.
    maxiter : int
        L-BFGS-B iterations at most (>= 1).

    Returns
    -------
    color : numpy.ndarray
        ``float32 (S, S, 3)``: ``clip((G(z*) + 1) / 2, 0, 1)``.
    info : dict
        ``latent_iterations`` (L-BFGS-B iterations), ``latent_evaluations`` (forward
        and backward passes), ``latent_loss`` (final MSE on [-1, 1] images),
        ``latent_loss0`` (at ``z0``).
    """
    size, nz = generator.arch["image_size"], generator.arch["nz"]
    x = np.asarray(composite, dtype=np.float32)
    if x.shape != (size, size, 3):
        raise ModelError(f"fit_latent expects a ({size}, {size}, 3) image, got shape "
                         f"{x.shape}")
    if isinstance(maxiter, bool) or not isinstance(maxiter, (int, np.integer)) or maxiter < 1:
        raise ConfigError(f"latent iterations must be a positive integer, got {maxiter!r}")
    param = next(generator.parameters())
    generator.eval()
    target = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]
    target = target.to(device=param.device, dtype=param.dtype) * 2.0 - 1.0
    generator.requires_grad_(False)

    def loss_and_grad(z: np.ndarray):
        zt = torch.from_numpy(z.astype(np.float32)).to(param.device).reshape(1, nz)
        zt.requires_grad_(True)
        loss = nn.functional.mse_loss(generator(zt.to(param.dtype)).float(), target.float(),
                                      reduction="sum")
        loss.backward()
        return float(loss.detach()), zt.grad.reshape(-1).double().cpu().numpy()

    z0 = np.random.default_rng(seed).standard_normal(nz)
    threads = torch.get_num_threads()
    if param.device.type == "cpu":
        torch.set_num_threads(1)
    try:
        loss0 = loss_and_grad(z0)[0]
        res = minimize(loss_and_grad, z0, method="L-BFGS-B", jac=True,
                       options={"maxiter": int(maxiter)})
        with torch.no_grad():
            z = torch.from_numpy(res.x.astype(np.float32)).to(param.device).reshape(1, nz)
            y = generator(z.to(param.dtype))[0].float().cpu().numpy()
    finally:
        generator.requires_grad_(True)
        torch.set_num_threads(threads)
    color = ((y.transpose(1, 2, 0) + 1.0) / 2.0).clip(0.0, 1.0)
    n = target.numel()
    info = {"latent_iterations": int(res.nit), "latent_evaluations": int(res.nfev),
            "latent_loss": float(res.fun) / n, "latent_loss0": float(loss0) / n}
    return np.ascontiguousarray(color, dtype=np.float32), info
