"""Scene splits, training manifests and full-resolution test composites.

A *scene* is a folder ``<scenes_root>/<scene>/`` of aligned images of one place at
different times (Transient Attributes after cropping, or the demo dataset). All
images of a scene must have the same size.

Training / validation samples (SPEC.md, "Training data") are not written as images:
a manifest CSV lists, per sample, the scene, the *object* image, the *scene* (bg)
image and the crop position, and :class:`gpgan.data.dataset.CompositeDataset` builds
the 64x64 composite on the fly. Manifest columns, exactly::

    scene,obj_image,bg_image,crop_y,crop_x,seed

``obj_image``/``bg_image`` are paths relative to ``scenes_root`` (two *different*
images of the same scene); ``crop_y``/``crop_x`` are the top-left corner of the
``image_size`` square crop in the image resized so that its short side is
``image_size`` (size from :func:`resized_shape`, the reference's ``ceil``);
``seed`` is a per-sample integer drawn from the manifest's seed (the dataset uses
it for optional flips).

Test composites for the benchmark are real files, at full resolution::

    <out_dir>/<id>/src.png   variant A of a scene (holds the "object")
    <out_dir>/<id>/dst.png   variant B of the same scene (the destination)
    <out_dir>/<id>/mask.png  8-bit 0/255 object mask, 1 = take src
    <out_dir>/<id>/gt.png    ground truth = dst
    <out_dir>/test.csv       id,scene,src,dst,mask,gt,height,width,coverage

Why ``gt = dst``: src and dst show exactly the same geometry (aligned webcam frames,
or relit copies of one photo), so the ideal blend, the object region rendered with
the destination's illumination and colour, *is* the destination image itself (the
Transient Attributes protocol of the paper: ground truth = the scene image). The
copy-paste error is then entirely inside the mask, which is what fMSE/fPSNR measure.
"""

from __future__ import annotations

import csv
import logging
import math
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import ConfigError, InputError
from ..io import atomic_path, move_contents, read_mask
from .crop import list_images

__all__ = [
    "TRAIN_COLUMNS",
    "TEST_COLUMNS",
    "read_test_csv",
    "list_scenes",
    "split_scenes",
    "resized_shape",
    "write_train_manifest",
    "random_blob_mask",
    "make_test_composites",
    "build_composites",
]

log = logging.getLogger(__name__)

TRAIN_COLUMNS = ("scene", "obj_image", "bg_image", "crop_y", "crop_x", "seed")
TEST_COLUMNS = ("id", "scene", "src", "dst", "mask", "gt", "height", "width", "coverage")


def _check_on_error(on_error: str) -> None:
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
    _check_on_error(on_error)
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


def _check_fractions(fractions) -> dict[str, float]:
    fractions = dict(fractions or {"train": 0.8, "val": 0.1, "test": 0.1})
    try:
        vals = np.array([float(v) for v in fractions.values()])
    except (TypeError, ValueError):
        raise ConfigError(f"split fractions must be numbers, got {fractions}") from None
    if not fractions or (vals < 0).any() or not math.isclose(vals.sum(), 1.0, abs_tol=1e-6):
        raise ConfigError(f"split fractions must be >= 0 and sum to 1, got {fractions}")
    return fractions


def _check_geometry(image_size, ratio) -> None:
    if image_size < 2 or not 0 < ratio <= 1:
        raise ConfigError(f"need image_size >= 2 and 0 < ratio <= 1, got {image_size}, {ratio}")


def _check_test_options(coverage, max_size, masks_root) -> tuple[float, float]:
    """Validate the test-composite options; returns the coverage range."""
    try:
        lo, hi = (float(c) for c in coverage)
    except (TypeError, ValueError):
        raise ConfigError(f"coverage must be two numbers LO,HI, got {coverage!r}") from None
    if not 0 < lo <= hi < 1:
        raise ConfigError(f"coverage range must satisfy 0 < lo <= hi < 1, got {coverage}")
    if max_size is not None and max_size < 8:
        raise ConfigError(f"max_size must be >= 8, got {max_size}")
    if masks_root is not None and not Path(masks_root).is_dir():
        raise InputError(f"{masks_root}: no such masks folder (expected "
                         "<masks_root>/<scene>/*.png)")
    return lo, hi


def split_scenes(scenes, fractions=None, seed: int = 0) -> dict[str, list[str]]:
    """Split scene names into disjoint sets (no scene in two splits).

    Parameters
    ----------
    scenes : iterable of str
        Scene names (duplicates ignored).
    fractions : dict, optional
        ``{split: fraction}``, non-negative, summing to 1 (default
        ``{"train": 0.8, "val": 0.1, "test": 0.1}``). Counts are rounded by largest
        remainder; every split with a positive fraction gets at least one scene when
        there are enough scenes.
    seed : int
        Seed of the shuffle (``numpy.random.default_rng``).

    Returns
    -------
    dict
        ``{split: sorted scene names}`` in the order of ``fractions``; the union is all
        scenes.
    """
    fractions = _check_fractions(fractions)
    names = sorted(set(scenes))
    if not names:
        raise InputError("no scenes to split")
    vals = np.array([float(v) for v in fractions.values()])
    n = len(names)
    exact = vals * n
    counts = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - counts), kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    # every positive split gets >= 1 scene if possible, taken from the largest split
    for i in np.flatnonzero((vals > 0) & (counts == 0)):
        donor = int(np.argmax(counts))
        if counts[donor] > 1:
            counts[donor] -= 1
            counts[i] += 1
    order = np.random.default_rng(seed).permutation(n)
    out, start = {}, 0
    for name, c in zip(fractions, counts):
        out[name] = sorted(names[j] for j in order[start:start + c])
        start += c
    return out


def resized_shape(h: int, w: int, image_size: int) -> tuple[int, int]:
    """Size ``(h', w')`` of an ``h x w`` image resized so the short side is ``image_size``.

    Uses ``ceil`` like the reference, in exact integer arithmetic, so the short side
    is exactly ``image_size`` and the long side ``>= image_size``.
    """
    m = min(h, w)
    return -(-h * image_size // m), -(-w * image_size // m)


def _scene_shape(root: Path, rel: str) -> tuple[int, int]:
    with Image.open(root / rel) as im:
        return im.size[1], im.size[0]


def _write_csv(path: Path, columns, rows) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(columns)
            writer.writerows(rows)
    return path


def _paired_scenes(root, scenes, on_error, what: str):
    """The scene index and the sorted names of scenes holding >= 2 images (a pair);
    none -> InputError ``"<root>: no <what>"``."""
    index = _index(root, scenes, on_error)
    names = sorted(s for s, imgs in index.items() if len(imgs) >= 2)
    if not names:
        raise InputError(f"{root}: no {what}")
    return index, names


def _index(scenes_root, scenes, on_error) -> dict[str, list[str]]:
    if isinstance(scenes, dict):
        index = {s: list(v) for s, v in scenes.items()}
        root = Path(scenes_root)
        for s, imgs in index.items():
            for rel in imgs:
                if not (root / rel).is_file():
                    raise InputError(f"{root / rel}: listed image does not exist")
        return index
    return list_scenes(scenes_root, scenes, on_error=on_error)


def write_train_manifest(scenes_root, scenes, n_samples: int, out_csv, *, seed: int,
                         image_size: int = 64, ratio: float = 0.5,
                         on_error: str = "fail") -> Path:
    """Write a training/validation manifest of ``n_samples`` composites.

    Each row: a scene drawn uniformly from ``scenes``, two different images of it
    (object, scene/bg), and a crop corner drawn uniformly over the valid positions
    of the short-side-resized image (``0 <= crop_y <= h' - image_size``, likewise x).

    Parameters
    ----------
    scenes_root : path-like
        Root of the scene folders.
    scenes : iterable of str, dict or None
        Scene names (validated with :func:`list_scenes`; ``None`` = every scene), or
        an already validated ``{scene: [relative image paths]}`` (files must exist).
    n_samples : int
        Number of rows (e.g. 150,000; costs only CSV bytes).
    out_csv : path-like
        Written atomically with columns :data:`TRAIN_COLUMNS`.
    seed : int
        Seed; the same arguments give the same file.
    image_size : int
        Crop size after resizing (64 in the paper).
    ratio : float
        Recorded for the dataset (centre square side = ``int(image_size * ratio)``);
        validated here.
    on_error : {"fail", "skip"}
        See :func:`list_scenes`.

    Returns
    -------
    pathlib.Path
        ``out_csv``.
    """
    if n_samples < 1:
        raise ConfigError(f"n_samples must be >= 1, got {n_samples}")
    _check_geometry(image_size, ratio)
    root = Path(scenes_root)
    index, names = _paired_scenes(root, scenes, on_error, "scene with two images for "
                                  "training pairs")
    rng = np.random.default_rng(seed)
    which = rng.integers(0, len(names), size=n_samples)
    obj = np.empty(n_samples, dtype=object)
    bg = np.empty(n_samples, dtype=object)
    cy = np.zeros(n_samples, dtype=np.int64)
    cx = np.zeros(n_samples, dtype=np.int64)
    for k, scene in enumerate(names):
        rows = np.flatnonzero(which == k)
        if rows.size == 0:
            continue
        imgs = index[scene]
        i = rng.integers(0, len(imgs), size=rows.size)
        j = rng.integers(0, len(imgs) - 1, size=rows.size)
        j = j + (j >= i)
        h, w = resized_shape(*_scene_shape(root, imgs[0]), image_size)
        cy[rows] = rng.integers(0, h - image_size + 1, size=rows.size)
        cx[rows] = rng.integers(0, w - image_size + 1, size=rows.size)
        arr = np.array(imgs, dtype=object)
        obj[rows], bg[rows] = arr[i], arr[j]
    seeds = rng.integers(0, 2**31 - 1, size=n_samples)
    rows = zip((names[k] for k in which), obj, bg, cy.tolist(), cx.tolist(), seeds.tolist())
    return _write_csv(out_csv, TRAIN_COLUMNS, rows)


def random_blob_mask(height: int, width: int, coverage: float,
                     rng: np.random.Generator) -> np.ndarray:
    """A smooth, star-shaped random blob covering ``coverage`` of the image.

    The boundary is ``r(theta) = r0 * exp(sum_k a_k cos(k theta + phi_k))`` for
    ``k = 2..5`` (a smooth random polygon-like outline) around a centre drawn in the
    middle 50 % of the image; ``r0`` is the order statistic of the pixels' scaled
    radii that selects ``round(coverage * H * W)`` pixels (exact up to ties).

    Returns
    -------
    np.ndarray
        float32 ``(height, width)`` of 0/1, one connected region.
    """
    if not 0 < coverage < 1:
        raise ConfigError(f"coverage must be in (0, 1), got {coverage}")
    cy = rng.uniform(0.25, 0.75) * height
    cx = rng.uniform(0.25, 0.75) * width
    ks = np.arange(2, 6)
    amp = rng.uniform(0.0, 0.35, size=ks.size) / np.sqrt(ks - 1)
    phase = rng.uniform(0, 2 * np.pi, size=ks.size)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    dy, dx = yy + 0.5 - cy, xx + 0.5 - cx
    theta = np.arctan2(dy, dx)
    shape = np.exp(sum(a * np.cos(k * theta + p) for k, a, p in zip(ks, amp, phase)))
    rel = np.hypot(dy, dx) / shape          # blob = rel <= r0
    # "rel <= r0" grows monotonically with r0, so the k-th smallest value of rel is
    # the r0 that selects exactly k pixels (no bisection needed)
    k = min(max(int(round(coverage * height * width)), 1), height * width)
    r0 = np.partition(rel.ravel(), k - 1)[k - 1]
    return (rel <= r0).astype(np.float32)


def _load_rgb(path: Path) -> Image.Image:
    try:
        with Image.open(path) as im:
            im.load()
            return im.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise InputError(f"{path}: not a readable image ({exc.__class__.__name__})") from None


def _object_masks(masks_root: Path | None, scene: str) -> list[Path]:
    if masks_root is None:
        return []
    folder = Path(masks_root) / scene
    return list_images(folder) if folder.is_dir() else []


def make_test_composites(scenes_root, scenes, out_dir, *, n: int, seed: int,
                         coverage=(0.05, 0.4), max_size: int | None = None,
                         masks_root=None, on_error: str = "fail") -> Path:
    """Write ``n`` full-resolution test composites and ``<out_dir>/test.csv``.

    Parameters
    ----------
    scenes_root : path-like
        Root of the scene folders.
    scenes : iterable of str or dict
        Test scenes (see :func:`write_train_manifest`). Scenes are visited in a
        seeded random order, round-robin, so they are used evenly.
    out_dir : path-like
        Output folder; writes ``<id>/{src,dst,mask,gt}.png`` with ``id`` =
        ``0000``, ``0001``, ... and ``test.csv`` (columns :data:`TEST_COLUMNS`, paths
        relative to ``out_dir``, ``coverage`` = mask mean). Test folders left over
        from an earlier, larger run are removed.
    n : int
        Number of composites.
    seed : int
        Seed of the pairs, masks and coverages.
    coverage : (float, float)
        Range of the target mask coverage (fraction of pixels), drawn uniformly.
    max_size : int, optional
        Down-scale (Lanczos) so the long side is at most this many pixels.
    masks_root : path-like, optional
        Object masks ``<masks_root>/<scene>/*.png`` (e.g. the GP-GAN repository's
        masks, in the geometry of the scene images; resized with nearest neighbour if
        their size differs). A scene with masks uses one of them (seeded choice);
        other scenes get :func:`random_blob_mask` (logged). A missing folder, or one
        with masks for none of the test scenes, is an :class:`InputError`.
    on_error : {"fail", "skip"}
        See :func:`list_scenes`.

    Returns
    -------
    pathlib.Path
        Path of ``test.csv``.
    """
    if n < 1:
        raise ConfigError(f"n must be >= 1, got {n}")
    lo, hi = _check_test_options(coverage, max_size, masks_root)
    root = Path(scenes_root)
    out_dir = Path(out_dir)
    index, names = _paired_scenes(root, scenes, on_error, "test scene with two images")
    if masks_root is not None:
        without = [s for s in names if not _object_masks(masks_root, s)]
        if len(without) == len(names):
            raise InputError(f"{masks_root}: no masks for any of the {len(names)} test "
                             f"scene(s) (expected <masks_root>/<scene>/*.png, e.g. "
                             f"{names[0]}/)")
        if without:
            log.warning("%d test scene(s) without masks in %s get random blob masks: %s",
                        len(without), masks_root, ", ".join(without))
    rng = np.random.default_rng(seed)
    order = [names[i] for i in rng.permutation(len(names))]
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        scene = order[i % len(order)]
        imgs = index[scene]
        a, b = rng.choice(len(imgs), size=2, replace=False)
        src = _load_rgb(root / imgs[a])
        dst = _load_rgb(root / imgs[b])
        if src.size != dst.size:
            raise InputError(f"{root / imgs[a]} and {root / imgs[b]} differ in size")
        if max_size is not None and max(src.size) > max_size:
            s = max_size / max(src.size)
            size = (max(1, round(src.size[0] * s)), max(1, round(src.size[1] * s)))
            src = src.resize(size, Image.Resampling.LANCZOS)
            dst = dst.resize(size, Image.Resampling.LANCZOS)
        w, h = src.size
        target = float(rng.uniform(lo, hi))
        mask_seed = int(rng.integers(0, 2**31 - 1))
        candidates = _object_masks(masks_root, scene)
        if candidates:
            mpath = candidates[int(np.random.default_rng(mask_seed).integers(len(candidates)))]
            m = read_mask(mpath)
            if m.shape != (h, w):
                log.warning("%s: mask %dx%d resized to %dx%d", mpath, *m.shape, h, w)
                m = np.asarray(Image.fromarray((m * 255).astype(np.uint8)).resize(
                    (w, h), Image.Resampling.NEAREST), dtype=np.float32) / 255.0
            m = (m >= 0.5).astype(np.float32)
        else:
            m = random_blob_mask(h, w, target, np.random.default_rng(mask_seed))
        cid = f"{i:04d}"
        folder = out_dir / cid
        folder.mkdir(parents=True, exist_ok=True)
        for name, im in (("src", src), ("dst", dst), ("gt", dst),
                         ("mask", Image.fromarray((m * 255).astype(np.uint8), mode="L"))):
            with atomic_path(folder / f"{name}.png") as tmp:
                im.save(tmp, format="PNG")
        rows.append((cid, scene, f"{cid}/src.png", f"{cid}/dst.png", f"{cid}/mask.png",
                     f"{cid}/gt.png", h, w, f"{float(m.mean()):.6f}"))
    _remove_stale_composites(out_dir, n)
    return _write_csv(out_dir / "test.csv", TEST_COLUMNS, rows)


def _remove_stale_composites(out_dir: Path, n: int) -> None:
    """Remove test composites of an earlier run with a larger n (idempotent output)."""
    for p in out_dir.iterdir():
        if p.is_dir() and p.name.isdigit() and len(p.name) == 4 and int(p.name) >= n:
            shutil.rmtree(p)


def read_test_csv(test_csv):
    """Read ``test.csv`` and resolve its image paths against its folder.

    Returns
    -------
    pandas.DataFrame
        With ``src, dst, mask, gt`` as absolute paths and ``id`` as str.
    """
    import pandas as pd

    test_csv = Path(test_csv)
    if not test_csv.is_file():
        raise InputError(f"{test_csv}: no such file")
    df = pd.read_csv(test_csv, dtype={"id": str, "scene": str})
    missing = [c for c in TEST_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(f"{test_csv}: missing column(s) {missing}")
    if df.empty:
        raise InputError(f"{test_csv}: no test composites")
    if df["id"].duplicated().any():
        raise InputError(f"{test_csv}: duplicate id {df['id'][df['id'].duplicated()].iloc[0]!r}")
    root = test_csv.resolve().parent
    for col in ("src", "dst", "mask", "gt"):
        df[col] = [str(root / p) for p in df[col]]
    return df


def build_composites(scenes_root, out_dir, *, seed: int = 0, fractions=None,
                     n_train: int = 150_000, n_val: int = 2_000, n_test: int = 50,
                     image_size: int = 64, ratio: float = 0.5, coverage=(0.05, 0.4),
                     max_size: int | None = None, masks_root=None,
                     on_error: str = "fail") -> dict[str, Path]:
    """All composite outputs of one run: splits, train/val manifests, test composites.

    Writes ``<out_dir>/splits.csv`` (``scene,split``), ``train.csv`` and ``val.csv``
    (:func:`write_train_manifest`; a split with fraction 0 or count 0 gets no file)
    and the test composites with ``test.csv`` (:func:`make_test_composites`) in
    ``out_dir``. Sub-seeds are derived from ``seed`` so that the parts are
    independent.

    Every count (``>= 0``), range and path is checked before anything is written, and
    so is that each split with a positive fraction and count gets at least one scene
    (one scene cannot make a validation or test split). Everything is written into a
    temporary sibling folder first and moved into ``out_dir`` at the end, so a run
    that fails leaves ``out_dir`` as it was.

    Returns
    -------
    dict
        ``{"splits": path, "train": path, "val": path, "test": path}`` for the files
        written.
    """
    fractions = _check_fractions(fractions)
    counts = {"train": n_train, "val": n_val, "test": n_test}
    for name, count in counts.items():
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
            raise ConfigError(f"n_{name} must be an integer >= 0, got {count!r}")
    _check_geometry(image_size, ratio)
    _check_test_options(coverage, max_size, masks_root)
    index = list_scenes(scenes_root, on_error=on_error)
    splits = split_scenes(index, fractions, seed)
    wanted = [k for k in counts if fractions.get(k, 0) > 0 and counts[k] > 0]
    for name in wanted:
        if not splits.get(name):
            raise ConfigError(
                f"{scenes_root}: {len(index)} usable scene(s) leave the {name} split "
                f"(fraction {fractions[name]:g}) empty: need at least {len(wanted)} "
                f"scenes, or set its fraction (or n_{name}) to 0")
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".partial",
                                 dir=out_dir.parent))
    try:
        seeds = np.random.SeedSequence(seed).generate_state(3)
        written = {"splits": _write_csv(work / "splits.csv", ("scene", "split"),
                                        [(s, k) for k, v in splits.items() for s in v])}
        for k, name in enumerate(("train", "val")):
            if name in wanted:
                written[name] = write_train_manifest(
                    scenes_root, {s: index[s] for s in splits[name]}, counts[name],
                    work / f"{name}.csv", seed=int(seeds[k]), image_size=image_size,
                    ratio=ratio)
        if "test" in wanted:
            written["test"] = make_test_composites(
                scenes_root, {s: index[s] for s in splits["test"]}, work, n=n_test,
                seed=int(seeds[2]), coverage=coverage, max_size=max_size,
                masks_root=masks_root)
        move_contents(work, out_dir)
        if "test" in wanted:
            _remove_stale_composites(out_dir, n_test)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {k: out_dir / p.name for k, p in written.items()}
