"""gpgan.data.dataset.CompositeDataset: on-the-fly 64x64 composites from a manifest."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from gpgan.data.composites import write_train_manifest
from gpgan.data.dataset import CompositeDataset
from gpgan.data.demo import build_demo_dataset
from gpgan.errors import ConfigError, InputError

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("scenes")
    build_demo_dataset(root, n_scenes=4, n_variants=3, size=96, seed=2)
    manifest = write_train_manifest(root, None, 200, root.parent / "train.csv", seed=0)
    return root, manifest


def _crop(root, rel, box, size=64):
    """Independent reference: crop the box, then Pillow's bilinear resize."""
    y, x, h, w = (int(v) for v in box)
    im = Image.open(root / rel).convert("RGB").crop((x, y, x + w, y + h))
    a = np.asarray(im.resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32)
    return torch.from_numpy(a.transpose(2, 0, 1).copy()) / 127.5 - 1


def test_items_shape_range_and_content(setup):
    root, manifest = setup
    ds = CompositeDataset(manifest, root)
    assert len(ds) == 200
    inner = (slice(None), slice(16, 48), slice(16, 48))
    for i in (0, 1, 57, 199):
        comp, gt, m = ds[i]
        assert comp.shape == gt.shape == (3, 64, 64) and m.shape == (1, 64, 64)
        assert comp.dtype == gt.dtype == m.dtype == torch.float32
        assert comp.min() >= -1 and comp.max() <= 1 and gt.min() >= -1 and gt.max() <= 1
        obj = _crop(root, ds.obj[i], ds.box[i])
        bg = _crop(root, ds.bg[i], ds.box[i])
        # same pixels as crop-then-resize, up to Pillow's filter support at the box edge
        core = (slice(None), slice(2, -2), slice(2, -2))
        torch.testing.assert_close(gt[core], bg[core], atol=3 / 127.5, rtol=0)
        torch.testing.assert_close(comp[inner], obj[inner], atol=3 / 127.5, rtol=0)
        assert torch.equal(m[0, 16:48, 16:48], torch.ones(32, 32))  # reference centre square
        assert float(m.sum()) == 32 * 32
        outside = m[0] == 0
        torch.testing.assert_close(comp[:, outside], gt[:, outside])   # rest = scene
        assert (comp[inner] - gt[inner]).abs().mean() > 0.01          # two different lightings


def test_deterministic_and_dataloader(setup):
    root, manifest = setup
    a, b = CompositeDataset(manifest, root), CompositeDataset(manifest, root)
    for i in (3, 150):
        for ta, tb in zip(a[i], b[i]):
            assert torch.equal(ta, tb)
    loader = torch.utils.data.DataLoader(a, batch_size=16, shuffle=False, num_workers=0)
    comp, gt, m = next(iter(loader))
    assert comp.shape == (16, 3, 64, 64) and m.shape == (16, 1, 64, 64)
    assert torch.equal(comp[3], a[3][0])


def test_blob_masks_boxes_and_flips_from_the_manifest(setup, tmp_path):
    root, _ = setup
    kw = dict(seed=1, image_size=32, scale=(0.5, 1.0), aspect=1.5, coverage=(0.1, 0.3))
    plain = write_train_manifest(root, None, 40, tmp_path / "a.csv", **kw)
    ds = CompositeDataset(plain, root, image_size=32, cache_size=3)
    for i in range(len(ds)):
        comp, gt, m = ds[i]
        assert comp.shape == (3, 32, 32)
        assert abs(float(m.mean()) - ds.coverage[i]) < 0.02  # the row's coverage
        mm = m[0].bool()
        obj = _crop(root, ds.obj[i], ds.box[i], 32)
        torch.testing.assert_close(comp[:, ~mm], gt[:, ~mm])
        core = mm.clone()
        core[:2], core[-2:], core[:, :2], core[:, -2:] = False, False, False, False
        torch.testing.assert_close(comp[:, core], obj[:, core], atol=3 / 127.5, rtol=0)
    assert len(ds._cache) == 3  # LRU bounded
    # the flip column mirrors both images (and the mask stays the row's)
    with open(plain) as f:
        lines = f.read().splitlines()
    flipped = tmp_path / "f.csv"
    cols = lines[0].split(",")
    k = cols.index("flip")
    rows = [r.split(",") for r in lines[1:]]
    for r in rows:
        r[k] = "1"
    flipped.write_text("\n".join([lines[0]] + [",".join(r) for r in rows]) + "\n")
    fl = CompositeDataset(flipped, root, image_size=32)
    for i in (0, 7):
        assert torch.equal(fl[i][1], ds[i][1].flip(-1))
        assert torch.equal(fl[i][2], ds[i][2])
    # the truth alone (what G(z) trains on) is the item's truth, flipped or not
    for d in (ds, fl):
        for i in (0, 7, 39):
            assert torch.equal(d.truth_item(i), d[i][1])


def test_missing_and_corrupt_images(setup, tmp_path, caplog):
    root0, manifest = setup
    root = tmp_path / "scenes"
    shutil.copytree(root0, root)
    ds = CompositeDataset(manifest, root)
    victim = ds.obj[0]
    # corrupt: exists but not an image
    (root / victim).write_bytes(b"not a png")
    bad = CompositeDataset(manifest, root)
    with pytest.raises(InputError, match=str(root / victim)):
        bad[0]
    skip = CompositeDataset(manifest, root, on_error="skip")
    with caplog.at_level(logging.WARNING, logger="gpgan"):
        comp, gt, _ = skip[0]
    assert str(root / victim) in caplog.text
    j = next(k for k in range(1, len(ds)) if victim not in (ds.obj[k], ds.bg[k]))
    assert torch.equal(comp, CompositeDataset(manifest, root0)[j][0])  # next good row
    # missing: refused at construction, or its rows dropped
    (root / victim).unlink()
    with pytest.raises(InputError, match="missing"):
        CompositeDataset(manifest, root)
    kept = CompositeDataset(manifest, root, on_error="skip")
    n_bad = sum(victim in (o, b) for o, b in zip(ds.obj, ds.bg))
    assert n_bad > 0 and len(kept) == len(ds) - n_bad and victim not in kept.obj + kept.bg


def test_bad_manifest(setup, tmp_path):
    root, _ = setup
    p = tmp_path / "m.csv"
    p.write_text("scene,obj,bg\n")
    with pytest.raises(InputError, match="header must be"):
        CompositeDataset(p, root)
    head = "scene,obj_image,bg_image,crop_y,crop_x,crop_h,crop_w,flip,coverage,seed\n"
    p.write_text(head + "rocket_00,a,b,x,0,9,9,0,0,1\n")
    with pytest.raises(InputError, match=":2: bad row"):
        CompositeDataset(p, root)
    p.write_text(head + "rocket_00,a,b,0,0,9,9,0,1.5,1\n")
    with pytest.raises(InputError, match=":2: bad row"):
        CompositeDataset(p, root)
    p.write_text(head + "rocket_00,rocket_00/00.png,rocket_00/01.png,500,0,96,96,0,0,1\n")
    with pytest.raises(InputError, match="does not fit"):
        CompositeDataset(p, root)[0]
    with pytest.raises(ConfigError):
        CompositeDataset(p, root, on_error="ignore")
    with pytest.raises(InputError, match="no such manifest"):
        CompositeDataset(tmp_path / "none.csv", root)
