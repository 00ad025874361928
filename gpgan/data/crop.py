"""Per-scene cropping of aligned webcam images (the reference ``crop_aligned_images.py``).

Bounding-box file format (one scene per line)::

    # comment lines and blank lines are ignored
    <scene>:<sx>,<sy>,<ex>,<ey>

``sx..ex`` are **rows** and ``sy..ey`` are **columns**, in pixels, zero-based, with the
end **exclusive**: the crop is ``image[sx:ex, sy:ey]``. This is exactly the slice the
reference implementation applies, so the published ``bbox.txt`` of the Transient
Attributes scenes (e.g. ``00017658:4,8,473,633``) reproduces the reference crops.
A box must satisfy ``0 <= sx < ex <= H`` and ``0 <= sy < ey <= W`` for every image
of its scene; a box that does not fit is an error, never silently clipped.

Scene names are folder names under the data root (no ``:``, no path separators).
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import InputError
from ..io import atomic_path, move_contents

__all__ = ["read_bbox", "crop_dataset", "CropSummary", "IMAGE_EXTS", "list_images"]

log = logging.getLogger(__name__)

#: File extensions treated as images when scanning a scene folder.
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".ppm")

_LINE = re.compile(r"^\s*([^:\s/\\][^:/\\]*?)\s*:\s*(-?\d+)\s*,\s*(-?\d+)\s*,\s*(-?\d+)\s*,"
                   r"\s*(-?\d+)\s*$")


def _read_bbox_lines(path) -> dict[str, tuple[tuple[int, int, int, int], int]]:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such bounding-box file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read bounding-box file ({exc.__class__.__name__})") \
            from None
    boxes: dict[str, tuple[tuple[int, int, int, int], int]] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if not m:
            raise InputError(f"{path}:{lineno}: expected 'scene:sx,sy,ex,ey' with integers, "
                             f"got {line[:60]!r}")
        scene = m.group(1)
        sx, sy, ex, ey = (int(m.group(i)) for i in range(2, 6))
        if min(sx, sy) < 0 or ex <= sx or ey <= sy:
            raise InputError(f"{path}:{lineno}: box {sx},{sy},{ex},{ey} of scene {scene!r} "
                             f"is empty or negative (need 0 <= sx < ex, 0 <= sy < ey)")
        if scene in boxes:
            raise InputError(f"{path}:{lineno}: scene {scene!r} already has a box on line "
                             f"{boxes[scene][1]}")
        boxes[scene] = ((sx, sy, ex, ey), lineno)
    return boxes


def read_bbox(path) -> dict[str, tuple[int, int, int, int]]:
    """Read a per-scene bounding-box file.

    Parameters
    ----------
    path : path-like
        Text file of lines ``scene:sx,sy,ex,ey`` (see the module docstring); blank
        lines and lines starting with ``#`` are ignored.

    Returns
    -------
    dict
        ``{scene: (sx, sy, ex, ey)}``: rows ``sx:ex`` and columns ``sy:ey``, end
        exclusive (``image[sx:ex, sy:ey]``).

    Raises
    ------
    gpgan.errors.InputError
        Missing file, malformed line, empty/negative box or duplicate scene; the
        message names the file and the line number (``bbox.txt:7: ...``).
    """
    return {scene: box for scene, (box, _) in _read_bbox_lines(path).items()}


def list_images(folder) -> list[Path]:
    """Image files (by extension, see :data:`IMAGE_EXTS`) directly in ``folder``, sorted."""
    return sorted(p for p in Path(folder).iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_EXTS and not p.name.startswith("."))


def _load_uint8(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode not in ("RGB", "L"):
                im = im.convert("RGB")
            return np.asarray(im)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise InputError(f"{path}: not a readable image ({exc.__class__.__name__})") from None


@dataclass
class CropSummary:
    """What :func:`crop_dataset` did (all lists sorted)."""

    scenes: list[str] = field(default_factory=list)          #: scenes written
    cropped: list[str] = field(default_factory=list)         #: scenes with a box
    uncropped: list[str] = field(default_factory=list)       #: scenes kept whole (no box)
    missing: list[str] = field(default_factory=list)         #: boxes without a scene folder
    skipped: list[str] = field(default_factory=list)         #: unreadable images (paths)
    images: int = 0                                          #: images written

    def as_dict(self) -> dict:
        return dict(scenes=self.scenes, cropped=self.cropped, uncropped=self.uncropped,
                    missing=self.missing, skipped=self.skipped, images=self.images)


def crop_dataset(data_path, bbox_path, output_dir, *, on_error: str = "fail") -> CropSummary:
    """Crop every image of every scene folder with its scene's box.

    Parameters
    ----------
    data_path : path-like
        Folder of scene folders (``imageAlignedLD/<scene>/*.jpg``).
    bbox_path : path-like or None
        Bounding-box file (see :func:`read_bbox`); ``None`` keeps all images whole.
    output_dir : path-like
        Written as ``<output_dir>/<scene>/<stem>.png`` (lossless, 8-bit RGB or grey,
        pixels copied exactly). Every box is checked against every image's size (from
        the file headers) before anything is written; the images are written into a
        temporary sibling folder and moved into ``output_dir`` once all are done, so
        a failure leaves ``output_dir`` as it was. Re-running replaces each scene
        folder with identical bytes.
    on_error : {"fail", "skip"}
        What to do with an unreadable/corrupt image: raise :class:`InputError` with its
        path, or log a warning with its path and leave it out.

    Returns
    -------
    CropSummary
        Scenes written, which of them were cropped / kept whole (each kept-whole
        scene is logged), boxes whose scene folder is missing (logged), skipped
        images and the number of images written.

    Raises
    ------
    gpgan.errors.InputError
        Missing data folder, bad bbox file (file:line), a box that does not fit an
        image (file:line, image path and size), unreadable image with
        ``on_error="fail"``.
    """
    if on_error not in ("fail", "skip"):
        raise InputError(f"on_error must be 'fail' or 'skip', not {on_error!r}")
    data_path = Path(data_path)
    output_dir = Path(output_dir)
    if not data_path.is_dir():
        raise InputError(f"{data_path}: no such data folder")
    boxes = _read_bbox_lines(bbox_path) if bbox_path is not None else {}
    scene_dirs = sorted(p for p in data_path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not scene_dirs:
        raise InputError(f"{data_path}: no scene folders inside")
    for sdir in scene_dirs:  # every box must fit before anything is written
        if sdir.name in boxes:
            _check_box_fits(sdir, boxes[sdir.name], bbox_path)
    summary = CropSummary()
    present = {p.name for p in scene_dirs}
    summary.missing = sorted(set(boxes) - present)
    for scene in summary.missing:
        log.warning("%s:%d: scene %r has a box but no folder in %s", bbox_path,
                    boxes[scene][1], scene, data_path)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.", suffix=".partial",
                                 dir=output_dir.parent))
    try:
        _crop_scenes(scene_dirs, boxes, work, on_error, summary)
        move_contents(work, output_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return summary


def _check_box_fits(sdir: Path, entry, bbox_path) -> None:
    """Raise (file:line) if the box does not fit an image of the scene (header sizes;
    unreadable files are left to the crop itself)."""
    (sx, sy, ex, ey), lineno = entry
    for img_path in list_images(sdir):
        try:
            with Image.open(img_path) as im:
                w, h = im.size
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
            continue
        if ex > h or ey > w:
            raise InputError(f"{bbox_path}:{lineno}: box {sx},{sy},{ex},{ey} of scene "
                             f"{sdir.name!r} does not fit {img_path} ({h}x{w}, rows x cols)")


def _crop_scenes(scene_dirs, boxes, output_dir: Path, on_error: str,
                 summary: CropSummary) -> None:
    for sdir in scene_dirs:
        scene = sdir.name
        images = list_images(sdir)
        if not images:
            log.warning("%s: no images, scene skipped", sdir)
            continue
        entry = boxes.get(scene)
        if entry is None:
            log.info("scene %s: no bounding box, keeping the whole image", scene)
        written = 0
        for img_path in images:
            try:
                arr = _load_uint8(img_path)
            except InputError as exc:
                if on_error == "fail":
                    raise
                log.warning("skipping %s", exc)
                summary.skipped.append(str(img_path))
                continue
            if entry is not None:  # fits: checked by _check_box_fits
                (sx, sy, ex, ey), _ = entry
                arr = arr[sx:ex, sy:ey]
            out = output_dir / scene / (img_path.stem + ".png")
            out.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(out) as tmp:
                Image.fromarray(np.ascontiguousarray(arr)).save(tmp, format="PNG")
            written += 1
        if written:
            summary.scenes.append(scene)
            (summary.cropped if entry is not None else summary.uncropped).append(scene)
            summary.images += written
