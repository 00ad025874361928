"""The discrete operators of the Gaussian-Poisson equation (Wu et al. 2019).

One level of GP-GAN's high-resolution stage solves, per colour channel, the screened
Poisson system (``SPEC.md``; solved in :mod:`gpgan.poisson`)::

    (-Lap_N + beta * G_N) Y = -div F + beta * x~                                 (1)

This module holds its terms, on channel-first ``(C, H, W)`` float32 arrays:

- ``Lap_N``: 5-point Laplacian, Neumann (reflect) boundary (:func:`neg_laplacian`);
- ``G_N``: 3x3 Gaussian (sigma 0.5, taps ``g1, g0, g1`` per axis, reflect boundary;
  :func:`gaussian_taps`, :func:`gaussian_filter3`);
- the left-hand side as a matrix-free stencil (:func:`apply_operator`,
  :func:`operator_kernel`) and as a ``scipy.sparse`` matrix (:func:`operator_matrix`);
- ``-div F`` of the guidance gradients of the composite, ``F_h = D_h src * mbar_h +
  D_h dst * (1 - mbar_h)`` with ``mbar_h(i, j) = (m(i, j) + m(i, j+1)) / 2`` and forward
  differences ``D_h I(i, j) = I(i, j+1) - I(i, j)`` (0 in the last column)
  (:func:`guidance_divergence`).

Memory traffic is what costs at 4-16 MP: the stencils run in cache-sized row blocks
(:func:`gpgan._arrays.block_rows`) and channels run on threads above 2 MP.

References
----------
.. [1] H. Wu, S. Zheng, J. Zhang and K. Huang, "GP-GAN: Towards Realistic
   High-Resolution Image Blending", ACM Multimedia 2019, arXiv:1703.07195. The
   Gaussian-Poisson equation (their Eq. 7-9, (1) here).
.. [2] P. Perez, M. Gangnet and A. Blake, "Poisson Image Editing", ACM Transactions on
   Graphics 22(3):313-318, 2003 (SIGGRAPH). The guidance field ``F`` and ``-div F``.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
from scipy.ndimage import correlate, correlate1d

from ._arrays import bbox, block_rows, for_channels, map_channels
from .errors import InputError

__all__ = [
    "apply_operator",
    "gaussian_filter3",
    "gaussian_taps",
    "guidance_divergence",
    "neg_laplacian",
    "operator_kernel",
    "operator_matrix",
]


def gaussian_taps(sigma: float = 0.5) -> tuple[float, float]:
    """1-D taps ``(g0, g1)`` of the 3x3 Gaussian used by the Gaussian-Poisson equation.

    The sampled Gaussian is normalised over a radius of ``int(4 sigma + 0.5)`` pixels
    (the reference's truncation) and then cut to the central 3 taps, so for
    ``sigma = 0.5``: ``g0 = 0.786571``, ``g1 = 0.106451`` and the 3x3 kernel sums to
    0.998945 (its DC gain), as in ``SPEC.md``.
    """
    if not sigma > 0:
        raise InputError(f"gaussian sigma must be > 0, got {sigma}")
    radius = max(1, int(4.0 * sigma + 0.5))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-(x**2) / (2.0 * sigma**2))
    g /= g.sum()
    return float(g[radius]), float(g[radius + 1])


# --------------------------------------------------------------------------------------
# Operators (matrix-free, (C, H, W) float32)
# --------------------------------------------------------------------------------------
def neg_laplacian(z: np.ndarray, add: np.ndarray | None = None, *,
                  out: np.ndarray | None = None, weights=None) -> np.ndarray:
    """``-Lap_N z`` over the last two axes (5-point stencil, Neumann boundary).

    ``4 z - (sum of the 4 neighbours)``, where a missing neighbour (image border)
    counts as ``z`` itself. ``add`` (same shape) is added in the same pass. With
    ``out``, the result is accumulated into ``out`` (``out += -Lap_N z``, no new
    full-size array; ``add`` is then ignored: put it in ``out``). ``weights=(w_h,
    w_v)`` (with ``out``; shapes ``(H, W-1)`` and ``(H-1, W)``) weight each
    difference: ``out += -div(w grad z)``, the guidance term of a soft mask.
    """
    if out is None:
        out = np.multiply(z, 4.0, dtype=z.dtype)
        if add is not None:
            out += add
        out[..., 1:, :] -= z[..., :-1, :]
        out[..., :-1, :] -= z[..., 1:, :]
        out[..., :, 1:] -= z[..., :, :-1]
        out[..., :, :-1] -= z[..., :, 1:]
        out[..., 0, :] -= z[..., 0, :]
        out[..., -1, :] -= z[..., -1, :]
        out[..., :, 0] -= z[..., :, 0]
        out[..., :, -1] -= z[..., :, -1]
        return out
    # Sum of (z - neighbour) over the existing neighbours, from forward differences,
    # in row blocks of ~256 KB (each pass stays in cache; 2.6x faster at 16 MP).
    wh, wv = (None, None) if weights is None else weights
    h, w = z.shape[-2:]
    rows = block_rows(w) if z.ndim == 2 else h
    buf = np.empty(z.shape[:-2] + (min(rows, h) + 1, w), dtype=z.dtype)
    for r0 in range(0, h, rows):
        r1 = min(r0 + rows, h)
        o = out[..., r0:r1, :]
        if w > 1:
            d = buf[..., :r1 - r0, :w - 1]
            np.subtract(z[..., r0:r1, 1:], z[..., r0:r1, :-1], out=d)
            if wh is not None:
                d *= wh[r0:r1]
            o[..., :, :-1] -= d
            o[..., :, 1:] += d
        if h > 1:
            lo, hi = max(r0 - 1, 0), min(r1 + 1, h)
            d = buf[..., :hi - lo - 1, :]  # d[i] = z[lo + i + 1] - z[lo + i]
            np.subtract(z[..., lo + 1:hi, :], z[..., lo:hi - 1, :], out=d)
            if wv is not None:
                d *= wv[lo:hi - 1]
            down = min(r1, h - 1) - r0  # rows r with a neighbour r + 1
            if down > 0:
                o[..., :down, :] -= d[..., r0 - lo:r0 - lo + down, :]
            start = max(r0, 1)  # rows r with a neighbour r - 1
            o[..., start - r0:, :] += d[..., start - 1 - lo:r1 - 1 - lo, :]
    return out


def _filter3(z: np.ndarray, g0: float, g1: float, axis: int) -> np.ndarray:
    """``g1 z[i-1] + g0 z[i] + g1 z[i+1]`` along ``axis`` (reflect boundary).

    The last (contiguous) axis uses :func:`scipy.ndimage.correlate1d` (one C pass);
    other axes use in-place sums of shifted views (no temporaries).
    """
    n = z.shape[axis]
    if n == 1:
        return np.multiply(z, g0 + 2.0 * g1)
    if axis == z.ndim - 1:
        return correlate1d(z, np.array([g1, g0, g1], dtype=z.dtype), axis=axis,
                           mode="reflect", output=np.empty_like(z))

    def sl(a, b):
        s = [slice(None)] * z.ndim
        s[axis] = slice(a, b)
        return tuple(s)

    out = np.multiply(z, g0 / g1)
    out[sl(1, n)] += z[sl(0, n - 1)]
    out[sl(0, n - 1)] += z[sl(1, n)]
    out[sl(0, 1)] += z[sl(0, 1)]  # reflect: the missing neighbour is the pixel itself
    out[sl(n - 1, n)] += z[sl(n - 1, n)]
    out *= g1
    return out


def gaussian_filter3(z: np.ndarray, taps: tuple[float, float]) -> np.ndarray:
    """``G_N z``: the separable 3x3 Gaussian over the last two axes (reflect boundary)."""
    g0, g1 = taps
    if g1 == 0.0:
        return np.multiply(z, g0 * g0)
    return _filter3(_filter3(z, g0, g1, z.ndim - 2), g0, g1, z.ndim - 1)


def operator_kernel(beta: float, taps: tuple[float, float]) -> np.ndarray:
    """The 3x3 stencil of ``-Lap_N + beta G_N`` for a constant ``beta`` (float32).

    Both parts use the same half-sample reflect boundary along each axis, so the sum
    is one 3x3 correlation with ``mode="reflect"``: corners ``beta g1^2``, edges
    ``beta g0 g1 - 1``, centre ``4 + beta g0^2``.
    """
    g0, g1 = taps
    c, e, m = beta * g1 * g1, beta * g0 * g1 - 1.0, 4.0 + beta * g0 * g0
    return np.array([[c, e, c], [e, m, e], [c, e, c]], dtype=np.float32)


def apply_operator(z: np.ndarray, beta, taps: tuple[float, float], *,
                   out: np.ndarray | None = None) -> np.ndarray:
    """``A z = -Lap_N z + S G_N S z`` with ``S = sqrt(beta)`` (``beta`` scalar or (H, W)).

    A constant ``beta`` is one 3x3 correlation per 2-D slice (:func:`operator_kernel`,
    one C pass over memory, written to ``out`` if given); a per-pixel ``beta`` uses
    the separable S G S form.
    """
    if np.isscalar(beta) or np.ndim(beta) == 0:
        if z.ndim == 2 and min(z.shape) > 1:
            return correlate(z, operator_kernel(float(beta), taps), mode="reflect",
                             output=np.empty_like(z) if out is None else out)
        res = neg_laplacian(z)
        if float(beta) != 0.0:
            g = gaussian_filter3(z, taps)
            g *= np.float32(beta)
            res += g
        return _into(res, out)
    res = neg_laplacian(z)
    s = np.sqrt(beta).astype(np.float32)
    g = gaussian_filter3(z * s, taps)
    g *= s
    res += g
    return _into(res, out)


def _into(res: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    if out is None:
        return res
    out[...] = res
    return out


def _lap_matrix_1d(n: int) -> sp.csr_array:
    main = np.full(n, 2.0)
    if n == 1:
        return sp.csr_array(np.zeros((1, 1)))
    main[0] = main[-1] = 1.0
    return sp.diags_array([-np.ones(n - 1), main, -np.ones(n - 1)], offsets=[-1, 0, 1],
                          format="csr")


def _gauss_matrix_1d(n: int, g0: float, g1: float) -> sp.csr_array:
    main = np.full(n, g0)
    if n == 1:
        return sp.csr_array(np.array([[g0 + 2 * g1]]))
    main[0] += g1
    main[-1] += g1
    off = np.full(n - 1, g1)
    return sp.diags_array([off, main, off], offsets=[-1, 0, 1], format="csr")


def operator_matrix(shape: tuple[int, int], beta=1.0, taps=None) -> sp.csr_array:
    """Assemble the single-channel operator of Eq. (1) as a ``scipy.sparse`` matrix.

    ``A = (-Lap_N) + S G_N S`` on row-major flattened ``(H, W)`` images, built from
    1-D Neumann / reflect factors with Kronecker products (``-Lap_N = L_H (x) I +
    I (x) L_W``, ``G_N = G_H (x) G_W``). Same operator as :func:`apply_operator`.
    """
    h, w = shape
    g0, g1 = gaussian_taps(0.5) if taps is None else taps
    lap = sp.kron(_lap_matrix_1d(h), sp.eye_array(w)) + sp.kron(sp.eye_array(h),
                                                                  _lap_matrix_1d(w))
    gauss = sp.kron(_gauss_matrix_1d(h, g0, g1), _gauss_matrix_1d(w, g0, g1))
    if np.ndim(beta) == 0:
        return (lap + float(beta) * gauss).tocsr()
    s = sp.diags_array(np.sqrt(np.asarray(beta, dtype=np.float64)).ravel())
    return (lap + s @ gauss @ s).tocsr()


# --------------------------------------------------------------------------------------
# Guidance field
# --------------------------------------------------------------------------------------
def guidance_divergence(src: np.ndarray | None, dst: np.ndarray, mask: np.ndarray, *,
                        diff: tuple[np.ndarray, tuple[int, int]] | None = None,
                        add: np.ndarray | None = None, inplace: bool = False) -> np.ndarray:
    """``-div F`` of the half-mask guidance field, ``(C, H, W)`` float32.

    Uses ``F = D dst + mbar * D(src - dst)``: the ``dst`` part is ``-Lap_N dst`` on
    the whole image, the object part is non-zero only around the mask, so it is
    computed on the mask's bounding box (plus one pixel) alone. Instead of ``src``
    the caller may pass ``diff=(src - dst on a window, (row0, col0) of the window)``;
    the window must cover the mask's bounding box plus one pixel. ``add`` is added to
    the result (used to fuse the colour term into the same pass); with ``inplace``
    the result is accumulated into ``add`` itself (no new full-size array).
    """
    if inplace and add is not None:
        out = add
        for_channels(lambda k: neg_laplacian(dst[k], out=out[k]), dst.shape[0],
                     math.prod(dst.shape[1:]))
    else:
        out = map_channels(neg_laplacian, dst.shape, dst, add)
    box = bbox(mask > 0, margin=1)
    if box is None:
        return out
    r0, r1, c0, c1 = box
    if diff is None:
        d = src[:, r0:r1, c0:c1] - dst[:, r0:r1, c0:c1]
    else:
        win, (wr, wc) = diff
        if wr > r0 or wc > c0 or wr + win.shape[1] < r1 or wc + win.shape[2] < c1:
            raise ValueError("diff window does not cover the mask's bounding box")
        d = win[:, r0 - wr:r1 - wr, c0 - wc:c1 - wc]
    # The object term -div(mbar D(src - dst)) on the box: edges leaving the box have
    # mbar = 0 (the box has a 1-pixel margin), so it is a weighted -Lap on the box.
    m = mask[r0:r1, c0:c1]
    o = out[:, r0:r1, c0:c1]
    wts = (np.multiply(np.add(m[:, 1:], m[:, :-1]), 0.5, dtype=np.float32),
           np.multiply(np.add(m[1:, :], m[:-1, :]), 0.5, dtype=np.float32))
    for_channels(lambda k: neg_laplacian(d[k], out=o[k], weights=wts), d.shape[0],
                 math.prod(d.shape[1:]))
    return out
