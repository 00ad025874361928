"""Array layout, threading and buffer helpers shared by the numeric modules.

Private to the package (the module name starts with an underscore); the names inside
are public so that :mod:`gpgan.operators`, :mod:`gpgan.poisson`,
:mod:`gpgan.baselines`, :mod:`gpgan.pyramid` and :mod:`gpgan.blending` import them
by name. Images are ``(H, W, C)`` float32 at the public boundary and channel-first
``(C, H, W)`` inside (the layout the 2-D transforms and stencils want).

Threads: numpy, scipy.ndimage and scipy.fft release the GIL on large arrays, so
per-channel work runs on threads above :data:`PARALLEL_MIN_PIXELS` pixels per channel,
and the 2-D transforms use scipy.fft's own workers; both use the count set by
:func:`set_fft_workers` (default: all cores).
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .errors import InputError

__all__ = [
    "PARALLEL_MIN_PIXELS",
    "Workspace",
    "bbox",
    "block_rows",
    "chw",
    "fft_workers",
    "for_channels",
    "hwc",
    "map_channels",
    "set_fft_workers",
]

#: Per-channel work runs on threads when a channel has more pixels than this (below,
#: starting the threads costs more than they save).
PARALLEL_MIN_PIXELS = 1 << 21

_fft_workers = -1  # scipy.fft's convention: -1 = all cores


def fft_workers() -> int:
    """Worker threads for scipy.fft and per-channel work (``-1``: all cores); see
    :func:`set_fft_workers`."""
    return _fft_workers


def set_fft_workers(n: int | None) -> int:
    """Use ``n`` worker threads (``None`` or ``-1``: all cores) for the transforms and
    per-channel work from now on; returns the previous setting (to restore it)."""
    global _fft_workers
    previous = _fft_workers
    n = -1 if n is None else int(n)
    if n == 0 or n < -1:
        raise InputError(f"FFT worker count must be >= 1 or -1 (all cores), got {n}")
    _fft_workers = n
    return previous


# --------------------------------------------------------------------------------------
# Layout
# --------------------------------------------------------------------------------------
def chw(img: np.ndarray, name: str = "image") -> np.ndarray:
    """(H, W[, C]) -> contiguous float32 (C, H, W)."""
    a = np.asarray(img, dtype=np.float32)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3:
        raise InputError(f"{name}: expected (H, W, C) image, got shape {a.shape}")
    return np.ascontiguousarray(np.moveaxis(a, 2, 0))


def hwc(y: np.ndarray, clip: bool = False, out: np.ndarray | None = None) -> np.ndarray:
    """(C, H, W) -> contiguous (H, W, C), optionally clipped to [0, 1] in the same pass
    (then into ``out`` if given: an (H, W, C) buffer that does not overlap ``y``)."""
    if not clip:
        return np.ascontiguousarray(np.moveaxis(y, 0, 2))
    if out is None:
        out = np.empty(y.shape[1:] + y.shape[:1], dtype=y.dtype)
    for k in range(y.shape[0]):
        np.clip(y[k], 0.0, 1.0, out=out[..., k])
    return out


def bbox(mask: np.ndarray, margin: int = 1) -> tuple[int, int, int, int] | None:
    """``(row0, row1, col0, col1)`` of the ``True`` pixels of ``mask`` (H, W), grown by
    ``margin`` pixels and cut to the image; ``None`` if there are none."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    h, w = mask.shape
    return (max(rows[0] - margin, 0), min(rows[-1] + 1 + margin, h),
            max(cols[0] - margin, 0), min(cols[-1] + 1 + margin, w))


# --------------------------------------------------------------------------------------
# Blocks and threads
# --------------------------------------------------------------------------------------
def block_rows(width: int) -> int:
    """Rows per block of row-blocked stencils: a float32 slab of ~256 KB (>= 16 rows),
    so that the several passes of a stencil over one slab stay in cache."""
    return max(16, (1 << 16) // max(width, 1))


def map_channels(fn, out_shape, *arrays) -> np.ndarray:
    """``out[k] = fn(arrays[0][k], arrays[1][k], ...)`` for each channel ``k``
    (in parallel as :func:`for_channels` decides from ``out_shape``). ``None``
    entries of ``arrays`` are passed as ``None``."""
    out = np.empty(out_shape, dtype=np.float32)

    def one(k):
        out[k] = fn(*(None if a is None else a[k] for a in arrays))

    for_channels(one, out_shape[0], math.prod(out_shape[1:]))
    return out


def for_channels(fn, n: int, pixels: int) -> None:
    """Call ``fn(k)`` for each channel ``k < n`` of ``pixels`` pixels: on up to
    :func:`fft_workers` threads when ``pixels > PARALLEL_MIN_PIXELS`` (numpy and
    scipy.ndimage release the GIL on large arrays), else serially."""
    workers = os.cpu_count() if _fft_workers == -1 else _fft_workers
    if workers <= 1 or n <= 1 or pixels <= PARALLEL_MIN_PIXELS:
        for k in range(n):
            fn(k)
    else:
        with ThreadPoolExecutor(max_workers=min(workers, n)) as pool:
            list(pool.map(fn, range(n)))


# --------------------------------------------------------------------------------------
# Buffers
# --------------------------------------------------------------------------------------
class Workspace:
    """Dead float32 buffers of one blend, handed out again by size.

    Fresh memory is expensive at 16 MP (the kernel zeroes every new page: ~0.04 s per
    200 MB on a quiet machine, more under load), so the finest pyramid level recycles
    arrays it no longer needs (the channel-first dst copy, the object window) for the
    closed-form start, the residual check and the output. Only arrays owned by the
    caller's computation may be given; ``take`` falls back to ``np.empty``.
    """

    def __init__(self):
        self._free: list[np.ndarray] = []

    def give(self, *arrays) -> None:
        for a in arrays:
            if a is not None and a.dtype == np.float32 and a.flags.c_contiguous:
                self._free.append(a)

    def take(self, shape) -> np.ndarray:
        n = math.prod(shape)
        for i, a in enumerate(self._free):
            if a.size == n:
                return self._free.pop(i).reshape(shape)
        return np.empty(shape, dtype=np.float32)
