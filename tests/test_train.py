"""WGAN training loop: resume (bitwise), NaN detection, logs, checkpoint selection, CLI."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import skimage.data
import torch

from gpgan import cli
from gpgan.errors import ConfigError, TrainingError
from gpgan.models import load_generator
from gpgan.train import (DEFAULT_CONFIG, DEMO_CONFIG, critic_steps, iterations_for_epochs,
                         resolve_config, train)

SIZE = 32
TINY = dict(image_size=SIZE, n_bottleneck=16, base_width=8, batch_size=8,
            critic_iters=1, critic_iters_boost=3, boost_first=2, boost_every=0,
            checkpoint_every=2, log_every=1, n_samples=4, seed=7)


def make_pairs(n: int, seed: int) -> torch.utils.data.TensorDataset:
    """Composite/truth pairs from real photos, in the Transient-Attributes style.

    A random crop of astronaut / coffee / chelsea is the scene (ground truth); the
    "object image" is the same crop under another illumination (per-channel gain and
    gamma); the composite pastes its centre (ratio 0.5) into the scene.
    """
    rng = np.random.default_rng(seed)
    photos = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea()]
    comps, truths = [], []
    for k in range(n):
        img = photos[k % 3].astype(np.float32) / 255.0
        c = 2 * SIZE
        i, j = rng.integers(0, img.shape[0] - c), rng.integers(0, img.shape[1] - c)
        scene = img[i:i + c, j:j + c].reshape(SIZE, 2, SIZE, 2, 3).mean(axis=(1, 3))
        obj = np.clip(scene * rng.uniform(0.6, 1.4, 3), 0, 1) ** rng.uniform(0.7, 1.4)
        comp = scene.copy()
        q = SIZE // 4
        comp[q:-q, q:-q] = obj[q:-q, q:-q]
        comps.append(comp)
        truths.append(scene)

    def t(a):
        return torch.from_numpy(np.stack(a).transpose(0, 3, 1, 2) * 2.0 - 1.0).float()

    mask = torch.zeros(n, 1, SIZE, SIZE)
    mask[..., SIZE // 4:-(SIZE // 4), SIZE // 4:-(SIZE // 4)] = 1.0
    return torch.utils.data.TensorDataset(t(comps), t(truths), mask)


@pytest.fixture(scope="module")
def data():
    torch.set_num_threads(1)
    return make_pairs(24, seed=0), make_pairs(8, seed=1)


class Faulty(torch.utils.data.Dataset):
    """Wraps a dataset; from call number ``after`` on, raises or returns NaN items."""

    def __init__(self, base, after: int, mode: str):
        self.base, self.after, self.mode, self.calls = base, after, mode, 0

    def __len__(self):
        return len(self.base)

    def __getitem__(self, i):
        self.calls += 1
        x, y, m = self.base[i]
        if self.calls > self.after:
            if self.mode == "kill":
                raise RuntimeError("simulated kill")
            x = torch.full_like(x, float("nan"))
        return x, y, m


def calls_before(iteration: int, cfg: dict, start: int = 0) -> int:
    """Dataset calls a run resumed at ``start`` makes before 0-based generator
    ``iteration`` begins (1 checked item + the fixed sample batch + the batches)."""
    full = resolve_config(cfg)
    batches = sum(critic_steps(i, full) + 1 for i in range(start, iteration))
    return 1 + full["n_samples"] + batches * full["batch_size"]


def read_log(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def state(path):
    return torch.load(path, weights_only=True)


def assert_same_tensors(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_resume_after_kill_is_bitwise_identical(tmp_path, data):
    train_set, val_set = data
    cfg = dict(TINY, iterations=6)
    ref = train(cfg, train_set, val_set, tmp_path / "ref", progress=False)
    assert ref["iterations"] == 6 and (tmp_path / "ref" / "done").exists()

    run = tmp_path / "run"
    # 1) a finished shorter run (3 iterations) that is later extended ...
    train(dict(cfg, iterations=3), train_set, val_set, run, progress=False)
    assert json.loads((run / "done").read_text())["iterations"] == 3
    # 2) ... killed during iteration 6 (after the checkpoint at 4 and log row 5) ...
    kill = Faulty(train_set, calls_before(5, cfg, start=3) + 3, "kill")
    with pytest.raises(RuntimeError, match="simulated kill"):
        train(cfg, kill, val_set, run, progress=False)
    assert not (run / "done").exists()  # not finished any more
    assert [int(r["iteration"]) for r in read_log(run / "state" / "train_log.csv")] == \
        [1, 2, 3, 4, 5]
    # a hard kill can leave an atomic write's temp file behind: ignored and removed
    junk = run / "state" / "samples" / ".iter_0000006_val.png.x1.tmp.png"
    junk.write_bytes(b"partial")
    # 3) ... and resumed to the end from the checkpoint at 4 (not from scratch).
    counting = Faulty(train_set, 10 ** 9, "kill")
    res = train(cfg, counting, val_set, run, progress=False)
    assert res["iterations"] == 6
    assert counting.calls == calls_before(6, cfg, start=4)
    assert not junk.exists()
    assert not [p for p in (run / "samples").iterdir() if p.name.startswith(".")]

    assert_same_tensors(state(ref["final"])["generator"], state(res["final"])["generator"])
    full_ref = state(tmp_path / "ref" / "state" / "checkpoints" / "iter_0000006.pt")
    full_run = state(run / "state" / "checkpoints" / "iter_0000006.pt")
    assert_same_tensors(full_ref["critic"], full_run["critic"])
    assert full_ref["opt_g"]["state"][0]["step"] == full_run["opt_g"]["state"][0]["step"]
    assert torch.equal(full_ref["opt_d"]["state"][0]["exp_avg_sq"],
                       full_run["opt_d"]["state"][0]["exp_avg_sq"])
    assert full_ref["batches"] == full_run["batches"] == \
        sum(critic_steps(i, resolve_config(cfg)) + 1 for i in range(6))

    drop = ("seconds", "images_per_s")
    rows_ref = [{k: v for k, v in r.items() if k not in drop}
                for r in read_log(tmp_path / "ref" / "train_log.csv")]
    rows_run = [{k: v for k, v in r.items() if k not in drop}
                for r in read_log(run / "train_log.csv")]
    assert rows_ref == rows_run and [int(r["iteration"]) for r in rows_ref] == list(range(1, 7))

    # weight clipping: the critic stays in the box (up to its last, unclipped Adam step)
    for name, p in full_ref["critic"].items():
        if "running" not in name and p.is_floating_point():  # parameters, not BN stats
            assert float(p.abs().max()) <= TINY.get("clamp", 0.01) + 3 * 2e-4
    # older checkpoints are slimmed to the generator; the newest keeps the full state
    old = state(tmp_path / "ref" / "checkpoints" / "iter_0000002.pt")
    assert old["kind"] == "generator" and "opt_g" not in old and "critic" not in old
    assert load_generator(tmp_path / "ref" / "checkpoints" / "iter_0000002.pt", "cpu")
    assert sorted(p.name for p in (tmp_path / "ref" / "samples").glob("*.png"))[:2] == \
        ["iter_0000002_train.png", "iter_0000002_val.png"]


def test_finished_run_is_not_retrained_and_config_conflict_is_refused(tmp_path, data):
    train_set, val_set = data
    cfg = dict(TINY, iterations=2)
    out = tmp_path / "run"
    train(cfg, train_set, val_set, out, progress=False)
    stamp = (out / "final.pt").stat().st_mtime_ns
    again = train(cfg, train_set, val_set, out, progress=False)
    assert again["iterations"] == 2 and (out / "final.pt").stat().st_mtime_ns == stamp
    with pytest.raises(TrainingError, match="lr_g"):
        train(dict(cfg, lr_g=1e-3), train_set, val_set, out, progress=False)
    with pytest.raises(TrainingError, match="already trained 2"):
        train(dict(cfg, iterations=1), train_set, val_set, out, progress=False)


def test_nan_loss_stops_with_iteration(tmp_path, data):
    train_set, val_set = data
    cfg = dict(TINY, iterations=6)
    poisoned = Faulty(train_set, calls_before(2, cfg), "nan")  # from 0-based iteration 2
    with pytest.raises(TrainingError, match=r"non-finite loss at iteration 3 \(") as err:
        train(cfg, poisoned, val_set, tmp_path, progress=False)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "done").exists() and not (tmp_path / "final.pt").exists()
    ckpts = sorted(p.name for p in (tmp_path / "state" / "checkpoints").glob("*.pt"))
    assert ckpts == ["iter_0000002.pt"]  # the last good state is kept for inspection


def test_dataloader_workers_give_the_same_run(tmp_path, data):
    train_set, val_set = data
    cfg = dict(TINY, iterations=3, n_samples=0)
    a = train(cfg, train_set, None, tmp_path / "a", progress=False)
    b = train(dict(cfg, num_workers=2), train_set, None, tmp_path / "b", progress=False)
    assert_same_tensors(state(a["final"])["generator"], state(b["final"])["generator"])


def test_training_learns_and_logs(tmp_path, data):
    train_set, val_set = data
    cfg = dict(TINY, iterations=30, checkpoint_every=10, log_every=5)
    res = train(cfg, train_set, val_set, tmp_path / "run", progress=False)
    log = read_log(tmp_path / "run" / "train_log.csv")
    assert [int(r["iteration"]) for r in log] == [5, 10, 15, 20, 25, 30]
    assert all(float(r["images_per_s"]) > 0 for r in log)
    assert float(log[-1]["l2"]) < float(log[0]["l2"])  # it learns
    # the critic scores real images above generated ones (errD = D(fake) - D(real))
    assert all(float(r["errD"]) < 0 for r in log)
    assert [p.name for p in res["checkpoints"]] == ["iter_0000010.pt", "iter_0000020.pt",
                                                    "iter_0000030.pt"]


@pytest.mark.parametrize("opts", [dict(mask_input=True, skip=True, output="affine",
                                       affine_grid=8, amp=True)])
def test_demo_architecture_resumes_bitwise_with_cpu_autocast(tmp_path, data, opts):
    # the demo's generator (mask input, skip connections, affine head) under bfloat16
    # autocast on the CPU: a run split in two equals one run
    train_set, val_set = data
    cfg = dict(TINY, iterations=4, **opts)
    ref = train(cfg, train_set, val_set, tmp_path / "ref", progress=False)
    train(dict(cfg, iterations=2), train_set, val_set, tmp_path / "run", progress=False)
    res = train(cfg, train_set, val_set, tmp_path / "run", progress=False)
    assert_same_tensors(state(ref["final"])["generator"], state(res["final"])["generator"])
    assert state(ref["final"])["arch"]["output"] == "affine"
    g = load_generator(ref["final"], device="cpu")
    assert g.arch["mask_input"] and g.arch["skip"] and g.arch["affine_grid"] == 8


def test_schedule_and_config():
    cfg = resolve_config({})
    assert cfg == dict(DEFAULT_CONFIG, critic_width=64)
    steps = [critic_steps(i, cfg) for i in range(1001)]
    assert steps[:25] == [100] * 25 and steps[25:30] == [5] * 5
    assert steps[500] == 100 and steps[1000] == 100 and steps[499] == 5
    assert sum(s == 100 for s in steps) == 25 + 2
    # 2 epochs of 100 batches with boost 3 for 2 iterations then 1: 4+4+2*96 = 200
    small = resolve_config(dict(TINY, epochs=2))
    assert iterations_for_epochs(2, 100, small) == 2 + 96
    assert resolve_config({"train": {"iterations": 5}, "seed": 3})["seed"] == 3
    with pytest.raises(ConfigError, match="lr_G"):
        resolve_config({"lr_G": 1e-3})
    with pytest.raises(ConfigError, match="batch_size"):
        resolve_config({"batch_size": 0})
    resolve_config(DEMO_CONFIG)


def test_cli_train_and_select_forward_arguments(tmp_path, monkeypatch, capsys):
    import gpgan.train as T

    seen = {}

    def fake_train(cfg, train_csv, val_csv, scenes_root, out_dir, *, threads, progress,
                   section="train"):
        seen.update(cfg=cfg, args=(train_csv, val_csv, scenes_root, out_dir),
                    threads=threads, progress=progress)
        return {"final": tmp_path / "final.pt", "iterations": 9, "seconds": 1.0,
                "device": "cpu"}

    def fake_select(checkpoints, val_csv, out_dir, *, lpips_weights, device, threads,
                    progress, **options):
        seen.update(ckpts=checkpoints, val=val_csv, device=device, options=options)
        return tmp_path / "best.pt"

    import gpgan.select as S

    monkeypatch.setattr(T, "train_from_manifests", fake_train)
    monkeypatch.setattr(S, "select_checkpoint", fake_select)
    (tmp_path / "cfg.yaml").write_text("train:\n  iterations: 50\n  base_width: 16\nseed: 4\n")
    rc = cli.main(["train", "--config", str(tmp_path / "cfg.yaml"), "--train-manifest",
                   "tr.csv", "--val-manifest", "va.csv", "--scenes-root", "scenes",
                   "--out-dir", "run", "--iterations", "9", "--threads", "2", "--quiet"])
    assert rc == 0
    assert seen["cfg"] == {"train": {"iterations": 9, "base_width": 16}, "seed": 4}
    assert seen["args"] == ("tr.csv", "va.csv", "scenes", "run")
    assert seen["threads"] == 2 and seen["progress"] is False

    rc = cli.main(["select-checkpoint", "--train-dir", str(tmp_path), "--val-composites",
                   "va.csv", "--out-dir", "model", "--pyramid", "reference",
                   "--gan-region", "image"])
    assert rc == 0 and seen["ckpts"] == [tmp_path / "checkpoints"] and seen["val"] == "va.csv"
    assert seen["options"]["pyramid"] == "reference"
    assert seen["options"]["gan_region"] == "image"
    assert "best.pt" in capsys.readouterr().out


def test_cli_bad_config_is_one_line_error(tmp_path, capsys):
    (tmp_path / "cfg.yaml").write_text("iterations: 5\nlearning_rate: 1\n")
    rc = cli.main(["train", "--config", str(tmp_path / "cfg.yaml"), "--train-manifest",
                   "a.csv", "--val-manifest", "b.csv", "--scenes-root", ".", "--out-dir",
                   str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("error: unknown training config key") and "\n" not in err


def test_end_to_end_manifests_cli_and_gp_gan_blend(tmp_path):
    """Demo scenes -> manifests -> `gpgan train` -> `gpgan select-checkpoint` -> blend."""
    from gpgan import blend
    from gpgan.data.composites import make_test_composites, write_train_manifest
    from gpgan.data.demo import build_demo_dataset
    from gpgan.select import select_checkpoint

    scenes = tmp_path / "scenes"
    build_demo_dataset(scenes, n_scenes=3, n_variants=2, size=64, seed=0)
    write_train_manifest(scenes, None, 16, tmp_path / "train.csv", seed=0, image_size=SIZE)
    write_train_manifest(scenes, None, 8, tmp_path / "val.csv", seed=1, image_size=SIZE)
    val = make_test_composites(scenes, None, tmp_path / "validation", n=2, seed=2,
                               csv_name="validation.csv")
    cfg = {k: v for k, v in TINY.items()}
    cfg.update(iterations=4, checkpoint_every=2)
    (tmp_path / "cfg.yaml").write_text("".join(f"{k}: {v}\n" for k, v in cfg.items()))
    common = ["--val-manifest", str(tmp_path / "val.csv"), "--scenes-root", str(scenes)]
    assert cli.main(["train", "--config", str(tmp_path / "cfg.yaml"), "--train-manifest",
                     str(tmp_path / "train.csv"), *common, "--out-dir", str(tmp_path / "run"),
                     "--quiet", "--threads", "1"]) == 0
    assert (tmp_path / "run" / "done").exists()
    assert cli.main(["select-checkpoint", "--train-dir", str(tmp_path / "run"),
                     "--val-composites", str(val), "--out-dir", str(tmp_path / "model"),
                     "--device", "cpu", "--quiet"]) == 0
    best = tmp_path / "model" / "best.pt"
    assert len(read_log(tmp_path / "model" / "selection.csv")) == 2 + 2
    # the workflow passes the checkpoint folder itself
    again = select_checkpoint(str(tmp_path / "run" / "checkpoints"), val, tmp_path / "model2",
                              device="cpu", progress=False)
    assert read_log(again.parent / "selection.csv") == \
        read_log(tmp_path / "model" / "selection.csv")

    src = skimage.data.chelsea()[:96, :128].astype(np.float32) / 255.0
    dst = skimage.data.coffee()[:96, :128].astype(np.float32) / 255.0
    mask = np.zeros((96, 128), np.float32)
    mask[30:70, 40:90] = 1.0
    out = blend(src, dst, mask, method="gp-gan", model=best, image_size=SIZE, device="cpu")
    assert out.shape == (96, 128, 3) and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    assert np.abs(out - dst)[mask == 0].mean() < np.abs(out - dst)[mask == 1].mean()
    # the GAN's input size is the model's own: the default pyramid base (64) works too
    out64 = blend(src, dst, mask, method="gp-gan", model=best, device="cpu")
    assert out64.shape == (96, 128, 3) and 0.0 <= out64.min() and out64.max() <= 1.0


def test_epochs_set_the_length_when_iterations_is_null(tmp_path, data):
    train_set, _ = data  # 24 items, batch 8: 3 batches per epoch
    cfg = dict(TINY, iterations=None, epochs=4, n_samples=0)  # 12 batches: 4 + 4 + 2 + 2
    assert train(cfg, train_set, None, tmp_path / "a", progress=False)["iterations"] == 4
    with pytest.raises(ConfigError, match="less than one generator iteration"):
        train(dict(cfg, epochs=1), train_set, None, tmp_path / "b", progress=False)


def test_one_config_shape_for_workflow_cli_and_api():
    # a whole workflow config resolves to its train section + seed + composite geometry,
    # without the workflow-only SLURM runtime; the demo file is DEMO_CONFIG
    import yaml

    from gpgan.trainconfig import WORKFLOW_ONLY

    root = __import__("pathlib").Path(__file__).resolve().parents[1]
    demo = yaml.safe_load((root / "config" / "config.yaml").read_text())
    got = resolve_config(demo)
    assert got == resolve_config(dict(DEMO_CONFIG, seed=demo["seed"],
                                      image_size=demo["composites"]["image_size"],
                                      ratio=demo["composites"]["ratio"]))
    assert not WORKFLOW_ONLY & set(got)
    paper = resolve_config(yaml.safe_load((root / "config" / "paper.yaml").read_text()))
    assert paper["n_bottleneck"] == 4000 and paper["device"] == "cuda"
    assert paper["image_size"] == 64 and paper["ratio"] == 0.5
    # the train section wins over the composites' geometry when it sets it
    assert resolve_config({"train": {"image_size": 32}, "composites": {"image_size": 64}}
                          )["image_size"] == 32
    with pytest.raises(ConfigError, match="runtime"):
        resolve_config({"runtime_min": 5})  # only a workflow section may carry it


def test_cli_train_takes_a_whole_workflow_config(tmp_path, monkeypatch):
    import gpgan.train as T

    seen = {}

    def fake_train(cfg, *args, threads, progress, section="train"):
        seen["cfg"] = resolve_config(cfg)
        return {"final": tmp_path / "f.pt", "iterations": 1, "seconds": 0.0, "device": "cpu"}

    monkeypatch.setattr(T, "train_from_manifests", fake_train)
    root = __import__("pathlib").Path(__file__).resolve().parents[1]
    rc = cli.main(["train", "--config", str(root / "config" / "config.yaml"),
                   "--train-manifest", "a.csv", "--val-manifest", "b.csv", "--scenes-root",
                   ".", "--out-dir", str(tmp_path / "run"), "--quiet"])
    assert rc == 0 and seen["cfg"]["output"] == "affine" and seen["cfg"]["amp"] == "auto"
