"""The unsupervised GP-GAN's G(z) trained by the same WGAN loop (``model: unsupervised``):
the paper's networks, logs, bitwise resume, NaN stop, config rules, the HDF5 data, CLI."""

from __future__ import annotations

import csv
import sys

import numpy as np
import pytest
import torch

from gpgan import cli
from gpgan.checkpoints import LATENT_GRID_COLUMNS
from gpgan.errors import ConfigError, DependencyError, InputError, TrainingError
from gpgan.figures import training_curves
from gpgan.io import read_image
from gpgan.models import Critic, LatentGenerator, load_generator
from gpgan.train import (PAPER_CONFIG, PAPER_UNSUPERVISED_CONFIG, critic_steps,
                         iterations_for_epochs, resolve_config, train)
from gpgan.trainconfig import batches_per_iteration

try:  # tests/ as a rootdir-inserted folder (default) or as a package
    from test_train import SIZE, TINY, make_pairs
except ImportError:  # pragma: no cover
    from tests.test_train import SIZE, TINY, make_pairs

#: A tiny G(z) run: the paper's optimiser (RMSprop) and critic schedule, scaled down.
TINY_U = dict(model="unsupervised", image_size=SIZE, nz=8, base_width=8, batch_size=8,
              critic_iters=1, critic_iters_boost=3, boost_first=2, boost_every=0,
              optimizer="rmsprop", lr_g=5e-5, lr_d=5e-5, checkpoint_every=2, log_every=1,
              n_samples=4, seed=7)


class Images(torch.utils.data.Dataset):
    """The ground truths of ``make_pairs`` as single (3, S, S) images; from call number
    ``after`` on, raises (``kill``) or returns NaN images (``nan``)."""

    def __init__(self, pairs, after: int = 10 ** 9, mode: str = "kill"):
        self.pairs, self.after, self.mode, self.calls = pairs, after, mode, 0

    def __len__(self):
        return len(self.pairs)

    def __getitem__(self, i):
        self.calls += 1
        y = self.pairs[i][1]
        if self.calls > self.after:
            if self.mode == "kill":
                raise RuntimeError("simulated kill")
            y = torch.full_like(y, float("nan"))
        return y


@pytest.fixture(scope="module")
def pairs():
    torch.set_num_threads(1)
    return make_pairs(24, seed=0)


def calls_before(iteration: int, cfg: dict, start: int = 0) -> int:
    """Dataset calls a G(z) run resumed at ``start`` makes before 0-based generator
    ``iteration`` begins: 1 checked item + its batches (critic batches only; the
    sample grids use a fixed z, not data)."""
    full = resolve_config(cfg)
    return 1 + sum(batches_per_iteration(i, full) for i in range(start, iteration)) \
        * full["batch_size"]


def read_log(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def state(path):
    return torch.load(path, weights_only=True)


def assert_same_tensors(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def n_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_paper_networks_parameter_counts():
    # DCGAN_G(64, nz=100, ngf=64): deconvs 100*512*16 + 512*256*16 + 256*128*16
    # + 128*64*16 + 64*3*16 = 3,574,784 weights, BN 2*(512+256+128+64) = 1,920
    G = LatentGenerator(64, 100, 64)
    assert n_params(G) == 3_576_704 == 3_574_784 + 1_920
    # DCGAN_D(64, ndf=64): convs 3*64*16 + 64*128*16 + 128*256*16 + 256*512*16
    # + 512*1*16 = 2,763,776 weights, BN 2*(128+256+512) = 1,792
    D = Critic(64, 64)
    assert n_params(D) == 2_765_568 == 2_763_776 + 1_792
    cfg = resolve_config(PAPER_UNSUPERVISED_CONFIG)
    assert (cfg["model"], cfg["nz"], cfg["base_width"], cfg["critic_width"]) == \
        ("unsupervised", 100, 64, 64)
    assert (cfg["optimizer"], cfg["lr_g"], cfg["lr_d"], cfg["batch_size"], cfg["epochs"]) == \
        ("rmsprop", 5e-5, 5e-5, 128, 25)
    assert (cfg["clamp"], cfg["critic_iters"], cfg["critic_iters_boost"], cfg["boost_first"],
            cfg["boost_every"]) == (0.01, 5, 100, 25, 500)
    assert resolve_config(PAPER_CONFIG)["model"] == "blending"


def test_few_iterations_log_and_publish_a_latent_generator(tmp_path, pairs):
    cfg = dict(TINY_U, iterations=5, n_samples=10)
    res = train(cfg, pairs, None, tmp_path / "run", progress=False)  # triples: truth used
    assert res["iterations"] == 5 and "l2" not in res
    assert np.isfinite(res["errD"]) and np.isfinite(res["errG"])
    log = read_log(tmp_path / "run" / "train_log.csv")
    assert [int(r["iteration"]) for r in log] == [1, 2, 3, 4, 5]
    assert all(r["l2"] == "" for r in log)  # no L2 term
    assert all(np.isfinite(float(r[k])) for r in log for k in ("errD", "errG"))
    assert all(float(r["images_per_s"]) > 0 for r in log)

    G = load_generator(res["final"], "cpu")
    assert isinstance(G, LatentGenerator)
    assert G.arch == {"kind": "latent", "image_size": SIZE, "nz": 8, "base_width": 8}
    with torch.no_grad():
        out = G(torch.randn(3, 8))
    assert out.shape == (3, 3, SIZE, SIZE) and out.abs().max() <= 1.0
    full = state(tmp_path / "run" / "state" / "checkpoints" / "iter_0000005.pt")
    assert full["critic_arch"] == {"image_size": SIZE, "base_width": 8}
    assert "square_avg" in full["opt_d"]["state"][0]  # RMSprop, not Adam
    assert "exp_avg" not in full["opt_g"]["state"][0]
    # G(z) draws no data batch: only the critic steps' batches (3 + 3 + 1 + 1 + 1)
    assert full["batches"] == sum(critic_steps(i, resolve_config(cfg)) for i in range(5)) == 9

    # the sample grid: G of a fixed seeded z, 8 images a row (10 -> 2 rows)
    grid = read_image(tmp_path / "run" / "samples" / "iter_0000005_z.png")
    gap, k = 2, LATENT_GRID_COLUMNS
    assert grid.shape[:2] == (2 * SIZE + gap, k * SIZE + (k - 1) * gap)
    assert sorted(p.name for p in (tmp_path / "run" / "samples").iterdir()) == \
        ["iter_0000002_z.png", "iter_0000004_z.png", "iter_0000005_z.png"]

    # the training figure of a G(z) log: errD and errG only (two panels, not three)
    two = training_curves(tmp_path / "run" / "train_log.csv", tmp_path / "two.png")
    filled = [dict(r, l2="0.01") for r in log]
    with open(tmp_path / "filled.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(log[0]))
        w.writeheader()
        w.writerows(filled)
    three = training_curves(tmp_path / "filled.csv", tmp_path / "three.png")
    w2, w3 = read_image(two).shape[1], read_image(three).shape[1]
    assert 0.55 < w2 / w3 < 0.8


def test_critic_learns_to_tell_real_from_generated(tmp_path, pairs):
    # Adam at the Blending GAN's critic rate: within 20 iterations the critic scores the
    # real images above G(z)'s (errD = mean D(fake) - mean D(real) < 0)
    cfg = dict(TINY_U, optimizer="adam", lr_g=2e-4, lr_d=2e-4, iterations=20, log_every=5,
               checkpoint_every=20, n_samples=0)
    train(cfg, Images(pairs), None, tmp_path, progress=False)
    log = read_log(tmp_path / "train_log.csv")
    assert [int(r["iteration"]) for r in log] == [5, 10, 15, 20]
    assert all(float(r["errD"]) < 0 for r in log)


def test_resume_after_kill_is_bitwise_identical(tmp_path, pairs):
    cfg = dict(TINY_U, iterations=6)
    ref = train(cfg, Images(pairs), None, tmp_path / "ref", progress=False)
    assert ref["iterations"] == 6

    run = tmp_path / "run"
    train(dict(cfg, iterations=3), Images(pairs), None, run, progress=False)
    # killed during iteration 6 (after the checkpoint at 4 and log row 5) ...
    kill = Images(pairs, calls_before(5, cfg, start=3) + 3, "kill")
    with pytest.raises(RuntimeError, match="simulated kill"):
        train(cfg, kill, None, run, progress=False)
    assert not (run / "done").exists()
    assert [int(r["iteration"]) for r in read_log(run / "state" / "train_log.csv")] == \
        [1, 2, 3, 4, 5]
    # ... and resumed from the checkpoint at 4: same z draws, same batches, same result
    counting = Images(pairs)
    res = train(cfg, counting, None, run, progress=False)
    assert res["iterations"] == 6 and counting.calls == calls_before(6, cfg, start=4)

    assert_same_tensors(state(ref["final"])["generator"], state(res["final"])["generator"])
    full_ref = state(tmp_path / "ref" / "state" / "checkpoints" / "iter_0000006.pt")
    full_run = state(run / "state" / "checkpoints" / "iter_0000006.pt")
    assert_same_tensors(full_ref["critic"], full_run["critic"])
    for opt in ("opt_g", "opt_d"):
        assert torch.equal(full_ref[opt]["state"][0]["square_avg"],
                           full_run[opt]["state"][0]["square_avg"])
    assert full_ref["batches"] == full_run["batches"]
    assert torch.equal(full_ref["rng"]["torch"], full_run["rng"]["torch"])
    drop = ("seconds", "images_per_s")
    rows = [[{k: v for k, v in r.items() if k not in drop} for r in read_log(p)]
            for p in (tmp_path / "ref" / "train_log.csv", run / "train_log.csv")]
    assert rows[0] == rows[1] and len(rows[0]) == 6
    assert (tmp_path / "ref" / "samples" / "iter_0000006_z.png").read_bytes() == \
        (run / "samples" / "iter_0000006_z.png").read_bytes()
    # weight clipping holds for the critic (up to its last, unclipped RMSprop step)
    for name, p in full_ref["critic"].items():
        if "running" not in name and p.is_floating_point():
            assert float(p.abs().max()) <= 0.01 + 1e-3


def test_split_run_equals_one_run_under_cpu_autocast(tmp_path, pairs):
    cfg = dict(TINY_U, iterations=4, amp=True, n_samples=0)
    ref = train(cfg, Images(pairs), None, tmp_path / "ref", progress=False)
    train(dict(cfg, iterations=2), Images(pairs), None, tmp_path / "run", progress=False)
    res = train(cfg, Images(pairs), None, tmp_path / "run", progress=False)
    assert_same_tensors(state(ref["final"])["generator"], state(res["final"])["generator"])


def test_nan_loss_stops_with_iteration(tmp_path, pairs):
    cfg = dict(TINY_U, iterations=6)
    poisoned = Images(pairs, calls_before(2, cfg), "nan")  # from 0-based iteration 2
    with pytest.raises(TrainingError, match=r"non-finite loss at iteration 3 \(errD=nan"
                       ) as err:
        train(cfg, poisoned, None, tmp_path, progress=False)
    msg = str(err.value)
    assert "\n" not in msg and "l2" not in msg
    assert not (tmp_path / "final.pt").exists()
    assert sorted(p.name for p in (tmp_path / "state" / "checkpoints").glob("*.pt")) == \
        ["iter_0000002.pt"]


@pytest.mark.parametrize("change, key", [
    (dict(nz=9), "nz"),
    (dict(optimizer="adam"), "optimizer"),
    (dict(model="blending", nz=100, n_bottleneck=16), "model"),
])
def test_changing_model_nz_or_optimizer_refuses_resume(tmp_path, pairs, change, key):
    train(dict(TINY_U, iterations=2), pairs, None, tmp_path, progress=False)
    with pytest.raises(TrainingError, match=rf"another config \(.*{key}: "):
        train(dict(TINY_U, iterations=4, **change), pairs, None, tmp_path, progress=False)


def test_a_run_saved_before_the_new_keys_still_resumes(tmp_path, pairs):
    # checkpoints written before `model`, `nz`, `optimizer` existed lack them: they
    # count as their defaults (the Blending GAN, Adam), which is what those runs used
    cfg = dict(TINY, iterations=2, n_samples=0)
    train(cfg, pairs, None, tmp_path, progress=False)
    path = tmp_path / "state" / "checkpoints" / "iter_0000002.pt"
    ckpt = state(path)
    for key in ("model", "nz", "optimizer"):
        del ckpt["config"][key]
    torch.save(ckpt, path)
    assert train(dict(cfg, iterations=3), pairs, None, tmp_path,
                 progress=False)["iterations"] == 3
    with pytest.raises(TrainingError, match="optimizer: 'adam' -> 'rmsprop'"):
        train(dict(cfg, iterations=4, optimizer="rmsprop"), pairs, None,
              tmp_path, progress=False)


@pytest.mark.parametrize("cfg, match", [
    (dict(model="wgan"), r"model='wgan': use blending or unsupervised"),
    (dict(optimizer="sgd"), r"optimizer='sgd': use adam or rmsprop"),
    (dict(model="unsupervised", nz=0), r"nz=0: expected int >= 1"),
    (dict(nz=64), r"nz=64 is not used by model: blending"),
    (dict(model="unsupervised", n_bottleneck=256), r"n_bottleneck=256 is not used by model: unsupervised"),
    (dict(model="unsupervised", mask_input=True), r"mask_input=True is not used"),
    (dict(model="unsupervised", l2_weight=0.5), r"l2_weight=0.5 is not used"),
    (dict(optimizer="rmsprop", beta1=0.9), r"beta1=0.9 is not used by optimizer: rmsprop"),
])
def test_config_validation_is_one_line(cfg, match):
    with pytest.raises(ConfigError, match=match) as err:
        resolve_config(cfg)
    assert "\n" not in str(err.value)


def test_config_sections_and_epochs():
    wf = {"seed": 3, "composites": {"image_size": 32, "ratio": 0.25},
          "train": {"iterations": 5, "runtime_min": 30},
          "train_unsupervised": {"model": "unsupervised", "iterations": 7, "runtime_min": 60}}
    u = resolve_config(wf, section="train_unsupervised")
    assert (u["model"], u["iterations"], u["seed"], u["image_size"]) == \
        ("unsupervised", 7, 3, 32)
    assert u["ratio"] == 0.5  # the composites' ratio is not the unsupervised model's
    b = resolve_config(wf)
    assert (b["model"], b["iterations"], b["ratio"]) == ("blending", 5, 0.25)
    with pytest.raises(ConfigError, match="no `train_unsupervised:` section"):
        resolve_config({"train": {"iterations": 5}}, section="train_unsupervised")
    # epochs count data batches: G(z)'s generator step draws none
    small = resolve_config(dict(TINY_U, epochs=2))
    assert [batches_per_iteration(i, small) for i in range(4)] == [3, 3, 1, 1]
    assert iterations_for_epochs(2, 100, small) == 2 + 194
    blending = resolve_config(dict(TINY, epochs=2))
    assert [batches_per_iteration(i, blending) for i in range(4)] == [4, 4, 2, 2]


def test_bad_items_are_one_line_input_errors(tmp_path, pairs):
    bad = torch.utils.data.TensorDataset(torch.zeros(8, 3, 16, 16))  # 1-tuples, wrong size
    with pytest.raises(InputError, match=r"image tensors or \(composite, truth, mask\) "
                                         r"triples .* for model: unsupervised; got") as err:
        train(dict(TINY_U, iterations=1), bad, None, tmp_path, progress=False)
    assert "\n" not in str(err.value) and "(3, 16, 16)" in str(err.value)


# --------------------------------------------------------------------------------------
# HDF5 images
# --------------------------------------------------------------------------------------

def write_h5(path, images: np.ndarray, n_test: int | None = None, key: str = "imgs"):
    """An HDF5 file in the layout of iGAN's create_hdf5.py (Fuel H5PYDataset): ``imgs``
    uint8 (N, H, W, 3) and the root ``split`` attribute (Fuel's split array)."""
    import h5py

    with h5py.File(path, "w") as f:
        d = f.create_dataset(key, data=images)
        for i, label in enumerate(("batch", "height", "width", "channel")):
            d.dims[i].label = label
        if n_test is None:
            return
        n = len(images)
        dtype = np.dtype([("split", "S5"), ("source", f"S{len(key)}"), ("start", np.int64),
                          ("stop", np.int64), ("indices", h5py.ref_dtype),
                          ("available", bool), ("comment", "S1")])
        rows = np.empty(2, dtype)
        for i, (split, a, b) in enumerate((("train", 0, n - n_test), ("test", n - n_test, n))):
            rows[i] = (split.encode(), key.encode(), a, b, h5py.Reference(), True, b".")
        f.attrs["split"] = rows


def test_h5_image_dataset(tmp_path):
    from gpgan.data.dataset import H5ImageDataset

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (12, 16, 16, 3), dtype=np.uint8)
    write_h5(tmp_path / "outdoor.hdf5", images, n_test=2)
    train_set = H5ImageDataset(tmp_path / "outdoor.hdf5", 16)  # the authors' 'train'
    assert len(train_set) == 10
    x = train_set[3]
    assert x.dtype == torch.float32 and x.shape == (3, 16, 16)
    assert torch.allclose(x, torch.from_numpy(images[3].transpose(2, 0, 1)) / 127.5 - 1.0)
    assert x.min() >= -1.0 and x.max() <= 1.0
    test_set = H5ImageDataset(tmp_path / "outdoor.hdf5", 16, split="test")
    assert len(test_set) == 2 and torch.equal(test_set[-1], test_set[1])
    assert torch.equal(test_set[0], H5ImageDataset(tmp_path / "outdoor.hdf5", 16,
                                                   split=None)[10])
    with pytest.raises(IndexError):
        train_set[10]
    # another size: short side resized to S, centre crop; a file without split: all rows
    wide = rng.integers(0, 256, (3, 16, 32, 3), dtype=np.uint8)
    write_h5(tmp_path / "wide.hdf5", wide)
    small = H5ImageDataset(tmp_path / "wide.hdf5", 8)
    assert len(small) == 3 and small[0].shape == (3, 8, 8)
    # it survives pickling (DataLoader workers), reopening the file in the new process
    import pickle

    assert torch.equal(pickle.loads(pickle.dumps(train_set))[5], train_set[5])

    with pytest.raises(InputError, match="no such HDF5 file"):
        H5ImageDataset(tmp_path / "none.hdf5")
    with pytest.raises(InputError, match=r"no split 'val' of 'imgs' \(splits: \['test', 'train'\]\)"):
        H5ImageDataset(tmp_path / "outdoor.hdf5", split="val")
    with pytest.raises(InputError, match=r"no image dataset 'x' \(has \['imgs'\]\)"):
        H5ImageDataset(tmp_path / "wide.hdf5", key="x")
    write_h5(tmp_path / "float.hdf5", images.astype(np.float32))
    with pytest.raises(InputError, match=r"must be uint8 \(N, H, W, 3\)"):
        H5ImageDataset(tmp_path / "float.hdf5")
    (tmp_path / "text.hdf5").write_text("not hdf5")
    with pytest.raises(InputError, match="not a readable HDF5 file"):
        H5ImageDataset(tmp_path / "text.hdf5")


def test_h5_without_h5py_is_a_one_line_dependency_error(tmp_path, monkeypatch):
    from gpgan.data.dataset import H5ImageDataset

    monkeypatch.setitem(sys.modules, "h5py", None)  # `import h5py` raises ImportError
    with pytest.raises(DependencyError, match="pip install h5py") as err:
        H5ImageDataset(tmp_path / "x.hdf5")
    assert "\n" not in str(err.value)


def test_cli_trains_g_of_z_on_hdf5_and_manifests(tmp_path):
    """`gpgan train` with a whole workflow config's train_unsupervised section, on an
    HDF5 file (--hdf5) and on a train manifest's truth crops (train_from_manifests)."""
    from gpgan.data.composites import write_train_manifest
    from gpgan.data.demo import build_demo_dataset

    rng = np.random.default_rng(1)
    write_h5(tmp_path / "outdoor.hdf5", rng.integers(0, 256, (20, SIZE, SIZE, 3), np.uint8),
             n_test=4)
    section = {k: v for k, v in TINY_U.items() if k not in ("image_size", "seed")}
    section.update(iterations=3, runtime_min=5)
    wf = {"seed": 5, "composites": {"image_size": SIZE, "ratio": 0.5},
          "train": {"iterations": 100}, "train_unsupervised": section}
    (tmp_path / "wf.yaml").write_text(__import__("yaml").safe_dump(wf))
    common = ["train", "--config", str(tmp_path / "wf.yaml"), "--section",
              "train_unsupervised", "--quiet", "--threads", "1"]
    assert cli.main([*common, "--hdf5", str(tmp_path / "outdoor.hdf5"), "--out-dir",
                     str(tmp_path / "h5run")]) == 0
    final = state(tmp_path / "h5run" / "final.pt")
    assert final["arch"]["kind"] == "latent" and final["config"]["seed"] == 5
    assert final["iteration"] == 3 and final["config"]["image_size"] == SIZE

    scenes = tmp_path / "scenes"
    build_demo_dataset(scenes, n_scenes=3, n_variants=2, size=64, seed=0)
    write_train_manifest(scenes, None, 16, tmp_path / "train.csv", seed=0, image_size=SIZE)
    assert cli.main([*common, "--train-manifest", str(tmp_path / "train.csv"),
                     "--scenes-root", str(scenes), "--out-dir", str(tmp_path / "mrun")]) == 0
    assert isinstance(load_generator(tmp_path / "mrun" / "final.pt", "cpu"), LatentGenerator)

    # --hdf5 needs model unsupervised; without it, the manifests are required
    assert cli.main(["train", "--hdf5", str(tmp_path / "outdoor.hdf5"), "--out-dir",
                     str(tmp_path / "x"), "--quiet"]) == 2
    assert cli.main([*common, "--out-dir", str(tmp_path / "y")]) == 2
