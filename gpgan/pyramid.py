"""Image pyramids and resampling for the Gaussian-Poisson stage.

Arrays are channel-first ``(C, H, W)`` float32 (masks ``(H, W)``). Two level layouts:

- ``"aspect"`` (default, ours): level ``S`` is the input ``H x W``; each coarser level
  halves both sides (``ceil``), so the aspect ratio is kept at every level and every
  step is an exact 2x resampling (a fused, cheap filter, below).
- ``"reference"``: the reference implementation's levels, squares of ``64 * 2**s`` for
  ``s < S`` and ``H x W`` at ``S`` (the aspect ratio is squashed at coarse levels);
  resampled with PIL's bilinear filter.

``S = ceil(log2(max(H, W) / base))`` in both (``base`` = 64, the GAN's size).

Down-sampling is "Gaussian blur (sigma 1), then resize" (SPEC.md). For an exact 2x
step we use the 5-tap binomial ``[1, 4, 6, 4, 1] / 16`` (variance exactly 1, the
Burt-Adelson pyramid kernel) followed by the 2x bilinear step ``[1, 1] / 2``; the two
fuse into one 6-tap stride-2 filter ``[1, 5, 10, 10, 5, 1] / 32`` per axis (reflect
boundary), so a level costs a few passes over half the pixels. Up-sampling by 2 is
bilinear with ``align_corners=False`` semantics (taps 1/4, 3/4), edge-replicated.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image
from scipy.ndimage import maximum_filter1d

__all__ = [
    "level_sizes",
    "downsample2",
    "upsample2",
    "resize",
    "resize_mask",
    "dilate",
    "gaussian_pyramid",
]


def level_sizes(h: int, w: int, base: int = 64, mode: str = "aspect") -> list[tuple[int, int]]:
    """Sizes ``(h_s, w_s)`` of pyramid levels ``0..S`` (coarsest first, finest = input)."""
    if mode not in ("aspect", "reference"):
        raise ValueError(f"unknown pyramid mode {mode!r} (use 'aspect' or 'reference')")
    levels = max(0, math.ceil(math.log2(max(h, w) / base))) if max(h, w) > base else 0
    if mode == "reference":
        return [(base * 2**s, base * 2**s) for s in range(levels)] + [(h, w)]
    sizes = [(h, w)]
    for _ in range(levels):
        ph, pw = sizes[-1]
        sizes.append(((ph + 1) // 2, (pw + 1) // 2))
    return sizes[::-1]


def _down_axis(x: np.ndarray, axis: int) -> np.ndarray:
    n = x.shape[axis]
    n_out = (n + 1) // 2
    pad = [(0, 0)] * x.ndim
    pad[axis] = (2, 3 + (n % 2))
    if n >= 3:
        xp = np.pad(x, pad, mode="symmetric")
    else:
        xp = np.pad(x, pad, mode="edge")

    def take(k):
        s = [slice(None)] * x.ndim
        s[axis] = slice(k, k + 2 * n_out, 2)
        return xp[tuple(s)]

    out = take(0) + take(5)
    t = take(1) + take(4)
    t *= 5.0
    out += t
    t = take(2) + take(3)
    t *= 10.0
    out += t
    out *= 1.0 / 32.0
    return out


def downsample2(x: np.ndarray) -> np.ndarray:
    """Blur (sigma 1, binomial) and halve the last two axes: ``(.., H, W) -> (.., ceil(H/2), ceil(W/2))``."""
    return _down_axis(_down_axis(x, x.ndim - 2), x.ndim - 1)


def _up_axis(x: np.ndarray, axis: int, n_out: int) -> np.ndarray:
    n = x.shape[axis]
    shape = list(x.shape)
    shape[axis] = 2 * n
    out = np.empty(shape, dtype=x.dtype)

    def sl(a, b, step=1):
        s = [slice(None)] * x.ndim
        s[axis] = slice(a, b, step)
        return tuple(s)

    prev = np.concatenate([x[sl(0, 1)], x[sl(0, n - 1)]], axis=axis)
    nxt = np.concatenate([x[sl(1, n)], x[sl(n - 1, n)]], axis=axis)
    x75 = x * 0.75
    even = out[sl(0, 2 * n, 2)]
    np.multiply(prev, 0.25, out=even)
    even += x75
    odd = out[sl(1, 2 * n, 2)]
    np.multiply(nxt, 0.25, out=odd)
    odd += x75
    return out[sl(0, n_out)] if n_out != 2 * n else out


def upsample2(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear 2x up-sampling of the last two axes to ``size`` (``2n`` or ``2n - 1``)."""
    h, w = size
    return _up_axis(_up_axis(x, x.ndim - 2, h), x.ndim - 1, w)


def resize(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize ``(C, H, W)`` or ``(H, W)`` to ``size``: exact 2x steps use the fast
    filters above, any other factor PIL's bilinear filter (antialiased down-sampling)."""
    h, w = size
    H, W = x.shape[-2:]
    if (H, W) == (h, w):
        return x
    if (h, w) in ((2 * H, 2 * W), (2 * H - 1, 2 * W - 1), (2 * H, 2 * W - 1), (2 * H - 1, 2 * W)):
        return upsample2(x, size)
    if x.ndim == 2:
        return _pil_resize(x, size, Image.BILINEAR)
    return np.stack([_pil_resize(c, size, Image.BILINEAR) for c in x])


def _pil_resize(x2d: np.ndarray, size: tuple[int, int], resample) -> np.ndarray:
    h, w = size
    im = Image.fromarray(np.ascontiguousarray(x2d, dtype=np.float32), mode="F")
    return np.asarray(im.resize((w, h), resample), dtype=np.float32)


def resize_mask(mask: np.ndarray, size: tuple[int, int], *, nearest: bool = False) -> np.ndarray:
    """Resize a mask; area-weighted (soft) by default, nearest-neighbour if asked."""
    if mask.shape == tuple(size):
        return mask
    if nearest:
        return _pil_resize(mask, size, Image.NEAREST)
    H, W = mask.shape
    if ((H + 1) // 2, (W + 1) // 2) == tuple(size):
        return _box_down2(mask)
    return np.clip(_pil_resize(mask, size, Image.BILINEAR), 0.0, 1.0)


def _box_down2(m: np.ndarray) -> np.ndarray:
    """2x2 area average (soft mask), odd sizes edge-replicated."""
    H, W = m.shape
    if H % 2 or W % 2:
        m = np.pad(m, ((0, H % 2), (0, W % 2)), mode="edge")
    return 0.25 * (m[0::2, 0::2] + m[1::2, 0::2] + m[0::2, 1::2] + m[1::2, 1::2])


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation of ``mask > 0`` by a ``(2r+1)`` square (separable max filter)."""
    b = (mask > 0).astype(np.uint8)
    if radius <= 0:
        return b.astype(bool)
    size = 2 * radius + 1
    b = maximum_filter1d(b, size, axis=0, mode="constant")
    b = maximum_filter1d(b, size, axis=1, mode="constant")
    return b.astype(bool)


def gaussian_pyramid(x: np.ndarray, sizes: list[tuple[int, int]], *,
                     reference: bool = False, sigma: float = 1.0) -> list[np.ndarray]:
    """Pyramid of ``x`` (``(C, H, W)``) at ``sizes`` (coarsest first, last = x's size).

    ``reference=False``: repeated :func:`downsample2`. ``reference=True``: each coarser
    level is a Gaussian blur (``sigma``, reflect) of the finer one, then a bilinear
    resize, as the reference implementation does.
    """
    levels = [x]
    for size in reversed(sizes[:-1]):
        finer = levels[-1]
        if not reference and tuple(size) == ((finer.shape[-2] + 1) // 2,
                                             (finer.shape[-1] + 1) // 2):
            levels.append(downsample2(finer))
        else:
            from scipy.ndimage import gaussian_filter

            sig = (0,) * (finer.ndim - 2) + (sigma, sigma)
            levels.append(resize(gaussian_filter(finer, sig, mode="reflect"), size))
    return levels[::-1]
