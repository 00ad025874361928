"""Scenes: folders of aligned images of one place, indexed, validated and split.

A *scene* is a folder ``<scenes_root>/<scene>/`` of aligned images of one place at
different times (Transient Attributes after cropping, or the demo dataset). All
images of a scene must have the same size. :func:`split_scenes` splits scenes into
train / validation / test, keeping *groups* (a photograph and its crops, photographs of
one place) in one split.
"""

from __future__ import annotations

import csv
import logging
import math
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import ConfigError, InputError
from .crop import list_images

__all__ = ["list_scenes", "scene_index", "paired_scenes", "check_on_error",
           "check_fractions", "split_scenes", "read_groups", "read_splits"]

log = logging.getLogger(__name__)


def check_on_error(on_error: str) -> None:
    """``on_error`` must be ``"fail"`` or ``"skip"``."""
    if on_error not in ("fail", "skip"):
        raise ConfigError(f"on_error must be 'fail' or 'skip', not {on_error!r}")


def _image_ok(path: Path, decode: bool) -> tuple[tuple[int, int] | None, str | None]:
    """Return ((h, w), None) for a readable image, (None, reason) otherwise."""
    try:
        with Image.open(path) as im:
            size = im.size
            if decode:
                im.load()
        return (size[1], size[0]), None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        return None, exc.__class__.__name__


def list_scenes(scenes_root, scenes=None, *, min_images: int = 2, on_error: str = "fail",
                decode: bool = True) -> dict[str, list[str]]:
    """Index and validate the scene folders.

    Parameters
    ----------
    scenes_root : path-like
        Folder of ``<scene>/<image>`` files.
    scenes : iterable of str, optional
        Only these scenes (default: every sub-folder not starting with ``.``).
    min_images : int
        Scenes with fewer readable images are left out (logged).
    on_error : {"fail", "skip"}
        An unreadable/corrupt image, or a scene whose images differ in size, raises
        :class:`InputError` naming the path (``"fail"``) or is logged and left out
        (``"skip"``). It is never silently used.
    decode : bool
        Fully decode every image (catches truncated files); ``False`` reads headers
        only (fast, for huge folders).

    Returns
    -------
    dict
        ``{scene: [relative image paths, sorted]}`` (paths relative to
        ``scenes_root``, ``/`` separated), scenes sorted by name.
    """
    check_on_error(on_error)
    root = Path(scenes_root)
    if not root.is_dir():
        raise InputError(f"{root}: no such scenes folder")
    if scenes is None:
        names = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    else:
        names = sorted(set(scenes))
    out: dict[str, list[str]] = {}
    for scene in names:
        folder = root / scene
        if not folder.is_dir():
            raise InputError(f"{folder}: scene folder does not exist")
        good, shape0 = [], None
        for path in list_images(folder):
            shape, why = _image_ok(path, decode)
            if shape is None:
                if on_error == "fail":
                    raise InputError(f"{path}: not a readable image ({why})")
                log.warning("skipping unreadable image %s (%s)", path, why)
                continue
            if shape0 is None:
                shape0 = shape
            elif shape != shape0:
                msg = (f"{path}: size {shape[0]}x{shape[1]} differs from the scene's "
                       f"{shape0[0]}x{shape0[1]} (aligned images must match)")
                if on_error == "fail":
                    raise InputError(msg)
                log.warning("skipping %s", msg)
                continue
            good.append(f"{scene}/{path.name}")
        if len(good) < min_images:
            log.warning("scene %s: %d usable image(s) < %d, left out", scene, len(good),
                        min_images)
            continue
        out[scene] = good
    if not out:
        raise InputError(f"{root}: no scene with at least {min_images} readable images")
    return out


def check_fractions(fractions) -> dict[str, float]:
    """Validated ``{split: fraction}`` (default 0.8 / 0.1 / 0.1), summing to 1."""
    fractions = dict(fractions or {"train": 0.8, "val": 0.1, "test": 0.1})
    try:
        vals = np.array([float(v) for v in fractions.values()])
    except (TypeError, ValueError):
        raise ConfigError(f"split fractions must be numbers, got {fractions}") from None
    if not fractions or (vals < 0).any() or not math.isclose(vals.sum(), 1.0, abs_tol=1e-6):
        raise ConfigError(f"split fractions must be >= 0 and sum to 1, got {fractions}")
    return fractions


def split_scenes(scenes, fractions=None, seed: int = 0, groups=None) -> dict[str, list[str]]:
    """Split scene names into disjoint sets (no scene, and no group, in two splits).

    Parameters
    ----------
    scenes : iterable of str
        Scene names (duplicates ignored).
    fractions : dict, optional
        ``{split: fraction}``, non-negative, summing to 1 (default
        ``{"train": 0.8, "val": 0.1, "test": 0.1}``).
    seed : int
        Seed of the shuffle (``numpy.random.default_rng``).
    groups : dict, optional
        ``{scene: group}``: scenes of one group (e.g. crops of one photograph, or
        photographs of one place) always land in the same split. Scenes not listed are
        their own group. Default: every scene is its own group.

    Returns
    -------
    dict
        ``{split: sorted scene names}`` in the order of ``fractions``; the union is all
        scenes.

    Notes
    -----
    Groups are visited in a seeded random order. First every split with a positive
    fraction receives one group (largest fraction first, while groups last);
    then each further group goes to the split whose scene count is furthest below its
    target ``fraction * n_scenes`` (ties: the order of ``fractions``).
    """
    fractions = check_fractions(fractions)
    names = sorted(set(scenes))
    if not names:
        raise InputError("no scenes to split")
    groups = dict(groups or {})
    members: dict[str, list[str]] = {}
    for name in names:
        members.setdefault(str(groups.get(name, name)), []).append(name)
    keys = sorted(members)
    order = [keys[i] for i in np.random.default_rng(seed).permutation(len(keys))]
    splits = list(fractions)
    target = {k: float(fractions[k]) * len(names) for k in splits}
    out: dict[str, list[str]] = {k: [] for k in splits}
    positive = sorted((k for k in splits if fractions[k] > 0), key=lambda k: -fractions[k])
    for k in positive[:len(order)]:
        out[k] += members[order.pop(0)]
    for g in order:
        k = max(splits, key=lambda k: (target[k] - len(out[k]), -splits.index(k)))
        out[k] += members[g]
    return {k: sorted(v) for k, v in out.items()}


def _scene_column(path, column: str, what: str) -> dict[str, str]:
    """``{scene: <column>}`` from a CSV with ``scene`` and ``column`` columns (extra
    columns are ignored)."""
    path = Path(path)
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise InputError(f"{path}: cannot read the {what} ({exc.strerror})") from None
    if rows and not {"scene", column} <= set(rows[0]):
        raise InputError(f"{path}: needs 'scene' and '{column}' columns, got {list(rows[0])}")
    return {r["scene"]: r[column] for r in rows}


def read_groups(path) -> dict[str, str]:
    """``{scene: group}`` from a CSV with ``scene`` and ``group`` columns (extra columns,
    e.g. those of the demo dataset's ``variants.csv``, are ignored); a dict is returned
    as it is (callers take either)."""
    return path if isinstance(path, dict) else _scene_column(path, "group", "scene groups")


def read_splits(path) -> dict[str, str]:
    """``{scene: split}`` from ``splits.csv`` (columns ``scene,split``, written by
    :func:`gpgan.data.composites.build_composites`)."""
    return _scene_column(path, "split", "splits")


def paired_scenes(root, scenes, on_error, what: str):
    """The scene index and the sorted names of scenes holding >= 2 images (a pair);
    none -> InputError ``"<root>: no <what>"``."""
    index = scene_index(root, scenes, on_error)
    names = sorted(s for s, imgs in index.items() if len(imgs) >= 2)
    if not names:
        raise InputError(f"{root}: no {what}")
    return index, names


def scene_index(scenes_root, scenes, on_error) -> dict[str, list[str]]:
    """``scenes`` as ``{scene: [relative image paths]}``: an already validated dict
    (its files must exist) or names for :func:`list_scenes` (``None`` = all)."""
    if isinstance(scenes, dict):
        index = {s: list(v) for s, v in scenes.items()}
        root = Path(scenes_root)
        for s, imgs in index.items():
            for rel in imgs:
                if not (root / rel).is_file():
                    raise InputError(f"{root / rel}: listed image does not exist")
        return index
    return list_scenes(scenes_root, scenes, on_error=on_error)
