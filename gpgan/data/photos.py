"""Real colour photographs fetched from a package registry, as pinned data.

The PyPI package ``mvtb-data`` (the image files of Peter Corke's Machine Vision
Toolbox for Python; MIT licence, declared by its ``License :: OSI Approved :: MIT
License`` classifier; the wheel carries no separate licence file) holds about 50 real
colour photographs under ``mvtbdata/images/``. :func:`fetch_mvtb_photos` takes them
from the wheel of one exact version whose SHA-256 is recorded here
(:data:`MVTB_SHA256`); nothing is imported from the package and it is not a
dependency of :mod:`gpgan`: the wheel is only read as a zip file.

The wheel is obtained with ``pip download`` through whatever package index pip is
configured with (a mirror, an offline index, or pypi.org), or from a local file
(``wheel=``), so it works offline wherever a wheel or an index is at hand.

Which photographs (:data:`MVTB_PHOTOS`, 57 of them in 26 groups): every real colour
photograph; left out are the grey images (``building2-1/2``, ``castle*``, ``street``,
``penguins``, ``calibration/``, ``seq/``, ``mosaic/aerial2-*``, ...), calibration and
fiducial targets (``fisheye_target``, ``yellowtargets``, ``arucoboard``,
``apriltag12``, ``tags``), drawings and illusions (``adelson``, ``wheres-wally``,
``sharks``, ...), the painting (``monalisa``), the studio shot ``greenscreen``,
``lab-scene`` (fiducial tags in view) and ``church.jpg`` (the same photograph as
``church.png``).

A **group** gathers photographs of one place (a stereo pair, a sequence that revisits
a building, two views of one flower bed, overlapping aerial views) so that a split by
group keeps any piece of a scene out of two splits. The ``campus`` sequence is a walk
past four buildings; its 25 frames are grouped by the building they show (frames that
overlap share a group), not one group per frame.

Output layout (``out_dir``)::

    photos.csv               name,file,group,source,width,height (one row per photo)
    PROVENANCE.txt           package, version, wheel, SHA-256, licence, max_side
    <group>/<name>.png       8-bit RGB PNG

Conversion of every photograph: EXIF orientation applied
(:func:`PIL.ImageOps.exif_transpose`); an alpha channel is flattened by compositing
over white (the RGBA photographs of this wheel are fully opaque, so this changes no
pixel); optionally down-scaled with Lanczos (in sRGB values, as Pillow does) so that
the long side is at most ``max_side`` (never up-scaled).
"""

from __future__ import annotations

import csv
import logging
import os
import secrets
import shutil
import subprocess
import sys
import urllib.parse
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import DownloadError, InputError
from .download import sha256_file

__all__ = [
    "MVTB_PACKAGE",
    "MVTB_VERSION",
    "MVTB_WHEEL",
    "MVTB_SHA256",
    "MVTB_IMAGES",
    "MVTB_LICENSE",
    "MVTB_PHOTOS",
    "PHOTO_COLUMNS",
    "Photo",
    "fetch_command",
    "fetch_mvtb_photos",
    "read_photo_table",
]

log = logging.getLogger(__name__)

MVTB_PACKAGE = "mvtb-data"
MVTB_VERSION = "1.6.1"
MVTB_WHEEL = "mvtb_data-1.6.1-py3-none-any.whl"
#: SHA-256 of :data:`MVTB_WHEEL` as served by PyPI (130,050,552 bytes).
MVTB_SHA256 = "0ca9c30e100fa272421068a167ea6529085ff8f4afdca72e5fad681c52cabdbf"
#: Folder of the photographs inside the wheel.
MVTB_IMAGES = "mvtbdata/images/"
MVTB_LICENSE = "MIT (wheel METADATA classifier 'License :: OSI Approved :: MIT License')"

#: Columns of ``photos.csv``; a table of other photographs with these columns can be
#: concatenated with it.
PHOTO_COLUMNS = ("name", "file", "group", "source", "width", "height")


class Photo(NamedTuple):
    """One photograph: unique ``name``, ``path`` under :data:`MVTB_IMAGES`, ``group``."""

    name: str
    path: str
    group: str


def _p(path: str, group: str | None = None) -> Photo:
    name = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return Photo(name, path, group or name)


_CAMPUS = {  # frame number -> building it shows (overlapping frames share a group)
    "campus-a": (491, 492, 493, 494),
    "campus-b": (495, 496, 497, 498, 499, 500, 501, 502, 503, 504, 505),
    "campus-c": (506, 507, 508, 509, 510, 514),
    "campus-d": (511, 512, 513, 515),
}
_CAMPUS_HOLDOUT = {492, 502, 508, 511, 513}  # the wheel keeps these under campus/holdout/

#: The real colour photographs of the wheel, in a fixed order.
MVTB_PHOTOS: tuple[Photo, ...] = (
    _p("58060.png"),
    _p("butterfly.jpg"),
    _p("building2-3.png", "building2"),
    *(
        _p(f"campus/{'holdout/' if k in _CAMPUS_HOLDOUT else ''}P1070{k}.png", group)
        for group, frames in _CAMPUS.items()
        for k in frames
    ),
    _p("church.png"),
    _p("eiffel-1.png", "eiffel"),
    _p("eiffel-2.png", "eiffel"),
    _p("flowers1.png", "flowers-1-8"),  # one tulip bed; flowers8 is a closer view
    *(_p(f"flowers{k}.png") for k in range(2, 8)),
    _p("flowers8.png", "flowers-1-8"),
    _p("flowers9.png"),
    _p("image3.jpg"),
    _p("notre-dame.png"),
    _p("parks.png"),
    _p("road.png"),
    _p("rocks2-l.png", "rocks2"),
    _p("rocks2-r.png", "rocks2"),
    _p("roof.png"),
    *(_p(f"tomato_{k}.png", "tomato") for k in (124, 14, 35, 54)),
    _p("walls-l.png", "walls"),
    _p("walls-r.png", "walls"),
    *(_p(f"mosaic/aerial-{k:02d}.png", "aerial") for k in (8, 9, 10)),
    _p("mosaic/aerialphoto.png", "aerial"),  # the same airport and coast from higher up
)


def fetch_command(dest: str = "DIR") -> str:
    """The command that fetches the pinned wheel where a package index is reachable."""
    return f"pip download {MVTB_PACKAGE}=={MVTB_VERSION} --no-deps -d {dest}"


def _redacted(url: str) -> str:
    """``url`` without a password (``https://user:secret@host`` -> ``https://user:***@host``)."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _pip_download(dest: Path, index_url: str | None) -> Path:
    """``pip download`` the pinned wheel into ``dest``; return its path.

    Without ``index_url`` pip uses its configuration (indexes, find-links, mirrors).
    With it, only that index is searched: pip's configuration files and the
    ``PIP_INDEX_URL``/``PIP_EXTRA_INDEX_URL``/``PIP_FIND_LINKS``/``PIP_NO_INDEX``
    variables are ignored, its other settings (``PIP_CERT``, proxies) stay.
    """
    cmd = [sys.executable, "-m", "pip", "download", f"{MVTB_PACKAGE}=={MVTB_VERSION}",
           "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
           "--no-input", "-d", str(dest)]
    env = None
    if index_url:
        cmd += ["--index-url", index_url]
        env = {k: v for k, v in os.environ.items()
               if k not in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS",
                            "PIP_NO_INDEX", "PIP_CONFIG_FILE")}
        env["PIP_CONFIG_FILE"] = os.devnull
    where = f"from {_redacted(index_url)}" if index_url else "through pip's configured index"
    log.info("fetching %s==%s %s", MVTB_PACKAGE, MVTB_VERSION, where)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    except OSError as exc:
        reason = str(exc)
    else:
        wheel = dest / MVTB_WHEEL
        if proc.returncode == 0 and wheel.is_file():
            return wheel
        lines = [ln.strip() for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        errors = [ln[len("ERROR: "):] for ln in lines if ln.startswith("ERROR: ")]
        if proc.returncode == 0:
            reason = f"pip did not save {MVTB_WHEEL}"
        else:
            reason = (errors or lines or [f"pip exited with status {proc.returncode}"])[0]
        log.info("pip said:\n%s", proc.stderr)
    raise DownloadError(
        f"cannot fetch {MVTB_PACKAGE}=={MVTB_VERSION} {where} ({reason}); fetch it where a "
        f"package index is reachable with `{fetch_command()}` and pass the wheel with "
        f"--wheel DIR/{MVTB_WHEEL} (workflow: dataset.demo.mvtb.wheel)")


def _to_rgb(im: Image.Image, what: str) -> Image.Image:
    """EXIF-orient, flatten alpha over white, convert to 8-bit RGB; refuse grey."""
    im = ImageOps.exif_transpose(im)
    if im.mode not in ("RGB", "RGBA", "P", "CMYK", "YCbCr", "LAB", "HSV"):
        raise InputError(f"{what}: mode {im.mode} is not a colour photograph")
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode == "RGBA":
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, im)
    im = im.convert("RGB")
    a = np.asarray(im)
    if not (np.any(a[..., 0] != a[..., 1]) or np.any(a[..., 1] != a[..., 2])):
        raise InputError(f"{what}: grey pixels only, not a colour photograph")
    return im


def _scaled(im: Image.Image, max_side: int | None) -> Image.Image:
    w, h = im.size
    if not max_side or max(w, h) <= max_side:
        return im
    s = max_side / max(w, h)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return im.resize(size, Image.Resampling.LANCZOS)


def _check_photos(photos) -> tuple[Photo, ...]:
    photos = tuple(Photo(*p) for p in photos)
    names = [p.name for p in photos]
    if not photos or len(set(names)) != len(names):
        raise InputError("photos: need at least one photo and unique names")
    for p in photos:
        for part in (p.name, p.group):
            if not part or "/" in part or "\\" in part or part.startswith("."):
                raise InputError(f"photo {p.name!r}: bad name or group {part!r}")
    return photos


def _extract(wheel: Path, build: Path, photos, max_side: int | None) -> list[dict]:
    try:
        zf = zipfile.ZipFile(wheel)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DownloadError(f"{wheel}: not a readable wheel ({exc})") from None
    rows = []
    with zf:
        members = set(zf.namelist())
        for p in photos:
            member = MVTB_IMAGES + p.path
            if member not in members:
                raise DownloadError(f"{wheel.name}: has no {member}")
            try:
                with zf.open(member) as f, Image.open(f) as im:
                    im.load()
                    rgb = _scaled(_to_rgb(im, member), max_side)
            except (UnidentifiedImageError, OSError, zipfile.BadZipFile) as exc:
                raise DownloadError(f"{wheel.name}: {member} is not a readable image "
                                    f"({exc})") from None
            rel = f"{p.group}/{p.name}.png"
            (build / p.group).mkdir(exist_ok=True)
            rgb.save(build / rel, format="PNG")
            rows.append({"name": p.name, "file": rel, "group": p.group,
                         "source": f"{MVTB_PACKAGE}=={MVTB_VERSION}:{member}",
                         "width": rgb.width, "height": rgb.height})
            log.info("%s -> %s (%d x %d)", member, rel, rgb.width, rgb.height)
    return rows


def _install(build: Path, out_dir: Path) -> None:
    """Rename the finished ``build`` folder to ``out_dir``, replacing an old one."""
    if not out_dir.exists():
        os.replace(build, out_dir)
        return
    old = out_dir.with_name(f".{out_dir.name}.{secrets.token_hex(4)}.old")
    os.replace(out_dir, old)
    os.replace(build, out_dir)
    shutil.rmtree(old)


def fetch_mvtb_photos(out_dir, *, wheel=None, index_url: str | None = None,
                      sha256: str = MVTB_SHA256, max_side: int | None = None,
                      photos=MVTB_PHOTOS) -> Path:
    """Fetch the pinned ``mvtb-data`` wheel and extract its photographs as RGB PNG.

    Parameters
    ----------
    out_dir : path-like
        Folder to create (an existing one is replaced as a whole, only on success).
        Layout: ``photos.csv``, ``PROVENANCE.txt``, ``<group>/<name>.png``.
    wheel : path-like, optional
        A local copy of :data:`MVTB_WHEEL` (the offline path). Default: fetch it with
        ``python -m pip download mvtb-data==1.6.1 --no-deps --only-binary=:all:``
        through pip's configured index; the wheel is deleted after extraction.
    index_url : str, optional
        Search only this package index (PEP 503 "simple" URL, ``file://`` allowed)
        instead of pip's configured ones.
    sha256 : str
        Expected SHA-256 of the wheel (64 hex digits); checked before anything is read.
    max_side : int, optional
        Down-scale (Lanczos) so that the long side is at most this many pixels.
    photos : sequence of :class:`Photo`
        Which photographs to take (default :data:`MVTB_PHOTOS`); names must be unique.

    Returns
    -------
    pathlib.Path
        ``out_dir``.

    Raises
    ------
    gpgan.errors.DownloadError
        The wheel cannot be fetched (the message names the package, its version and the
        command that fetches it), its checksum differs, or a listed photo is missing or
        unreadable. Nothing is left behind: the work happens in a hidden folder beside
        ``out_dir`` that is renamed into place only when everything succeeded.
    gpgan.errors.InputError
        Bad arguments: no such wheel file, a bad ``max_side`` or ``photos`` list, a
        listed image that is not in colour.
    """
    out_dir = Path(out_dir)
    photos = _check_photos(photos)
    if max_side is not None and (isinstance(max_side, bool) or int(max_side) != max_side
                                 or max_side < 1):
        raise InputError(f"max_side must be a positive integer or None, got {max_side!r}")
    expected = str(sha256).strip().lower()
    if len(expected) != 64 or any(c not in "0123456789abcdef" for c in expected):
        raise InputError(f"sha256 {sha256!r} is not 64 hexadecimal digits")
    if wheel is not None:
        wheel = Path(wheel)
        if not wheel.is_file():
            raise InputError(f"{wheel}: no such wheel file (expected {MVTB_WHEEL}; "
                             f"fetch it with `{fetch_command()}`)")
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir}: exists and is not a folder")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    build = out_dir.with_name(f".{out_dir.name}.{secrets.token_hex(4)}.part")
    build.mkdir()  # not mkdtemp: its mode 0700 would become out_dir's
    try:
        if wheel is None:
            download = build / ".download"
            download.mkdir()
            wheel = _pip_download(download, index_url)
        got = sha256_file(wheel)
        if got != expected:
            raise DownloadError(f"{wheel.name}: sha256 mismatch (expected {expected}, got "
                                f"{got}); not the pinned {MVTB_PACKAGE}=={MVTB_VERSION} wheel")
        rows = _extract(wheel, build, photos, max_side)
        shutil.rmtree(build / ".download", ignore_errors=True)
        with open(build / "photos.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=PHOTO_COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        groups = len({r["group"] for r in rows})
        (build / "PROVENANCE.txt").write_text(
            f"package: {MVTB_PACKAGE}=={MVTB_VERSION}\nwheel: {MVTB_WHEEL}\n"
            f"sha256: {got}\nlicence: {MVTB_LICENSE}\n"
            f"photos: {len(rows)} in {groups} groups, from {MVTB_IMAGES}\n"
            f"max_side: {max_side}\nconversion: EXIF orientation applied, alpha over "
            f"white, 8-bit RGB PNG, Lanczos down-scaling\n")
        _install(build, out_dir)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    log.info("wrote %d photos in %d groups to %s", len(rows), groups, out_dir)
    return out_dir


def read_photo_table(path) -> list[dict]:
    """Read a ``photos.csv`` (a file, or the folder holding it).

    Returns one dict per row with the :data:`PHOTO_COLUMNS` keys, ``width`` and
    ``height`` as ints and ``file`` as a :class:`~pathlib.Path` resolved against the
    table's folder. Raises :class:`InputError` for a missing file or wrong columns.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "photos.csv"
    if not path.is_file():
        raise InputError(f"{path}: no such photo table")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != PHOTO_COLUMNS:
            raise InputError(f"{path}: columns {reader.fieldnames}, expected "
                             f"{','.join(PHOTO_COLUMNS)}")
        rows = []
        for i, row in enumerate(reader, start=2):
            try:
                row["width"], row["height"] = int(row["width"]), int(row["height"])
            except ValueError:
                raise InputError(f"{path}:{i}: width/height are not integers") from None
            row["file"] = path.parent / row["file"]
            rows.append(row)
    return rows
