"""Training data as torch ``Dataset``s: on-the-fly composites from a manifest
(:class:`CompositeDataset`), and the images of an HDF5 file for the unsupervised
GP-GAN (:class:`H5ImageDataset`, below).

For a manifest row (``scene,obj_image,bg_image,crop_y,crop_x,crop_h,crop_w,flip,
coverage,seed``, see :mod:`gpgan.data.composites`) the sample is built as follows:

1. read both images (decoded once and kept in a small per-process LRU cache);
2. resample the same box (``crop_*``) of each to ``image_size x image_size`` with
   Pillow's bilinear filter, which low-pass filters when it shrinks (a box that is not
   square is squashed); mirror both if ``flip``;
3. the mask: the reference's centre square of side ``int(image_size * ratio)`` (offset
   ``image_size // 2 - side // 2``) when ``coverage`` is 0, else a random blob covering
   that fraction (:func:`gpgan.data.composites.random_blob_mask`, shape from ``seed``);
4. composite = ``m * object + (1 - m) * scene``; ground truth = the scene crop.

With the reference's manifest (a short-side square box, centre square) this is the
reference's sample: resize the short side to ``image_size``, crop, paste the centre.
Everything is deterministic: item ``i`` depends only on row ``i`` (and the files).
"""

from __future__ import annotations

import csv
import logging
import os
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from ..errors import ConfigError, DependencyError, InputError
from .composites import TRAIN_COLUMNS, random_blob_mask

__all__ = ["CompositeDataset", "H5ImageDataset", "sample_mask", "to_tensor"]

log = logging.getLogger(__name__)


class _Unreadable(InputError):
    """A manifest image cannot be decoded (carries its relative path)."""

    def __init__(self, message: str, rel: str):
        super().__init__(message)
        self.rel = rel


def sample_mask(size: int, coverage: float, seed: int, ratio: float = 0.5) -> np.ndarray:
    """The mask of a training sample, float32 ``(size, size)`` of 0/1.

    ``coverage == 0``: the centre square of side ``int(size * ratio)`` at offset
    ``size // 2 - side // 2`` (the reference); else a random blob covering
    ``coverage`` of the pixels, its shape drawn from ``seed``.
    """
    if coverage > 0:
        return random_blob_mask(size, size, coverage, np.random.default_rng(seed))
    side = int(size * ratio)
    o = size // 2 - side // 2
    m = np.zeros((size, size), np.float32)
    m[o:o + side, o:o + side] = 1.0
    return m


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """uint8 or [0, 255] float ``(H, W, 3)`` -> float32 tensor ``(3, H, W)`` in [-1, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
    return t.to(torch.float32).div_(127.5).sub_(1.0)


class CompositeDataset(Dataset):
    """Training/validation composites described by a manifest CSV.

    Parameters
    ----------
    manifest_csv : path-like
        CSV with the columns :data:`gpgan.data.composites.TRAIN_COLUMNS`.
    scenes_root : path-like
        Folder the manifest's image paths are relative to.
    image_size : int
        Side of the samples (64 in the paper).
    ratio : float
        Side of the centre square (rows with ``coverage`` 0) as a fraction of
        ``image_size``.
    cache_size : int
        Decoded images kept per process.
    on_error : {"fail", "skip"}
        A manifest image that is missing (checked at construction) or corrupt
        (checked when first read): raise :class:`InputError` naming it, or log it once
        and skip: missing files drop their rows; a corrupt image makes the item fall
        through to the next row (``(i + 1) % len``) whose images are readable.

    Notes
    -----
    ``dataset[i]`` returns ``(composite, ground_truth, mask)``: two ``torch.float32``
    tensors ``(3, S, S)`` in ``[-1, 1]`` and the mask ``(1, S, S)`` in ``[0, 1]``.
    """

    def __init__(self, manifest_csv, scenes_root, *, image_size: int = 64, ratio: float = 0.5,
                 cache_size: int = 1024, on_error: str = "fail"):
        if on_error not in ("fail", "skip"):
            raise ConfigError(f"on_error must be 'fail' or 'skip', not {on_error!r}")
        if image_size < 2 or not 0 < ratio <= 1:
            raise ConfigError(f"need image_size >= 2 and 0 < ratio <= 1, got {image_size}, {ratio}")
        self.manifest = Path(manifest_csv)
        self.root = Path(scenes_root)
        self.image_size = int(image_size)
        self.ratio = float(ratio)
        self.cache_size = int(cache_size)
        self.on_error = on_error
        self._cache: OrderedDict[str, Image.Image] = OrderedDict()
        self._bad: set[str] = set()
        rows = self._read_manifest()
        self.scene = [r[0] for r in rows]
        self.obj = [r[1] for r in rows]
        self.bg = [r[2] for r in rows]
        self.box = np.array([r[3:7] for r in rows], dtype=np.int64).reshape(-1, 4)
        self.flip = np.array([r[7] for r in rows], dtype=bool)
        self.coverage = np.array([r[8] for r in rows], dtype=np.float64)
        self.seed = np.array([r[9] for r in rows], dtype=np.int64)

    def _read_manifest(self) -> list[tuple]:
        if not self.manifest.is_file():
            raise InputError(f"{self.manifest}: no such manifest")
        if not self.root.is_dir():
            raise InputError(f"{self.root}: no such scenes folder")
        with open(self.manifest, newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None or tuple(header) != TRAIN_COLUMNS:
                raise InputError(f"{self.manifest}: header must be {','.join(TRAIN_COLUMNS)}, "
                                 f"got {','.join(header or [])!r}")
            rows = []
            for lineno, r in enumerate(reader, start=2):
                try:
                    scene, obj, bg, y, x, h, w, flip, cover, seed = r
                    row = (scene, obj, bg, int(y), int(x), int(h), int(w), int(flip),
                           float(cover), int(seed))
                except ValueError:
                    raise InputError(f"{self.manifest}:{lineno}: bad row {r!r}") from None
                if row[5] < 1 or row[6] < 1 or not 0 <= row[8] < 1:
                    raise InputError(f"{self.manifest}:{lineno}: bad row {r!r} (empty box "
                                     "or coverage outside [0, 1))")
                rows.append(row)
        exists: dict[str, bool] = {}
        for rel in {p for row in rows for p in row[1:3]}:
            exists[rel] = (self.root / rel).is_file()
        missing = sorted(rel for rel, ok in exists.items() if not ok)
        if missing:
            if self.on_error == "fail":
                raise InputError(f"{self.root / missing[0]}: listed in {self.manifest} but "
                                 f"missing ({len(missing)} missing file(s))")
            for rel in missing:
                log.warning("%s: listed in %s but missing; its rows are skipped",
                            self.root / rel, self.manifest)
            rows = [r for r in rows if exists[r[1]] and exists[r[2]]]
        if not rows:
            raise InputError(f"{self.manifest}: no usable rows")
        return rows

    def __len__(self) -> int:
        return len(self.obj)

    def _load(self, rel: str) -> Image.Image:
        """Decoded RGB image, through the LRU cache."""
        img = self._cache.get(rel)
        if img is not None:
            self._cache.move_to_end(rel)
            return img
        path = self.root / rel
        try:
            with Image.open(path) as im:
                im.load()
                img = im.convert("RGB")
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            raise _Unreadable(f"{path}: not a readable image ({exc.__class__.__name__})",
                              rel) from None
        self._cache[rel] = img
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return img

    def _crop(self, img: Image.Image, i: int, rel: str) -> np.ndarray:
        y, x, h, w = (int(v) for v in self.box[i])
        if y < 0 or x < 0 or y + h > img.height or x + w > img.width:
            raise InputError(f"{self.manifest}: row {i} box ({y},{x}) {h}x{w} does not fit "
                             f"{rel} ({img.height}x{img.width})")
        s = self.image_size
        return np.asarray(img.resize((s, s), Image.Resampling.BILINEAR,
                                     box=(x, y, x + w, y + h)))

    def sample(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Item ``i`` as ``(composite, ground_truth, mask)``: float32 ``(S, S, 3)`` in
        [0, 255] and the mask ``(S, S)`` in [0, 1].

        Raises :class:`InputError` for an unreadable image (whatever ``on_error``).
        """
        obj = self._crop(self._load(self.obj[i]), i, self.obj[i]).astype(np.float32)
        bg = self._crop(self._load(self.bg[i]), i, self.bg[i]).astype(np.float32)
        if self.flip[i]:
            obj, bg = obj[:, ::-1], bg[:, ::-1]
        m = sample_mask(self.image_size, float(self.coverage[i]), int(self.seed[i]),
                        self.ratio)
        comp = bg + m[:, :, None] * (obj - bg)
        return comp, np.ascontiguousarray(bg), m

    def truth(self, i: int) -> np.ndarray:
        """The ground truth of item ``i`` alone (the scene crop, mirrored if ``flip``),
        float32 ``(S, S, 3)`` in [0, 255]: what :meth:`sample` returns second, without
        the object crop and the mask (the unsupervised ``G(z)`` needs only this)."""
        bg = self._crop(self._load(self.bg[i]), i, self.bg[i]).astype(np.float32)
        return np.ascontiguousarray(bg[:, ::-1] if self.flip[i] else bg)

    def truth_item(self, i: int) -> torch.Tensor:
        """``self[i][1]`` (the ground-truth tensor), made without the composite."""
        return self._readable(i, lambda j: to_tensor(self.truth(j)))

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        def item(j):
            comp, gt, m = self.sample(j)
            return to_tensor(comp), to_tensor(gt), torch.from_numpy(m)[None]

        return self._readable(i, item)

    def _readable(self, i: int, make):
        """``make(j)`` for the first row ``j`` from ``i`` on whose images are readable
        (``on_error``, class docstring)."""
        n = len(self)
        if not -n <= i < n:
            raise IndexError(i)
        i %= n
        for k in range(n):
            j = (i + k) % n
            if self.obj[j] in self._bad or self.bg[j] in self._bad:
                continue
            try:
                return make(j)
            except _Unreadable as exc:
                if self.on_error == "fail":
                    raise
                self._bad.add(exc.rel)
                log.warning("skipping corrupt image: %s", exc)
        raise InputError(f"{self.manifest}: no row with readable images")


# --------------------------------------------------------------------------------------
# HDF5 images (the unsupervised GP-GAN's outdoor_64.hdf5)
# --------------------------------------------------------------------------------------

def _h5py():
    try:
        import h5py
    except ImportError:
        raise DependencyError("reading an HDF5 image file needs h5py: pip install h5py "
                              "(pinned in requirements.txt)") from None
    return h5py


def _split_range(f, path, split: str | None, key: str, n: int) -> tuple[int, int]:
    """``(start, stop)`` of ``split`` for ``key`` in Fuel's ``split`` attribute; the whole
    dataset when ``split`` is None or the file has no such attribute."""
    if split is None or "split" not in f.attrs:
        return 0, n
    rows = f.attrs["split"]

    def text(v):
        return v.decode("utf8") if isinstance(v, bytes) else str(v)

    found = [r for r in rows if text(r["split"]) == split and text(r["source"]) == key]
    if not found:
        names = sorted({text(r["split"]) for r in rows})
        raise InputError(f"{path}: no split {split!r} of {key!r} (splits: {names}); "
                         "pass split=None for every image")
    start, stop = int(found[0]["start"]), int(found[0]["stop"])
    if not 0 <= start < stop <= n:
        raise InputError(f"{path}: split {split!r} is rows {start}:{stop} of {n}")
    return start, stop


class H5ImageDataset(Dataset):
    """The images of an HDF5 file, for training the unsupervised GP-GAN's ``G(z)``.

    The paper's data is the iGAN project's ``outdoor_64.hdf5`` (150K outdoor scenes,
    64x64), which the authors read with Fuel's ``H5PYDataset`` (their ``dataset.py``,
    ``which_set='train'``). Its layout (iGAN's ``train_dcgan/create_hdf5.py``): a
    dataset ``imgs`` of uint8 ``(N, H, W, 3)`` RGB images, and a root attribute
    ``split``, Fuel's split array (records ``split``, ``source``, ``start``, ``stop``,
    ...): ``train`` is rows ``0 : N - n_test``, ``test`` the last ``n_test = min(5 %,
    10,000)``.

    Parameters
    ----------
    path : path-like
        The HDF5 file.
    image_size : int
        Side ``S`` of the items. Images of another size are resized (Pillow bilinear)
        so that their short side is ``S`` and centre-cropped (the authors crop at
        random; at 64x64 both are the image itself).
    split : str or None
        Fuel split to read (``"train"``, as the authors, or ``"test"``); None, or a
        file without a ``split`` attribute: every image.
    key : str
        Name of the image dataset (``imgs``).

    Notes
    -----
    ``dataset[i]`` is a float32 tensor ``(3, S, S)`` in [-1, 1]. ``h5py`` is imported
    when a dataset is made (``pip install h5py``); the file is opened once per
    process, so DataLoader workers each get their own handle.
    """

    def __init__(self, path, image_size: int = 64, *, split: str | None = "train",
                 key: str = "imgs"):
        h5py = _h5py()
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
            raise ConfigError(f"image_size must be a positive integer, got {image_size!r}")
        self.path, self.image_size, self.key = Path(path), int(image_size), key
        if not self.path.is_file():
            raise InputError(f"{self.path}: no such HDF5 file")
        try:
            with h5py.File(self.path, "r") as f:
                if key not in f or not isinstance(f[key], h5py.Dataset):
                    raise InputError(f"{self.path}: no image dataset {key!r} (has "
                                     f"{sorted(f.keys())})")
                shape, dtype = f[key].shape, f[key].dtype
                if len(shape) != 4 or shape[3] != 3 or dtype != np.uint8:
                    raise InputError(f"{self.path}: {key!r} must be uint8 (N, H, W, 3) "
                                     f"RGB images, got {dtype} {shape}")
                self.start, self.stop = _split_range(f, self.path, split, key, shape[0])
        except OSError as exc:
            raise InputError(f"{self.path}: not a readable HDF5 file "
                             f"({' '.join(str(exc).split())[:120]})") from None
        self._file, self._pid = None, None

    def __len__(self) -> int:
        return self.stop - self.start

    def __getstate__(self) -> dict:  # an open h5py handle does not cross processes
        return dict(self.__dict__, _file=None, _pid=None)

    def _images(self):
        if self._file is None or self._pid != os.getpid():
            self._file, self._pid = _h5py().File(self.path, "r"), os.getpid()
        return self._file[self.key]

    def __getitem__(self, i: int) -> torch.Tensor:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(i)
        img = self._images()[self.start + i % n]
        s = self.image_size
        if img.shape[:2] != (s, s):
            h, w = img.shape[:2]
            scale = s / min(h, w)
            rh, rw = max(s, round(h * scale)), max(s, round(w * scale))
            y, x = (rh - s) // 2, (rw - s) // 2
            img = np.asarray(Image.fromarray(img).resize((rw, rh), Image.Resampling.BILINEAR))
            img = img[y:y + s, x:x + s]
        return to_tensor(img)
