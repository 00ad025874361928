"""gpgan.data.demo: relit real-photo scenes; determinism, speed, physical sanity."""

from __future__ import annotations

import csv
import time

import numpy as np
import pytest
import skimage.data
from PIL import Image

from gpgan.data.scenes import read_groups
from gpgan.data.demo import (DEMO_PHOTOS, build_demo_dataset, load_photo, relight,
                             sample_relight_params)
from gpgan.errors import ConfigError, InputError


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_all_photos_load_offline():
    for name in DEMO_PHOTOS:
        img = load_photo(name)
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
        assert min(img.shape[:2]) >= 300 and img.std() > 20  # a real photo, not blank
    with pytest.raises(InputError, match="unknown demo photo"):
        load_photo("lena")


def test_same_arguments_give_byte_identical_files(tmp_path):
    kw = dict(n_scenes=4, n_variants=3, size=64, seed=7)
    a = build_demo_dataset(tmp_path / "a", **kw)
    b = build_demo_dataset(tmp_path / "b", **kw)
    assert [p.relative_to(tmp_path / "a") for p in a] == [p.relative_to(tmp_path / "b") for p in b]
    fa, fb = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert len(fa) == 4 * 3 + 1 and fa == fb  # + variants.csv
    c = build_demo_dataset(tmp_path / "c", **{**kw, "seed": 8})
    assert all(pa.read_bytes() != pc.read_bytes() for pa, pc in zip(a, c))


def test_more_scenes_keep_the_existing_ones(tmp_path):
    a = build_demo_dataset(tmp_path / "a", n_scenes=2, n_variants=2, size=48, seed=0)
    b = build_demo_dataset(tmp_path / "b", n_scenes=7, n_variants=2, size=48, seed=0)
    assert len(b) == 14
    for p in a:
        assert p.read_bytes() == (tmp_path / "b" / p.relative_to(tmp_path / "a")).read_bytes()


def test_default_build_is_fast_and_well_formed(tmp_path):
    """The acceptance criterion: the default demo dataset builds in < 30 s (2 cores)."""
    t0 = time.perf_counter()
    paths = build_demo_dataset(tmp_path / "demo", n_scenes=30)
    seconds = time.perf_counter() - t0
    assert seconds < 30, f"demo build took {seconds:.1f} s"
    assert len(paths) == 30 * 8
    scenes = sorted({p.parent.name for p in paths})
    assert len(scenes) == 30 and {s.rsplit("_", 1)[0] for s in scenes} == set(DEMO_PHOTOS)
    with open(tmp_path / "demo" / "variants.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 240 and {r["file"] for r in rows} == {
        p.relative_to(tmp_path / "demo").as_posix() for p in paths}
    # images of a scene share one size, short side 256, long side 1, 4/3 or 3/2 of it
    for scene in scenes:
        sizes = {Image.open(p).size for p in paths if p.parent.name == scene}
        assert len(sizes) == 1
        (w, h), = sizes
        assert min(w, h) == 256
        assert min(abs(max(w, h) / 256 - a) for a in (1.0, 4 / 3, 3 / 2)) < 0.02


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    build_demo_dataset(root, n_scenes=6, n_variants=4, size=96, seed=3)
    return root


def _grad(p):
    g = np.asarray(Image.open(p).convert("L"), dtype=np.float64)[:90, :91]
    return np.diff(g, axis=1).ravel()


def test_variants_are_the_same_place_under_different_light(small_demo):
    scenes = sorted(p for p in small_demo.iterdir() if p.is_dir())
    same, other = [], []
    for i, s in enumerate(scenes):
        v = sorted(s.glob("*.png"))
        imgs = [np.asarray(Image.open(p), dtype=np.float64) for p in v]
        # lighting differs: no two variants are (nearly) equal
        for a in range(len(imgs)):
            for b in range(a + 1, len(imgs)):
                assert np.abs(imgs[a] - imgs[b]).mean() > 2.0
        same.append(np.corrcoef(_grad(v[0]), _grad(v[1]))[0, 1])
        other.append(np.corrcoef(_grad(v[0]), _grad(sorted(scenes[i - 1].glob("*.png"))[1]))[0, 1])
    # geometry is shared: edges of two variants line up, edges of different scenes do not
    assert min(same) > 0.6 and max(other) < 0.3


def test_relighting_model_directions(photos):
    img = photos["rocket"][:64, :64]
    base = sample_relight_params(np.random.default_rng(0))
    neutral = {**base, "haze": 0.0, "gamma": 1.0, "contrast": 1.0, "saturation": 1.0,
               "shot_noise": 0.0, "read_noise": 0.0, "sun_share": 0.0, "t_sky": 6500.0,
               "tint": 0.0, "ev": 0.0}
    ident = relight(img, neutral).astype(np.float64)
    # neutral parameters reproduce the photo up to 8-bit rounding
    assert np.abs(ident - img * 255).max() <= 1.0
    bright = relight(img, {**neutral, "ev": 0.5}).astype(np.float64)
    assert bright.mean() > ident.mean() + 5
    warm = relight(img, {**neutral, "t_sky": 3500.0}).astype(np.float64)
    cool = relight(img, {**neutral, "t_sky": 12000.0}).astype(np.float64)
    ratio = lambda x: x[..., 0].mean() / x[..., 2].mean()  # noqa: E731
    assert ratio(warm) > ratio(ident) > ratio(cool)
    hazy = relight(img, {**neutral, "haze": 0.8}).astype(np.float64)
    edges = lambda x: np.abs(np.diff(x, axis=1)).mean()  # noqa: E731
    assert edges(hazy) < 0.9 * edges(ident)  # haze lowers local contrast
    assert hazy[:8].mean() > ident[:8].mean() + 10  # and veils the (far) dark sky
    noisy = relight(img, {**neutral, "read_noise": 0.02})
    assert 2 < np.abs(noisy - ident).mean() < 8


@pytest.mark.parametrize("kw", [dict(n_scenes=0), dict(n_variants=1), dict(size=8),
                                dict(photos=[])])
def test_bad_arguments(tmp_path, kw):
    with pytest.raises(ConfigError):
        build_demo_dataset(tmp_path, **kw)


def test_one_scene_per_photo_with_photo_folders_and_groups(tmp_path):
    # a photos.csv folder (the layout gpgan.data.photos writes) joins the package photos
    folder = tmp_path / "photos"
    (folder / "g1").mkdir(parents=True)
    rows = []
    for name, group in (("a", "g1"), ("b", "g1")):
        img = skimage.data.coffee()[::4, ::4] if name == "a" else skimage.data.chelsea()[::3, ::3]
        Image.fromarray(img).save(folder / "g1" / f"{name}.png")
        rows.append(f"{name},g1/{name}.png,{group},test,{img.shape[1]},{img.shape[0]}")
    (folder / "photos.csv").write_text("name,file,group,source,width,height\n"
                                       + "\n".join(rows) + "\n")
    paths = build_demo_dataset(tmp_path / "demo", n_variants=2, size=48, seed=0,
                               photos=["rocket"], photo_dirs=[folder], crop=(1.0, 1.0))
    assert sorted({p.parent.name for p in paths}) == ["a_00", "b_00", "rocket_00"]
    groups = read_groups(tmp_path / "demo" / "variants.csv")
    assert groups == {"rocket_00": "rocket", "a_00": "g1", "b_00": "g1"}
    # crop (1, 1): the scene spans the photo's short side
    w, h = Image.open(tmp_path / "demo" / "a_00" / "00.png").size
    assert min(w, h) == 48
