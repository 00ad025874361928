"""The data sub-commands of the ``gpgan`` CLI: exit 0 on success, 2 + one line on bad input."""

from __future__ import annotations

import csv
import hashlib
import subprocess
import sys

import pytest
from data_fixtures import ArchiveServer, make_tar

from gpgan.cli import main


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in err
    return lines[0]


def test_demo_then_composites_then_crop(tmp_path, capsys):
    scenes = tmp_path / "scenes"
    code, out, _ = _run(capsys, "demo", "--out-dir", str(scenes), "--scenes", "5",
                        "--variants", "3", "--size", "64", "-q")
    assert code == 0 and "wrote 15 images" in out
    comp = tmp_path / "comp"
    code, out, _ = _run(capsys, "composites", "--scenes-root", str(scenes), "--out-dir",
                        str(comp), "--n-train", "100", "--n-val", "10", "--n-test", "2",
                        "--fractions", "train=0.6,val=0.2,test=0.2", "--seed", "3", "-q")
    assert code == 0
    with open(comp / "train.csv") as f:
        assert len(list(csv.DictReader(f))) == 100
    assert (comp / "0001" / "mask.png").is_file() and not (comp / "0002").exists()
    bbox = tmp_path / "bbox.txt"
    bbox.write_text("rocket_00:2,3,50,60\n")
    code, out, _ = _run(capsys, "crop", "--data-path", str(scenes), "--bbox", str(bbox),
                        "--output-dir", str(tmp_path / "cropped"), "-q")
    assert code == 0 and "1 with a box, 4 kept whole" in out
    from PIL import Image

    assert Image.open(tmp_path / "cropped/rocket_00/00.png").size == (57, 48)


@pytest.mark.parametrize("argv, needle", [
    (["crop", "--data-path", "{tmp}/none", "--output-dir", "{tmp}/o"], "no such data folder"),
    (["crop", "--data-path", "{tmp}", "--bbox", "{tmp}/bad.txt", "--output-dir", "{tmp}/o"],
     "bad.txt:1:"),
    (["composites", "--scenes-root", "{tmp}/none", "--out-dir", "{tmp}/o"],
     "no such scenes folder"),
    (["composites", "--scenes-root", "{tmp}", "--out-dir", "{tmp}/o",
      "--fractions", "train=0.5,test=0.2"], "sum to 1"),
    (["demo", "--out-dir", "{tmp}/d", "--variants", "1"], "n_variants"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, argv, needle):
    (tmp_path / "bad.txt").write_text("this is not a box\n")
    (tmp_path / "scene").mkdir()
    argv = [a.format(tmp=tmp_path) for a in argv]
    code, _, err = _run(capsys, *argv)
    assert code == 2 and needle in _error_line(err)


@pytest.mark.parametrize("extra, needle", [
    (["--n-train", "-5"], "n_train must be an integer >= 0"),
    (["--coverage", "0.5,0.2"], "coverage range"),
    (["--ratio", "0"], "0 < ratio <= 1"),
    (["--masks-root", "{tmp}/no-masks"], "no such masks folder"),
])
def test_composites_refuse_before_writing_anything(tmp_path, capsys, extra, needle):
    """Issue 13, case 6: negative counts exited 0 with only splits.csv written; bad
    --coverage / --ratio left splits.csv, train.csv and val.csv behind."""
    scenes = tmp_path / "scenes"
    _run(capsys, "demo", "--out-dir", str(scenes), "--scenes", "3", "--variants", "2",
         "--size", "48", "-q")
    comp = tmp_path / "comp"
    code, _, err = _run(capsys, "composites", "--scenes-root", str(scenes), "--out-dir",
                        str(comp), "--n-train", "20", "--n-val", "5", "--n-test", "1",
                        *[a.format(tmp=tmp_path) for a in extra])
    assert code == 2 and needle in _error_line(err)
    assert not comp.exists()


def test_download_and_extract(tmp_path, capsys):
    data = make_tar([("file", "imageAlignedLD/s/1.txt", b"one")])
    sha = hashlib.sha256(data).hexdigest()
    with ArchiveServer(data) as srv:
        code, out, _ = _run(capsys, "download", "--url", srv.url, "--out",
                            str(tmp_path / "a.tar"), "--sha256", sha, "--extract-to",
                            str(tmp_path / "data"), "-q")
        assert code == 0 and (tmp_path / "data/imageAlignedLD/s/1.txt").read_bytes() == b"one"
        code, _, err = _run(capsys, "download", "--url", srv.url, "--out",
                            str(tmp_path / "b.tar"), "--sha256", "f" * 64, "-q")
        assert code == 2 and "sha256 mismatch" in _error_line(err)
    evil = tmp_path / "evil.tar"
    evil.write_bytes(make_tar([("file", "../evil", b"x")]))
    code, _, err = _run(capsys, "download", "--url", evil.as_uri(), "--out",
                        str(tmp_path / "evil_copy.tar"),
                        "--extract-to", str(tmp_path / "x"), "-q")
    assert code == 2 and "refusing unsafe archive" in _error_line(err)
    assert not (tmp_path / "evil").exists()


def test_console_script_help_lists_data_commands():
    out = subprocess.run([sys.executable, "-m", "gpgan.cli", "--help"], capture_output=True,
                         text=True, check=True).stdout
    for name in ("download", "crop", "demo", "composites"):
        assert name in out


def test_cli_log_handler_follows_stderr(monkeypatch):
    # a handler bound to the stderr of its first call kept writing to it after it was
    # closed ("Logging error ... I/O operation on closed file")
    import io
    import logging

    from gpgan.logs import to_stderr

    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    to_stderr()
    to_stderr()
    first.close()
    monkeypatch.setattr(sys, "stderr", second)
    logging.getLogger("gpgan.data").warning("after the swap")
    assert second.getvalue().count("after the swap") == 1
