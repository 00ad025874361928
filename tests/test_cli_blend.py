"""`gpgan blend` end to end: files in any encoding in, one file out; bad input gives
exit code 2, one line on stderr, no traceback and no output file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


# ---------------------------------------------------------------- hostile input (issue 13)
def _one_line_error(code, err):
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_phone_photos_are_blended_as_a_viewer_shows_them(tmp_path, capsys, photos):
    """Case 1: src and dst stored sideways with EXIF orientation 6 (as phones save
    them), the mask drawn on what a viewer shows: the blend follows the viewer."""
    from PIL import ImageOps

    src = (photos["astronaut"][:192, :256] * 255).astype(np.uint8)  # stored 192x256
    dst = (photos["coffee"][:192, :256] * 255).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6
    for name, arr in (("src.jpg", src), ("dst.jpg", dst)):
        Image.fromarray(arr).save(tmp_path / name, exif=exif.tobytes(), quality=95)
    shown = ImageOps.exif_transpose(Image.open(tmp_path / "dst.jpg"))
    assert shown.size == (192, 256)  # a viewer shows it upright: 192 wide, 256 high
    mask = blob_mask(256, 192, 60, 96, 40, 50)  # the object is in the top half
    Image.fromarray((mask * 255).astype(np.uint8)).save(tmp_path / "mask.png")
    out = tmp_path / "out.png"
    code, _, err = run(capsys, "blend", "--src", tmp_path / "src.jpg", "--dst",
                       tmp_path / "dst.jpg", "--mask", tmp_path / "mask.png", "--out", out,
                       "--method", "copy-paste", "-q")
    assert code == 0, err
    got = read_image(out)
    viewer_src = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "src.jpg")))
    viewer_dst = np.asarray(shown)
    assert got.shape == (256, 192, 3)
    inside, outside = mask > 0, mask == 0
    assert np.abs(got[inside] - viewer_src[inside] / 255.0).max() < 1.5 / 255
    assert np.abs(got[outside] - viewer_dst[outside] / 255.0).max() < 1.5 / 255


def test_out_that_is_an_input_is_refused(files, capsys):
    """Case 4: --out equal to --src (also through another path) does not overwrite it."""
    before = (files / "src.png").read_bytes()
    mode = (files / "src.png").stat().st_mode
    for out in (files / "src.png", files / "sub" / ".." / "src.png"):
        code, _, err = run(capsys, "blend", "--src", files / "src.png", "--dst",
                           files / "dst.jpg", "--mask", files / "mask.png", "--out", out,
                           "--method", "copy-paste")
        assert "is the --src file" in _one_line_error(code, err)
    (files / "link.jpg").symlink_to(files / "dst.jpg")
    code, _, err = run(capsys, "blend", "--src", files / "src.png", "--dst",
                       files / "dst.jpg", "--mask", files / "mask.png", "--out",
                       files / "link.jpg", "--method", "copy-paste")
    assert "is the --dst file" in _one_line_error(code, err)
    assert (files / "src.png").read_bytes() == before
    assert (files / "src.png").stat().st_mode == mode


def test_tiny_colour_weight_is_refused(files, capsys):
    """Case 5: --color-weight 1e-9 left a quarter to half of the pixels black."""
    assert ">= 0.001" in _bad(files, capsys, "cw.png", "--color-weight", "1e-9")


def test_unwritable_output_folder_fails_before_any_work(files, capsys, monkeypatch):
    """Case 7: a read-only folder is found before reading or blending (root ignores
    permissions: then /sys, which refuses new files even to root)."""
    import os

    from gpgan import blending

    ro = files / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if os.access(ro, os.W_OK):
        ro = Path("/sys")

    def no_work(*args, **kwargs):
        raise AssertionError("blended before checking the output folder")

    monkeypatch.setattr(blending, "blend", no_work)
    code, _, err = run(capsys, "blend", "--src", files / "src.png", "--dst",
                       files / "dst.jpg", "--mask", files / "mask.png", "--out",
                       ro / "out.png", "--method", "gp")
    assert "cannot write" in _one_line_error(code, err)
    code, _, err = run(capsys, "blend", "--src", files / "src.png", "--dst",
                       files / "dst.jpg", "--mask", files / "mask.png", "--out",
                       files / "mask.png" / "out.png", "--method", "gp")
    assert "is not a folder" in _one_line_error(code, err)


def test_huge_image_is_refused_before_decoding(files, capsys):
    """Case 7: a decompression bomb or a 169 MP image: one line, the limit named."""
    from test_io import _png_header_only

    _png_header_only(files / "bomb.png", 30000, 30000)
    err = _bad(files, capsys, "b.png", src="bomb.png")
    assert "900.0 megapixels" in err and "--max-megapixels" in err
    _png_header_only(files / "big.png", 13000, 13000)
    assert "169.0 megapixels" in _bad(files, capsys, "c.png", dst="big.png")
    assert "truncated" in _bad(files, capsys, "d.png", "--max-megapixels", "200",
                               dst="big.png")


def test_progress_per_pyramid_level(files, capsys, monkeypatch):
    """Case 7: long blends say what they are doing, one line per pyramid level."""
    from gpgan.commands import blend as blend_command

    monkeypatch.setattr(blend_command, "PROGRESS_MEGAPIXELS", 0.05)
    code, _, err = run(capsys, "blend", "--src", files / "src.png", "--dst",
                       files / "dst.jpg", "--mask", files / "mask.png", "--out",
                       files / "p.png", "--method", "gp")
    assert code == 0
    lines = err.splitlines()
    assert lines[0] == "gp: blending 320x256 (0.1 MP), 4 pyramid levels"
    assert [line.split(" (")[0] for line in lines[1:]] == [f"  level {k}/4"
                                                          for k in range(1, 5)]
    code, _, err = run(capsys, "blend", "--src", files / "src.png", "--dst",
                       files / "dst.jpg", "--mask", files / "mask.png", "--out",
                       files / "p.png", "--method", "gp", "-q")
    assert code == 0 and err == ""


def test_negative_offset_with_a_space(files, capsys, photos):
    """Case 9: `--offset -10,-20` (argparse took it for an option)."""
    write_image(files / "small.png", photos["astronaut"][200:280, 220:320])
    Image.fromarray((blob_mask(80, 100, 40, 50, 30, 40) * 255).astype(np.uint8)).save(
        files / "small_mask.png")
    outs = []
    for offset in (["--offset", "-10,-20"], ["--offset=-10,-20"]):
        out = files / f"neg{len(outs)}.png"
        code, _, err = run(capsys, "blend", "--src", files / "small.png", "--dst",
                           files / "dst.jpg", "--mask", files / "small_mask.png", "--out",
                           out, "--method", "copy-paste", *offset)
        assert code == 0, err
        outs.append(read_image(out))
    assert np.array_equal(outs[0], outs[1])


def test_text_file_as_model(files, capsys):
    """Case 9: a text file given as --model: one complete line saying what was expected."""
    (files / "model.txt").write_text("these are not the weights you are looking for\n" * 50)
    err = _bad(files, capsys, "m.png", "--method", "gp-gan", "--model", files / "model.txt")
    assert "model.txt: not a torch checkpoint; expected a .pt checkpoint" in err
    assert err.rstrip().endswith("results/demo/model/best.pt")


def test_readme_bad_input_paragraph_matches_the_limits():
    """The README's "Bad input" paragraph quotes the limits the code enforces."""
    from gpgan.blending import MIN_COLOR_WEIGHT
    from gpgan.io import MAX_MEGAPIXELS

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    para = " ".join(text[text.index("**Bad input**"):].split("\n\n")[0].split())
    assert f"`--color-weight` below {MIN_COLOR_WEIGHT:g}" in para
    assert f"`--max-megapixels` (default {MAX_MEGAPIXELS:g}" in para
    for refused in ("truncated", "animated", "NaN", "outside [0, 1]", "empty mask",
                    "torch checkpoint", "naming one of the inputs", "cannot be written"):
        assert refused in para, refused
