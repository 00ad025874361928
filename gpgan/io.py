"""Image and mask input/output.

Inside :mod:`gpgan` an image is a ``numpy.float32`` array of shape ``(H, W, 3)`` with
values in ``[0, 1]`` and a mask is ``float32`` ``(H, W)`` in ``[0, 1]`` (1 = object).
This module is the only place that knows about file formats and bit depths.

Reading files
    Images are read as a viewer shows them: the EXIF orientation (phone photos) is
    applied, to images and masks alike. 8-bit files are scaled by 255, 16-bit files
    (grey, and 48/64-bit colour PNGs, which Pillow would cut to 8 bits and are
    decoded with torchvision's libpng instead) by 65535, float TIFFs follow the
    float rule below. Refused with one line (:class:`InputError`): animated or
    multi-frame files (GIF, APNG, WebP, multi-page TIFF; the primary image of a
    camera's MPO file is used), truncated or unreadable files, and images larger
    than ``max_megapixels`` (default :data:`MAX_MEGAPIXELS`), checked on the header
    before anything is decoded (this also replaces Pillow's decompression-bomb
    check).

Arrays: one rule (:func:`to_float_image`, :func:`to_mask`)
    ``bool`` is 0/1; ``uint8`` is divided by 255 and ``uint16`` by 65535; any other
    integer type (int16/32/64, uint32/64, ...) must hold values in 0..255 and is
    divided by 255, anything else is refused; floats must already be in ``[0, 1]``
    (``FLOAT_SLACK`` of rounding error is clipped; 0..255 floats are refused with a
    hint to divide by 255); NaN or infinite values are refused. Nothing is silently
    clipped. Masks follow the same rule, except that integer masks may also be 0/1
    (an integer mask whose maximum is 1 is used as is).
"""

from __future__ import annotations

import contextlib
import csv
import errno
import os
import shutil
import tempfile
import threading
import warnings
from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import InputError, OutputError

__all__ = [
    "MAX_MEGAPIXELS",
    "FLOAT_SLACK",
    "read_image",
    "read_mask",
    "to_float_image",
    "to_mask",
    "write_image",
    "png_bytes",
    "check_output_path",
    "atomic_path",
    "move_contents",
    "cache_dir",
]

#: Largest image (width x height, in millions of pixels) read by default. A 100 MP
#: RGB image is 1.2 GB as float32 and a GP blend needs several times that; raise it
#: with ``max_megapixels=`` (CLI ``--max-megapixels``).
MAX_MEGAPIXELS = 100.0

#: Float values at most this far outside [0, 1] are rounding error and are clipped;
#: anything further out is refused.
FLOAT_SLACK = 1e-4

# Pillow's decompression-bomb limit is a module global; it is lifted only while our
# own, configurable check (same header, before any decoding) is in force.
_PIL_LIMIT = threading.Lock()

# EXIF orientation -> the numpy view Pillow's ImageOps.exif_transpose produces.
_ORIENT = {
    2: lambda a: a[:, ::-1],                      # FLIP_LEFT_RIGHT
    3: lambda a: a[::-1, ::-1],                   # ROTATE_180
    4: lambda a: a[::-1],                         # FLIP_TOP_BOTTOM
    5: lambda a: a.swapaxes(0, 1),                # TRANSPOSE
    6: lambda a: np.rot90(a, -1),                 # ROTATE_270 (90 degrees clockwise)
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),    # TRANSVERSE
    8: lambda a: np.rot90(a, 1),                  # ROTATE_90 (counter-clockwise)
}

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _unreadable(path, exc: BaseException) -> InputError:
    text = str(exc)
    if "truncated" in text.lower():
        return InputError(f"{path}: truncated image file (an interrupted write or copy?); "
                          "delete it and recreate it")
    return InputError(f"{path}: not a readable image ({exc.__class__.__name__})")


def _open(path, max_megapixels: float | None = MAX_MEGAPIXELS) -> Image.Image:
    """Open ``path`` with Pillow, check its size and frame count, decode it."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected an image file")
    try:
        with _PIL_LIMIT:
            limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                im = Image.open(path)
            finally:
                Image.MAX_IMAGE_PIXELS = limit
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise _unreadable(path, exc) from None
    w, h = im.size
    if max_megapixels is not None and w * h > max_megapixels * 1e6:
        im.close()
        raise InputError(f"{path}: {w}x{h} is {w * h / 1e6:.1f} megapixels, more than the "
                         f"limit of {max_megapixels:g} (raise it with --max-megapixels / "
                         "max_megapixels= if the machine has the memory)")
    frames = getattr(im, "n_frames", 1)
    if frames > 1 and im.format != "MPO":  # MPO: frame 0 is the camera's primary image
        im.close()
        raise InputError(f"{path}: animated or multi-frame image ({frames} frames); save "
                         "the frame you want as a still image")
    try:
        im.load()  # (GIF frames repeat Pillow's bomb check: one more line, not a traceback)
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
        raise _unreadable(path, exc) from None
    return im


def _read_wide_png(path: Path) -> np.ndarray | None:
    """A 16-bit colour (or grey + alpha) PNG as uint16 ``(H, W, C)``; ``None`` for any
    other file. Pillow has no 16-bit colour mode and would return 8 bits."""
    with open(path, "rb") as f:
        head = f.read(26)
    # IHDR follows the signature: length, type, width, height, bit depth, colour type
    if len(head) < 26 or head[:8] != _PNG_SIGNATURE or head[24] != 16 \
            or head[25] not in (2, 4, 6):
        return None
    # torchvision (pinned, needed by lpips) wraps libpng; 0.29 warns that its decoders
    # will move to torchcodec: the tests read 48/64-bit PNGs and will say when they go.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from torchvision.io import ImageReadMode, decode_png, read_file

        try:
            img = decode_png(read_file(str(path)), mode=ImageReadMode.UNCHANGED)
        except RuntimeError as exc:
            raise _unreadable(path, exc) from None
    return img.permute(1, 2, 0).numpy()


def _pil_to_array(im: Image.Image) -> np.ndarray:
    """The pixels of a decoded PIL image in a dtype that carries their scale (see the
    module docstring): bool, uint8, uint16 or float32."""
    mode = im.mode
    if mode == "1":
        return np.asarray(im, dtype=bool)
    if mode.startswith("I;16"):
        return np.asarray(im).astype(np.uint16)
    if mode == "I":  # 32-bit integer container (e.g. some 16-bit PGM/TIFF files)
        arr = np.asarray(im)
        lo, hi = int(arr.min(initial=0)), int(arr.max(initial=0))
        if lo < 0 or hi > 65535:
            raise InputError(f"{im.filename}: 32-bit integer image with values {lo}..{hi}, "
                             "outside 0..65535")
        return arr.astype(np.uint16 if hi > 255 else np.uint8)
    if mode == "F":
        return np.asarray(im, dtype=np.float32)
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        im = im.convert("RGB")
    return np.asarray(im)


def _read_array(path, max_megapixels) -> np.ndarray:
    """Decode ``path`` as a viewer shows it (EXIF orientation applied)."""
    im = _open(path, max_megapixels)
    with im:
        orientation = im.getexif().get(0x0112, 1)
        arr = _read_wide_png(Path(path))
        if arr is None:
            arr = _pil_to_array(im)
    turn = _ORIENT.get(orientation)
    return np.ascontiguousarray(turn(arr)) if turn else arr


def _range_of(a: np.ndarray, name: str) -> tuple[float, float]:
    """(min, max) of ``a``; NaN or inf anywhere is refused (min/max propagate them)."""
    if a.size == 0:
        raise InputError(f"{name}: empty array (shape {a.shape})")
    lo, hi = a.min(), a.max()
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise InputError(f"{name}: contains NaN or infinite values")
    return float(lo), float(hi)


def _scaled(a: np.ndarray, name: str, *, mask: bool = False) -> np.ndarray:
    """Apply the module's scaling rule; returns float32 (a view when nothing changes)."""
    if a.dtype == bool:
        return a.astype(np.float32)
    if a.dtype == np.uint8:
        if mask and a.max(initial=0) <= 1:
            return a.astype(np.float32)
        return a.astype(np.float32) / 255.0
    if a.dtype == np.uint16:
        if mask and a.max(initial=0) <= 255:  # a 0/1 or 0/255 mask stored in 16 bits
            return a.astype(np.float32) / (1.0 if a.max(initial=0) <= 1 else 255.0)
        return a.astype(np.float32) / 65535.0
    if np.issubdtype(a.dtype, np.integer):
        lo, hi = _range_of(a, name)
        if lo < 0 or hi > 255:
            raise InputError(f"{name}: {a.dtype} values {lo:g}..{hi:g} are outside 0..255; "
                             "pass uint8 (0..255), uint16 (0..65535) or floats in [0, 1]")
        return a.astype(np.float32) / (1.0 if mask and hi <= 1 else 255.0)
    if not np.issubdtype(a.dtype, np.floating):
        raise InputError(f"{name}: unsupported array type {a.dtype}")
    lo, hi = _range_of(a, name)
    a = a.astype(np.float32, copy=False)
    if lo >= 0.0 and hi <= 1.0:
        return a
    if lo >= -FLOAT_SLACK and hi <= 1.0 + FLOAT_SLACK:
        return np.clip(a, 0.0, 1.0)
    hint = "; 0..255 data? divide by 255" if lo >= 0 and hi <= 255 else ""
    raise InputError(f"{name}: float values must be in [0, 1], got {lo:.4g}..{hi:.4g}{hint}")


def to_float_image(arr: np.ndarray, *, name: str = "image") -> np.ndarray:
    """Convert an array image (grey, RGB, RGBA) to float32 ``(H, W, 3)`` in [0, 1].

    Values are scaled by the rule in the module docstring (uint8 / 255, uint16 /
    65535, other integers only in 0..255, floats only in [0, 1], no NaN/inf);
    anything else raises :class:`InputError` naming ``name``. Alpha is dropped
    (composited over nothing). A float32 ``(H, W, 3)`` array already in range is
    returned as is, not copied (callers only read it).
    """
    a = np.asarray(arr)
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (1, 2, 3, 4))):
        raise InputError(f"{name}: image of shape {a.shape} is not grey, RGB or RGBA")
    a = _scaled(a, name)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    elif a.shape[2] in (1, 2):
        a = np.repeat(a[:, :, :1], 3, axis=2)
    elif a.shape[2] == 4:
        a = a[:, :, :3]
    return np.ascontiguousarray(a, dtype=np.float32)


def read_image(path, *, max_megapixels: float | None = MAX_MEGAPIXELS) -> np.ndarray:
    """Read an image file as float32 ``(H, W, 3)`` in [0, 1] (see the module docstring:
    EXIF orientation applied, 8/16-bit kept, oversized or animated files refused)."""
    return to_float_image(_read_array(path, max_megapixels), name=str(path))


def to_mask(arr: np.ndarray, *, name: str = "mask") -> np.ndarray:
    """Normalise any common mask encoding to float32 ``(H, W)`` in [0, 1].

    Accepted: bool; integers 0/1, 0..255 (8-bit) or 0..65535 (uint16); soft floats in
    [0, 1]; grey, RGB (channels averaged) or an image with alpha (``RGBA``/``LA``: the
    alpha channel is the mask when it is not constant, otherwise the colour channels
    are). Out-of-range, NaN or infinite values raise :class:`InputError` (the rule of
    the module docstring).
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
            a = _scaled(a, name, mask=True).mean(axis=2)
    elif a.ndim != 2:
        raise InputError(f"{name}: shape {a.shape} is not a 2-D or colour mask")
    return _scaled(a, name, mask=True)


def read_mask(path, *, max_megapixels: float | None = MAX_MEGAPIXELS) -> np.ndarray:
    """Read a mask file in any common encoding (see :func:`to_mask`), EXIF orientation
    applied like :func:`read_image`."""
    return to_mask(_read_array(path, max_megapixels), name=str(path))


# Errors of a write that the user can fix (folder, permissions, space): one line.
# Inside the caller's block only the disk's own errors are translated (an EACCES
# there may come from reading some other file).
_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EIO}
_WRITE_ERRNOS = _DISK_ERRNOS | {errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.ENOENT}


def _write_error(path, exc: OSError) -> OutputError:
    return OutputError(f"cannot write {path}: {exc.strerror or exc}")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


class atomic_path:
    """Context manager yielding a temporary path beside ``path``; renamed on success.

    The finished file is flushed to disk (``fsync``) before the rename, so a crash
    leaves the old file or the new one, never a truncated one, and it gets the
    permissions the umask gives a new file (``mkstemp`` alone would make it 0600).
    A write that fails for a reason the user can fix (no permission, read-only or
    full disk) raises :class:`OutputError` with one line; the temporary file is
    removed either way.

    >>> with atomic_path("out.png") as tmp:   # doctest: +SKIP
    ...     save(tmp)
    """

    def __init__(self, path, suffix: str | None = None):
        self.path = Path(path)
        self.suffix = self.path.suffix if suffix is None else suffix

    def __enter__(self) -> Path:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.",
                                       suffix=".tmp" + self.suffix, dir=self.path.parent)
        except OSError as exc:
            if exc.errno in _WRITE_ERRNOS or isinstance(exc, FileExistsError):
                raise _write_error(self.path, exc) from None
            raise
        os.close(fd)
        self.tmp = Path(tmp)
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            try:
                fd = os.open(self.tmp, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.chmod(self.tmp, 0o666 & ~_umask())
                os.replace(self.tmp, self.path)
            except OSError as err:
                self.tmp.unlink(missing_ok=True)
                if err.errno in _WRITE_ERRNOS:
                    raise _write_error(self.path, err) from None
                raise
            return False
        self.tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno in _DISK_ERRNOS:
            raise _write_error(self.path, exc) from None
        return False


def move_contents(folder, target) -> Path:
    """Move every entry of ``folder`` into ``target``, replacing entries of the same
    name, then remove ``folder`` (``target`` is ``folder`` renamed, with the
    permissions the umask gives a new folder, when it does not exist yet). With
    ``folder`` a temporary sibling of ``target`` (``tempfile.mkdtemp``), a step that
    writes many files publishes them only once all were written."""
    folder, target = Path(folder), Path(target)
    if not target.exists():
        os.chmod(folder, 0o777 & ~_umask())
        os.replace(folder, target)
        return target
    for child in folder.iterdir():
        dst = target / child.name
        if dst.is_dir() and not dst.is_symlink():
            shutil.rmtree(dst)
        elif dst.exists() or dst.is_symlink():
            dst.unlink()
        os.replace(child, dst)
    folder.rmdir()
    return target


@contextlib.contextmanager
def staged_folder(target):
    """Yield a new temporary sibling folder of ``target``; when the block succeeds its
    entries are published into ``target`` (:func:`move_contents`). The temporary
    folder is removed either way, so a step that fails leaves ``target`` as it was."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial",
                                 dir=target.parent))
    try:
        yield work
        move_contents(work, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def write_csv(path, columns, rows) -> Path:
    """Write a CSV table atomically (:class:`atomic_path`): a header of ``columns``,
    then ``rows`` (sequences in column order, or dicts keyed by column)."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        writer.writerows([r[c] for c in columns] if isinstance(r, dict) else r
                         for r in rows)
    return path


_EXTS = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".ppm"}


def _check_name(path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in _EXTS:
        raise InputError(f"{path}: unknown image extension {path.suffix!r} "
                         f"(use one of {', '.join(sorted(_EXTS))})")
    if path.is_dir():
        raise InputError(f"{path}: is a directory")
    return path


def check_output_path(path) -> Path:
    """Fail early (before any work) unless ``path`` can be written as an image.

    Checks the extension, that ``path`` is not a folder, and that its folder can be
    written: an existing folder by creating (and removing) an empty temporary file in
    it, a folder still to be created by the permissions of its nearest existing
    parent. Raises :class:`InputError` or :class:`OutputError` with one line.
    """
    path = _check_name(path)
    folder = path.parent
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"cannot write {path}: {existing} is not a folder")
    if existing == folder:
        try:
            fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=folder)
        except OSError as exc:
            raise _write_error(path, exc) from None
        os.close(fd)
        os.unlink(probe)
    elif not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {path}: cannot create folders in {existing}")
    return path


def write_image(path, img: np.ndarray, *, bits: int = 8) -> Path:
    """Write a float image in [0, 1] atomically; the format follows the extension.

    ``bits=16`` writes a 16-bit file for single-channel images in PNG/TIFF; colour
    images are always written with 8 bits per channel (PIL has no 16-bit RGB mode).
    Raises :class:`InputError` for an unknown extension, :class:`OutputError` when
    the file cannot be written (see :class:`atomic_path`).
    """
    path = _check_name(path)
    ext = path.suffix.lower()
    im = _pil_image(img, bits=bits if ext in (".png", ".tif", ".tiff") else 8)
    if ext in (".jpg", ".jpeg"):
        params = {"quality": 95}
    else:
        params = {}
    with atomic_path(path) as tmp:
        im.save(tmp, format=Image.registered_extensions()[ext], **params)
    return path


def _pil_image(img: np.ndarray, bits: int = 8) -> Image.Image:
    """A float image in [0, 1] (clipped) as the PIL image :func:`write_image` saves:
    rounded to 8 bits, or 16 for a single-channel image with ``bits=16``."""
    a = np.clip(np.asarray(img, dtype=np.float32), 0.0, 1.0)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if bits == 16 and a.ndim == 2:
        return Image.fromarray((a * 65535.0 + 0.5).astype(np.uint16))
    return Image.fromarray((a * 255.0 + 0.5).astype(np.uint8))


def png_bytes(img: np.ndarray) -> bytes:
    """A float image (or mask) in [0, 1] as the bytes of the 8-bit PNG file
    :func:`write_image` would write (same rounding)."""
    buf = BytesIO()
    _pil_image(img).save(buf, format="PNG")
    return buf.getvalue()


def cache_dir() -> Path:
    """The package's cache folder (converted model files, precision probes):
    ``$GPGAN_CACHE_DIR``, else ``$XDG_CACHE_HOME/gpgan``, else ``~/.cache/gpgan``."""
    if os.environ.get("GPGAN_CACHE_DIR"):
        return Path(os.environ["GPGAN_CACHE_DIR"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "gpgan"
    return Path.home() / ".cache" / "gpgan"
