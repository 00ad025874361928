"""Image and mask input/output.

Inside :mod:`gpgan` an image is a ``numpy.float32`` array of shape ``(H, W, 3)`` with
values in ``[0, 1]`` and a mask is ``float32`` ``(H, W)`` in ``[0, 1]`` (1 = object).
This module is the only place that knows about file formats and bit depths.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import InputError

__all__ = [
    "read_image",
    "read_mask",
    "to_float_image",
    "to_mask",
    "write_image",
    "check_output_path",
    "atomic_path",
]


def _open(path) -> Image.Image:
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected an image file")
    try:
        im = Image.open(path)
        im.load()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable image ({exc.__class__.__name__})") from None
    return im


def _pil_to_array(im: Image.Image) -> tuple[np.ndarray, float]:
    """Return (array, full-scale value) for any PIL mode we accept."""
    mode = im.mode
    if mode in ("1",):
        return np.asarray(im, dtype=np.float32), 1.0
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return np.asarray(im).astype(np.float32), 65535.0
    if mode == "I":
        arr = np.asarray(im).astype(np.float32)
        return arr, 65535.0 if arr.max(initial=0) > 255 else 255.0
    if mode == "F":
        arr = np.asarray(im, dtype=np.float32)
        return arr, 1.0 if arr.max(initial=0) <= 1.0 else 255.0
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        im = im.convert("RGB")
    return np.asarray(im, dtype=np.float32), 255.0


def to_float_image(arr: np.ndarray) -> np.ndarray:
    """Convert an array image (grey, RGB, RGBA; uint8/uint16/float) to float32 (H, W, 3).

    Integer inputs are scaled by their type's maximum; float inputs must already be in
    ``[0, 1]`` (they are clipped). Alpha is dropped (composited over nothing). A
    float32 ``(H, W, 3)`` array already in range is returned as is, not copied (callers
    only read it).
    """
    a = np.asarray(arr)
    if a.dtype == np.uint8:
        a = a.astype(np.float32) / 255.0
    elif a.dtype == np.uint16:
        a = a.astype(np.float32) / 65535.0
    elif a.dtype == bool:
        a = a.astype(np.float32)
    else:
        a = a.astype(np.float32, copy=False)
        if not (a.size and a.min() >= 0.0 and a.max() <= 1.0):  # in range: no copy
            a = np.clip(a, 0.0, 1.0)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    elif a.ndim == 3 and a.shape[2] in (1, 2):
        a = np.repeat(a[:, :, :1], 3, axis=2)
    elif a.ndim == 3 and a.shape[2] == 4:
        a = a[:, :, :3]
    elif not (a.ndim == 3 and a.shape[2] == 3):
        raise InputError(f"image of shape {a.shape} is not grey, RGB or RGBA")
    return np.ascontiguousarray(a, dtype=np.float32)


def read_image(path) -> np.ndarray:
    """Read an 8/16-bit grey, RGB or RGBA image file as float32 ``(H, W, 3)`` in [0, 1]."""
    arr, scale = _pil_to_array(_open(path))
    arr = arr / scale
    return to_float_image(np.clip(arr, 0.0, 1.0).astype(np.float32))


def to_mask(arr: np.ndarray, *, name: str = "mask") -> np.ndarray:
    """Normalise any common mask encoding to float32 ``(H, W)`` in [0, 1].

    Accepted: bool; 0/1 or soft [0, 1] floats; 0/255 (any 8-bit) or 16-bit integers;
    grey, RGB (channels averaged) or an image with alpha (``RGBA``/``LA``: the alpha
    channel is the mask when it is not constant, otherwise the colour channels are).
    """
    a = np.asarray(arr)
    if a.ndim == 3:
        if a.shape[2] in (2, 4):
            alpha = a[:, :, -1]
            if alpha.min() != alpha.max():
                a = alpha
            else:
                a = a[:, :, :-1]
        if a.ndim == 3:
            a = a.astype(np.float32).mean(axis=2)
    elif a.ndim != 2:
        raise InputError(f"{name}: shape {a.shape} is not a 2-D or colour mask")
    if a.dtype == bool:
        return a.astype(np.float32)
    integer = np.issubdtype(np.asarray(arr).dtype, np.integer)
    a = a.astype(np.float32, copy=False)
    hi = a.max(initial=0)
    if integer:
        top = 65535.0 if hi > 255 else (255.0 if hi > 1 else 1.0)
    else:
        top = 255.0 if hi > 1.0 else 1.0
        if top == 1.0 and a.min(initial=0) >= 0.0:
            return a  # a float32 mask already in [0, 1]: used as is (read only)
    return np.clip(a / top, 0.0, 1.0)


def read_mask(path) -> np.ndarray:
    """Read a mask file in any common encoding (see :func:`to_mask`)."""
    im = _open(path)
    arr, scale = _pil_to_array(im)
    if scale == 65535.0:
        arr = arr.astype(np.uint16)
    elif scale == 255.0:
        arr = arr.astype(np.uint8)
    return to_mask(arr, name=str(path))


class atomic_path:
    """Context manager yielding a temporary path beside ``path``; renamed on success.

    >>> with atomic_path("out.png") as tmp:   # doctest: +SKIP
    ...     save(tmp)
    """

    def __init__(self, path, suffix: str | None = None):
        self.path = Path(path)
        self.suffix = self.path.suffix if suffix is None else suffix

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp" + self.suffix,
                                   dir=self.path.parent)
        os.close(fd)
        self.tmp = Path(tmp)
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)
        return False


_EXTS = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".ppm"}


def check_output_path(path) -> Path:
    """Fail early (before any work) if ``path`` has no known image extension."""
    path = Path(path)
    if path.suffix.lower() not in _EXTS:
        raise InputError(f"{path}: unknown image extension {path.suffix!r} "
                         f"(use one of {', '.join(sorted(_EXTS))})")
    if path.is_dir():
        raise InputError(f"{path}: is a directory")
    return path


def write_image(path, img: np.ndarray, *, bits: int = 8) -> Path:
    """Write a float image in [0, 1] atomically; the format follows the extension.

    ``bits=16`` writes a 16-bit file for single-channel images in PNG/TIFF; colour
    images are always written with 8 bits per channel (PIL has no 16-bit RGB mode).
    Raises :class:`InputError` for an unknown extension.
    """
    path = check_output_path(path)
    ext = path.suffix.lower()
    a = np.clip(np.asarray(img, dtype=np.float32), 0.0, 1.0)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if bits == 16 and a.ndim == 2 and ext in (".png", ".tif", ".tiff"):
        im = Image.fromarray((a * 65535.0 + 0.5).astype(np.uint16))
    else:
        im = Image.fromarray((a * 255.0 + 0.5).astype(np.uint8))
    if ext in (".jpg", ".jpeg"):
        params = {"quality": 95}
    else:
        params = {}
    with atomic_path(path) as tmp:
        im.save(tmp, format=Image.registered_extensions()[ext], **params)
    return path
