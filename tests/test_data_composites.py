"""gpgan.data.composites: scene splits, training manifests, full-resolution test composites."""

from __future__ import annotations

import csv
import logging
import shutil

import numpy as np
import pytest
from PIL import Image

from gpgan.data.composites import (TEST_COLUMNS, TRAIN_COLUMNS, build_composites,
                                   make_test_composites, random_blob_mask,
                                   write_train_manifest)
from gpgan.data.scenes import list_scenes, read_groups, split_scenes
from gpgan.data.demo import build_demo_dataset
from gpgan.errors import ConfigError, InputError


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """10 real-photo scenes x 3 variants, short side 80 px."""
    root = tmp_path_factory.mktemp("scenes")
    build_demo_dataset(root, n_scenes=10, n_variants=3, size=80, seed=1)
    return root


def _rows(path):
    with open(path, newline="") as f:
        reader = csv.reader(f)
        return next(reader), list(reader)


def _img(path):
    return np.asarray(Image.open(path))


def test_list_scenes(demo):
    index = list_scenes(demo)
    assert len(index) == 10
    assert all(len(v) == 3 and all(p.startswith(s + "/") for p in v) for s, v in index.items())
    assert list_scenes(demo, ["rocket_00"]) == {"rocket_00": ["rocket_00/00.png",
                                                              "rocket_00/01.png",
                                                              "rocket_00/02.png"]}
    with pytest.raises(InputError, match="does not exist"):
        list_scenes(demo, ["nope"])


def test_corrupt_image_is_reported_never_used(demo, tmp_path, caplog):
    root = tmp_path / "scenes"
    shutil.copytree(demo / "rocket_00", root / "rocket_00")
    shutil.copytree(demo / "coffee_00", root / "coffee_00")
    bad = root / "rocket_00" / "01.png"
    bad.write_bytes(bad.read_bytes()[:300])  # truncated PNG: header fine, data cut
    with pytest.raises(InputError) as err:
        list_scenes(root)
    assert str(err.value).startswith(str(bad))
    with caplog.at_level(logging.WARNING, logger="gpgan"):
        index = list_scenes(root, on_error="skip")
    assert index["rocket_00"] == ["rocket_00/00.png", "rocket_00/02.png"]
    assert str(bad) in caplog.text
    # the skipped image never shows up in a manifest
    out = write_train_manifest(root, index, 300, tmp_path / "t.csv", seed=0)
    assert all("rocket_00/01.png" not in r for r in _rows(out)[1])
    # a scene whose images differ in size is refused as well
    Image.new("RGB", (50, 40)).save(root / "coffee_00" / "09.png")
    with pytest.raises(InputError, match="differs from the scene"):
        list_scenes(root, on_error="fail")


def test_split_scenes_disjoint_and_seeded():
    scenes = [f"s{i:03d}" for i in range(101)]
    sp = split_scenes(scenes, {"train": 0.9, "val": 0.05, "test": 0.05}, seed=0)
    assert [len(v) for v in sp.values()] == [91, 5, 5]
    assert set().union(*sp.values()) == set(scenes)
    assert sum(len(v) for v in sp.values()) == len(scenes)  # no scene twice
    assert sp == split_scenes(reversed(scenes), {"train": 0.9, "val": 0.05, "test": 0.05}, 0)
    assert sp["test"] != split_scenes(scenes, {"train": 0.9, "val": 0.05, "test": 0.05},
                                      seed=1)["test"]
    small = split_scenes(["a", "b", "c"], {"train": 0.9, "val": 0.05, "test": 0.05}, seed=0)
    assert [len(v) for v in small.values()] == [1, 1, 1]
    with pytest.raises(ConfigError):
        split_scenes(scenes, {"train": 0.9, "test": 0.2})
    with pytest.raises(ConfigError):
        split_scenes(scenes, {"train": 1.1, "test": -0.1})


def test_split_keeps_every_group_in_one_split():
    # 40 scenes from 12 photographs of uneven size: no photograph in two splits
    groups = {f"s{i:02d}": f"photo{i % 12}" for i in range(40)}
    fr = {"train": 0.7, "val": 0.1, "test": 0.2}
    sp = split_scenes(groups, fr, seed=3, groups=groups)
    where = {}
    for split, names in sp.items():
        for n in names:
            assert where.setdefault(groups[n], split) == split
    assert sum(map(len, sp.values())) == 40 and all(sp.values())
    assert abs(len(sp["train"]) - 28) <= 4  # close to the fractions, in scenes
    assert sp == split_scenes(sorted(groups, reverse=True), fr, seed=3, groups=groups)
    assert sp != split_scenes(groups, fr, seed=4, groups=groups)


def test_train_manifest_reference_geometry(demo, tmp_path):
    # the reference: a short-side square at a random position, the centre square mask
    index = list_scenes(demo)
    scenes = sorted(index)[:6]
    out = write_train_manifest(demo, scenes, 2000, tmp_path / "train.csv", seed=5)
    header, rows = _rows(out)
    assert tuple(header) == TRAIN_COLUMNS and len(rows) == 2000
    used = set()
    for scene, obj, bg, y, x, h, w, flip, cover, seed in rows:
        used.add(scene)
        assert obj != bg and obj.startswith(scene + "/") and bg.startswith(scene + "/")
        assert (demo / obj).is_file() and (demo / bg).is_file()
        W, H = Image.open(demo / obj).size
        assert int(h) == int(w) == min(H, W)
        assert 0 <= int(y) <= H - int(h) and 0 <= int(x) <= W - int(w)
        assert flip == "0" and cover == "0" and 0 <= int(seed) < 2**31
    assert used == set(scenes)  # every scene drawn, only the given ones
    # crop positions really vary over the valid range (non-square scenes)
    assert len({(r[3], r[4]) for r in rows}) > 5
    again = write_train_manifest(demo, scenes, 2000, tmp_path / "again.csv", seed=5)
    assert out.read_bytes() == again.read_bytes()
    other = write_train_manifest(demo, scenes, 2000, tmp_path / "other.csv", seed=6)
    assert out.read_bytes() != other.read_bytes()


def test_train_manifest_fresh_variation(demo, tmp_path):
    # boxes of random size and shape, flips and blob masks, all from the seed
    kw = dict(seed=2, image_size=16, scale=(0.4, 1.0), aspect=1.5, flip=0.5,
              coverage=(0.05, 0.4))
    out = write_train_manifest(demo, None, 3000, tmp_path / "v.csv", **kw)
    _, rows = _rows(out)
    sides = []
    for scene, obj, bg, y, x, h, w, flip, cover, seed in rows:
        W, H = Image.open(demo / obj).size
        y, x, h, w = int(y), int(x), int(h), int(w)
        assert 0 <= y and y + h <= H and 0 <= x and x + w <= W
        assert max(h, w) / min(h, w) <= 1.5 + 2 / min(h, w)
        assert 0.05 <= float(cover) <= 0.4
        sides.append(min(h, w) / min(H, W))
    assert min(sides) < 0.45 and max(sides) > 0.95
    flips = np.mean([r[7] == "1" for r in rows])
    assert 0.45 < flips < 0.55
    # no two rows the same sample (pair, box, mask)
    assert len({tuple(r[1:]) for r in rows}) == len(rows)
    again = write_train_manifest(demo, None, 3000, tmp_path / "w.csv", **kw)
    assert out.read_bytes() == again.read_bytes()


def test_train_manifest_bad_arguments(demo, tmp_path):
    with pytest.raises(ConfigError):
        write_train_manifest(demo, ["rocket_00"], 0, tmp_path / "x.csv", seed=0)
    with pytest.raises(ConfigError):
        write_train_manifest(demo, ["rocket_00"], 5, tmp_path / "x.csv", seed=0, ratio=0)
    with pytest.raises(InputError, match="does not exist"):
        write_train_manifest(demo, {"rocket_00": ["rocket_00/77.png", "rocket_00/00.png"]}, 5,
                             tmp_path / "x.csv", seed=0)


@pytest.mark.parametrize("coverage", [0.05, 0.2, 0.4])
def test_random_blob_mask_coverage_and_shape(coverage):
    m = random_blob_mask(90, 130, coverage, np.random.default_rng(0))
    assert m.shape == (90, 130) and m.dtype == np.float32
    assert set(np.unique(m)) == {0.0, 1.0}
    assert abs(m.mean() - coverage) < 0.005
    # one connected blob (star-shaped around its centre)
    from scipy import ndimage

    assert ndimage.label(m)[1] == 1
    assert np.array_equal(m, random_blob_mask(90, 130, coverage, np.random.default_rng(0)))


def test_test_composites(demo, tmp_path):
    scenes = ["rocket_00", "coffee_00", "chelsea_00"]
    out = tmp_path / "comp"
    csv_path = make_test_composites(demo, scenes, out, n=7, seed=2)
    header, rows = _rows(csv_path)
    assert csv_path == out / "test.csv" and tuple(header) == TEST_COLUMNS and len(rows) == 7
    assert {r[1] for r in rows} == set(scenes)  # round-robin over the scenes
    for cid, scene, src, dst, mask, gt, h, w, cov in rows:
        s, d, m, g = (_img(out / p) for p in (src, dst, mask, gt))
        assert s.shape == d.shape == g.shape == (int(h), int(w), 3) and m.shape == (int(h), int(w))
        assert src == f"{cid}/src.png" and (out / cid).is_dir()
        np.testing.assert_array_equal(g, d)                   # gt = dst
        variants = [_img(p) for p in sorted((demo / scene).glob("*.png"))]
        ia = [k for k, v in enumerate(variants) if np.array_equal(v, s)]
        ib = [k for k, v in enumerate(variants) if np.array_equal(v, d)]
        assert len(ia) == 1 and len(ib) == 1 and ia != ib     # two variants of one scene
        assert set(np.unique(m)) <= {0, 255}
        assert 0.05 - 0.005 <= float(cov) <= 0.4 + 0.005
        assert abs((m > 127).mean() - float(cov)) < 1e-5
    again = make_test_composites(demo, scenes, tmp_path / "again", n=7, seed=2)
    assert again.read_bytes() == csv_path.read_bytes()
    assert (tmp_path / "again/0003/mask.png").read_bytes() == (out / "0003/mask.png").read_bytes()
    # a smaller second run removes the stale composites
    make_test_composites(demo, scenes, out, n=3, seed=2)
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["0000", "0001", "0002"]


def test_test_composites_max_size_and_object_masks(demo, tmp_path):
    masks = tmp_path / "masks" / "rocket_00"
    masks.mkdir(parents=True)
    h, w = _img(demo / "rocket_00/00.png").shape[:2]
    obj = np.zeros((h, w), np.uint8)
    obj[10:40, 20:50] = 255
    Image.fromarray(obj).save(masks / "m.png")
    out = tmp_path / "comp"
    make_test_composites(demo, ["rocket_00"], out, n=2, seed=0, max_size=60,
                         masks_root=tmp_path / "masks")
    _, rows = _rows(out / "test.csv")
    for r in rows:
        assert max(int(r[6]), int(r[7])) == 60
        m = _img(out / r[4])
        assert m.shape == (int(r[6]), int(r[7]))
        # the object mask (resized), not a random blob: a rectangle near the top-left
        ys, xs = np.nonzero(m)
        assert ys.min() >= 5 and xs.max() < 40 and m[ys.min():ys.max() + 1,
                                                    xs.min():xs.max() + 1].all()
    with pytest.raises(ConfigError):
        make_test_composites(demo, ["rocket_00"], out, n=2, seed=0, coverage=(0.5, 0.2))


def test_build_composites_respects_splits(demo, tmp_path):
    out = tmp_path / "run"
    written = build_composites(demo, out, seed=4, n_train=500, n_val=50, n_test=4,
                               fractions={"train": 0.6, "val": 0.2, "test": 0.2})
    assert set(written) == {"splits", "train", "val", "test"}
    assert not (out / "validation").exists()
    _, split_rows = _rows(out / "splits.csv")
    split_of = {s: k for s, k in split_rows}
    assert len(split_of) == len(split_rows) == 10  # each scene exactly once
    for name in ("train", "val"):
        _, rows = _rows(out / f"{name}.csv")
        assert {split_of[r[0]] for r in rows} == {name}
    _, test_rows = _rows(out / "test.csv")
    assert len(test_rows) == 4 and {split_of[r[1]] for r in test_rows} == {"test"}


def test_build_composites_groups_and_validation_blends(demo, tmp_path):
    # scenes of one photograph never straddle two splits; full-size validation
    # composites come from the validation split only
    groups = read_groups(demo / "variants.csv")  # 10 scenes of 6 photographs
    assert len(groups) == 10 and len(set(groups.values())) == 6
    out = tmp_path / "run"
    written = build_composites(demo, out, seed=1, n_train=300, n_val=20, n_test=6,
                               n_val_blends=5, groups=demo / "variants.csv",
                               train_masks="blob", scale=(0.5, 1.0), aspect=1.3, flip=0.5,
                               fractions={"train": 0.5, "val": 0.25, "test": 0.25})
    assert written["validation"] == out / "validation" / "validation.csv"
    _, split_rows = _rows(out / "splits.csv")
    split_of = dict(split_rows)
    by_group = {}
    for scene, split in split_of.items():
        assert by_group.setdefault(groups[scene], split) == split
    _, val_rows = _rows(written["validation"])
    assert len(val_rows) == 5 and {split_of[r[1]] for r in val_rows} == {"val"}
    assert all((out / "validation" / r[4]).is_file() for r in val_rows)
    _, train_rows = _rows(out / "train.csv")
    assert all(float(r[8]) > 0 for r in train_rows)  # blob masks


# ---------------------------------------------------------------- hostile input (issue 13)
@pytest.mark.parametrize("bad, needle", [
    (dict(n_train=-5), "n_train must be an integer >= 0"),
    (dict(n_test=-1), "n_test must be an integer >= 0"),
    (dict(coverage=(0.5, 0.2)), "coverage range"),
    (dict(ratio=2.0), "0 < ratio <= 1"),
    (dict(max_size=4), "max_size"),
    (dict(masks_root="no/such/masks"), "no such masks folder"),
])
def test_build_composites_checks_everything_before_writing(demo, tmp_path, bad, needle):
    """Case 6: negative counts, bad ranges and a missing masks folder were found after
    splits.csv, train.csv and val.csv had been written (or not at all)."""
    out = tmp_path / "run"
    options = dict(n_train=50, n_val=10, n_test=2) | bad
    with pytest.raises((ConfigError, InputError), match=needle):
        build_composites(demo, out, **options)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_one_scene_cannot_make_a_validation_split(demo, tmp_path):
    """Case 6: one scene went to train and val/test were silently missing."""
    root = tmp_path / "one"
    shutil.copytree(demo / "rocket_00", root / "rocket_00")
    with pytest.raises(ConfigError, match=r"1 usable scene\(s\) leave the val split .* "
                                          r"need at least 3 scenes"):
        build_composites(root, tmp_path / "run", n_train=50, n_val=10, n_test=2)
    assert not (tmp_path / "run").exists()
    written = build_composites(root, tmp_path / "run", n_train=50, n_val=10, n_test=2,
                               fractions={"train": 1.0, "val": 0.0, "test": 0.0})
    assert set(written) == {"splits", "train"}  # asked for: no val, no test


def test_masks_root_without_masks_for_the_test_scenes(demo, tmp_path):
    """Case 6: a masks folder holding none of the test scenes silently meant random
    blobs."""
    (tmp_path / "masks" / "some_other_scene").mkdir(parents=True)
    with pytest.raises(InputError, match="no masks for any of the"):
        build_composites(demo, tmp_path / "run", n_train=50, n_val=10, n_test=2,
                         masks_root=tmp_path / "masks")
    assert not (tmp_path / "run").exists()


def test_failure_half_way_leaves_the_earlier_run_intact(demo, tmp_path):
    """Case 6: a run that fails while writing test composites (here: an unreadable
    object mask) leaves out_dir exactly as the earlier run left it."""
    out = tmp_path / "run"
    build_composites(demo, out, seed=4, n_train=50, n_val=10, n_test=3)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    masks = tmp_path / "masks"
    for scene in list_scenes(demo):
        (masks / scene).mkdir(parents=True)
        (masks / scene / "m.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="not a readable image"):
        build_composites(demo, out, seed=5, n_train=60, n_val=10, n_test=3,
                         masks_root=masks)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["masks", "run"]  # no temp left
