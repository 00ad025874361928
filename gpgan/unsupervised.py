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

import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np

from .errors import ConfigError, ModelError

if TYPE_CHECKING:  # torch is imported when a fit runs: `import gpgan` stays light
    import torch

    from .models import LatentGenerator

__all__ = ["fit_latent", "fit_latents", "latent_color", "DEFAULT_LATENT_ITERS"]

#: L-BFGS-B iterations of the latent fit (the original's ``maxiter``).
DEFAULT_LATENT_ITERS = 1000


def _check_maxiter(maxiter) -> None:
    if isinstance(maxiter, bool) or not isinstance(maxiter, (int, np.integer)) or maxiter < 1:
        raise ConfigError(f"latent iterations must be a positive integer, got {maxiter!r}")


@contextmanager
def _fit_threads(device, n: int):
    """Torch's intra-op threads while ``n`` fits run: one for a single fit on the CPU
    (module docstring), as set otherwise; restored afterwards."""
    import torch

    threads = torch.get_num_threads()
    if device.type == "cpu" and n == 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class _Evaluations:
    """One forward and backward pass of ``G`` for every fit waiting for one.

    Each fit runs SciPy's L-BFGS-B in a thread of its own and hands its ``z`` to
    :meth:`evaluate`; the last of the fits still running to arrive evaluates all the
    waiting ``z`` in one batch (in index order) and wakes the others. A batch is
    therefore always "every unfinished fit", a pure function of the inputs, and the
    per-composite results equal one-at-a-time fits (measured: the same losses to the
    last bit on the 60 demo test composites).
    """

    def __init__(self, generator, targets: torch.Tensor, nz: int):
        self.generator, self.targets, self.nz = generator, targets, nz
        self.param = next(generator.parameters())
        self.cv = threading.Condition()
        self.pending: dict[int, np.ndarray] = {}
        self.results: dict[int, tuple[float, np.ndarray]] = {}
        self.active = set(range(len(targets)))
        self.error: BaseException | None = None
        self.batches = 0

    def _run(self) -> None:
        import torch

        idx = sorted(self.pending)
        try:
            z = torch.from_numpy(np.stack([self.pending[i] for i in idx]).astype(np.float32))
            z = z.to(self.param.device).requires_grad_(True)
            with torch.enable_grad():
                out = self.generator(z.to(self.param.dtype)).float()
                loss = ((out - self.targets[idx].float()) ** 2).sum(dim=(1, 2, 3))
                loss.sum().backward()
            grads = z.grad.double().cpu().numpy()
            values = loss.detach().double().cpu().numpy()
            for k, i in enumerate(idx):
                self.results[i] = (float(values[k]), grads[k])
        except BaseException as exc:  # every waiting fit stops with it
            self.error = exc
        self.pending.clear()
        self.batches += 1
        self.cv.notify_all()

    def evaluate(self, i: int, z: np.ndarray) -> tuple[float, np.ndarray]:
        with self.cv:
            if self.error is not None:
                raise self.error
            self.pending[i] = z
            if len(self.pending) == len(self.active):
                self._run()
            else:
                self.cv.wait_for(lambda: i in self.results or self.error is not None)
            if self.error is not None:
                raise self.error
            return self.results.pop(i)

    def finished(self, i: int) -> None:
        with self.cv:
            self.active.discard(i)
            if self.pending and len(self.pending) == len(self.active):
                self._run()


def fit_latents(generator: LatentGenerator, composites, *, seed: int = 0,
                maxiter: int = DEFAULT_LATENT_ITERS) -> tuple[np.ndarray, list[dict]]:
    """Fit ``G(z)`` to each of several low-resolution composites, all at once.

    Every composite gets its own L-BFGS-B fit (the same as :func:`fit_latent`'s,
    from the same ``z0``), but the fits' forward and backward passes of ``G`` run
    together, one batch per round (:class:`_Evaluations`): the passes of a 64x64
    ``G(z)`` at batch 1 are dominated by per-call overhead, so one pass over 60
    composites costs far less than 60 passes (``benchmarks/bench_train.py``,
    ``--latent``). The results do not depend on which other composites are in the
    set.

    Parameters
    ----------
    generator : LatentGenerator
        Switched to eval mode (batch norm uses its running statistics).
    composites : sequence of numpy.ndarray
        Each ``float32 (S, S, 3)`` in [0, 1], ``S = generator.arch["image_size"]``.
    seed : int
        Seed of the starting point ``z0 ~ N(0, 1)`` (the same for every composite).
    maxiter : int
        L-BFGS-B iterations at most per composite (>= 1).

    Returns
    -------
    z : numpy.ndarray
        ``float32 (N, nz)``: the fitted latent vectors ``z*``.
    infos : list of dict
        Per composite: ``latent_iterations``, ``latent_evaluations`` (forward and
        backward passes), ``latent_loss`` (final MSE on [-1, 1] images),
        ``latent_loss0`` (at ``z0``).
    """
    import torch
    from scipy.optimize import minimize

    size, nz = generator.arch["image_size"], generator.arch["nz"]
    xs = [np.asarray(c, dtype=np.float32) for c in composites]
    for x in xs:
        if x.shape != (size, size, 3):
            raise ModelError(f"fit_latent expects a ({size}, {size}, 3) image, got shape "
                             f"{x.shape}")
    _check_maxiter(maxiter)
    if not xs:
        return np.zeros((0, nz), np.float32), []
    param = next(generator.parameters())
    generator.eval()
    targets = torch.from_numpy(np.ascontiguousarray(np.stack(xs).transpose(0, 3, 1, 2)))
    targets = targets.to(device=param.device, dtype=param.dtype) * 2.0 - 1.0
    z0 = np.random.default_rng(seed).standard_normal(nz)
    evals = _Evaluations(generator, targets, nz)
    results: list = [None] * len(xs)
    losses0: list = [None] * len(xs)

    def fit(i: int) -> None:
        try:
            losses0[i] = evals.evaluate(i, z0)[0]
            results[i] = minimize(lambda z: evals.evaluate(i, z), z0, method="L-BFGS-B",
                                  jac=True, options={"maxiter": int(maxiter)})
        except BaseException as exc:
            results[i] = exc
        finally:
            evals.finished(i)

    generator.requires_grad_(False)
    try:
        with _fit_threads(param.device, len(xs)):
            workers = [threading.Thread(target=fit, args=(i,), daemon=True)
                       for i in range(len(xs))]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
    finally:
        generator.requires_grad_(True)
    for r in results:
        if isinstance(r, BaseException):
            raise r
    n = targets[0].numel()
    infos = [{"latent_iterations": int(r.nit), "latent_evaluations": int(r.nfev),
              "latent_loss": float(r.fun) / n, "latent_loss0": float(l0) / n}
             for r, l0 in zip(results, losses0)]
    return np.stack([r.x for r in results]).astype(np.float32), infos


def latent_color(generator: LatentGenerator, z) -> np.ndarray:
    """``clip((G(z) + 1) / 2, 0, 1)`` of one latent vector ``z`` (``nz`` values):
    ``float32 (S, S, 3)``, in eval mode."""
    import torch

    param = next(generator.parameters())
    generator.eval()
    nz = generator.arch["nz"]
    z = np.asarray(z, dtype=np.float32).reshape(-1)
    if z.shape != (nz,):
        raise ModelError(f"latent vector must have {nz} values, got {z.size}")
    with torch.no_grad():
        zt = torch.from_numpy(z).to(param.device).reshape(1, nz)
        y = generator(zt.to(param.dtype))[0].float().cpu().numpy()
    color = ((y.transpose(1, 2, 0) + 1.0) / 2.0).clip(0.0, 1.0)
    return np.ascontiguousarray(color, dtype=np.float32)


def fit_latent(generator: LatentGenerator, composite: np.ndarray, *, seed: int = 0,
               maxiter: int = DEFAULT_LATENT_ITERS) -> tuple[np.ndarray, dict]:
    """Fit ``G(z)`` to a low-resolution composite by L-BFGS-B over ``z``
    (:func:`fit_latents` of one composite).

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
    with _fit_threads(next(generator.parameters()).device, 1):
        z, infos = fit_latents(generator, [composite], seed=seed, maxiter=maxiter)
        return latent_color(generator, z[0]), infos[0]
