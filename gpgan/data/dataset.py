"""On-the-fly 64x64 training composites from a manifest (torch ``Dataset``).

For a manifest row (``scene,obj_image,bg_image,crop_y,crop_x,seed``, see
:mod:`gpgan.data.composites`) the sample is built as in the reference:

1. read both images, resize each so its short side is ``image_size`` (Pillow
   bilinear, which low-pass filters when down-scaling; size from
   :func:`~gpgan.data.composites.resized_shape`);
2. take the same ``image_size`` square at ``(crop_y, crop_x)`` from both;
3. composite = the scene (bg) crop with its centre square of side
   ``int(image_size * ratio)`` (offset ``image_size // 2 - side // 2``) replaced by
   the object crop's; ground truth = the scene crop.

Decoded, resized images are kept in a small per-process LRU cache (each DataLoader
worker has its own copy), so 150,000 samples over a few thousand images decode each
image about once per worker. Everything is deterministic: item ``i`` depends only on
row ``i`` (and the files).
"""

from __future__ import annotations

import csv
import logging
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from ..errors import ConfigError, InputError
from .composites import TRAIN_COLUMNS, resized_shape

__all__ = ["CompositeDataset", "paste_centre", "to_tensor"]

log = logging.getLogger(__name__)


class _Unreadable(InputError):
    """A manifest image cannot be decoded (carries its relative path)."""

    def __init__(self, message: str, rel: str):
        super().__init__(message)
        self.rel = rel


def paste_centre(obj: np.ndarray, bg: np.ndarray, ratio: float = 0.5) -> np.ndarray:
    """Copy the centre square of ``obj`` into a copy of ``bg``.

    Parameters
    ----------
    obj, bg : np.ndarray
        ``(S, S, C)`` arrays of the same shape and dtype.
    ratio : float
        Side of the square = ``int(S * ratio)``, top-left at ``S // 2 - side // 2``.

    Returns
    -------
    np.ndarray
        The composite, same shape/dtype as ``bg``.
    """
    s = bg.shape[0]
    side = int(s * ratio)
    o = s // 2 - side // 2
    out = bg.copy()
    out[o:o + side, o:o + side] = obj[o:o + side, o:o + side]
    return out


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """uint8 ``(H, W, 3)`` -> float32 tensor ``(3, H, W)`` in [-1, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
    return t.to(torch.float32).div_(127.5).sub_(1.0)


class CompositeDataset(Dataset):
    """Training/validation composites described by a manifest CSV.

    Parameters
    ----------
    manifest_csv : path-like
        CSV with columns ``scene,obj_image,bg_image,crop_y,crop_x,seed``.
    scenes_root : path-like
        Folder the manifest's image paths are relative to.
    image_size : int
        Side of the samples (64 in the paper); must match the manifest's.
    ratio : float
        Side of the pasted centre square as a fraction of ``image_size``.
    flip : bool
        Flip a sample (both images) horizontally when its row's ``seed`` is odd
        (deterministic augmentation; off by default, as in the reference).
    cache_size : int
        Resized images kept per process (uint8, ``~image_size**2 * 4`` bytes each).
    on_error : {"fail", "skip"}
        A manifest image that is missing (checked at construction) or corrupt
        (checked when first read): raise :class:`InputError` naming it, or log it once
        and skip: missing files drop their rows; a corrupt image makes the item fall
        through to the next row (``(i + 1) % len``) whose images are readable.

    Notes
    -----
    ``dataset[i]`` returns ``(composite, ground_truth)``, both ``torch.float32`` of
    shape ``(3, image_size, image_size)`` in ``[-1, 1]``.
    """

    def __init__(self, manifest_csv, scenes_root, *, image_size: int = 64, ratio: float = 0.5,
                 flip: bool = False, cache_size: int = 1024, on_error: str = "fail"):
        if on_error not in ("fail", "skip"):
            raise ConfigError(f"on_error must be 'fail' or 'skip', not {on_error!r}")
        if image_size < 2 or not 0 < ratio <= 1:
            raise ConfigError(f"need image_size >= 2 and 0 < ratio <= 1, got {image_size}, {ratio}")
        self.manifest = Path(manifest_csv)
        self.root = Path(scenes_root)
        self.image_size = int(image_size)
        self.ratio = float(ratio)
        self.flip = bool(flip)
        self.cache_size = int(cache_size)
        self.on_error = on_error
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._bad: set[str] = set()
        rows = self._read_manifest()
        self.obj = [r[1] for r in rows]
        self.bg = [r[2] for r in rows]
        self.scene = [r[0] for r in rows]
        self.crop = np.array([(r[3], r[4]) for r in rows], dtype=np.int64).reshape(-1, 2)
        self.seed = np.array([r[5] for r in rows], dtype=np.int64)

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
                    scene, obj, bg, cy, cx, seed = r
                    rows.append((scene, obj, bg, int(cy), int(cx), int(seed)))
                except ValueError:
                    raise InputError(f"{self.manifest}:{lineno}: bad row {r!r}") from None
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

    def _load(self, rel: str) -> np.ndarray:
        """Resized uint8 ``(h', w', 3)`` image, through the LRU cache."""
        img = self._cache.get(rel)
        if img is not None:
            self._cache.move_to_end(rel)
            return img
        path = self.root / rel
        try:
            with Image.open(path) as im:
                im.load()
                im = im.convert("RGB")
                h, w = resized_shape(im.height, im.width, self.image_size)
                img = np.asarray(im.resize((w, h), Image.Resampling.BILINEAR))
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            raise _Unreadable(f"{path}: not a readable image ({exc.__class__.__name__})",
                              rel) from None
        self._cache[rel] = img
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return img

    def _crop(self, img: np.ndarray, i: int, rel: str) -> np.ndarray:
        y, x = (int(v) for v in self.crop[i])
        s = self.image_size
        if y < 0 or x < 0 or y + s > img.shape[0] or x + s > img.shape[1]:
            raise InputError(f"{self.manifest}: row {i} crop ({y},{x}) of {s}px does not fit "
                             f"{rel} resized to {img.shape[0]}x{img.shape[1]}")
        return img[y:y + s, x:x + s]

    def sample(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Item ``i`` as uint8 ``(S, S, 3)`` arrays ``(composite, ground_truth)``.

        Raises :class:`InputError` for an unreadable image (whatever ``on_error``).
        """
        obj = self._crop(self._load(self.obj[i]), i, self.obj[i])
        bg = self._crop(self._load(self.bg[i]), i, self.bg[i])
        if self.flip and self.seed[i] % 2 == 1:
            obj, bg = obj[:, ::-1], bg[:, ::-1]
        return paste_centre(obj, bg, self.ratio), np.ascontiguousarray(bg)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(i)
        i %= n
        for k in range(n):
            j = (i + k) % n
            if self.obj[j] in self._bad or self.bg[j] in self._bad:
                continue
            try:
                comp, gt = self.sample(j)
            except _Unreadable as exc:
                if self.on_error == "fail":
                    raise
                self._bad.add(exc.rel)
                log.warning("skipping corrupt image: %s", exc)
                continue
            return to_tensor(comp), to_tensor(gt)
        raise InputError(f"{self.manifest}: no row with readable images")
