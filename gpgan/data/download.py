"""Resumable, verified downloads and safe archive extraction.

The Transient Attributes archive is ~1.8 GB and its host is slow and flaky, so
:func:`download`

* writes to ``<dest>.part`` and resumes it with an HTTP ``Range`` request,
* retries with exponential back-off (a retry that made progress does not count),
* verifies the size and the SHA-256 before an atomic rename to ``dest``,
* records the SHA-256 beside the file (``<dest>.sha256``) when none is given, so
  the next run verifies against it.

:func:`extract_member` copies the one data file out of a zip archive (the unsupervised
GP-GAN's ``outdoor_64.zip``). :func:`extract` unpacks a tar archive with :mod:`tarfile`'s ``"data"`` filter after
checking *every* member first: absolute names, ``..`` components, links that point
out of the target and device files make it refuse the whole archive before a single
file is written. Extraction goes to a temporary sibling folder that is renamed into
place, so an interrupted run leaves nothing half-extracted.

Downloads use only the standard library (:mod:`urllib`) and :mod:`tqdm`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import socket
import tarfile
import time
import zipfile
import urllib.error
import urllib.request
from http.client import HTTPException
from pathlib import Path

from ..errors import DownloadError
from ..io import move_contents

__all__ = [
    "TRANSIENT_URL",
    "GPGAN_REPO",
    "GPGAN_COMMIT",
    "github_raw_url",
    "github_archive_url",
    "BBOX_URL",
    "SOURCES",
    "download",
    "extract",
    "extract_member",
    "OUTDOOR_64_URL",
    "sha256_file",
]

log = logging.getLogger(__name__)

#: Default source of the Transient Attributes aligned images (folder ``imageAlignedLD``).
TRANSIENT_URL = "http://transattr.cs.brown.edu/files/aligned_images.tar"

#: The unsupervised GP-GAN's training images (the iGAN project's 150,000 outdoor 64x64
#: scenes, ``outdoor_64.hdf5`` in a 1.4 GB zip; the URL of the original README).
OUTDOOR_64_URL = "http://efrosgans.eecs.berkeley.edu/iGAN/datasets/outdoor_64.zip"

#: The original GP-GAN repository and the commit the optional downloads are pinned to
#: (the commit that holds ``DataBase/TransientAttributes/bbox.txt``).
GPGAN_REPO = "wuhuikai/GP-GAN"
GPGAN_COMMIT = "aef2eac85c01cc8aa5074ab13bd47c7aa9448a2a"


def github_raw_url(path: str, *, repo: str = GPGAN_REPO, commit: str = GPGAN_COMMIT) -> str:
    """URL of one file of a GitHub repository at a pinned commit."""
    return f"https://raw.githubusercontent.com/{repo}/{commit}/{path.lstrip('/')}"


def github_archive_url(*, repo: str = GPGAN_REPO, commit: str = GPGAN_COMMIT) -> str:
    """URL of the ``.tar.gz`` snapshot of a GitHub repository at a pinned commit."""
    return f"https://codeload.github.com/{repo}/tar.gz/{commit}"


#: The reference per-scene crop boxes of the Transient Attributes scenes.
BBOX_URL = github_raw_url("DataBase/TransientAttributes/bbox.txt")

#: Named download sources (``gpgan download --source NAME``). ``sha256`` empty means
#: "record on first download" (see :func:`download`); sizes are not pinned.
#: ``gpgan-repo`` is the snapshot of the original repository at :data:`GPGAN_COMMIT`,
#: the carrier of its published object masks: extract the mask folder with
#: ``extract(..., strip_components=1, include=<folder>)``.
SOURCES = {
    "transient": {"url": TRANSIENT_URL, "sha256": "", "size": None},
    "bbox": {"url": BBOX_URL, "sha256": "", "size": None},
    "gpgan-repo": {"url": github_archive_url(), "sha256": "", "size": None},
}

_CHUNK = 1 << 20
_UA = "gpgan-data/1 (+https://github.com/; urllib)"


def sha256_file(path, *, chunk: int = _CHUNK) -> str:
    """Hex SHA-256 of a file, read in chunks (constant memory)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _sidecar(dest: Path) -> Path:
    return dest.with_name(dest.name + ".sha256")


def _read_sidecar(path: Path) -> str | None:
    if not path.exists():
        return None
    text = path.read_text().split()
    if not text or not re.fullmatch(r"[0-9a-fA-F]{64}", text[0]):
        raise DownloadError(f"{path}: not a SHA-256 record (expected '<64 hex digits>  <name>')")
    return text[0].lower()


def _normalise_sha(sha256: str | None) -> str | None:
    if sha256 is None or str(sha256).strip() == "":
        return None
    s = str(sha256).strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", s):
        raise DownloadError(f"sha256 {sha256!r} is not 64 hexadecimal digits")
    return s


def _verify(path: Path, sha: str | None, expected_size: int | None, dest: Path) -> str:
    """Check size and checksum of ``path``; return its SHA-256."""
    size = path.stat().st_size
    if expected_size is not None and size != int(expected_size):
        raise DownloadError(
            f"{dest}: size {size} bytes, expected {int(expected_size)}; "
            f"delete {path} to download again")
    got = sha256_file(path)
    if sha is not None and got != sha:
        raise DownloadError(
            f"{dest}: sha256 mismatch (expected {sha}, got {got}); the data is kept in "
            f"{path}: fix the checksum or delete that file to download again")
    return got


def _content_range(value: str | None) -> tuple[int, int | None] | None:
    """Parse ``bytes START-END/TOTAL`` (TOTAL may be ``*``)."""
    if not value:
        return None
    m = re.fullmatch(r"\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)\s*", value)
    if not m:
        return None
    start = -1 if m.group(1) is None else int(m.group(1))  # -1: "bytes */TOTAL" (416)
    return start, (None if m.group(2) == "*" else int(m.group(2)))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, _Progress):
        return str(exc)
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        reason = exc.reason
        if isinstance(reason, socket.gaierror):
            return f"host not found ({reason.strerror or reason}); are you offline?"
        if isinstance(reason, ConnectionRefusedError):
            return "connection refused"
        if isinstance(reason, (socket.timeout, TimeoutError)):
            return "timed out"
        return str(reason)
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    return f"{exc.__class__.__name__}: {exc}".rstrip(": ")


def _fetch_once(url: str, part: Path, *, timeout: float, progress: bool,
                expected_size: int | None) -> tuple[bool, int]:
    """One HTTP request that appends to ``part``.

    Returns ``(complete, bytes_received)``. Raises network errors to the caller.
    """
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": _UA, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    req = urllib.request.Request(url, headers=headers)
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            # Range not satisfiable: either the .part is already complete or it is
            # longer than the remote file. Ask for the remote size to know which.
            cr = _content_range(exc.headers.get("Content-Range"))
            total = cr[1] if cr else None
            if total is None:
                total = expected_size
            if total is not None and offset == total:
                return True, 0
            log.warning("%s: server refused to resume at byte %d; starting over", url, offset)
            part.unlink()
            raise
        raise
    received = 0
    with resp:
        status = getattr(resp, "status", 200)
        if status == 206:
            cr = _content_range(resp.headers.get("Content-Range"))
            if cr is None or cr[0] != offset:
                part.unlink(missing_ok=True)
                raise DownloadError(f"{url}: server answered a range request with a bad "
                                    f"Content-Range {resp.headers.get('Content-Range')!r}")
            total = cr[1]
            mode = "ab"
        else:  # 200: the server ignores Range, start from scratch
            if offset:
                log.info("%s: server does not support resuming; restarting", url)
            offset = 0
            length = resp.headers.get("Content-Length")
            total = int(length) if length is not None and length.isdigit() else None
            mode = "wb"
        if total is not None and expected_size is not None and total != int(expected_size):
            raise DownloadError(f"{url}: remote size {total} bytes, expected "
                                f"{int(expected_size)} (wrong URL or expected size?)")
        from tqdm import tqdm

        with open(part, mode) as f, tqdm(total=total, initial=offset, unit="B",
                                         unit_scale=True, unit_divisor=1024,
                                         desc=part.name[:-5], disable=not progress,
                                         leave=False) as bar:
            while True:
                try:
                    block = resp.read(_CHUNK)
                except Exception:
                    f.flush()
                    raise _Progress(received) from None
                if not block:
                    break
                f.write(block)
                received += len(block)
                bar.update(len(block))
    size = part.stat().st_size
    if total is not None and size < total:
        raise _Progress(received, f"connection closed at byte {size} of {total}")
    if total is not None and size > total:
        part.unlink()
        raise DownloadError(f"{url}: received {size} bytes, more than the announced {total}")
    return True, received


class _Progress(Exception):
    """A transfer broke after receiving ``received`` bytes."""

    def __init__(self, received: int, message: str = "connection broken"):
        super().__init__(message)
        self.received = received


def download(url: str, dest, *, sha256: str | None = None, expected_size: int | None = None,
             retries: int = 5, timeout: float = 60, progress: bool = True,
             backoff: float = 1.0) -> Path:
    """Download ``url`` to ``dest`` with resume, retries and checksum verification.

    Parameters
    ----------
    url : str
        ``http://``, ``https://`` (or ``file://``) URL.
    dest : path-like
        Final file. Data goes to ``<dest>.part`` first and is renamed atomically once
        it is complete and verified.
    sha256 : str, optional
        Expected hex SHA-256. ``None`` or ``""``: use ``<dest>.sha256`` when it exists,
        otherwise compute the checksum, record it in ``<dest>.sha256`` (``sha256sum``
        format) and print it.
    expected_size : int, optional
        Expected size in bytes, checked against the server's announcement and the file.
    retries : int
        Failed attempts allowed in a row (an attempt that received data resets the
        count); the wait before retry ``k`` is ``backoff * 2**(k-1)`` seconds, at
        most 60 s.
    timeout : float
        Socket timeout of each request, seconds.
    progress : bool
        Show a :mod:`tqdm` progress bar on stderr.
    backoff : float
        Base of the exponential back-off, seconds.

    Returns
    -------
    pathlib.Path
        ``dest``. When ``dest`` already exists and verifies against the checksum
        (given or recorded) or the expected size, nothing is downloaded; an existing
        ``dest`` with nothing to verify it against is refused, never claimed.

    Raises
    ------
    gpgan.errors.DownloadError
        Offline / unreachable host after all retries, HTTP error, size or checksum
        mismatch (one-line message).
    """
    dest = Path(dest)
    sha = _normalise_sha(sha256)
    side = _sidecar(dest)
    if sha is None:
        sha = _read_sidecar(side)
    if dest.exists():
        if sha is None and expected_size is None:
            raise DownloadError(f"{dest} already exists and there is nothing to verify it "
                                f"against (no sha256 given, no {side.name}): pass its "
                                "sha256, or delete it to download again")
        _verify(dest, sha, expected_size, dest)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    failures, restarted = 0, False
    while True:
        try:
            _fetch_once(url, part, timeout=timeout, progress=progress,
                        expected_size=expected_size)
            break
        except DownloadError:
            raise
        except urllib.error.HTTPError as exc:
            # Client errors (404, 403...) will not go away by retrying; after a 416
            # the part file was removed: start over at once (once).
            if exc.code == 416 and not restarted:
                restarted = True
                continue
            if 400 <= exc.code < 500 and exc.code not in (408, 429):
                raise DownloadError(f"cannot download {url}: {_describe(exc)}") from None
            err = exc
        except _Progress as exc:
            if exc.received:
                failures = 0
            err = exc
        except (urllib.error.URLError, HTTPException, OSError, ValueError) as exc:
            if isinstance(exc, ValueError) and "unknown url type" in str(exc):
                raise DownloadError(f"cannot download {url}: unknown URL type") from None
            err = exc
        failures += 1
        if failures > retries:
            raise DownloadError(f"cannot download {url}: {_describe(err)} "
                                f"(gave up after {retries} retries)") from None
        wait = min(60.0, backoff * 2 ** (failures - 1))
        log.warning("%s: %s; retry %d/%d in %.1f s", url, _describe(err), failures,
                    retries, wait)
        time.sleep(wait)
    got = _verify(part, sha, expected_size, dest)
    os.replace(part, dest)
    if sha is None:
        tmp = side.with_name(side.name + ".tmp")
        tmp.write_text(f"{got}  {dest.name}\n")
        os.replace(tmp, side)
        print(f"sha256 {got}  {dest} (recorded in {side})")
    return dest


# --------------------------------------------------------------------------- extract
_MARKER = ".gpgan-extracted"


def _check_member(member: tarfile.TarInfo, root: str) -> None:
    """Refuse unsafe members (raises DownloadError naming the member)."""
    name = member.name
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise ValueError(f"member {name!r} has an absolute path")
    if ".." in parts:
        raise ValueError(f"member {name!r} contains '..'")
    if member.isdev() or member.isfifo():
        raise ValueError(f"member {name!r} is a device or FIFO")
    if member.issym() or member.islnk():
        link = member.linkname
        if os.path.isabs(link) or link.startswith(("/", "\\")):
            raise ValueError(f"link {name!r} -> {link!r} points to an absolute path")
        base = os.path.dirname(name) if member.issym() else ""
        resolved = os.path.normpath(os.path.join(root, base, link))
        if os.path.commonpath([root, resolved]) != root:
            raise ValueError(f"link {name!r} -> {link!r} points outside the target")
    try:  # the stdlib's own rules, evaluated without writing anything
        tarfile.data_filter(member, root)
    except tarfile.FilterError as exc:
        raise ValueError(str(exc)) from None


def extract(archive, target, *, strip_components: int = 0, include: str | None = None) -> Path:
    """Safely extract a tar archive (any compression) into ``target``.

    Every member is checked before anything is written; an archive with an absolute
    name, a ``..`` component, a link pointing outside the target, or a device file is
    refused as a whole. Extraction itself uses ``tarfile``'s ``filter="data"`` into a
    temporary sibling folder that is then renamed to ``target`` (or merged into it
    when it already exists), and a marker file ``target/.gpgan-extracted`` records
    the archive's name and size, so a second call is a no-op.

    Parameters
    ----------
    archive : path-like
        ``.tar``, ``.tar.gz``, ``.tar.bz2`` or ``.tar.xz`` file.
    target : path-like
        Destination folder.
    strip_components : int
        Drop this many leading path components of every member (like ``tar
        --strip-components``); members with fewer components are skipped.
    include : str, optional
        Only extract members whose (stripped) path starts with this prefix, e.g. the
        mask folder of a repository snapshot.

    Returns
    -------
    pathlib.Path
        ``target``.

    Raises
    ------
    gpgan.errors.DownloadError
        Missing, corrupt or unsafe archive (one-line message naming the member).
    """
    archive = Path(archive)
    target = Path(target)
    if not archive.is_file():
        raise DownloadError(f"{archive}: no such archive")
    stamp = f"{archive.name} {archive.stat().st_size}\n"
    marker = target / _MARKER
    if marker.exists() and stamp in marker.read_text():
        log.info("%s already extracted into %s", archive, target)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.extracting")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    root = os.path.realpath(tmp)
    try:
        try:
            tf = tarfile.open(archive, "r:*")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise DownloadError(f"{archive}: not a readable tar archive ({exc})") from None
        with tf:
            try:
                members = tf.getmembers()
            except (tarfile.TarError, OSError, EOFError) as exc:
                raise DownloadError(f"{archive}: corrupt tar archive ({exc})") from None
            selected = []
            for m in members:
                try:
                    _check_member(m, root)
                except ValueError as exc:
                    raise DownloadError(f"{archive}: refusing unsafe archive: {exc}") from None
                if strip_components:
                    parts = m.name.split("/")[strip_components:]
                    if not parts or parts == [""]:
                        continue
                    m = m.replace(name="/".join(parts), deep=False)
                if include and not (m.name == include.rstrip("/")
                                    or m.name.startswith(include.rstrip("/") + "/")):
                    continue
                selected.append(m)
            try:
                tf.extractall(tmp, members=selected, filter="data")
            except (tarfile.TarError, OSError, EOFError) as exc:
                raise DownloadError(f"{archive}: extraction failed ({exc})") from None
        move_contents(tmp, target)
        with open(marker, "a") as f:
            f.write(stamp)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def extract_member(archive, suffix: str, dest) -> Path:
    """Copy the one member of a zip archive whose name ends with ``suffix`` to ``dest``.

    For archives that hold a single data file (``outdoor_64.zip`` ->
    ``outdoor_64.hdf5``): the member's name is never used as a path (so it cannot
    escape), the copy goes to a temporary sibling that is renamed to ``dest``, and an
    existing ``dest`` of the member's size is kept (a second call is a no-op).

    Raises
    ------
    gpgan.errors.DownloadError
        Missing or unreadable archive, or not exactly one member ending in ``suffix``
        (one line naming what the archive holds).
    """
    archive, dest = Path(archive), Path(dest)
    if not archive.is_file():
        raise DownloadError(f"{archive}: no such archive")
    try:
        with zipfile.ZipFile(archive) as zf:
            found = [i for i in zf.infolist() if i.filename.endswith(suffix) and not i.is_dir()]
            if len(found) != 1:
                names = ", ".join(i.filename for i in zf.infolist()[:5]) or "nothing"
                raise DownloadError(f"{archive}: expected one member ending in {suffix!r}, "
                                    f"found {len(found)} (the archive holds {names})")
            member = found[0]
            if dest.is_file() and dest.stat().st_size == member.file_size:
                log.info("%s already extracted to %s", member.filename, dest)
                return dest
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.extracting")
            try:
                with zf.open(member) as src, open(tmp, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
                os.replace(tmp, dest)
            finally:
                tmp.unlink(missing_ok=True)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise DownloadError(f"{archive}: not a readable zip archive ({exc})") from None
    return dest
