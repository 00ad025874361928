"""Training manifests and full-resolution test composites of scenes (:mod:`.scenes`).

Training / validation samples (SPEC.md, "Training data") are not written as images:
a manifest CSV lists, per sample, the scene, the *object* image, the *scene* (bg)
image, the crop box, a flip, the mask and a seed, and
:class:`gpgan.data.dataset.CompositeDataset` builds the composite on the fly. Manifest
columns, exactly::

    scene,obj_image,bg_image,crop_y,crop_x,crop_h,crop_w,flip,coverage,seed

``obj_image``/``bg_image`` are paths relative to ``scenes_root`` (two *different*
images of the same scene); ``crop_*`` is the box (top, left, height, width, in the
image's own pixels) that is resampled to ``image_size x image_size`` (a box that is
not square is squashed, as GP-GAN squashes a whole image to the GAN's square input);
``flip`` (0/1) mirrors both images; ``coverage`` is 0 for the reference's centre
square (side ``ratio * image_size``) or the fraction of pixels of a random blob mask
(:func:`random_blob_mask`) whose shape is drawn from ``seed``.

The reference draws a square of the short side (``scale = (1, 1)``, ``aspect = 1``:
resize the short side to 64, take a random 64x64 crop) and pastes the centre square
(``coverage = None``). Fresh variation per sample (the demo's default): boxes of a
random size (``scale``, fraction of the short side) and shape (``aspect``), random
flips and blob masks of random coverage, all drawn from the manifest's seed, so a
sample is a pure function of the seed and its row.

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

import logging
import shutil
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import ConfigError, InputError
from ..io import atomic_path, read_mask, staged_folder, write_csv
from .crop import list_images
from .scenes import (check_fractions, list_scenes, paired_scenes, read_groups, read_splits,
                     split_scenes)

__all__ = [
    "TRAIN_COLUMNS",
    "TEST_COLUMNS",
    "read_test_csv",
    "write_train_manifest",
    "random_blob_mask",
    "make_test_composites",
    "make_cross_composites",
    "build_composites",
]

log = logging.getLogger(__name__)

TRAIN_COLUMNS = ("scene", "obj_image", "bg_image", "crop_y", "crop_x", "crop_h", "crop_w",
                 "flip", "coverage", "seed")
TEST_COLUMNS = ("id", "scene", "src", "dst", "mask", "gt", "height", "width", "coverage")
CROSS_COLUMNS = ("id", "scene", "src_scene", "src", "dst", "mask", "height", "width",
                 "coverage")


def _check_geometry(image_size, ratio) -> None:
    if image_size < 2 or not 0 < ratio <= 1:
        raise ConfigError(f"need image_size >= 2 and 0 < ratio <= 1, got {image_size}, {ratio}")


def _check_sampling(scale, aspect, flip, coverage) -> tuple[float, float]:
    """Validate the training-sample options; returns the scale range."""
    lo, hi = (float(v) for v in scale)
    if not 0 < lo <= hi <= 1:
        raise ConfigError(f"scale range must satisfy 0 < lo <= hi <= 1, got {scale}")
    if not 1 <= aspect <= 4:
        raise ConfigError(f"aspect must be in [1, 4], got {aspect}")
    if not 0 <= flip <= 1:
        raise ConfigError(f"flip must be a probability in [0, 1], got {flip}")
    if coverage is not None:
        c_lo, c_hi = (float(v) for v in coverage)
        if not 0 < c_lo <= c_hi < 1:
            raise ConfigError(f"coverage range must satisfy 0 < lo <= hi < 1, got {coverage}")
    return lo, hi


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


def _scene_shape(root: Path, rel: str) -> tuple[int, int]:
    with Image.open(root / rel) as im:
        return im.size[1], im.size[0]


def write_train_manifest(scenes_root, scenes, n_samples: int, out_csv, *, seed: int,
                         image_size: int = 64, ratio: float = 0.5,
                         scale: tuple[float, float] = (1.0, 1.0), aspect: float = 1.0,
                         flip: float = 0.0, coverage: tuple[float, float] | None = None,
                         on_error: str = "fail") -> Path:
    """Write a training/validation manifest of ``n_samples`` composites.

    Each row: a scene drawn uniformly from ``scenes``, two different images of it
    (object, scene/bg), a crop box, a flip and a mask (module docstring).

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
        Side of the samples (64 in the paper); boxes are at least this many pixels on
        their short side unless the image is smaller.
    ratio : float
        Centre square side as a fraction of ``image_size`` (``coverage=None``);
        validated here, applied by the dataset.
    scale : (float, float)
        Range of the box's short side as a fraction of the image's short side, drawn
        uniformly. ``(1, 1)``: the reference's short-side square.
    aspect : float
        Boxes have a long/short ratio drawn uniformly in ``[1, aspect]``, long side
        horizontal or vertical with equal odds (clipped to the image).
    flip : float
        Probability of a horizontal flip.
    coverage : (float, float), optional
        Blob masks covering a fraction drawn uniformly from this range; ``None`` for
        the reference's centre square.
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
    lo, hi = _check_sampling(scale, aspect, flip, coverage)
    root = Path(scenes_root)
    index, names = paired_scenes(root, scenes, on_error, "scene with two images for "
                                  "training pairs")
    rng = np.random.default_rng(seed)
    which = rng.integers(0, len(names), size=n_samples)
    obj = np.empty(n_samples, dtype=object)
    bg = np.empty(n_samples, dtype=object)
    box = np.zeros((n_samples, 4), dtype=np.int64)
    for k, scene in enumerate(names):
        rows = np.flatnonzero(which == k)
        if rows.size == 0:
            continue
        imgs = index[scene]
        i = rng.integers(0, len(imgs), size=rows.size)
        j = rng.integers(0, len(imgs) - 1, size=rows.size)
        j = j + (j >= i)
        H, W = _scene_shape(root, imgs[0])
        short = rng.uniform(lo, hi, size=rows.size) * min(H, W)
        short = np.maximum(short, min(image_size, H, W))
        long_ = short * rng.uniform(1.0, aspect, size=rows.size)
        tall = rng.random(rows.size) < 0.5
        bh = np.minimum(np.where(tall, long_, short), H).round().astype(np.int64)
        bw = np.minimum(np.where(tall, short, long_), W).round().astype(np.int64)
        box[rows, 0] = np.floor(rng.random(rows.size) * (H - bh + 1)).astype(np.int64)
        box[rows, 1] = np.floor(rng.random(rows.size) * (W - bw + 1)).astype(np.int64)
        box[rows, 2], box[rows, 3] = bh, bw
        arr = np.array(imgs, dtype=object)
        obj[rows], bg[rows] = arr[i], arr[j]
    flips = (rng.random(n_samples) < flip).astype(np.int64)
    cover = np.zeros(n_samples) if coverage is None else rng.uniform(*coverage, n_samples)
    seeds = rng.integers(0, 2**31 - 1, size=n_samples)
    rows = zip((names[k] for k in which), obj, bg, *box.T.tolist(), flips.tolist(),
               (f"{c:.4f}" if c else "0" for c in cover), seeds.tolist())
    return write_csv(out_csv, TRAIN_COLUMNS, rows)


@lru_cache(maxsize=16)
def _pixel_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices ``(height, width)`` as float32 (read-only; the training
    masks are all one size, so building them once per size saves ~10 % of a mask)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    yy.flags.writeable = xx.flags.writeable = False
    return yy, xx


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
    yy, xx = _pixel_grid(height, width)
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
                         masks_root=None, on_error: str = "fail",
                         csv_name: str = "test.csv") -> Path:
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
    csv_name : str
        Name of the table (``test.csv``; the validation composites use another).

    Returns
    -------
    pathlib.Path
        Path of the table.
    """
    if n < 1:
        raise ConfigError(f"n must be >= 1, got {n}")
    lo, hi = _check_test_options(coverage, max_size, masks_root)
    root = Path(scenes_root)
    out_dir = Path(out_dir)
    index, names = paired_scenes(root, scenes, on_error, "test scene with two images")
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
    return write_csv(out_dir / csv_name, TEST_COLUMNS, rows)


def _remove_stale_composites(out_dir: Path, n: int) -> None:
    """Remove test composites of an earlier run with a larger n (idempotent output)."""
    for p in out_dir.iterdir():
        if p.is_dir() and p.name.isdigit() and len(p.name) == 4 and int(p.name) >= n:
            shutil.rmtree(p)


def make_cross_composites(scenes_root, splits_csv, out_dir, *, n: int, seed: int,
                          splits=("test",), groups=None, coverage=(0.05, 0.4),
                          csv_name: str = "cross.csv") -> Path:
    """Write ``n`` cross-scene composites (no ground truth) and their table.

    An object (a random blob region, :func:`random_blob_mask`) of an image of one scene
    of ``splits`` is pasted into an image of another scene of ``splits`` whose
    photograph group differs (another place): the case users have, which has no
    ground truth, scored by the realism judge (:mod:`gpgan.realism`). Destination
    scenes are visited round-robin in a seeded order; the source image is resized to
    cover the destination (scale to cover, centre crop) and the region is taken at
    the mask's place. Writes ``<out_dir>/<id>/{src,dst,mask}.png`` and
    ``<out_dir>/<csv_name>`` (columns :data:`CROSS_COLUMNS`, paths relative to
    ``out_dir``); :func:`read_test_csv` reads it with ``ground_truth=False``.

    Parameters
    ----------
    scenes_root : path-like
        Root of the scene folders.
    splits_csv : path-like
        ``scene,split`` table (:func:`build_composites`).
    splits : sequence of str
        The splits whose scenes are used (default: the test split alone).
    groups : path-like or dict, optional
        Scene -> group (:func:`gpgan.data.scenes.read_groups`); default: each scene
        its own group.
    coverage : (float, float)
        Range of the mask's coverage of the destination.
    """
    from .realism import fit_to

    if n < 1:
        raise ConfigError(f"n must be >= 1, got {n}")
    lo, hi = _check_test_options(coverage, None, None)
    table = read_splits(splits_csv)
    if groups is not None:
        groups = read_groups(groups)
    root = Path(scenes_root)
    chosen = [s for s, k in table.items() if k in splits]
    index = list_scenes(root, chosen, min_images=1, decode=False) if chosen else {}
    names = sorted(index)
    group = {s: (groups or {}).get(s, s) for s in names}
    if len({group[s] for s in names}) < 2:
        raise InputError(f"{splits_csv}: cross-scene composites need scenes of two photograph "
                         f"groups in split(s) {', '.join(splits)}, got {len(names)} scene(s) "
                         f"of {len(set(group.values()))} group(s)")
    rng = np.random.default_rng(seed)
    order = [names[i] for i in rng.permutation(len(names))]
    out_dir = Path(out_dir)
    rows = []
    with staged_folder(out_dir) as work:
        for i in range(n):
            scene = order[i % len(order)]
            others = [s for s in names if group[s] != group[scene]]
            other = others[int(rng.integers(len(others)))]
            dst = np.asarray(_load_rgb(root / index[scene][int(rng.integers(len(index[scene])))]))
            src = np.asarray(_load_rgb(root / index[other][int(rng.integers(len(index[other])))]))
            h, w = dst.shape[:2]
            src = fit_to(src, h, w)
            m = random_blob_mask(h, w, float(rng.uniform(lo, hi)),
                                 np.random.default_rng(int(rng.integers(0, 2**31 - 1))))
            cid = f"{i:04d}"
            (work / cid).mkdir()
            for name, arr in (("src", src), ("dst", dst), ("mask", (m * 255).astype(np.uint8))):
                with atomic_path(work / cid / f"{name}.png") as tmp:
                    Image.fromarray(arr).save(tmp, format="PNG")
            rows.append((cid, scene, other, f"{cid}/src.png", f"{cid}/dst.png",
                         f"{cid}/mask.png", h, w, f"{float(m.mean()):.6f}"))
        write_csv(work / csv_name, CROSS_COLUMNS, rows)
    _remove_stale_composites(out_dir, n)
    return out_dir / csv_name


def read_test_csv(test_csv, *, ground_truth: bool = True):
    """Read ``test.csv`` (or ``cross.csv``) and resolve its image paths against its folder.

    With ``ground_truth=False`` the ``gt`` column is optional (cross-scene composites
    have none: :func:`make_cross_composites`).

    Returns
    -------
    pandas.DataFrame
        With ``src, dst, mask`` (and ``gt`` if present) as absolute paths and ``id``
        as str.
    """
    import pandas as pd

    test_csv = Path(test_csv)
    if not test_csv.is_file():
        raise InputError(f"{test_csv}: no such file")
    df = pd.read_csv(test_csv, dtype={"id": str, "scene": str})
    required = [c for c in TEST_COLUMNS if ground_truth or c != "gt"]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise InputError(f"{test_csv}: missing column(s) {missing}")
    if df.empty:
        raise InputError(f"{test_csv}: no test composites")
    if df["id"].duplicated().any():
        raise InputError(f"{test_csv}: duplicate id {df['id'][df['id'].duplicated()].iloc[0]!r}")
    root = test_csv.resolve().parent
    for col in ("src", "dst", "mask", "gt"):
        if col in df.columns:
            df[col] = [str(root / p) for p in df[col]]
    return df


def build_composites(scenes_root, out_dir, *, seed: int = 0, fractions=None,
                     n_train: int = 150_000, n_val: int = 2_000, n_test: int = 50,
                     n_val_blends: int = 0, image_size: int = 64, ratio: float = 0.5,
                     coverage=(0.05, 0.4), train_masks: str = "centre",
                     scale=(1.0, 1.0), aspect: float = 1.0, flip: float = 0.0,
                     max_size: int | None = None, masks_root=None, groups=None,
                     on_error: str = "fail") -> dict[str, Path]:
    """All composite outputs of one run: splits, train/val manifests, test composites.

    Writes ``<out_dir>/splits.csv`` (``scene,split``), ``train.csv`` and ``val.csv``
    (:func:`write_train_manifest`; a split with fraction 0 or count 0 gets no file),
    the full-size test composites with ``test.csv`` (:func:`make_test_composites`) in
    ``out_dir`` and, with ``n_val_blends > 0``, full-size validation composites in
    ``<out_dir>/validation/`` with ``validation.csv`` (checkpoint selection blends
    them). Sub-seeds are derived from ``seed`` so that the parts are independent.

    ``groups`` (``{scene: group}`` or a CSV path for :func:`read_groups`) keeps the
    scenes of one group (one photograph, one place) in one split (:func:`split_scenes`).
    Training samples: ``train_masks`` is ``"centre"`` (the reference's square of side
    ``ratio``) or ``"blob"`` (random blobs of ``coverage``); ``scale``, ``aspect`` and
    ``flip`` vary the crop (:func:`write_train_manifest`). Test and validation
    composites use blob masks of ``coverage``.

    Every count (``>= 0``), range and path is checked before anything is written, and
    so is that each split with a positive fraction and count gets at least one scene
    (one scene cannot make a validation or test split). Everything is written into a
    temporary sibling folder first and moved into ``out_dir`` at the end, so a run
    that fails leaves ``out_dir`` as it was.

    Returns
    -------
    dict
        ``{"splits", "train", "val", "test", "validation"}`` -> path, for the files
        written.
    """
    fractions = check_fractions(fractions)
    counts = {"train": n_train, "val": n_val, "test": n_test}
    for name, count in {**counts, "val_blends": n_val_blends}.items():
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
            raise ConfigError(f"n_{name} must be an integer >= 0, got {count!r}")
    _check_geometry(image_size, ratio)
    _check_test_options(coverage, max_size, masks_root)
    if train_masks not in ("centre", "blob"):
        raise ConfigError(f"train_masks must be 'centre' or 'blob', got {train_masks!r}")
    sampling = dict(scale=tuple(scale), aspect=float(aspect), flip=float(flip),
                    coverage=tuple(coverage) if train_masks == "blob" else None)
    _check_sampling(**sampling)
    if groups is not None:
        groups = read_groups(groups)
    index = list_scenes(scenes_root, on_error=on_error)
    splits = split_scenes(index, fractions, seed, groups=groups)
    wanted = [k for k in counts if fractions.get(k, 0) > 0 and counts[k] > 0]
    if n_val_blends > 0 and "val" not in wanted and fractions.get("val", 0) > 0:
        wanted.append("val")
    for name in wanted:
        if not splits.get(name):
            raise ConfigError(
                f"{scenes_root}: {len(index)} usable scene(s) leave the {name} split "
                f"(fraction {fractions[name]:g}) empty: need at least {len(wanted)} "
                f"scenes, or set its fraction (or n_{name}) to 0")
    out_dir = Path(out_dir)
    with staged_folder(out_dir) as work:
        seeds = np.random.SeedSequence(seed).generate_state(4)
        written = {"splits": write_csv(work / "splits.csv", ("scene", "split"),
                                       [(s, k) for k, v in splits.items() for s in v])}
        for k, name in enumerate(("train", "val")):
            if name in wanted and counts[name] > 0:
                written[name] = write_train_manifest(
                    scenes_root, {s: index[s] for s in splits[name]}, counts[name],
                    work / f"{name}.csv", seed=int(seeds[k]), image_size=image_size,
                    ratio=ratio, **sampling)
        if "test" in wanted:
            written["test"] = make_test_composites(
                scenes_root, {s: index[s] for s in splits["test"]}, work, n=n_test,
                seed=int(seeds[2]), coverage=coverage, max_size=max_size,
                masks_root=masks_root)
        if n_val_blends > 0 and splits.get("val"):
            make_test_composites(
                scenes_root, {s: index[s] for s in splits["val"]}, work / "validation",
                n=n_val_blends, seed=int(seeds[3]), coverage=coverage, max_size=max_size,
                masks_root=masks_root, csv_name="validation.csv")
            written["validation"] = work / "validation"
    if "test" in wanted:
        _remove_stale_composites(out_dir, n_test)
    paths = {k: out_dir / p.name for k, p in written.items()}
    if "validation" in paths:
        paths["validation"] = out_dir / "validation" / "validation.csv"
    return paths
