"""Blending methods behind one signature: ``blend(src, dst, mask, method, **options)``.

Methods (``METHODS``):

``copy-paste``  ``m * src + (1 - m) * dst``.
``poisson``     Poisson image editing (Perez et al. 2003): Dirichlet boundary = dst,
                unknowns inside the mask, source gradients (:func:`baselines.poisson_blend`;
                option ``poisson_boundary="box"`` for OpenCV seamlessClone's variant).
``mpb``         modified Poisson blending (Tanaka et al. 2012), screened Poisson on the
                whole image (:func:`baselines.modified_poisson`; option ``epsilon``).
``laplacian``   Burt-Adelson multi-band blending [1]_ (Laplacian pyramids, option
                ``levels``).
``gp``          the Gaussian-Poisson pyramid with the low-resolution copy-paste
                composite as colour: GP-GAN without the GAN (the paper's ablation).
``gp-gan``      GP-GAN: the Blending GAN's image (64x64 for the paper's model; the
                model's own input size) as colour, then the GP pyramid (needs
                ``model``: a checkpoint path, the authors' ``.npz`` or a loaded
                generator; an unsupervised ``G(z)`` is fitted to the composite). Option
                ``gan_region``: ``"mask"`` (default) takes G's colour inside a dilated,
                feathered mask and the scene's outside it at level 0; ``"image"`` takes
                G's whole image, as the paper does.
``gp-gan-unsupervised``  the paper's unsupervised GP-GAN: a DCGAN ``G(z)`` of natural
                scenes fitted to the low-resolution copy-paste composite by L-BFGS-B
                over ``z`` (:func:`gpgan.unsupervised.fit_latent`; options
                ``latent_iters``, 1000, and ``latent_seed``, 0), ``G(z*)`` as colour,
                then the GP pyramid (``model``: an unsupervised checkpoint;
                ``gan_region`` as for ``gp-gan``).

GP options: ``color_weight`` (beta, 1.0), ``solver`` ("cg" | "dct"; also taken by
``mpb``, the default "cg" for both), ``sigma`` (0.5),
``pyramid`` ("aspect" | "reference"), ``image_size`` (64: the pyramid's base, level 0
is about this size), ``preserve_background``
(False) with ``band`` (pixels, 5), ``rtol``, ``maxiter``. Common: ``offset=(y, x)`` to
place a smaller ``src`` (and its mask, of ``src``'s size) inside ``dst``.

References
----------
.. [1] P. J. Burt and E. H. Adelson, "A Multiresolution Spline with Application to
   Image Mosaics", ACM Transactions on Graphics 2(4):217-236, 1983.
.. [2] H. Wu, S. Zheng, J. Zhang and K. Huang, "GP-GAN: Towards Realistic
   High-Resolution Image Blending", ACM Multimedia 2019, arXiv:1703.07195. The
   ``gp-gan`` method and its no-GAN ablation ``gp``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.ndimage import gaussian_filter

from ._arrays import bbox, chw, for_channels, hwc
from .baselines import modified_poisson, poisson_blend
from .errors import InputError, ModelError
from .io import to_float_image, to_mask
from .operators import gaussian_taps
from .poisson import (DEFAULT_MAXITER, DEFAULT_RTOL, DEFAULT_SOLVER, Level, check_beta,
                      check_solver, solve_levels)
from .unsupervised import DEFAULT_LATENT_ITERS, fit_latent, fit_latents, latent_color
from .pyramid import (dilate, downsample2, gaussian_pyramid, level_sizes, resize,
                      resize_mask, upsample2)

__all__ = ["blend", "blend_each", "Blended", "METHODS", "MIN_COLOR_WEIGHT", "prepare_inputs",
           "gp_pyramid", "generator_input"]

METHODS = ("copy-paste", "poisson", "mpb", "laplacian", "gp", "gp-gan", "gp-gan-unsupervised")

#: The methods that run a generator (need ``model``), and the checkpoint each takes.
GAN_METHODS = {"gp-gan": "results/demo/model/best.pt",
               "gp-gan-unsupervised": "results/demo/model/unsupervised/best.pt"}


def _no_model(method: str) -> str:
    return (f"method {method!r} needs a model: pass model=PATH (CLI --model), e.g. "
            f"{GAN_METHODS[method]} from the workflow")
#: Smallest colour weight (beta) accepted. Measured on real photos (gp, both solvers,
#: 256x256 to 4096x4096): results are sound down to 1e-5 and barely change below
#: 1e-3 (the limit is pure Poisson with a free mean), while float32 round-off takes
#: over at 1e-6 (cg, >= 1 MP: the image drifts to white) and 1e-8 (dct: 10-40 %
#: black pixels). 1e-3 is 1000x above the first failure measured.
MIN_COLOR_WEIGHT = 1e-3

_EMPTY_MASK = ("mask is empty (no pixel > 0): the object must be non-zero (1 or 255, "
               "alpha > 0); check the mask file and --offset")


# --------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------
def place(src: np.ndarray, mask: np.ndarray, dst_shape: tuple[int, int],
          offset: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Put ``src`` (h, w, 3) and its mask (h, w) at ``offset=(y, x)`` in a ``dst``-sized
    canvas.

    Parts outside ``dst`` are clipped. The mask is 0 where ``src`` does not reach; the
    source is edge-replicated there, so a mask touching the source's border sees a
    zero source gradient across it (not a jump to black).
    """
    H, W = dst_shape
    h, w = mask.shape
    y, x = int(offset[0]), int(offset[1])
    if y >= H or x >= W or y + h <= 0 or x + w <= 0:
        raise InputError(f"offset {y},{x} puts the {w}x{h} source entirely outside the "
                         f"{W}x{H} destination (width x height)")
    r0, c0 = max(-y, 0), max(-x, 0)
    r1, c1 = h - max(y + h - H, 0), w - max(x + w - W, 0)
    s, m = src[r0:r1, c0:c1], mask[r0:r1, c0:c1]
    top, left = max(y, 0), max(x, 0)
    bottom, right = H - top - s.shape[0], W - left - s.shape[1]
    src_full = np.pad(s, ((top, bottom), (left, right), (0, 0)), mode="edge")
    mask_full = np.pad(m, ((top, bottom), (left, right)), mode="constant")
    return np.ascontiguousarray(src_full, dtype=np.float32), mask_full.astype(np.float32)


def prepare_inputs(src, dst, mask, offset=None):
    """Validate and normalise inputs to float32 ``(H, W, 3)``, ``(H, W, 3)``, ``(H, W)``.

    Accepts arrays in any encoding :mod:`gpgan.io` knows (uint8/uint16/float, grey,
    RGB, RGBA; masks 0/1, 0/255, RGB, alpha or soft), scaled or refused by its one
    rule (other integer types only in 0..255, floats only in [0, 1], no NaN/inf).
    Without ``offset`` all three must have ``dst``'s size; with it, ``mask`` has
    ``src``'s size and the source may lie partly outside ``dst`` (clipped), not
    entirely.
    """
    src = to_float_image(src, name="src")
    dst = to_float_image(dst, name="dst")
    mask = to_mask(mask, name="mask")
    if offset is None:
        if src.shape != dst.shape:
            raise InputError(f"src is {src.shape[1]}x{src.shape[0]} but dst is "
                             f"{dst.shape[1]}x{dst.shape[0]} (width x height): same size "
                             "needed, or give an offset")
        if mask.shape != dst.shape[:2]:
            raise InputError(f"mask is {mask.shape[1]}x{mask.shape[0]} but the images are "
                             f"{dst.shape[1]}x{dst.shape[0]} (width x height)")
    else:
        if mask.shape != src.shape[:2]:
            raise InputError(f"with an offset the mask must have src's size: mask is "
                             f"{mask.shape[1]}x{mask.shape[0]}, src is "
                             f"{src.shape[1]}x{src.shape[0]} (width x height)")
        if not mask.any():
            raise InputError(_EMPTY_MASK)
        src, mask = place(src, mask, dst.shape[:2], offset)
    if not mask.any():
        raise InputError(_EMPTY_MASK)
    return src, dst, mask


# --------------------------------------------------------------------------------------
# Methods
# --------------------------------------------------------------------------------------
def copy_paste(src, dst, mask):
    """``m * src + (1 - m) * dst`` (float32 (H, W, 3))."""
    m = mask[:, :, None]
    return (src * m + dst * (1.0 - m)).astype(np.float32)


def laplacian_blend(src, dst, mask, levels: int | None = None):
    """Burt & Adelson (1983) multi-band blending (the multiresolution spline, module
    reference [1]).

    Laplacian pyramids of src and dst are mixed band by band with the Gaussian
    pyramid of the mask, then collapsed. ``levels`` defaults to as many halvings as
    keep the coarsest side >= 8 pixels (at most 8).
    """
    h, w = mask.shape
    if levels is None:
        levels = int(max(1, min(8, np.floor(np.log2(min(h, w) / 8.0)))))
    s, d = chw(src), chw(dst)
    m = mask.astype(np.float32)
    gs, gd, gm = [s], [d], [m]
    for _ in range(levels):
        gs.append(downsample2(gs[-1]))
        gd.append(downsample2(gd[-1]))
        gm.append(downsample2(gm[-1]))
    out = gd[-1] + gm[-1] * (gs[-1] - gd[-1])
    for k in range(levels - 1, -1, -1):
        size = gs[k].shape[1:]
        ls = gs[k] - upsample2(gs[k + 1], size)
        ld = gd[k] - upsample2(gd[k + 1], size)
        out = upsample2(out, size) + ld + gm[k] * (ls - ld)
    return hwc(out, clip=True)


def _object_window(mask: np.ndarray, levels: int, reach: int = 6) -> tuple[int, int, int, int]:
    """Full-resolution window around the mask whose pyramid equals the full image's
    pyramid on the mask's bounding box (+1 px) at every level.

    Each 2x step's filter reaches at most 4 input pixels (the ``"cubic"`` 8-tap
    filter; 3 below, 4 above), so ``reach * 2**levels`` pixels of
    margin cover all levels; the window is aligned to multiples of ``2**levels`` so its
    coarse grids coincide with the full image's.
    """
    H, W = mask.shape
    r0, r1, c0, c1 = bbox(mask > 0, margin=1)
    step = 2 ** levels
    margin = reach * step + step
    r0 = max(0, (r0 - margin) // step * step)
    c0 = max(0, (c0 - margin) // step * step)
    r1 = min(H, -(-(r1 + margin) // step) * step)
    c1 = min(W, -(-(c1 + margin) // step) * step)
    return r0, r1, c0, c1


def _copy_paste_level(d_pyr, diff_pyr, m_pyr, k: int) -> np.ndarray:
    """Copy-paste composite at pyramid level ``k``, ``(C, h, w)`` clipped to [0, 1]:
    ``dst_k + m_k * (src - dst)_k`` on the object window."""
    cp = d_pyr[k].copy()
    w, (wr, wc) = diff_pyr[k]
    hh, ww = w.shape[1:]
    cp[:, wr:wr + hh, wc:wc + ww] += m_pyr[k][wr:wr + hh, wc:wc + ww] * w
    return np.clip(cp, 0.0, 1.0)


def _pyramids(src, dst, mask, sizes, ref):
    """dst pyramid, (src - dst) pyramid on the object window, mask pyramid."""
    levels = len(sizes) - 1
    d_pyr = gaussian_pyramid(chw(dst), sizes, reference=ref)
    if ref:
        m_pyr = [resize_mask(mask, sz, nearest=True) for sz in sizes]
    else:
        m_pyr = [mask]
        for sz in reversed(sizes[:-1]):
            m_pyr.append(resize_mask(m_pyr[-1], sz))
        m_pyr = m_pyr[::-1]
    r0, r1, c0, c1 = (0, mask.shape[0], 0, mask.shape[1]) if ref else \
        _object_window(mask, levels)
    # src - dst on the window, channel-first, in one pass per channel (no (H, W, 3) temp)
    win = np.empty((src.shape[2], r1 - r0, c1 - c0), dtype=np.float32)
    for_channels(lambda k: np.subtract(src[r0:r1, c0:c1, k], dst[r0:r1, c0:c1, k],
                                       out=win[k]),
                 win.shape[0], win[0].size)
    if ref:
        diff_pyr = [(x, (0, 0)) for x in gaussian_pyramid(win, sizes, reference=True)]
    else:
        diff_pyr = [(win, (r0, c0))]
        for k in range(levels):
            diff_pyr.append((downsample2(diff_pyr[-1][0], "cubic"),
                             (r0 >> (k + 1), c0 >> (k + 1))))
        diff_pyr = diff_pyr[::-1]
    if np.may_share_memory(d_pyr[-1], dst):  # the solve recycles the finest level
        d_pyr[-1] = d_pyr[-1].copy()
    return d_pyr, diff_pyr, m_pyr


def _gan_levels(d_pyr, diff_pyr, m_pyr, sizes, image_size: int):
    """``(cp, m, cp0, m0)``: the copy-paste composite and mask at the coarsest level
    whose sides are both >= ``image_size`` (the finest level if none is) and at level
    0 (what ``gp_pyramid``'s ``color_fn`` is given)."""
    cp0 = hwc(_copy_paste_level(d_pyr, diff_pyr, m_pyr, 0))
    k = next((i for i, (h, w) in enumerate(sizes) if min(h, w) >= image_size),
             len(sizes) - 1)
    cp = cp0 if k == 0 else hwc(_copy_paste_level(d_pyr, diff_pyr, m_pyr, k))
    return cp, m_pyr[k], cp0, m_pyr[0]


def gp_pyramid(src, dst, mask, color0=None, *, color_weight=1.0, solver=DEFAULT_SOLVER,
               sigma=0.5, pyramid="aspect", image_size=64, preserve_background=False,
               band=5, rtol=DEFAULT_RTOL, maxiter=DEFAULT_MAXITER,
               infos: list | None = None, color_fn=None):
    """The Gaussian-Poisson stage: walk up the pyramid solving Eq. (1) at each level.

    Parameters
    ----------
    src, dst, mask : float32 (H, W, 3), (H, W, 3), (H, W)
    color0 : float32 (h, w, 3), optional
        Level-0 colour image (any size; resized to level 0), e.g. the GAN output.
        Default: the level-0 copy-paste composite (the ``gp`` method).
    color_fn : callable, optional
        ``color_fn(cp, m, cp0, m0)`` -> level-0 colour ``(h0, w0, 3)``, given the
        copy-paste composite ``cp`` ``(h, w, 3)`` and mask ``m`` ``(h, w)`` at the
        coarsest level whose sides are both >= ``image_size`` (the finest level if none
        is) and the same at level 0 (how ``gp-gan`` runs the GAN without a second
        pyramid).

    At level ``s > 0`` the colour is the previous level's result up-sampled (the
    ``"cubic-sharp"`` 2x filter, or cubic spline with ``pyramid="reference"``; the
    choice and its measurements are in :mod:`gpgan.pyramid`). With
    ``preserve_background`` the pixels farther than ``band`` pixels from the mask are
    held at ``dst`` (Dirichlet; the ``beta -> inf`` limit of a per-pixel colour
    weight), so the scene does not drift. Only ``dst`` is filtered at full size; the
    object enters through ``src - dst`` on a window around the mask.
    """
    H, W = mask.shape
    ref = pyramid == "reference"
    sizes = level_sizes(H, W, image_size, pyramid)
    taps = gaussian_taps(sigma)
    beta = check_beta(color_weight, (H, W))
    d_pyr, diff_pyr, m_pyr = _pyramids(src, dst, mask, sizes, ref)
    if color0 is None and color_fn is None:
        color0 = hwc(_copy_paste_level(d_pyr, diff_pyr, m_pyr, 0))
    elif color0 is None:
        color0 = color_fn(*_gan_levels(d_pyr, diff_pyr, m_pyr, sizes, image_size))
    c0 = chw(np.asarray(color0, dtype=np.float32))
    kernel = "spline" if ref else "cubic-sharp"  # the colour's resampling (pyramid.py)
    y0 = resize(c0, sizes[0], kernel)
    if np.may_share_memory(y0, color0):  # the solve builds its right-hand side in it
        y0 = y0.copy()
    levels = [Level(d_pyr[k], m_pyr[k], diff_pyr[k],
                    beta if np.ndim(beta) == 0 else resize_mask(beta, size),
                    ~dilate(m_pyr[k] > 0, band) if preserve_background else None)
              for k, size in enumerate(sizes)]
    del d_pyr, diff_pyr
    return solve_levels(levels, y0, solver, taps=taps, rtol=rtol, maxiter=maxiter,
                        upsample=lambda y, size: resize(y, size, kernel), infos=infos)


@lru_cache(maxsize=4)
def _cached_generator(path: str, device: str):
    from .models import load_generator

    return load_generator(path, device=device)


#: Level-0 pixels by which ``gan_region="mask"`` grows the mask before feathering it,
#: and the feather's Gaussian sigma (level-0 pixels).
GAN_DILATE, GAN_FEATHER = 1, 1.0


def _generator(model, device: str, method: str):
    """The loaded generator of ``model`` (a path, cached, or a module), checked to be
    the kind ``method`` runs: a Blending GAN for ``gp-gan``, a ``G(z)`` for
    ``gp-gan-unsupervised``."""
    if model is None:
        raise ModelError(_no_model(method))
    generator = _cached_generator(str(model), device) if isinstance(model, (str, bytes)) or \
        hasattr(model, "__fspath__") else model
    latent = getattr(generator, "arch", {}).get("kind") == "latent"
    if latent != (method == "gp-gan-unsupervised"):
        what, use = ("an unsupervised GP-GAN generator G(z)", "gp-gan-unsupervised") if latent \
            else ("a Blending GAN generator", "gp-gan")
        name = os.fspath(model) if isinstance(model, (str, os.PathLike)) else "model"
        raise ModelError(f"{name} is {what}: "
                         f"use method {use!r} with it (method {method!r} was asked for)")
    return generator


def _generator_input(cp, m, size: int):
    """The copy-paste composite and mask of a pyramid level resampled to the
    generator's ``size x size`` input (squashing the aspect ratio, as the reference)."""
    return hwc(resize(chw(cp), (size, size)), clip=True), resize_mask(m, (size, size))


def gan_color(cp, m, cp0, m0, model, *, region="mask", device="auto", method="gp-gan",
              latent_iters=DEFAULT_LATENT_ITERS, latent_seed=0, latent_z=None, infos=None):
    """The generator's colour image at level 0 (``gp-gan`` and ``gp-gan-unsupervised``).

    ``cp``/``m``: the copy-paste composite ``(h, w, 3)`` and mask ``(h, w)`` at a
    pyramid level at least the generator's input size ``S`` (64 for the paper's model);
    both are resampled to ``S x S`` (squashing the aspect ratio, as the reference
    does) and ``G`` runs on them (the mask only if the model takes it). ``G``'s image is
    resized to level 0 (``cp0``, ``m0``). ``region="image"`` returns it as it is (the
    paper); ``region="mask"`` takes it inside the mask grown by :data:`GAN_DILATE`
    pixels and feathered with a Gaussian of sigma :data:`GAN_FEATHER` (never below
    ``m0``), and ``cp0`` (the scene) outside, so a weak ``G`` cannot repaint the scene.
    For ``gp-gan-unsupervised`` ``G``'s image is ``G(z*)`` fitted to the composite
    (:func:`gpgan.unsupervised.fit_latent`, ``latent_iters`` and ``latent_seed``; its
    iterations and losses are appended to ``infos``, a list, as one dict), or
    ``G(latent_z)`` when a fitted ``latent_z`` is given (no fit; :func:`blend_each`).
    Returns float32 ``(h0, w0, 3)`` in [0, 1].
    """
    from .models import generate_color

    generator = _generator(model, device, method)
    small, small_mask = _generator_input(cp, m, generator.arch["image_size"])
    if method == "gp-gan-unsupervised" and latent_z is not None:
        g = latent_color(generator, latent_z)
    elif method == "gp-gan-unsupervised":
        g, info = fit_latent(generator, small, seed=latent_seed, maxiter=latent_iters)
        if infos is not None:
            infos.append(info)
    else:
        g = generate_color(generator, small, small_mask)
    g0 = hwc(resize(chw(g), m0.shape), clip=True)
    if region == "image":
        return g0
    w = gaussian_filter(dilate(m0, GAN_DILATE).astype(np.float32), GAN_FEATHER,
                        mode="nearest")
    w = np.maximum(w, m0)[:, :, None]
    return (w * g0 + (1.0 - w) * cp0).astype(np.float32)


def generator_input(src, dst, mask, *, offset=None, pyramid="aspect", image_size=64,
                    size=64):
    """What the generator of ``gp-gan`` / ``gp-gan-unsupervised`` sees for these inputs:
    the copy-paste composite ``float32 (size, size, 3)`` and its mask ``(size, size)``,
    resampled from the pyramid level :func:`gp_pyramid` hands its ``color_fn``."""
    src, dst, mask = prepare_inputs(src, dst, mask, offset)
    sizes = level_sizes(*mask.shape, image_size, pyramid)
    pyr = _pyramids(src, dst, mask, sizes, pyramid == "reference")
    cp, m, _, _ = _gan_levels(*pyr, sizes, image_size)
    return _generator_input(cp, m, size)


@dataclass
class Blended:
    """One result of :func:`blend_each`: the image, the seconds it took (its own work
    plus its share of a batched latent fit) and :func:`blend`'s ``infos``."""

    image: np.ndarray
    seconds: float
    infos: list


def blend_each(inputs, method="gp-gan", *, chunk: int = 64, **options):
    """Blend every ``(src, dst, mask)`` of ``inputs`` with one method; yields
    :class:`Blended` results in order.

    The same as :func:`blend` on each item, except that ``gp-gan-unsupervised`` fits
    ``G(z)`` to the composites of ``chunk`` items at once
    (:func:`gpgan.unsupervised.fit_latents`: one batched pass of ``G`` per round
    instead of one per composite; each composite's fit and result are its own).
    ``inputs`` is a sequence; an item may be read when it is indexed (it is indexed
    twice for ``gp-gan-unsupervised``). ``options`` go to :func:`blend` (``infos`` is
    per item: see :attr:`Blended.infos`).
    """
    options.pop("infos", None)
    n = len(inputs)
    if method != "gp-gan-unsupervised":
        for i in range(n):
            item, infos = inputs[i], []
            t0 = time.perf_counter()
            out = blend(*item, method=method, infos=infos, **options)
            yield Blended(out, time.perf_counter() - t0, infos)
        return
    if options.get("model") is None:
        raise ModelError(_no_model(method))
    generator = _generator(options["model"], options.get("device", "auto"), method)
    geometry = {k: options[k] for k in ("offset", "pyramid", "image_size") if k in options}
    for start in range(0, n, chunk):
        idx = range(start, min(start + chunk, n))
        smalls, seconds = [], 0.0
        for i in idx:
            item = inputs[i]
            t0 = time.perf_counter()
            smalls.append(generator_input(*item, **geometry,
                                          size=generator.arch["image_size"])[0])
            seconds += time.perf_counter() - t0
        t0 = time.perf_counter()
        z, fits = fit_latents(generator, smalls, seed=options.get("latent_seed", 0),
                              maxiter=options.get("latent_iters", DEFAULT_LATENT_ITERS))
        shared = (seconds + time.perf_counter() - t0) / len(idx)
        for i, z_i, fit in zip(idx, z, fits):
            item, infos = inputs[i], [fit]
            t0 = time.perf_counter()
            out = blend(*item, method=method, infos=infos,
                        **dict(options, model=generator, latent_z=z_i))
            yield Blended(out, shared + time.perf_counter() - t0, infos)


def check_color_weight(color_weight) -> None:
    """Refuse a colour weight (scalar or per-pixel array) below
    :data:`MIN_COLOR_WEIGHT`, or NaN, with one line."""
    lo = np.min(color_weight) if np.size(color_weight) else np.nan
    if not lo >= MIN_COLOR_WEIGHT:
        raise InputError(f"color weight (beta) must be >= {MIN_COLOR_WEIGHT:g}, got {lo:g} "
                         "(smaller values are float32 round-off, not a blend)")


def blend(src, dst, mask, method="gp-gan", *, offset=None, color_weight=1.0,
          solver=DEFAULT_SOLVER, model=None, sigma=0.5, pyramid="aspect", image_size=64,
          preserve_background=False, band=5, rtol=DEFAULT_RTOL,
          maxiter=DEFAULT_MAXITER, epsilon=0.05, levels=None, device="auto",
          poisson_boundary="mask", gan_region="mask", latent_iters=DEFAULT_LATENT_ITERS,
          latent_seed=0, latent_z=None, infos=None):
    """Blend ``src`` into ``dst`` where ``mask`` is 1.

    Parameters
    ----------
    src, dst : array (H, W[, C])
        Object and scene images (uint8/uint16/float in [0, 1]; grey, RGB or RGBA).
    mask : array (H, W[, C])
        Object mask in any common encoding (0/1, 0/255, RGB, alpha, soft).
    method : str
        One of :data:`METHODS`.
    offset : (int, int), optional
        ``(y, x)`` of ``src``'s top-left corner in ``dst`` (then ``mask`` has ``src``'s
        size); parts outside ``dst`` are clipped.
    color_weight : float or array
        beta of the Gaussian-Poisson equation (``gp``, ``gp-gan``); at least
        :data:`MIN_COLOR_WEIGHT` everywhere.
    solver : {"cg", "dct"}
        Solver of the Gaussian-Poisson equation (``gp``, ``gp-gan``) and of the
        screened Poisson equation (``mpb``); ``preserve_background`` needs "cg".
    model : path or torch.nn.Module
        Generator checkpoint: a Blending GAN (``gp-gan``) or an unsupervised ``G(z)``
        (``gp-gan-unsupervised``): a ``.pt``, the authors' released
        ``blending_gan.npz`` / ``unsupervised_blending_gan.npz`` (converted once to a
        cached ``.pt``, :mod:`gpgan.chainer`), or a loaded generator.
    gan_region : {"mask", "image"}
        Where ``gp-gan`` takes G's colour at level 0 (:func:`gan_color`).
    latent_iters, latent_seed : int
        ``gp-gan-unsupervised``: L-BFGS-B iterations at most and the seed of ``z0``.
    latent_z : array of ``nz`` floats, optional
        ``gp-gan-unsupervised``: a fitted ``z*`` (e.g. from
        :func:`gpgan.unsupervised.fit_latents`): ``G(latent_z)`` is the colour, no fit.
    infos : list, optional
        Filled with one dict per pyramid level (``gp``, ``gp-gan``; preceded by the
        latent fit's dict for ``gp-gan-unsupervised``).

    Returns
    -------
    ndarray float32 (H, W, 3) in [0, 1] with ``dst``'s size.
    """
    if method not in METHODS:
        raise InputError(f"unknown method {method!r} (choose from {', '.join(METHODS)})")
    check_solver(solver)
    if pyramid not in ("aspect", "reference"):
        raise InputError(f"unknown pyramid {pyramid!r} (use 'aspect' or 'reference')")
    if gan_region not in ("mask", "image"):
        raise InputError(f"unknown gan_region {gan_region!r} (use 'mask' or 'image')")
    if preserve_background and solver != "cg":
        raise InputError("preserve_background needs solver='cg'")
    if method in ("gp", *GAN_METHODS):
        check_color_weight(color_weight)
    src, dst, mask = prepare_inputs(src, dst, mask, offset)
    if method == "copy-paste":
        return copy_paste(src, dst, mask)
    if method == "poisson":
        return poisson_blend(src, dst, mask, boundary=poisson_boundary, rtol=rtol,
                             maxiter=maxiter)
    if method == "mpb":
        return modified_poisson(src, dst, mask, epsilon=epsilon, solver=solver, rtol=rtol,
                                maxiter=maxiter)
    if method == "laplacian":
        return laplacian_blend(src, dst, mask, levels)
    gp = dict(color_weight=color_weight, solver=solver, sigma=sigma, pyramid=pyramid,
              image_size=image_size, preserve_background=preserve_background, band=band,
              rtol=rtol, maxiter=maxiter, infos=infos)
    if method == "gp":
        return gp_pyramid(src, dst, mask, **gp)
    if model is None:  # fail before any work
        raise ModelError(_no_model(method))
    return gp_pyramid(src, dst, mask, **gp,
                      color_fn=lambda *levels: gan_color(
                          *levels, model, region=gan_region, device=device, method=method,
                          latent_iters=latent_iters, latent_seed=latent_seed,
                          latent_z=latent_z, infos=infos))
