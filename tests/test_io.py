"""Image / mask reading in every common encoding, atomic writes."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from gpgan.errors import InputError
from gpgan.io import FLOAT_SLACK, read_image, read_mask, to_float_image, to_mask, write_image


def test_bit_depths_and_modes(tmp_path, photos):
    rgb = photos["coffee"][:60, :80]
    grey = rgb.mean(axis=2)
    Image.fromarray((rgb * 255 + 0.5).astype(np.uint8)).save(tmp_path / "rgb.png")
    Image.fromarray((grey * 65535 + 0.5).astype(np.uint16)).save(tmp_path / "g16.png")
    rgba = np.dstack([(rgb * 255 + 0.5).astype(np.uint8), np.full((60, 80), 128, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    a = read_image(tmp_path / "rgb.png")
    assert a.shape == (60, 80, 3) and a.dtype == np.float32
    assert np.abs(a - rgb).max() <= 0.5 / 255 + 1e-6
    g = read_image(tmp_path / "g16.png")
    assert g.shape == (60, 80, 3) and np.abs(g[..., 0] - grey).max() < 1e-4  # 16-bit kept
    assert np.array_equal(read_image(tmp_path / "rgba.png"), a)  # alpha dropped


def test_float_images_in_range_are_not_copied(photos):
    a = np.ascontiguousarray(photos["coffee"][:40, :50], dtype=np.float32)
    assert to_float_image(a) is a  # in range: used as is (read only downstream)
    b = a.copy()
    b[0, 0, 0], b[1, 1, 1] = -FLOAT_SLACK / 2, 1 + FLOAT_SLACK / 2  # rounding error
    c = to_float_image(b)
    assert c[0, 0, 0] == 0.0 and c[1, 1, 1] == 1.0 and b[0, 0, 0] < 0  # clipped copy
    assert np.array_equal(c[2:], a[2:])
    m = a[:, :, 0].copy()
    assert to_mask(m) is m  # a float32 mask in [0, 1] is used as is


@pytest.mark.parametrize("encode", ["bool", "01", "0255", "rgb", "alpha", "soft"])
def test_mask_encodings(tmp_path, encode):
    m = np.zeros((20, 30), np.float32)
    m[5:15, 10:25] = 1
    arr = {"bool": m.astype(bool), "01": m.astype(np.uint8), "0255": (m * 255).astype(np.uint8),
           "rgb": np.dstack([(m * 255).astype(np.uint8)] * 3),
           "alpha": np.dstack([np.full((20, 30, 3), 200, np.uint8), (m * 255).astype(np.uint8)]),
           "soft": m * 0.5}[encode]
    expected = m * 0.5 if encode == "soft" else m
    assert np.allclose(to_mask(arr), expected)
    if encode in ("01", "0255", "rgb", "alpha"):
        mode = {"01": "L", "0255": "L", "rgb": "RGB", "alpha": "RGBA"}[encode]
        Image.fromarray(arr, mode).save(tmp_path / "m.png")
        assert np.allclose(read_mask(tmp_path / "m.png"), m)


def test_errors_and_atomic_write(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_image(tmp_path / "missing.png")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(InputError, match="not a readable image"):
        read_image(tmp_path / "bad.png")
    with pytest.raises(InputError, match="extension"):
        write_image(tmp_path / "out.xyz", np.zeros((4, 4, 3)))
    write_image(tmp_path / "sub" / "out.jpg", np.full((4, 4, 3), 0.5))
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["out.jpg"]


# ---------------------------------------------------------------- hostile input (issue 13)
def _with_orientation(arr: np.ndarray, path, orientation: int) -> None:
    """Save ``arr`` (as stored by a camera) with an EXIF orientation tag."""
    im = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = orientation
    im.save(path, exif=exif.tobytes())


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_like_a_viewer(tmp_path, photos, orientation):
    """Case 1: a phone photo is read as ImageOps.exif_transpose shows it, image and
    mask alike."""
    from PIL import ImageOps

    stored = (photos["rocket"][:48, :80] * 255 + 0.5).astype(np.uint8)  # not square
    _with_orientation(stored, tmp_path / "photo.png", orientation)
    viewer = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "photo.png")))
    got = read_image(tmp_path / "photo.png")
    assert got.shape[:2] == viewer.shape[:2]
    assert np.array_equal((got * 255 + 0.5).astype(np.uint8), viewer)
    mask = np.zeros((48, 80), np.uint8)
    mask[5:20, 10:50] = 255
    _with_orientation(mask, tmp_path / "mask.png", orientation)
    viewer_mask = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "mask.png")))
    assert np.array_equal(read_mask(tmp_path / "mask.png"), viewer_mask / 255.0)


def test_nan_and_inf_are_refused(tmp_path, photos):
    """Case 2: NaN / inf in a float TIFF or an array, image or soft mask: one line."""
    img = photos["coffee"][:40, :60].mean(axis=2).astype(np.float32)
    img[10, 10] = np.nan
    Image.fromarray(img, "F").save(tmp_path / "nan.tif")
    with pytest.raises(InputError, match="nan.tif: contains NaN"):
        read_image(tmp_path / "nan.tif")
    soft = np.clip(img, 0, 1) * 0.5
    with pytest.raises(InputError, match="mask: contains NaN"):
        to_mask(soft, name="mask")
    rgb = photos["coffee"][:40, :60].copy()
    rgb[0, 0, 1] = np.inf
    with pytest.raises(InputError, match="NaN or infinite"):
        to_float_image(rgb)


def test_float_tiff_in_range_is_read_as_is(tmp_path, photos):
    img = photos["coffee"][:40, :60].mean(axis=2).astype(np.float32)
    Image.fromarray(img, "F").save(tmp_path / "f.tif")
    assert np.array_equal(read_image(tmp_path / "f.tif")[..., 0], img)
    Image.fromarray(img * 255, "F").save(tmp_path / "f255.tif")  # 0..255 floats
    with pytest.raises(InputError, match=r"must be in \[0, 1\].*divide by 255"):
        read_image(tmp_path / "f255.tif")


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.int16, np.uint32, np.uint64])
def test_integer_arrays_of_0_to_255_are_8_bit(photos, dtype):
    """Case 2: other integer types holding 0..255 mean 8-bit data (not white)."""
    u8 = (photos["chelsea"][:30, :40] * 255 + 0.5).astype(np.uint8)
    assert np.array_equal(to_float_image(u8.astype(dtype)), to_float_image(u8))
    wide = u8.astype(dtype)
    wide[0, 0, 0] = 256
    with pytest.raises(InputError, match=r"outside 0\.\.255.*uint16"):
        to_float_image(wide, name="src")


def test_float_0_to_255_is_refused_not_white(photos):
    f64 = photos["chelsea"][:30, :40].astype(np.float64) * 255
    with pytest.raises(InputError, match="src: float values must be in .*divide by 255"):
        to_float_image(f64, name="src")
    assert to_float_image(f64 / 255).dtype == np.float32


def test_outputs_get_the_umask_permissions(tmp_path, photos):
    """Case 3: atomic writes (mkstemp) no longer leave files 0600."""
    import os

    from gpgan.io import atomic_path

    old = os.umask(0o022)
    try:
        write_image(tmp_path / "a.png", photos["coffee"][:8, :8])
        assert (tmp_path / "a.png").stat().st_mode & 0o777 == 0o644
        os.umask(0o002)
        with atomic_path(tmp_path / "b.csv") as tmp:
            tmp.write_text("x\n")
        assert (tmp_path / "b.csv").stat().st_mode & 0o777 == 0o664
    finally:
        os.umask(old)


def _png_header_only(path, width: int, height: int) -> None:
    """A PNG whose header claims ``width x height`` (grey, 8-bit) with a token IDAT:
    what a decompression bomb looks like before decoding."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b""))


def test_decompression_bomb_and_size_guard(tmp_path):
    """Case 7: a 30000x30000 PNG (Pillow's DecompressionBombError) and a 169 MP one are
    refused from the header, before any decoding, with a way to raise the limit."""
    _png_header_only(tmp_path / "bomb.png", 30000, 30000)
    with pytest.raises(InputError, match=r"bomb.png: 30000x30000 is 900\.0 megapixels.*"
                                         r"limit of 100.*--max-megapixels"):
        read_image(tmp_path / "bomb.png")
    _png_header_only(tmp_path / "big.png", 13000, 13000)
    with pytest.raises(InputError, match="169.0 megapixels"):
        read_mask(tmp_path / "big.png")
    with pytest.raises(InputError, match="truncated"):  # limit raised: decoding is tried
        read_image(tmp_path / "big.png", max_megapixels=200)


def test_animated_images_are_refused(tmp_path, photos):
    """Case 9: an animated GIF no longer silently means its first frame."""
    frames = [Image.fromarray((photos["coffee"][:30, :40] * 255).astype(np.uint8)),
              Image.fromarray((photos["chelsea"][:30, :40] * 255).astype(np.uint8))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    with pytest.raises(InputError, match=r"anim.gif: animated or multi-frame image \(2 "
                                         r"frames\)"):
        read_image(tmp_path / "anim.gif")
    frames[0].save(tmp_path / "still.gif")
    assert read_image(tmp_path / "still.gif").shape == (30, 40, 3)


@pytest.mark.parametrize("channels", [3, 4])
def test_48_and_64_bit_png_keep_16_bits(tmp_path, photos, channels):
    """Case 9: 16-bit colour PNGs (Pillow reads them as 8-bit) keep their 16 bits, and
    their EXIF orientation."""
    import cv2  # writes 16-bit colour PNGs (Pillow cannot)

    rgb = photos["astronaut"][:50, :70]
    rgb16 = (rgb * 65535 + 0.5).astype(np.uint16)
    rgb16[0, 0] = (1, 2, 3)  # values an 8-bit reading cannot keep
    data = rgb16 if channels == 3 else np.dstack([rgb16, np.full((50, 70), 65535, np.uint16)])
    bgr = data[:, :, [2, 1, 0] + ([3] if channels == 4 else [])]
    assert cv2.imwrite(str(tmp_path / "wide.png"), bgr)
    got = read_image(tmp_path / "wide.png")
    assert np.array_equal(got, rgb16.astype(np.float32) / 65535.0)
    # the same file with an EXIF orientation (eXIf chunk): turned like any other image
    exif = Image.Exif()
    exif[0x0112] = 6
    raw = (tmp_path / "wide.png").read_bytes()
    import struct
    import zlib

    body = exif.tobytes()
    chunk = struct.pack(">I", len(body)) + b"eXIf" + body + struct.pack(
        ">I", zlib.crc32(b"eXIf" + body))
    end = raw.index(b"IDAT") - 4
    (tmp_path / "wide6.png").write_bytes(raw[:end] + chunk + raw[end:])
    turned = read_image(tmp_path / "wide6.png")
    assert np.array_equal(turned, np.rot90(got, -1))


def test_unwritable_output_is_one_line(tmp_path, photos, monkeypatch):
    """Case 7: a full disk while saving is an OutputError, not a traceback; no temp
    file is left behind."""
    import errno

    from gpgan.errors import OutputError

    def full(self, fp, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", full)
    with pytest.raises(OutputError, match="cannot write .*out.png: No space left on device"):
        write_image(tmp_path / "out.png", photos["coffee"][:8, :8])
    assert list(tmp_path.iterdir()) == []
