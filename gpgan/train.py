"""Blending GAN training (Wasserstein GAN + L2) with resumable checkpoints.

Checkpoint selection (by the final blend) is :mod:`gpgan.select`.

The loop (:func:`train`) follows SPEC.md "Blending GAN" and the authors' updater:
for every generator step ``it`` (0-based) the critic first takes ``n_critic`` steps,
``critic_iters_boost`` (100) while ``it < boost_first`` (25) or ``it % boost_every == 0``
(500), else ``critic_iters`` (5). Each critic step clips every critic parameter to
``[-clamp, clamp]`` (0.01), draws a fresh batch and minimises
``mean D(G(x)) - mean D(y)``; the generator step draws another batch and minimises
``l2_weight * MSE(G(x), y) + (1 - l2_weight) * (-mean D(G(x)))`` (0.999 / 0.001).
``G`` also receives the batch's masks (used by a generator with ``mask_input``).
Both use Adam with ``beta1=0.5`` (lr_G 2e-3, lr_D 2e-4). Batches come from an
epoch-seeded shuffle, so a run is a pure function of the config and the data.

Output layout of ``out_dir`` ::

    state/                      working state, never a workflow output (kept on failure)
      checkpoints/iter_XXXXXXX.pt   every `checkpoint_every` iterations, atomic; the
                                    newest holds the full training state (G, D, both
                                    Adam states, AMP scalers, RNG states, batch
                                    position, config); older ones are slimmed to the
                                    generator (+ config) once a newer one exists
      train_log.csv             running log (truncated to the checkpoint on resume)
      samples/iter_XXXXXXX_{train,val}.png   rows: composite | G(composite) | truth
    checkpoints/iter_XXXXXXX.pt published at the end (hard links to state/, else copies)
    samples/*.png               published at the end
    train_log.csv               published at the end: iteration, errD, errG, l2,
                                seconds, images_per_s
    final.pt                    generator of the last iteration (generator-only file)
    done                        written last (JSON summary); its presence = finished

A workflow rule therefore declares only ``final.pt`` / ``done`` / ``train_log.csv`` /
``checkpoints/`` as outputs: if the job dies, Snakemake deletes those, ``state/``
survives and the rerun resumes from the newest checkpoint. Re-running a finished run
with the same config returns at once; raising ``iterations`` (or ``epochs``) continues
it. Resuming on CPU is bitwise identical to an uninterrupted run.

Log columns: ``errD`` is the critic loss of the iteration's last critic step
(``mean D(fake) - mean D(real)``, minus the Wasserstein estimate), ``errG`` the
adversarial term ``-mean D(G(x))``, ``l2`` the batch MSE between ``G(x)`` and the
ground truth on [0, 1] images (the loss uses [-1, 1] images, i.e. 4x this),
``seconds`` the cumulative training time, ``images_per_s`` the training images
(critic and generator batches) drawn per second since the previous row.

Datasets are any ``torch.utils.data.Dataset`` whose items are
``(composite, ground_truth, mask)`` float tensors ``(3, S, S)`` in [-1, 1] and
``(1, S, S)`` in [0, 1] (:class:`gpgan.data.dataset.CompositeDataset`). Items should be a deterministic
function of the index (per-item randomness in workers is seeded but not resumable).
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import shutil
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .errors import ConfigError, InputError, ModelError, TrainingError
from .io import atomic_path, write_image
from .models import (CHECKPOINT_FORMAT, Critic, Generator, list_checkpoints, load_checkpoint,
                     resolve_device, save_generator)

__all__ = [
    "DEFAULT_CONFIG",
    "PAPER_CONFIG",
    "DEMO_CONFIG",
    "resolve_config",
    "critic_steps",
    "iterations_for_epochs",
    "train",
    "train_from_manifests",
]

#: Every key :func:`train` understands, with the paper's values as defaults.
DEFAULT_CONFIG: dict = {
    "seed": 0,
    # architecture (gpgan.models)
    "image_size": 64,
    "n_bottleneck": 4000,
    "base_width": 64,
    "critic_width": None,  # None: same as base_width
    "mask_input": False,  # options beyond the paper (gpgan.models)
    "skip": False,
    "output": "image",
    "affine_grid": 16,
    # data
    "batch_size": 64,
    "ratio": 0.5,  # pasted centre fraction (CompositeDataset; train_from_manifests only)
    "num_workers": 0,
    # length: `iterations` generator steps, or (if None) as many as `epochs` passes allow
    "iterations": None,
    "epochs": 25,
    # optimisation
    "lr_g": 2e-3,
    "lr_d": 2e-4,
    "beta1": 0.5,
    "beta2": 0.999,
    "l2_weight": 0.999,
    "clamp": 0.01,
    "critic_iters": 5,
    "critic_iters_boost": 100,
    "boost_first": 25,
    "boost_every": 500,  # 0 disables the periodic boost
    # bookkeeping
    "checkpoint_every": 500,
    "log_every": 10,
    "n_samples": 8,
    # hardware
    "device": "auto",
    "amp": False,  # mixed precision (autocast); on the CPU only bfloat16
    "amp_dtype": "bfloat16",  # or "float16" (CUDA only; uses gradient scalers)
}

#: The paper's schedule: 25 epochs over 150,000 composites, batch 64 (a GPU day).
PAPER_CONFIG: dict = dict(DEFAULT_CONFIG)

#: The demo's generator and schedule (``config/config.yaml``): the same loop and losses;
#: a 256-channel bottleneck, half the widths (32-64-128-256), the mask as input, U-Net
#: skips and the affine colour head (:mod:`gpgan.models`), 800 generator iterations
#: with one critic step each (5 for the first 10), bfloat16 autocast (docs/training.md).
DEMO_CONFIG: dict = dict(DEFAULT_CONFIG, n_bottleneck=256, base_width=32, mask_input=True,
                         skip=True, output="affine", affine_grid=16, iterations=800,
                         critic_iters=1, critic_iters_boost=5, boost_first=10,
                         boost_every=0, checkpoint_every=100, log_every=10, amp=True)

# Keys that may change between a run and its resumption.
_RESUME_FREE = {"iterations", "epochs", "num_workers", "device", "checkpoint_every",
                "log_every", "n_samples", "amp", "amp_dtype"}

_LOG_FIELDS = ["iteration", "errD", "errG", "l2", "seconds", "images_per_s"]

#: Memory format of the models and batches: channels-last made a demo iteration 13 %
#: faster on this CPU (0.337 -> 0.294 s, bfloat16 autocast, 2 threads); the results
#: do not depend on it beyond float round-off, and a resumed run stays bitwise.
_FORMAT = torch.channels_last


# --------------------------------------------------------------------------------------
# Configuration and schedule
# --------------------------------------------------------------------------------------

def resolve_config(cfg: dict | None) -> dict:
    """Fill defaults into a training config and validate it.

    ``cfg`` may be flat or hold the keys under a ``"train"`` section (a workflow
    config); a top-level ``seed`` is used when the section has none. Unknown keys raise
    :class:`~gpgan.errors.ConfigError` (typos must not silently train the paper model).
    """
    cfg = dict(cfg or {})
    if isinstance(cfg.get("train"), dict):
        section = dict(cfg["train"])
        if "seed" not in section and "seed" in cfg:
            section["seed"] = cfg["seed"]
        cfg = section
    unknown = sorted(set(cfg) - set(DEFAULT_CONFIG))
    if unknown:
        raise ConfigError(f"unknown training config key(s) {unknown}; "
                          f"known: {sorted(DEFAULT_CONFIG)}")
    out = dict(DEFAULT_CONFIG, **cfg)
    if out["critic_width"] is None:
        out["critic_width"] = out["base_width"]

    def need(key, kind, low=None, allow_none=False):
        v = out[key]
        if v is None and allow_none:
            return
        ok = isinstance(v, kind) and not isinstance(v, bool) if kind is not bool \
            else isinstance(v, bool)
        if kind is float and isinstance(v, int) and not isinstance(v, bool):
            out[key] = v = float(v)
            ok = True
        if not ok or (low is not None and v < low):
            raise ConfigError(f"training config {key}={v!r}: expected "
                              f"{kind.__name__}{'' if low is None else f' >= {low}'}")

    for key in ("seed", "boost_every"):
        need(key, int, 0)
    for key in ("image_size", "n_bottleneck", "base_width", "critic_width", "batch_size",
                "critic_iters", "critic_iters_boost", "checkpoint_every", "log_every"):
        need(key, int, 1)
    for key in ("boost_first", "num_workers", "n_samples"):
        need(key, int, 0)
    need("iterations", int, 1, allow_none=True)
    need("epochs", float, 0.0, allow_none=True)
    for key in ("lr_g", "lr_d", "beta1", "beta2", "l2_weight", "clamp", "ratio"):
        need(key, float, 0.0)
    for key in ("amp", "mask_input", "skip"):
        need(key, bool)
    if not 0.0 <= out["l2_weight"] <= 1.0:
        raise ConfigError(f"training config l2_weight={out['l2_weight']} not in [0, 1]")
    if out["iterations"] is None and not out["epochs"]:
        raise ConfigError("training config needs `iterations` or `epochs`")
    if out["amp_dtype"] not in ("bfloat16", "float16"):
        raise ConfigError(f"training config amp_dtype={out['amp_dtype']!r}: "
                          "use bfloat16 or float16")
    return out


def critic_steps(iteration: int, cfg: dict) -> int:
    """Critic steps before generator step ``iteration`` (0-based), per the WGAN schedule."""
    boost = iteration < cfg["boost_first"] or (
        cfg["boost_every"] > 0 and iteration % cfg["boost_every"] == 0)
    return cfg["critic_iters_boost"] if boost else cfg["critic_iters"]


def iterations_for_epochs(epochs: float, batches_per_epoch: int, cfg: dict) -> int:
    """Generator iterations whose batches (critic + generator) fit in ``epochs`` passes."""
    budget = int(epochs * batches_per_epoch)
    it = used = 0
    while used + critic_steps(it, cfg) + 1 <= budget:
        used += critic_steps(it, cfg) + 1
        it += 1
    return it


# --------------------------------------------------------------------------------------
# Data stream
# --------------------------------------------------------------------------------------

class _BatchStream:
    """Endless, resumable batch sampler: epoch ``e`` is ``default_rng([seed, e])``'s
    permutation cut into full batches; iteration starts at global batch ``start``."""

    def __init__(self, n: int, batch_size: int, seed: int, start: int = 0):
        self.n, self.batch_size, self.seed, self.start = n, batch_size, seed, start
        self.per_epoch = n // batch_size

    def __iter__(self):
        b, epoch, perm = self.start, None, None
        while True:
            e, pos = divmod(b, self.per_epoch)
            if e != epoch:
                epoch, perm = e, np.random.default_rng([self.seed, e]).permutation(self.n)
            yield perm[pos * self.batch_size:(pos + 1) * self.batch_size].tolist()
            b += 1


def _seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: derive numpy/random seeds from torch's worker seed."""
    seed = torch.initial_seed() % 2 ** 32
    np.random.seed(seed)
    random.seed(seed)


def _loader(dataset, cfg: dict, start_batch: int, device: torch.device):
    stream = _BatchStream(len(dataset), cfg["batch_size"], cfg["seed"], start_batch)
    gen = torch.Generator().manual_seed(cfg["seed"] + start_batch)
    return torch.utils.data.DataLoader(
        dataset, batch_sampler=stream, num_workers=cfg["num_workers"],
        worker_init_fn=_seed_worker, generator=gen, pin_memory=device.type == "cuda")


def _check_item(item, size: int, name: str) -> None:
    shapes = ((3, size, size), (3, size, size), (1, size, size))
    ok = (isinstance(item, (tuple, list)) and len(item) == 3
          and all(isinstance(t, torch.Tensor) and tuple(t.shape) == s
                  for t, s in zip(item, shapes)))
    if not ok:
        got = [tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
               for t in (item if isinstance(item, (tuple, list)) else [item])]
        raise InputError(f"{name} items must be (composite, truth, mask) tensors of shape "
                         f"(3, {size}, {size}), (3, {size}, {size}), (1, {size}, {size}); "
                         f"got {got}")


# --------------------------------------------------------------------------------------
# RNG state (stored as plain tensors/ints so torch.load(weights_only=True) reads it)
# --------------------------------------------------------------------------------------

def _rng_state() -> dict:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": random.getstate(),
    }


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["cached"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


# --------------------------------------------------------------------------------------
# Checkpoint files
# --------------------------------------------------------------------------------------

def _ckpt_name(iteration: int) -> str:
    return f"iter_{iteration:07d}.pt"


def _saved(folder: Path) -> list[Path]:
    """The ``iter_*.pt`` files of ``folder`` in iteration order (none if it is absent)."""
    return list_checkpoints(folder) if folder.is_dir() else []


def _slim(path: Path) -> None:
    """Rewrite a full training checkpoint as generator (+ config) only, atomically."""
    ckpt = load_checkpoint(path)
    if ckpt.get("kind") != "training":
        return
    keep = {k: ckpt[k] for k in ("format", "arch", "generator", "iteration", "config")}
    keep["kind"] = "generator"
    with atomic_path(path) as tmp:
        torch.save(keep, tmp)


def _publish(src: Path, dst: Path) -> None:
    """Place ``src`` at ``dst`` atomically: a hard link when possible, else a copy."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists() and os.path.samefile(src, dst):
        return  # already published (rename() between two links of one file is a no-op)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copy2(src, tmp)
    os.replace(tmp, dst)
    tmp.unlink(missing_ok=True)


def _read_log(path: Path, upto: int) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        return [row for row in csv.DictReader(fh) if int(row["iteration"]) <= upto]


def _write_log(path: Path, rows: list[dict]) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=_LOG_FIELDS)
            w.writeheader()
            w.writerows(rows)


# --------------------------------------------------------------------------------------
# Samples
# --------------------------------------------------------------------------------------

def _fixed_batch(dataset, n: int) -> tuple[torch.Tensor, ...] | None:
    n = min(n, len(dataset)) if dataset is not None else 0
    if n == 0:
        return None
    items = [dataset[i] for i in range(n)]
    return tuple(torch.stack(parts) for parts in zip(*items))


def _to_unit(t: torch.Tensor) -> np.ndarray:
    """``(N, 3, S, S)`` in [-1, 1] -> ``(N, S, S, 3)`` float32 in [0, 1]."""
    return ((t.detach().float().cpu().numpy().transpose(0, 2, 3, 1) + 1.0) / 2.0).clip(0, 1)


def _sample_grid(G: Generator, batch, device: torch.device) -> np.ndarray:
    """Rows ``composite | G(composite) | truth`` (G in eval mode), 2-pixel white gaps."""
    x, y, m = batch
    was_training = G.training
    G.eval()
    with torch.no_grad():
        fake = G(x.to(device), m.to(device)).float()
    G.train(was_training)
    cols = [_to_unit(x), _to_unit(fake), _to_unit(y)]
    n, s = x.shape[0], x.shape[-1]
    gap = 2
    grid = np.ones((n * s + (n - 1) * gap, 3 * s + 2 * gap, 3), np.float32)
    for i in range(n):
        for j, col in enumerate(cols):
            grid[i * (s + gap):i * (s + gap) + s, j * (s + gap):j * (s + gap) + s] = col[i]
    return grid


# --------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------

def _say(progress: bool, msg: str) -> None:
    if progress:
        print(f"[gpgan.train] {msg}", file=sys.stderr, flush=True)


def train(cfg: dict, train_dataset, val_dataset, out_dir, *, threads: int | None = None,
          progress: bool = True) -> dict:
    """Train the Blending GAN (WGAN + L2); resumes from ``out_dir/state`` if present.

    Parameters
    ----------
    cfg : dict
        Training config; missing keys take :data:`DEFAULT_CONFIG` (paper) values.
    train_dataset, val_dataset : torch.utils.data.Dataset
        Items ``(composite, truth, mask)``: float tensors ``(3, S, S)`` in [-1, 1]
        and ``(1, S, S)`` in [0, 1],
        ``S = cfg["image_size"]``. ``val_dataset`` (may be ``None``) only feeds the
        sample grids.
    out_dir : str or Path
        Run folder (layout in the module docstring).
    threads : int, optional
        ``torch.set_num_threads`` for the CPU work.
    progress : bool
        Progress bar and status lines on stderr.

    Returns
    -------
    dict
        ``iterations``, ``seconds``, ``final`` (Path of ``final.pt``), ``checkpoints``
        (published Paths), ``log`` (Path), ``device``, last ``errD``/``errG``/``l2``.

    Raises
    ------
    TrainingError
        A non-finite loss (names the iteration), or a resume that conflicts with the
        state in ``out_dir``.
    ConfigError, InputError
        Bad config or dataset items.
    """
    cfg = resolve_config(cfg)
    out_dir = Path(out_dir)
    state_dir = out_dir / "state"
    ckpt_dir, sample_dir = state_dir / "checkpoints", state_dir / "samples"
    log_path = state_dir / "train_log.csv"
    if threads:
        torch.set_num_threads(int(threads))
    device = resolve_device(cfg["device"])
    size, bs = cfg["image_size"], cfg["batch_size"]
    if len(train_dataset) < bs:
        raise ConfigError(f"training set has {len(train_dataset)} items, fewer than "
                          f"batch_size={bs}")
    _check_item(train_dataset[0], size, "training set")
    if val_dataset is not None and len(val_dataset):
        _check_item(val_dataset[0], size, "validation set")
    per_epoch = len(train_dataset) // bs
    total = cfg["iterations"] if cfg["iterations"] is not None else \
        iterations_for_epochs(cfg["epochs"], per_epoch, cfg)
    if total < 1:
        raise ConfigError(f"epochs={cfg['epochs']} is less than one generator iteration")

    # --- models, optimisers, seeded -----------------------------------------------------
    torch.manual_seed(cfg["seed"])
    np.random.seed(cfg["seed"] % 2 ** 32)
    random.seed(cfg["seed"])
    G = Generator(size, cfg["n_bottleneck"], cfg["base_width"], mask_input=cfg["mask_input"],
                  skip=cfg["skip"], output=cfg["output"],
                  affine_grid=cfg["affine_grid"]).to(device, memory_format=_FORMAT)
    D = Critic(size, cfg["critic_width"]).to(device, memory_format=_FORMAT)
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg["lr_g"], betas=(cfg["beta1"], cfg["beta2"]))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg["lr_d"], betas=(cfg["beta1"], cfg["beta2"]))
    use_amp = cfg["amp"]
    amp_dtype = getattr(torch, cfg["amp_dtype"])
    if use_amp and device.type == "cpu" and amp_dtype != torch.bfloat16:
        raise ConfigError("amp on the CPU needs amp_dtype: bfloat16")
    fp16 = use_amp and amp_dtype == torch.float16
    scaler_g = torch.amp.GradScaler("cuda", enabled=fp16)
    scaler_d = torch.amp.GradScaler("cuda", enabled=fp16)
    autocast = (lambda: torch.autocast(device.type, dtype=amp_dtype)) if use_amp \
        else nullcontext

    # --- resume ---------------------------------------------------------------------------
    for folder in (ckpt_dir, sample_dir, state_dir):  # temp files of a killed atomic write
        if folder.is_dir():
            for junk in folder.glob(".*.tmp*"):
                junk.unlink(missing_ok=True)
    it, batches, seconds = 0, 0, 0.0
    existing = _saved(ckpt_dir)
    if existing:
        latest = existing[-1]
        ckpt = load_checkpoint(latest)
        if ckpt.get("kind") != "training":
            raise TrainingError(f"{latest}: newest checkpoint lacks the training state; "
                                "cannot resume")
        old = ckpt["config"]
        diff = sorted(k for k in DEFAULT_CONFIG if k not in _RESUME_FREE
                      and old.get(k) != cfg[k])
        if diff:
            changes = ", ".join(f"{k}: {old.get(k)!r} -> {cfg[k]!r}" for k in diff)
            raise TrainingError(f"{out_dir}: holds a run with another config ({changes}); "
                                "use a new out_dir")
        if ckpt["iteration"] > total:
            raise TrainingError(f"{out_dir}: already trained {ckpt['iteration']} "
                                f"iterations, more than the {total} asked for")
        try:
            G.load_state_dict(ckpt["generator"])
            D.load_state_dict(ckpt["critic"])
        except RuntimeError as exc:
            raise ModelError(f"{latest}: weights do not fit the configured models "
                             f"({' '.join(str(exc).split())[:200]})") from None
        opt_g.load_state_dict(ckpt["opt_g"])
        opt_d.load_state_dict(ckpt["opt_d"])
        if fp16 and ckpt.get("scaler_g"):
            scaler_g.load_state_dict(ckpt["scaler_g"])
            scaler_d.load_state_dict(ckpt["scaler_d"])
        _set_rng_state(ckpt["rng"])
        it, batches, seconds = ckpt["iteration"], ckpt["batches"], ckpt["seconds"]
        del ckpt
        _say(progress, f"resuming from {latest} (iteration {it})")
    done_path = out_dir / "done"
    if it == total and existing and done_path.exists() and (out_dir / "final.pt").exists():
        _say(progress, f"{out_dir} already finished ({it} iterations)")
        result = json.loads(done_path.read_text())
        return {**result, "final": out_dir / "final.pt",
                "checkpoints": _saved(out_dir / "checkpoints"),
                "log": out_dir / "train_log.csv"}
    if it < total:
        done_path.unlink(missing_ok=True)
    log_rows = _read_log(log_path, it)
    _write_log(log_path, log_rows)

    fixed = {"train": _fixed_batch(train_dataset, cfg["n_samples"]),
             "val": _fixed_batch(val_dataset, cfg["n_samples"])}
    G.train()
    D.train()
    last = {"errD": float("nan"), "errG": float("nan"), "l2": float("nan")}
    if log_rows:
        last = {k: float(log_rows[-1][k]) for k in last}
    clamp = cfg["clamp"]
    l2w = cfg["l2_weight"]

    def save_checkpoint():
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        previous = _saved(ckpt_dir)
        path = ckpt_dir / _ckpt_name(it)
        state = {
            "format": CHECKPOINT_FORMAT, "kind": "training", "arch": dict(G.arch),
            "critic_arch": dict(D.arch), "generator": G.state_dict(),
            "critic": D.state_dict(), "opt_g": opt_g.state_dict(),
            "opt_d": opt_d.state_dict(), "scaler_g": scaler_g.state_dict(),
            "scaler_d": scaler_d.state_dict(), "rng": _rng_state(), "iteration": it,
            "batches": batches, "seconds": seconds, "config": dict(cfg),
        }
        with atomic_path(path) as tmp:
            torch.save(state, tmp)
        for old_path in previous:
            if old_path != path:
                _slim(old_path)
        for split, batch in fixed.items():
            if batch is not None:
                write_image(sample_dir / f"iter_{it:07d}_{split}.png",
                            _sample_grid(G, batch, device))

    # --- the loop ---------------------------------------------------------------------------
    _say(progress, f"training {total} iterations on {device} "
                   f"(G {sum(p.numel() for p in G.parameters()):,} parameters)")
    stream = iter(_loader(train_dataset, cfg, batches, device))

    def next_batch():
        nonlocal batches
        batch = next(stream)
        batches += 1
        return tuple(t.to(device, non_blocking=True).contiguous(memory_format=_FORMAT)
                     for t in batch)

    try:
        from tqdm import tqdm
        bar = tqdm(total=total, initial=it, disable=not progress, file=sys.stderr,
                   desc="train", unit="it", dynamic_ncols=True,
                   mininterval=0.1 if sys.stderr.isatty() else 30.0)  # log files stay small
    except ImportError:  # pragma: no cover
        bar = None
    t_row, imgs_row = time.perf_counter(), 0
    try:
        while it < total:
            t0 = time.perf_counter()
            # (1) critic: n steps on fresh batches, parameters clipped before each step
            D.requires_grad_(True)
            for _ in range(critic_steps(it, cfg)):
                with torch.no_grad():
                    for p in D.parameters():
                        p.clamp_(-clamp, clamp)
                x, y, m = next_batch()
                with torch.no_grad(), autocast():
                    fake = G(x, m)
                with autocast():
                    err_d = D(fake).float().mean() - D(y).float().mean()
                opt_d.zero_grad(set_to_none=True)
                scaler_d.scale(err_d).backward()
                scaler_d.step(opt_d)
                scaler_d.update()
            # (2) generator: L2 to the ground truth + adversarial term
            D.requires_grad_(False)
            x, y, m = next_batch()
            with autocast():
                fake = G(x, m)
                adv = -D(fake).float().mean()
            l2 = nn.functional.mse_loss(fake.float(), y.float())
            loss_g = l2w * l2 + (1.0 - l2w) * adv
            opt_g.zero_grad(set_to_none=True)
            scaler_g.scale(loss_g).backward()
            scaler_g.step(opt_g)
            scaler_g.update()
            it += 1
            vals = {"errD": err_d.item(), "errG": adv.item(), "l2": l2.item() / 4.0}
            if not all(math.isfinite(v) for v in vals.values()):
                raise TrainingError(
                    f"non-finite loss at iteration {it} ("
                    + ", ".join(f"{k}={v:.4g}" for k, v in vals.items()) + "); "
                    f"last good checkpoint in {ckpt_dir}")
            last = vals
            seconds += time.perf_counter() - t0
            imgs_row += (critic_steps(it - 1, cfg) + 1) * bs
            if it % cfg["log_every"] == 0 or it == total:
                now = time.perf_counter()
                row = {"iteration": it, **{k: f"{v:.6g}" for k, v in vals.items()},
                       "seconds": f"{seconds:.3f}",
                       "images_per_s": f"{imgs_row / max(now - t_row, 1e-9):.2f}"}
                log_rows.append(row)
                with open(log_path, "a", newline="") as fh:
                    csv.DictWriter(fh, fieldnames=_LOG_FIELDS).writerow(row)
                t_row, imgs_row = now, 0
                if bar is not None:
                    bar.set_postfix(errD=f"{vals['errD']:.3g}", l2=f"{vals['l2']:.3g}")
            if it % cfg["checkpoint_every"] == 0 or it == total:
                save_checkpoint()
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        del stream

    # --- publish the finished artefacts ---------------------------------------------------
    published = []
    for p in _saved(ckpt_dir):
        _publish(p, out_dir / "checkpoints" / p.name)
        published.append(out_dir / "checkpoints" / p.name)
    if sample_dir.exists():
        for p in sorted(sample_dir.glob("iter_*.png")):  # not a killed write's temp file
            _publish(p, out_dir / "samples" / p.name)
    _write_log(out_dir / "train_log.csv", _read_log(log_path, it))
    final = save_generator(G.cpu(), out_dir / "final.pt",
                           extra={"iteration": it, "config": dict(cfg)})
    result = {"iterations": it, "seconds": round(seconds, 3), "device": str(device),
              **last}
    with atomic_path(out_dir / "done") as tmp:
        tmp.write_text(json.dumps(result, indent=1) + "\n")
    _say(progress, f"finished {it} iterations in {seconds:.1f} s -> {final}")
    return {**result, "final": final, "checkpoints": published,
            "log": out_dir / "train_log.csv"}


def train_from_manifests(cfg: dict, train_csv, val_csv, scenes_root, out_dir, *,
                         threads: int | None = None, progress: bool = True) -> dict:
    """:func:`train` on :class:`gpgan.data.dataset.CompositeDataset` manifests.

    Parameters
    ----------
    cfg : dict
        Training config (``image_size`` and ``ratio`` also configure the datasets).
    train_csv, val_csv : str or Path
        Composite manifests of the train and validation splits.
    scenes_root : str or Path
        Folder the manifests' image paths are relative to.
    out_dir, threads, progress
        As for :func:`train`.
    """
    full = resolve_config(cfg)  # bad configs fail before the data layer is touched
    from .data.dataset import CompositeDataset  # lazy: the data layer is optional here

    kw = {"image_size": full["image_size"], "ratio": full["ratio"]}
    return train(cfg, CompositeDataset(train_csv, scenes_root, **kw),
                 CompositeDataset(val_csv, scenes_root, **kw), out_dir, threads=threads,
                 progress=progress)
