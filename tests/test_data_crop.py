"""gpgan.data.crop: bbox parsing (file:line errors) and per-scene cropping."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gpgan.data.crop import crop_dataset, read_bbox
from gpgan.errors import InputError

REPO = Path(__file__).resolve().parents[1]


def _bbox(tmp_path, text: str) -> Path:
    p = tmp_path / "bbox.txt"
    p.write_text(text)
    return p


def test_read_bbox_format(tmp_path):
    p = _bbox(tmp_path, "# comment\n\n00017658:4,8,473,633\n  s b : 1, 2 ,3,4  \n")
    assert read_bbox(p) == {"00017658": (4, 8, 473, 633), "s b": (1, 2, 3, 4)}


def test_shipped_example_parses():
    boxes = read_bbox(REPO / "config" / "bbox.example.txt")
    assert boxes["00017658"] == (4, 8, 473, 633) and len(boxes) >= 2


@pytest.mark.parametrize("line, needle", [
    ("scene:1,2,3", "expected 'scene:sx,sy,ex,ey'"),
    ("scene 1,2,3,4", "expected"),
    ("scene:a,2,3,4", "expected"),
    (":1,2,3,4", "expected"),
    ("scene:5,2,5,4", "empty or negative"),
    ("scene:1,9,3,4", "empty or negative"),
    ("scene:-1,2,3,4", "empty or negative"),
    ("sceneA:0,0,2,2", "already has a box on line 2"),
])
def test_bad_line_names_file_and_line(tmp_path, line, needle):
    p = _bbox(tmp_path, "# header\nsceneA:0,0,1,1\n" + line + "\n")
    with pytest.raises(InputError) as err:
        read_bbox(p)
    msg = str(err.value)
    assert msg.startswith(f"{p}:3:") and needle in msg and "\n" not in msg


def test_missing_bbox_file(tmp_path):
    with pytest.raises(InputError, match="no such bounding-box file"):
        read_bbox(tmp_path / "nope.txt")


@pytest.fixture
def data_root(tmp_path, photos):
    """Two scenes of real photos (lossless PNG) + one scene of JPEGs."""
    root = tmp_path / "imageAlignedLD"
    rocket = (photos["rocket"][:120, :160] * 255).round().astype(np.uint8)
    coffee = (photos["coffee"][:100, :150] * 255).round().astype(np.uint8)
    for scene, img in (("rocket", rocket), ("coffee", coffee)):
        (root / scene).mkdir(parents=True)
        for k in range(2):
            Image.fromarray(np.roll(img, 3 * k, axis=1)).save(root / scene / f"{k}.png")
    (root / "jpgscene").mkdir()
    Image.fromarray(rocket).save(root / "jpgscene" / "a.jpg", quality=90)
    return root


def test_crop_exact_pixels_and_kept_whole_scene(tmp_path, data_root, caplog):
    bbox = _bbox(tmp_path, "rocket:10,20,110,150\nghost:0,0,5,5\n")
    out = tmp_path / "cropped"
    with caplog.at_level(logging.INFO, logger="gpgan"):
        s = crop_dataset(data_root, bbox, out)
    assert s.scenes == ["coffee", "jpgscene", "rocket"] and s.images == 5
    assert s.cropped == ["rocket"] and s.uncropped == ["coffee", "jpgscene"]
    assert s.missing == ["ghost"]
    for k in range(2):  # rows sx:ex, cols sy:ey, end exclusive, pixels copied exactly
        src = np.asarray(Image.open(data_root / "rocket" / f"{k}.png"))
        got = np.asarray(Image.open(out / "rocket" / f"{k}.png"))
        assert got.shape == (100, 130, 3)
        np.testing.assert_array_equal(got, src[10:110, 20:150])
        whole = np.asarray(Image.open(data_root / "coffee" / f"{k}.png"))
        np.testing.assert_array_equal(np.asarray(Image.open(out / "coffee" / f"{k}.png")), whole)
    assert (out / "jpgscene" / "a.png").exists()
    text = caplog.text
    assert "scene coffee: no bounding box, keeping the whole image" in text
    assert "ghost" in text
    # idempotent: same bytes on a second run
    before = (out / "rocket" / "0.png").read_bytes()
    crop_dataset(data_root, bbox, out)
    assert (out / "rocket" / "0.png").read_bytes() == before


def test_box_must_fit_every_image(tmp_path, data_root):
    bbox = _bbox(tmp_path, "\ncoffee:0,0,101,150\n")  # coffee is 100 rows high
    with pytest.raises(InputError) as err:
        crop_dataset(data_root, bbox, tmp_path / "out")
    assert str(err.value).startswith(f"{bbox}:2:") and "100x150" in str(err.value)


def test_corrupt_image_fail_or_skip(tmp_path, data_root):
    bad = data_root / "rocket" / "2.png"
    bad.write_bytes((data_root / "rocket" / "0.png").read_bytes()[:200])  # truncated
    with pytest.raises(InputError, match=str(bad)):
        crop_dataset(data_root, None, tmp_path / "out1")
    s = crop_dataset(data_root, None, tmp_path / "out2", on_error="skip")
    assert s.skipped == [str(bad)] and not (tmp_path / "out2" / "rocket" / "2.png").exists()
    assert (tmp_path / "out2" / "rocket" / "1.png").exists()


def test_bad_arguments(tmp_path, data_root):
    with pytest.raises(InputError, match="no such data folder"):
        crop_dataset(tmp_path / "nowhere", None, tmp_path / "o")
    with pytest.raises(InputError, match="on_error"):
        crop_dataset(data_root, None, tmp_path / "o", on_error="ignore")


def test_one_bad_box_writes_no_scene(tmp_path, data_root):
    """Issue 13, case 6: the scenes before the out-of-bounds box were already written."""
    bbox = _bbox(tmp_path, "coffee:0,0,50,50\nrocket:0,0,121,100\n")  # rocket: 120 rows
    out = tmp_path / "out"
    with pytest.raises(InputError, match="rocket.* does not fit"):
        crop_dataset(data_root, bbox, out)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bbox.txt", "imageAlignedLD"]


def test_failed_crop_leaves_the_earlier_output_intact(tmp_path, data_root):
    """Issue 13, case 6: a crop that fails half-way had replaced part of the output."""
    out = tmp_path / "out"
    crop_dataset(data_root, None, out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    bad = data_root / "rocket" / "2.png"  # the last scene: found after coffee's crops
    bad.write_bytes((data_root / "rocket" / "0.png").read_bytes()[:200])
    with pytest.raises(InputError, match=str(bad)):
        crop_dataset(data_root, _bbox(tmp_path, "coffee:0,0,50,50\n"), out)
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
