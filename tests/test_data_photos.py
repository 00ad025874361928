"""The mvtb-data photo set: a pinned wheel, fetched with pip or given as a file, verified,
its colour photographs extracted atomically. No network: a small fake wheel (real
photos from skimage.data) is passed as a file or served from a local PEP 503 index."""

from __future__ import annotations

import functools
import hashlib
import io
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image, ImageOps

from gpgan.cli import main
from gpgan.data import photos as ph
from gpgan.errors import DownloadError, InputError

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")

# The photos the fake wheel holds (the real list is 57; see test_real_wheel_...).
FAKE = (
    ph.Photo("flowers1", "flowers1.png", "flowers-1-8"),          # RGBA, half-transparent block
    ph.Photo("P1070492", "campus/holdout/P1070492.png", "campus-a"),  # RGB PNG in a subfolder
    ph.Photo("butterfly", "butterfly.jpg", "butterfly"),            # JPEG
    ph.Photo("aerialphoto", "mosaic/aerialphoto.png", "aerial"),    # EXIF orientation 6
)


def _png(arr, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def originals():
    from skimage import data

    coffee = data.coffee()[::2, ::2]                       # 200 x 300
    alpha = np.full(coffee.shape[:2], 255, np.uint8)
    alpha[20:60, 30:90] = 128
    rocket = data.rocket()[::2, ::2]                       # 214 x 320
    jpeg = io.BytesIO()
    Image.fromarray(data.astronaut()[::4, ::4]).save(jpeg, format="JPEG", quality=95)
    with Image.open(jpeg) as im:
        decoded = np.asarray(im.convert("RGB"))            # 128 x 128
    return {
        "flowers1": np.dstack([coffee, alpha]),
        "P1070492": data.chelsea()[::2, ::2],              # 150 x 226
        "butterfly.jpg": jpeg.getvalue(),
        "butterfly": decoded,
        "aerialphoto": rocket,
    }


@pytest.fixture(scope="module")
def fake_wheel(tmp_path_factory, originals):
    """``mvtb_data-1.6.1-py3-none-any.whl`` holding FAKE plus a grey image; its sha256."""
    path = tmp_path_factory.mktemp("wheel") / ph.MVTB_WHEEL
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: viewers rotate it 90 degrees clockwise
    members = {
        "mvtbdata/__init__.py": b"",
        "mvtbdata/images/flowers1.png": _png(originals["flowers1"]),
        "mvtbdata/images/campus/holdout/P1070492.png": _png(originals["P1070492"]),
        "mvtbdata/images/butterfly.jpg": originals["butterfly.jpg"],
        "mvtbdata/images/mosaic/aerialphoto.png": _png(originals["aerialphoto"], exif=exif),
        "mvtbdata/images/street.png": _png(np.full((40, 50), 90, np.uint8)),
        "mvtb_data-1.6.1.dist-info/METADATA":
            b"Metadata-Version: 2.4\nName: mvtb-data\nVersion: 1.6.1\n"
            b"Classifier: License :: OSI Approved :: MIT License\n",
        "mvtb_data-1.6.1.dist-info/WHEEL":  # pip reads it when it downloads the wheel
            b"Wheel-Version: 1.0\nGenerator: setuptools (80.9.0)\nRoot-Is-Purelib: true\n"
            b"Tag: py3-none-any\n",
        "mvtb_data-1.6.1.dist-info/top_level.txt": b"mvtbdata\n",
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, blob in members.items():
            zf.writestr(name, blob)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def local_index(tmp_path_factory, fake_wheel):
    """A PEP 503 "simple" index folder serving the fake wheel; its file:// URL."""
    root = tmp_path_factory.mktemp("index") / "simple"
    (root / "mvtb-data").mkdir(parents=True)
    shutil.copy(fake_wheel[0], root / "mvtb-data" / ph.MVTB_WHEEL)
    sha = fake_wheel[1]
    (root / "index.html").write_text('<html><body><a href="mvtb-data/">mvtb-data</a>'
                                     '</body></html>\n')
    (root / "mvtb-data" / "index.html").write_text(
        f'<html><body><a href="{ph.MVTB_WHEEL}#sha256={sha}">{ph.MVTB_WHEEL}</a>'
        f'</body></html>\n')
    return root.as_uri()


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _one_line(exc) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and msg
    return msg


# --- the list -------------------------------------------------------------------------

def test_photo_list_names_groups_and_exclusions():
    names = [p.name for p in ph.MVTB_PHOTOS]
    paths = [p.path for p in ph.MVTB_PHOTOS]
    groups = {p.group for p in ph.MVTB_PHOTOS}
    assert len(names) == len(set(names)) == 57 and len(groups) == 26
    assert len([p for p in paths if p.startswith("campus/")]) == 25
    assert {p.group for p in ph.MVTB_PHOTOS if p.name.startswith("P1070")} == {
        "campus-a", "campus-b", "campus-c", "campus-d"}
    by_group = {g: sorted(p.name for p in ph.MVTB_PHOTOS if p.group == g) for g in groups}
    assert by_group["eiffel"] == ["eiffel-1", "eiffel-2"]
    assert by_group["rocks2"] == ["rocks2-l", "rocks2-r"]
    assert by_group["walls"] == ["walls-l", "walls-r"]
    assert by_group["aerial"] == ["aerial-08", "aerial-09", "aerial-10", "aerialphoto"]
    assert len(by_group["tomato"]) == 4
    assert "church.png" in paths and "church.jpg" not in paths
    for left_out in ("lena", "monalisa", "greenscreen", "lab-scene", "fisheye_target",
                     "yellowtargets", "arucoboard", "apriltag12", "tags", "building2-1",
                     "castle", "street", "adelson", "wheres-wally"):
        assert left_out not in names


@pytest.mark.skipif(not os.environ.get("GPGAN_MVTB_WHEEL"),
                    reason="set GPGAN_MVTB_WHEEL to the real mvtb_data-1.6.1 wheel (130 MB)")
def test_real_wheel_holds_every_listed_photo_in_colour():
    wheel = Path(os.environ["GPGAN_MVTB_WHEEL"])
    assert ph.sha256_file(wheel) == ph.MVTB_SHA256
    with zipfile.ZipFile(wheel) as zf:
        meta = zf.read("mvtb_data-1.6.1.dist-info/METADATA").decode()
        assert "License :: OSI Approved :: MIT License" in meta
        for p in ph.MVTB_PHOTOS:
            with zf.open(ph.MVTB_IMAGES + p.path) as f, Image.open(f) as im:
                a = np.asarray(ImageOps.exif_transpose(im).convert("RGB")).astype(int)
            chroma = np.abs(a[..., 0] - a[..., 1]) + np.abs(a[..., 1] - a[..., 2])
            assert chroma.mean() > 5, p.path  # colour (least: roof 8.4; grey images: 0)


# --- fetching ------------------------------------------------------------------------

def test_local_wheel_is_extracted_as_rgb_png_with_a_table(tmp_path, fake_wheel, originals):
    wheel, sha = fake_wheel
    out = ph.fetch_mvtb_photos(tmp_path / "mvtb", wheel=wheel, sha256=sha, photos=FAKE)
    assert out == tmp_path / "mvtb" and sorted(os.listdir(tmp_path)) == ["mvtb"]
    rows = ph.read_photo_table(out)
    assert [r["name"] for r in rows] == [p.name for p in FAKE]
    assert (out / "photos.csv").read_text().splitlines()[0] == ",".join(ph.PHOTO_COLUMNS)
    assert rows[1]["file"] == out / "campus-a" / "P1070492.png"
    assert rows[1]["source"] == "mvtb-data==1.6.1:mvtbdata/images/campus/holdout/P1070492.png"
    assert not (out / "street").exists()  # not listed: not extracted
    got = {}
    for r in rows:
        with Image.open(r["file"]) as im:
            assert im.format == "PNG" and im.mode == "RGB"
            assert (r["width"], r["height"]) == im.size
            got[r["name"]] = np.asarray(im).astype(int)
    # RGBA: composited over white; opaque pixels unchanged
    rgba = originals["flowers1"].astype(int)
    a = rgba[..., 3:] / 255.0
    expected = rgba[..., :3] * a + 255 * (1 - a)
    assert np.abs(got["flowers1"] - expected).max() <= 1
    assert np.array_equal(got["flowers1"][100:], rgba[100:, :, :3])
    assert np.array_equal(got["P1070492"], originals["P1070492"])
    # EXIF orientation 6 applied: the stored 214 x 320 image is shown 320 x 214, rotated
    assert got["aerialphoto"].shape == (320, 214, 3)
    assert np.array_equal(got["aerialphoto"], np.rot90(originals["aerialphoto"], -1))
    assert np.array_equal(got["butterfly"], originals["butterfly"])  # JPEG, decoded once
    provenance = (out / "PROVENANCE.txt").read_text()
    assert sha in provenance and "MIT" in provenance and "4 in 4 groups" in provenance


def test_max_side_downscales_and_keeps_the_aspect(tmp_path, fake_wheel):
    wheel, sha = fake_wheel
    out = ph.fetch_mvtb_photos(tmp_path / "m", wheel=wheel, sha256=sha, photos=FAKE,
                               max_side=150)
    sizes = {r["name"]: (r["width"], r["height"]) for r in ph.read_photo_table(out)}
    assert sizes == {"flowers1": (150, 100), "P1070492": (150, 100), "butterfly": (128, 128),
                     "aerialphoto": (100, 150)}  # 128 px already fits: not up-scaled
    with Image.open(out / "aerial" / "aerialphoto.png") as im:
        assert im.size == (100, 150)


def test_pip_fetches_the_wheel_from_a_local_index(tmp_path, fake_wheel, local_index):
    """The real `pip download` path, offline: a file:// PEP 503 index."""
    wheel, sha = fake_wheel
    direct = ph.fetch_mvtb_photos(tmp_path / "direct", wheel=wheel, sha256=sha, photos=FAKE)
    out = ph.fetch_mvtb_photos(tmp_path / "pip" / "mvtb", index_url=local_index, sha256=sha,
                               photos=FAKE)
    assert _tree(out) == _tree(direct)
    assert os.listdir(tmp_path / "pip") == ["mvtb"]  # the downloaded wheel is not kept


def test_a_new_fetch_replaces_the_old_folder_as_a_whole(tmp_path, fake_wheel):
    wheel, sha = fake_wheel
    out = tmp_path / "mvtb"
    ph.fetch_mvtb_photos(out, wheel=wheel, sha256=sha, photos=FAKE)
    (out / "stale.txt").write_text("from an older run")
    ph.fetch_mvtb_photos(out, wheel=wheel, sha256=sha, photos=FAKE[:2])
    assert len(ph.read_photo_table(out)) == 2 and not (out / "stale.txt").exists()
    assert not (out / "butterfly").exists() and os.listdir(tmp_path) == ["mvtb"]


# --- failures: one line, nothing half-written -------------------------------------------

def test_wrong_sha256_is_one_line_and_leaves_nothing(tmp_path, fake_wheel):
    wheel, sha = fake_wheel
    with pytest.raises(DownloadError) as exc:
        ph.fetch_mvtb_photos(tmp_path / "mvtb", wheel=wheel, photos=FAKE)  # pinned sha
    msg = _one_line(exc)
    assert "sha256 mismatch" in msg and ph.MVTB_SHA256 in msg and sha in msg
    assert os.listdir(tmp_path) == []


def test_a_failure_keeps_the_previous_folder_untouched(tmp_path, fake_wheel):
    wheel, sha = fake_wheel
    out = ph.fetch_mvtb_photos(tmp_path / "mvtb", wheel=wheel, sha256=sha, photos=FAKE)
    before = _tree(out)
    missing = (*FAKE, ph.Photo("roof", "roof.png", "roof"))  # not in the fake wheel
    with pytest.raises(DownloadError) as exc:
        ph.fetch_mvtb_photos(out, wheel=wheel, sha256=sha, photos=missing)
    assert "has no mvtbdata/images/roof.png" in _one_line(exc)
    assert _tree(out) == before and os.listdir(tmp_path) == ["mvtb"]


@pytest.mark.parametrize("index", ["file:///nonexistent/simple", "http://127.0.0.1:9/simple",
                                   "http://user:secret@127.0.0.1:9/simple"])
def test_unreachable_index_names_package_and_fetch_command(tmp_path, monkeypatch, index):
    monkeypatch.setenv("PIP_RETRIES", "0")  # no back-off on the refused connection
    monkeypatch.setenv("PIP_TIMEOUT", "5")
    with pytest.raises(DownloadError) as exc:
        ph.fetch_mvtb_photos(tmp_path / "mvtb", index_url=index, photos=FAKE)
    msg = _one_line(exc)
    assert "mvtb-data==1.6.1" in msg and index.replace("secret", "***") in msg
    assert "secret" not in msg
    assert "`pip download mvtb-data==1.6.1 --no-deps -d DIR`" in msg
    assert f"--wheel DIR/{ph.MVTB_WHEEL}" in msg
    assert os.listdir(tmp_path) == []


def test_bad_arguments_are_input_errors(tmp_path, fake_wheel):
    wheel, sha = fake_wheel
    grey = (ph.Photo("street", "street.png", "street"),)
    cases = [
        (dict(wheel=tmp_path / "none.whl"), "no such wheel file"),
        (dict(wheel=wheel, sha256="abc"), "64 hexadecimal digits"),
        (dict(wheel=wheel, sha256=sha, max_side=0), "max_side"),
        (dict(wheel=wheel, sha256=sha, photos=(FAKE[0], FAKE[0])), "unique names"),
        (dict(wheel=wheel, sha256=sha, photos=grey), "not a colour photograph"),
    ]
    for kwargs, needle in cases:
        kwargs.setdefault("photos", FAKE)
        with pytest.raises(InputError) as exc:
            ph.fetch_mvtb_photos(tmp_path / "mvtb", **kwargs)
        assert needle in _one_line(exc)
        assert os.listdir(tmp_path) == []


# --- CLI and workflow ------------------------------------------------------------------

def _error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in err
    return lines[0]


def test_cli_fetch_photos_exit_codes(tmp_path, fake_wheel, local_index, capsys, monkeypatch):
    wheel, sha = fake_wheel
    code = main(["fetch-photos", "--out", str(tmp_path / "a"), "--wheel", str(wheel), "-q"])
    assert code == 2 and "sha256 mismatch" in _error_line(capsys.readouterr().err)
    code = main(["fetch-photos", "--out", str(tmp_path / "a"), "--index-url",
                 "file:///nonexistent/simple", "-q"])
    assert code == 2 and "pip download mvtb-data==1.6.1" in _error_line(capsys.readouterr().err)
    code = main(["fetch-photos", "--out", str(tmp_path / "a"), "--wheel",
                 str(tmp_path / "none.whl"), "-q"])
    assert code == 2 and "no such wheel file" in _error_line(capsys.readouterr().err)
    assert os.listdir(tmp_path) == []
    # success: the fake wheel's checksum and photo list stand in for the pinned ones
    monkeypatch.setattr(ph, "fetch_mvtb_photos",
                        functools.partial(ph.fetch_mvtb_photos, sha256=sha, photos=FAKE))
    code = main(["fetch-photos", "--out", str(tmp_path / "b"), "--index-url", local_index,
                 "--max-side", "100", "-q"])
    out = capsys.readouterr().out
    assert code == 0 and "wrote 4 photos in 4 groups" in out
    assert max(r["width"] for r in ph.read_photo_table(tmp_path / "b")) == 100


def test_workflow_rule_refuses_a_wheel_that_is_not_the_pinned_one(tmp_path, fake_wheel):
    """Rule fetch_photos against a local artefact (no network): the fake wheel is not the
    pinned one, so the job fails with the one-line reason in its log and leaves nothing."""
    cfg = yaml.safe_load((ROOT / ".test/config/config.yaml").read_text())
    cfg["dataset"]["demo"]["mvtb"] = {"wheel": str(fake_wheel[0]), "max_side": 256}
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.run([SNAKEMAKE, "--cores", "1", "--directory", str(tmp_path),
                           "--snakefile", str(ROOT / "Snakefile"), "resources/photos/mvtb"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0, proc.stdout + proc.stderr
    log = (tmp_path / "logs" / "fetch_photos.log").read_text()
    assert "sha256 mismatch" in log and ph.MVTB_SHA256 in log
    left = [p for p in (tmp_path / "resources").rglob("*") if not p.is_dir()]
    assert left == [] and not (tmp_path / "resources" / "photos" / "mvtb").exists()


def test_workflow_rule_fetches_a_local_wheel_with_its_checksum(tmp_path, originals):
    """Rule fetch_photos against a local artefact (no network): a stand-in wheel with
    every listed photo (small crops of real photos) and its SHA-256 configured; the job
    extracts them all and writes the table."""
    wheel = tmp_path / ph.MVTB_WHEEL
    crops = [originals["flowers1"], originals["P1070492"], originals["aerialphoto"]]
    with zipfile.ZipFile(wheel, "w") as zf:
        for k, photo in enumerate(ph.MVTB_PHOTOS):
            zf.writestr(ph.MVTB_IMAGES + photo.path, _png(crops[k % 3][k:k + 24, k:k + 32]))
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    cfg = yaml.safe_load((ROOT / ".test/config/config.yaml").read_text())
    cfg["dataset"]["demo"]["mvtb"] = {"wheel": str(wheel), "sha256": sha, "max_side": 256}
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.run([SNAKEMAKE, "--cores", "1", "--directory", str(tmp_path),
                           "--snakefile", str(ROOT / "Snakefile"), "resources/photos/mvtb"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rows = ph.read_photo_table(tmp_path / "resources" / "photos" / "mvtb")
    assert [r["name"] for r in rows] == [p.name for p in ph.MVTB_PHOTOS]
    assert all(r["file"].is_file() and (r["width"], r["height"]) == (32, 24) for r in rows)
