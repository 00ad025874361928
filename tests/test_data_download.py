"""gpgan.data.download: resumable verified HTTP download and safe tar extraction,
against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import os
import socket
import time

import numpy as np
import pytest
from data_fixtures import ArchiveServer, make_tar, tree

from gpgan.data.download import BBOX_URL, GPGAN_COMMIT, download, extract, sha256_file
from gpgan.errors import DownloadError


@pytest.fixture(scope="module")
def archive() -> bytes:
    """A ~2.5 MB tar (incompressible content, so it spans several 1 MiB chunks)."""
    rng = np.random.default_rng(0)
    return make_tar([
        ("dir", "imageAlignedLD"),
        ("dir", "imageAlignedLD/scene_a"),
        ("file", "imageAlignedLD/scene_a/1.bin", rng.bytes(1_500_000)),
        ("file", "imageAlignedLD/scene_a/2.bin", rng.bytes(1_000_000)),
        ("file", "README", b"hello\n"),
    ])


@pytest.fixture
def server(archive):
    with ArchiveServer(archive) as srv:
        yield srv


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_download_records_sha256_when_none_given(server, archive, tmp_path, capsys):
    dest = tmp_path / "aligned_images.tar"
    out = download(server.url, dest, progress=False)
    assert out == dest and dest.read_bytes() == archive
    assert not (tmp_path / "aligned_images.tar.part").exists()
    record = (tmp_path / "aligned_images.tar.sha256").read_text().split()
    assert record == [_sha(archive), "aligned_images.tar"]
    assert _sha(archive) in capsys.readouterr().out
    # second call: verified against the record, no new request
    n = len(server.requests)
    assert download(server.url, dest, progress=False) == dest
    assert len(server.requests) == n


def test_existing_file_with_nothing_to_verify_is_not_claimed(server, tmp_path, capsys):
    """Issue 13, case 6: an existing junk file without a recorded checksum was reported
    "downloaded" without fetching or checking anything."""
    from gpgan.cli import main

    junk = tmp_path / "aligned_images.tar"
    junk.write_bytes(b"junk")
    with pytest.raises(DownloadError, match="already exists and there is nothing to verify"):
        download(server.url, junk, progress=False)
    code = main(["download", "--url", server.url, "--out", str(junk), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1
    assert "pass its sha256, or delete it" in err
    assert server.requests == [] and junk.read_bytes() == b"junk"
    # with its checksum it is verified, and said so
    code = main(["download", "--url", server.url, "--out", str(junk), "-q",
                 "--sha256", _sha(b"junk")])
    assert code == 0 and capsys.readouterr().out.startswith("verified existing ")


def test_resume_after_connection_cut_half_way(server, archive, tmp_path):
    half = len(archive) // 2
    server.cut_after, server.cuts = half, 1
    dest = tmp_path / "a.tar"
    download(server.url, dest, sha256=_sha(archive), expected_size=len(archive),
             progress=False, backoff=0.01)
    assert dest.read_bytes() == archive
    # first request got half the body and broke; the second resumed at that byte
    assert [r for _, r in server.requests] == [None, f"bytes={half}-"]
    assert server.bytes_sent == len(archive)  # nothing downloaded twice


def test_byte_count_waits_for_a_slow_handler(server, archive, tmp_path):
    # the client has the whole body before the handler thread counts it: reading the
    # counter right after the download must still see every byte (was a flaky assert)
    server.count_delay = 0.3
    dest = tmp_path / "a.tar"
    download(server.url, dest, sha256=_sha(archive), progress=False)
    assert server.bytes_sent == len(archive)


def test_resume_from_existing_part_file(server, archive, tmp_path):
    dest = tmp_path / "a.tar"
    (tmp_path / "a.tar.part").write_bytes(archive[:1000])
    download(server.url, dest, sha256=_sha(archive), progress=False)
    assert dest.read_bytes() == archive
    assert server.requests == [("/archive.tar", "bytes=1000-")]
    assert server.bytes_sent == len(archive) - 1000


def test_complete_part_file_is_verified_without_body(server, archive, tmp_path):
    dest = tmp_path / "a.tar"
    (tmp_path / "a.tar.part").write_bytes(archive)
    download(server.url, dest, sha256=_sha(archive), progress=False)
    assert dest.read_bytes() == archive and server.bytes_sent == 0


def test_server_without_range_support_restarts(server, archive, tmp_path):
    server.honour_range = False
    dest = tmp_path / "a.tar"
    (tmp_path / "a.tar.part").write_bytes(b"garbage that must be discarded")
    download(server.url, dest, sha256=_sha(archive), progress=False)
    assert dest.read_bytes() == archive


def test_wrong_checksum_is_refused(server, archive, tmp_path):
    dest = tmp_path / "a.tar"
    with pytest.raises(DownloadError) as err:
        download(server.url, dest, sha256="0" * 64, progress=False)
    msg = str(err.value)
    assert "sha256 mismatch" in msg and _sha(archive) in msg and "\n" not in msg
    assert not dest.exists()
    # the data is kept so that fixing the checksum needs no second download
    assert (tmp_path / "a.tar.part").read_bytes() == archive
    sent = server.bytes_sent
    download(server.url, dest, sha256=_sha(archive), progress=False)
    assert dest.read_bytes() == archive and server.bytes_sent == sent


def test_recorded_checksum_catches_changed_remote(server, archive, tmp_path):
    dest = tmp_path / "a.tar"
    download(server.url, dest, progress=False)
    dest.unlink()
    server.payload = archive[:-10] + b"X" * 10
    with pytest.raises(DownloadError, match="sha256 mismatch"):
        download(server.url, dest, progress=False)
    assert not dest.exists()


def test_wrong_expected_size_is_refused(server, archive, tmp_path):
    with pytest.raises(DownloadError, match="expected"):
        download(server.url, tmp_path / "a.tar", expected_size=len(archive) + 1,
                 progress=False, retries=0)


def test_bad_sha256_string(server, tmp_path):
    with pytest.raises(DownloadError, match="64 hexadecimal"):
        download(server.url, tmp_path / "a.tar", sha256="abc", progress=False)


def test_http_404_fails_without_retrying(server, tmp_path):
    t0 = time.perf_counter()
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(server.url.replace("archive.tar", "nope.tar"), tmp_path / "x",
                 progress=False, backoff=5.0)
    assert time.perf_counter() - t0 < 4 and len(server.requests) == 1


def test_offline_gives_one_line_error_after_retries(tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with pytest.raises(DownloadError) as err:
        download(f"http://127.0.0.1:{port}/a.tar", tmp_path / "a.tar", retries=2,
                 backoff=0.01, progress=False)
    msg = str(err.value)
    assert msg.startswith("cannot download") and "refused" in msg and "2 retries" in msg
    assert "\n" not in msg and not (tmp_path / "a.tar").exists()


def test_pinned_github_urls():
    assert len(GPGAN_COMMIT) == 40
    assert BBOX_URL == ("https://raw.githubusercontent.com/wuhuikai/GP-GAN/"
                        f"{GPGAN_COMMIT}/DataBase/TransientAttributes/bbox.txt")


# ----------------------------------------------------------------------- extract
def _write(tmp_path, data: bytes, name="x.tar"):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_extract_good_archive_is_idempotent(tmp_path, archive):
    target = tmp_path / "out"
    extract(_write(tmp_path, archive), target)
    assert (target / "imageAlignedLD/scene_a/1.bin").stat().st_size == 1_500_000
    assert (target / "README").read_bytes() == b"hello\n"
    before = sha256_file(target / "imageAlignedLD/scene_a/2.bin")
    (target / "README").write_bytes(b"edited")  # a no-op second call keeps it
    extract(tmp_path / "x.tar", target)
    assert (target / "README").read_bytes() == b"edited"
    assert sha256_file(target / "imageAlignedLD/scene_a/2.bin") == before
    assert not any(p.name.endswith(".extracting") for p in tmp_path.iterdir())


def test_extract_gzip_and_internal_symlink(tmp_path):
    data = make_tar([("file", "d/a.txt", b"A"), ("symlink", "d/link", "a.txt")], mode="w:gz")
    target = tmp_path / "out"
    extract(_write(tmp_path, data, "x.tar.gz"), target)
    assert (target / "d/link").is_symlink() and (target / "d/link").read_bytes() == b"A"


@pytest.mark.parametrize("bad, why", [
    (("file", "../evil", b"pwned"), "'..'"),
    (("file", "ok/../../evil", b"pwned"), "'..'"),
    (("file", "/tmp/gpgan_abs_evil", b"pwned"), "absolute"),
    (("symlink", "link", "../evil"), "outside"),
    (("symlink", "link", "/etc/passwd"), "absolute"),
    (("hardlink", "hl", "../evil"), "outside"),
])
def test_unsafe_archive_refused_and_nothing_written(tmp_path, bad, why):
    # a good member first: it must not be written either (all members checked first)
    data = make_tar([("file", "good.txt", b"fine"), bad, ("file", "after.txt", b"x")])
    box = tmp_path / "box"
    box.mkdir()
    arc = _write(box, data)
    target = box / "target"
    with pytest.raises(DownloadError) as err:
        extract(arc, target)
    msg = str(err.value)
    assert "refusing unsafe archive" in msg and why in msg and "\n" not in msg
    assert tree(box) == {"x.tar"}  # no target, no evil, no temp folder
    assert not (tmp_path / "evil").exists()


def test_symlink_then_write_through_it_is_refused(tmp_path):
    data = make_tar([("symlink", "escape", ".."), ("file", "escape/evil", b"pwned")])
    box = tmp_path / "box"
    box.mkdir()
    with pytest.raises(DownloadError):
        extract(_write(box, data), box / "target")
    assert tree(box) == {"x.tar"}


def test_corrupt_or_missing_archive(tmp_path):
    with pytest.raises(DownloadError, match="not a readable tar"):
        extract(_write(tmp_path, b"this is not a tar file at all" * 50), tmp_path / "t")
    with pytest.raises(DownloadError, match="no such archive"):
        extract(tmp_path / "missing.tar", tmp_path / "t")
    full = make_tar([("file", "a.bin", bytes(100_000))])
    with pytest.raises(DownloadError):
        extract(_write(tmp_path, full[:30_000], "trunc.tar"), tmp_path / "t2")
    assert not (tmp_path / "t").exists() and not (tmp_path / "t2").exists()


def test_extract_strip_and_include(tmp_path):
    data = make_tar([("file", "GP-GAN-abc/DataBase/masks/s1/m.png", b"M"),
                     ("file", "GP-GAN-abc/README.md", b"R")], mode="w:gz")
    target = tmp_path / "masks"
    extract(_write(tmp_path, data, "repo.tar.gz"), target, strip_components=1,
            include="DataBase/masks")
    assert tree(target) - {".gpgan-extracted"} == {"DataBase", "DataBase/masks",
                                                   "DataBase/masks/s1",
                                                   "DataBase/masks/s1/m.png"}



def test_extract_member_copies_the_one_data_file_and_nothing_else(tmp_path):
    """outdoor_64.zip holds one outdoor_64.hdf5: copied atomically, member names are
    never paths, a second call is a no-op, anything else is one line."""
    import zipfile

    from gpgan.data.download import extract_member

    payload = bytes(range(256)) * 1000
    with zipfile.ZipFile(tmp_path / "outdoor_64.zip", "w") as zf:
        zf.writestr("../../escape/outdoor_64.hdf5", payload)
        zf.writestr("README.txt", b"readme")
    dest = tmp_path / "data" / "outdoor_64.hdf5"
    assert extract_member(tmp_path / "outdoor_64.zip", ".hdf5", dest) == dest
    assert dest.read_bytes() == payload
    assert not (tmp_path / "escape").exists() and sorted(os.listdir(dest.parent)) == [dest.name]
    mtime = dest.stat().st_mtime_ns
    extract_member(tmp_path / "outdoor_64.zip", ".hdf5", dest)
    assert dest.stat().st_mtime_ns == mtime
    with pytest.raises(DownloadError, match=r"expected one member ending in '\.npz', found 0 "
                                            r"\(the archive holds \.\./\.\./escape/outdoor"):
        extract_member(tmp_path / "outdoor_64.zip", ".npz", tmp_path / "x.npz")
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    with pytest.raises(DownloadError, match="not a readable zip archive"):
        extract_member(tmp_path / "junk.zip", ".hdf5", tmp_path / "y.hdf5")
    assert not (tmp_path / "x.npz").exists() and not (tmp_path / "y.hdf5").exists()
