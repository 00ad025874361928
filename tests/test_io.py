"""Image / mask reading in every common encoding, atomic writes."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from gpgan.errors import InputError
from gpgan.io import read_image, read_mask, to_float_image, to_mask, write_image


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
    b[0, 0, 0], b[1, 1, 1] = -0.5, 1.5
    c = to_float_image(b)
    assert c[0, 0, 0] == 0.0 and c[1, 1, 1] == 1.0 and b[0, 0, 0] == -0.5  # clipped copy
    assert np.array_equal(c[2:], a[2:])
    nan = a.copy()
    nan[0, 0, 0] = np.nan
    assert to_float_image(nan) is not nan
    m = a[:, :, 0].copy()
    assert to_mask(m) is m  # a float32 mask in [0, 1] is used as is
    m255 = m * 255
    assert np.allclose(to_mask(m255), m) and to_mask(m255) is not m255


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
