"""`gpgan blend` end to end: files in any encoding in, one file out; bad input gives
exit code 2, one line on stderr, no traceback and no output file."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from gpgan.cli import main
from gpgan.io import read_image, read_mask, write_image

from conftest import blob_mask


@pytest.fixture()
def files(tmp_path, scene):
    src, dst, mask = scene
    write_image(tmp_path / "src.png", src)
    write_image(tmp_path / "dst.jpg", dst)
    Image.fromarray((mask * 255).astype(np.uint8)).save(tmp_path / "mask.png")
    return tmp_path


def run(capsys, *args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("method", ["copy-paste", "poisson", "mpb", "laplacian", "gp"])
def test_blend_writes_output(files, capsys, method):
    out = files / f"out_{method}.png"
    code, stdout, _ = run(capsys, "blend", "--src", files / "src.png", "--dst",
                          files / "dst.jpg", "--mask", files / "mask.png", "--out", out,
                          "--method", method)
    assert code == 0 and out.exists()
    img = read_image(out)
    assert img.shape == (256, 320, 3)
    assert method in stdout


def test_blend_options_and_formats(files, capsys):
    # 16-bit source, RGBA mask (alpha), TIFF output, dct solver, preserve background.
    src = read_image(files / "src.png")
    Image.fromarray((src[:, :, 0] * 65535).astype(np.uint16)).save(files / "src16.png")
    m = read_mask(files / "mask.png")
    rgba = np.zeros((256, 320, 4), np.uint8)
    rgba[..., 3] = (m * 255).astype(np.uint8)
    Image.fromarray(rgba, "RGBA").save(files / "mask_rgba.png")
    out = files / "out.tif"
    code, _, err = run(capsys, "blend", "--src", files / "src16.png", "--dst",
                       files / "dst.jpg", "--mask", files / "mask_rgba.png", "--out", out,
                       "--method", "gp", "--solver", "cg", "--preserve-background",
                       "--color-weight", "0.5", "-q")
    assert code == 0, err
    assert read_image(out).shape == (256, 320, 3)


def test_offset(files, capsys, photos):
    small = photos["astronaut"][200:280, 220:320]
    write_image(files / "small.png", small)
    Image.fromarray((blob_mask(80, 100, 40, 50, 30, 40) * 255).astype(np.uint8)).save(
        files / "small_mask.png")
    out = files / "placed.png"
    code, _, err = run(capsys, "blend", "--src", files / "small.png", "--dst",
                       files / "dst.jpg", "--mask", files / "small_mask.png", "--out", out,
                       "--method", "poisson", "--offset", "20,-30")
    assert code == 0, err
    assert read_image(out).shape == (256, 320, 3)


def _bad(files, capsys, tmp_name, *extra, src="src.png", dst="dst.jpg", mask="mask.png"):
    out = files / tmp_name
    code, stdout, err = run(capsys, "blend", "--src", files / src, "--dst", files / dst,
                            "--mask", files / mask, "--out", out, "--method", "gp", *extra)
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert not out.exists()
    assert not list(files.glob(f".{tmp_name}*"))  # no half-written temp file
    return err


def test_bad_inputs(files, capsys, photos):
    write_image(files / "small.png", photos["astronaut"][:100, :100])
    Image.fromarray(np.zeros((256, 320), np.uint8)).save(files / "empty.png")
    Image.fromarray(np.zeros((100, 90), np.uint8)).save(files / "mask_small.png")
    (files / "notes.png").write_text("this is not an image")
    assert "same size" in _bad(files, capsys, "o1.png", src="small.png")
    assert "entirely outside" in _bad(files, capsys, "o2.png", "--offset", "900,900",
                                      src="small.png", mask="small.png")
    assert "empty" in _bad(files, capsys, "o3.png", mask="empty.png")
    assert "no such file" in _bad(files, capsys, "o4.png", src="missing.png")
    assert "not a readable image" in _bad(files, capsys, "o5.png", dst="notes.png")
    assert "mask is" in _bad(files, capsys, "o6.png", mask="mask_small.png")
    assert "src's size" in _bad(files, capsys, "o7.png", "--offset", "0,0", src="small.png")
    assert "model" in _bad(files, capsys, "o8.png", "--method", "gp-gan")
    assert "extension" in _bad(files, capsys, "o9.xyz")


def test_console_script_exit_code(files):
    """The installed entry point (a real process) exits 2 with a one-line message."""
    proc = subprocess.run([sys.executable, "-m", "gpgan.cli", "blend", "--src",
                           str(files / "nope.png"), "--dst", str(files / "dst.jpg"),
                           "--mask", str(files / "mask.png"), "--out",
                           str(files / "x.png")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error:") and "Traceback" not in proc.stderr
