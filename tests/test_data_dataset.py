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


def _crop(root, rel, y, x, size=64):
    """Independent reference: Pillow bilinear resize to short side `size` (ceil), crop."""
    im = Image.open(root / rel).convert("RGB")
    s = size / min(im.size)
    w, h = int(np.ceil(im.width * s - 1e-9)), int(np.ceil(im.height * s - 1e-9))
    a = np.asarray(im.resize((w, h), Image.Resampling.BILINEAR), dtype=np.float32)
    return torch.from_numpy(a[y:y + size, x:x + size].transpose(2, 0, 1).copy()) / 127.5 - 1


def test_items_shape_range_and_content(setup):
    root, manifest = setup
    ds = CompositeDataset(manifest, root)
    assert len(ds) == 200
    for i in (0, 1, 57, 199):
        comp, gt = ds[i]
        assert comp.shape == gt.shape == (3, 64, 64)
        assert comp.dtype == gt.dtype == torch.float32
        assert comp.min() >= -1 and comp.max() <= 1 and gt.min() >= -1 and gt.max() <= 1
        y, x = ds.crop[i]
        obj = _crop(root, ds.obj[i], y, x)
        bg = _crop(root, ds.bg[i], y, x)
        torch.testing.assert_close(gt, bg, atol=1e-6, rtol=0)           # gt = scene crop
        inner = (slice(None), slice(16, 48), slice(16, 48))
        torch.testing.assert_close(comp[inner], obj[inner], atol=1e-6, rtol=0)  # pasted object
        outside = torch.ones(64, 64, dtype=torch.bool)
        outside[16:48, 16:48] = False
        torch.testing.assert_close(comp[:, outside], gt[:, outside])   # rest = scene
        assert (comp[inner] - gt[inner]).abs().mean() > 0.01          # two different lightings


def test_deterministic_and_dataloader(setup):
    root, manifest = setup
    a, b = CompositeDataset(manifest, root), CompositeDataset(manifest, root)
    for i in (3, 150):
        for ta, tb in zip(a[i], b[i]):
            assert torch.equal(ta, tb)
    loader = torch.utils.data.DataLoader(a, batch_size=16, shuffle=False, num_workers=0)
    comp, gt = next(iter(loader))
    assert comp.shape == (16, 3, 64, 64) and torch.equal(comp[3], a[3][0])


def test_ratio_image_size_flip_and_cache(setup, tmp_path):
    root, _ = setup
    manifest = write_train_manifest(root, None, 50, tmp_path / "m32.csv", seed=1, image_size=32)
    ds = CompositeDataset(manifest, root, image_size=32, ratio=0.25, cache_size=3)
    comp, gt = ds[0]
    assert comp.shape == (3, 32, 32)
    diff = (comp != gt).any(0)
    assert not diff[:12].any() and not diff[20:].any() and not diff[:, :12].any()
    for i in range(len(ds)):
        ds[i]
    assert len(ds._cache) == 3  # LRU bounded
    flip = CompositeDataset(manifest, root, image_size=32, ratio=0.25, flip=True)
    odd = next(i for i in range(len(ds)) if ds.seed[i] % 2 == 1)
    even = next(i for i in range(len(ds)) if ds.seed[i] % 2 == 0)
    assert torch.equal(flip[odd][1], ds[odd][1].flip(-1))
    assert torch.equal(flip[even][1], ds[even][1])


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
        comp, gt = skip[0]
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
    p.write_text("scene,obj_image,bg_image,crop_y,crop_x,seed\nrocket_00,a,b,x,0,1\n")
    with pytest.raises(InputError, match=":2: bad row"):
        CompositeDataset(p, root)
    p.write_text("scene,obj_image,bg_image,crop_y,crop_x,seed\n"
                 "rocket_00,rocket_00/00.png,rocket_00/01.png,500,0,1\n")
    with pytest.raises(InputError, match="does not fit"):
        CompositeDataset(p, root)[0]
    with pytest.raises(ConfigError):
        CompositeDataset(p, root, on_error="ignore")
    with pytest.raises(InputError, match="no such manifest"):
        CompositeDataset(tmp_path / "none.csv", root)
