"""Natural images and copy-paste composites for the realism judge (:mod:`gpgan.realism`).

RealismCNN (Zhu et al., ICCV 2015) was trained to tell natural photographs from
composites whose pasted region keeps its own colour. This module draws such images
from scene folders (:mod:`.scenes`: one folder per place, several aligned images of
it), one *kind* at a time:

``natural`` (label 1)
    One scene image as it is.
``same_photo`` (label 1)
    A region of one image pasted into the same image at another place: a seam in
    content, no colour mismatch. Not natural, but what the judge must *not* punish
    if it is to measure colour realism (the control of the issue's validation).
``other_photo`` (label 0)
    A region of an image of another photograph (another scene *group*, so another
    place) pasted into a scene image: the cross-scene copy-paste users make.
``relit`` (label 0)
    A region of another image of the *same* scene (another time of day, another
    relighting) pasted at the same place: a pure colour mismatch, no seam in content.

Every composite uses one hard random blob mask (:func:`.composites.random_blob_mask`)
of ``coverage``; a natural image gets one too, drawn the same way, so that the
mask-centred view (:func:`gpgan.realism.context_box`) cannot tell the kinds apart by
where it looks. A pasted region from another image is taken from that image resized
to cover the destination (scale to cover, centre crop). Everything is drawn from a
``numpy.random.Generator``, so a sample is a pure function of the seed.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..errors import ConfigError, InputError
from .composites import random_blob_mask

__all__ = ["KINDS", "LABELS", "SceneImages", "fit_to", "draw_sample", "draw_samples"]

#: Sample kinds, and their label (1 = natural).
KINDS = ("natural", "same_photo", "other_photo", "relit")
LABELS = {"natural": 1, "same_photo": 1, "other_photo": 0, "relit": 0}


class SceneImages:
    """The images of some scenes, decoded on demand (uint8; the most recent
    ``cache_size`` kept), with each scene's group.

    Parameters
    ----------
    root : path-like
        Folder of scene folders.
    index : dict of str to list of str
        ``{scene: [image path relative to root, ...]}`` (:func:`.scenes.list_scenes`).
    groups : dict of str to str, optional
        ``{scene: group}``; a scene missing from it is its own group.
    cache_size : int
        Decoded images kept in memory (a large dataset need not fit in it).
    """

    def __init__(self, root, index: dict, groups: dict | None = None, *,
                 cache_size: int = 512):
        import functools
        from pathlib import Path

        self.root = Path(root)
        self.scenes = sorted(index)
        if not self.scenes:
            raise InputError(f"{self.root}: no scenes to draw realism samples from")
        self.groups = {s: (groups or {}).get(s, s) for s in self.scenes}
        self.files = {s: list(index[s]) for s in self.scenes}
        self._read = functools.lru_cache(maxsize=cache_size)(self._decode)

    def _decode(self, rel: str) -> np.ndarray:
        try:
            with Image.open(self.root / rel) as im:
                arr = np.array(im.convert("RGB"))
        except (OSError, ValueError) as exc:
            raise InputError(f"{self.root / rel}: not a readable image "
                             f"({exc.__class__.__name__})") from None
        arr.setflags(write=False)  # shared by every sample drawn from the cache
        return arr

    def count(self, scene: str) -> int:
        """Number of images of ``scene``."""
        return len(self.files[scene])

    def image(self, scene: str, k: int) -> np.ndarray:
        """Image ``k`` of ``scene``, uint8 (H, W, 3)."""
        return self._read(self.files[scene][k])

    def others(self, scene: str) -> list[str]:
        """Scenes of another group than ``scene``'s."""
        return [s for s in self.scenes if self.groups[s] != self.groups[scene]]


def fit_to(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize ``img`` (uint8 H, W, 3) to cover ``height x width`` and crop the centre."""
    h, w = img.shape[:2]
    if (h, w) == (height, width):
        return img
    s = max(height / h, width / w)
    size = (max(width, round(w * s)), max(height, round(h * s)))
    big = np.asarray(Image.fromarray(img).resize(size, Image.Resampling.BICUBIC))
    y0, x0 = (big.shape[0] - height) // 2, (big.shape[1] - width) // 2
    return big[y0:y0 + height, x0:x0 + width]


def _shifted(img: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``img`` moved by a random offset of 20-50 % of its size (wrapping around), so the
    pasted region shows another part of the same photograph."""
    h, w = mask.shape
    dy = int(rng.uniform(0.2, 0.5) * h) * int(rng.choice([-1, 1]))
    dx = int(rng.uniform(0.2, 0.5) * w) * int(rng.choice([-1, 1]))
    return np.roll(img, (dy, dx), axis=(0, 1))


def draw_sample(data: SceneImages, kind: str, rng: np.random.Generator, *,
                coverage=(0.05, 0.4)) -> tuple[np.ndarray, np.ndarray]:
    """One image of ``kind`` (:data:`KINDS`) and its mask.

    Returns
    -------
    image : ndarray, uint8 (H, W, 3)
    mask : ndarray, float32 (H, W) of 0/1
        The pasted region (a drawn region of the same law for ``natural``).
    """
    if kind not in LABELS:
        raise ConfigError(f"unknown realism sample kind {kind!r}; choose from {list(KINDS)}")
    scene = data.scenes[int(rng.integers(len(data.scenes)))]
    n_images = data.count(scene)
    k = int(rng.integers(n_images))
    dst = data.image(scene, k)
    h, w = dst.shape[:2]
    mask = random_blob_mask(h, w, float(rng.uniform(*coverage)), rng)
    if kind == "natural":
        return _augment(dst, mask, rng)
    if kind == "same_photo":
        src = _shifted(dst, mask, rng)
    elif kind == "relit":
        if n_images < 2:
            raise InputError(f"scene {scene}: a relit sample needs two images")
        src = data.image(scene, (k + 1 + int(rng.integers(n_images - 1))) % n_images)
    else:
        others = data.others(scene)
        if not others:
            raise InputError("other_photo samples need scenes of two groups (photographs)")
        other = others[int(rng.integers(len(others)))]
        src = fit_to(data.image(other, int(rng.integers(data.count(other)))), h, w)
    m = mask[..., None] > 0.5
    return _augment(np.where(m, src, dst), mask, rng)


def _augment(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator):
    """A random mirror and a random crop of 70-100 % of each side that keeps the
    centre of the mask's bounding box: the same for every kind, so that the few natural
    images of a small dataset are not seen the same way twice."""
    if rng.random() < 0.5:
        image, mask = image[:, ::-1], mask[:, ::-1]
    h, w = mask.shape
    ch, cw = (int(round(rng.uniform(0.7, 1.0) * n)) for n in (h, w))
    ys, xs = np.nonzero(mask >= 0.5)
    cy, cx = (int(ys.mean()), int(xs.mean())) if ys.size else (h // 2, w // 2)
    top = int(rng.integers(max(0, cy - ch + 1), min(cy, h - ch) + 1))
    left = int(rng.integers(max(0, cx - cw + 1), min(cx, w - cw) + 1))
    return (np.ascontiguousarray(image[top:top + ch, left:left + cw]),
            np.ascontiguousarray(mask[top:top + ch, left:left + cw]))


def draw_samples(data: SceneImages, mix: dict, n: int, seed: int, *,
                 coverage=(0.05, 0.4)):
    """Yield ``n`` ``(kind, image, mask)`` samples, kinds drawn with weights ``mix``.

    ``mix`` maps kinds to non-negative weights; the natural kinds together and the
    composite kinds together each get half of the samples (balanced classes), each
    split between its kinds by weight. Sample ``i`` depends only on ``seed`` and ``i``.
    """
    kinds = [k for k in KINDS if mix.get(k, 0) > 0]
    unknown = sorted(set(mix) - set(KINDS))
    if unknown:
        raise ConfigError(f"unknown realism sample kind(s) {unknown}; choose from {list(KINDS)}")
    weights = []
    for label in (1, 0):
        side = [k for k in kinds if LABELS[k] == label]
        if not side:
            raise ConfigError("the realism training mix needs a natural kind and a "
                              f"composite kind with weight > 0, got {mix}")
        total = sum(mix[k] for k in side)
        weights += [(k, 0.5 * mix[k] / total) for k in side]
    names = [k for k, _ in weights]
    p = np.array([v for _, v in weights])
    for i, child in enumerate(np.random.SeedSequence(int(seed)).spawn(int(n))):
        rng = np.random.default_rng(child)
        kind = names[int(rng.choice(len(names), p=p))]
        image, mask = draw_sample(data, kind, rng, coverage=coverage)
        yield kind, image, mask
