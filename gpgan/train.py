"""GAN training: the Blending GAN's Wasserstein GAN + L2 loop (SPEC.md, "Blending
GAN"), which also trains the unsupervised GP-GAN's ``G(z)`` (``model: unsupervised``).

For every generator step ``it`` (0-based) the critic first takes ``n_critic`` steps,
``critic_iters_boost`` (100) while ``it < boost_first`` (25) or ``it % boost_every == 0``
(500), else ``critic_iters`` (5). Each critic step clips every critic parameter to
``[-clamp, clamp]`` (0.01), draws a fresh batch and minimises
``mean D(G(x)) - mean D(y)``; the generator step draws another batch and minimises
``l2_weight * MSE(G(x), y) + (1 - l2_weight) * (-mean D(G(x)))`` (0.999 / 0.001).
``G`` also receives the batch's masks (used by a generator with ``mask_input``).
Both use Adam with ``beta1=0.5`` (lr_G 2e-3, lr_D 2e-4). Batches come from an
epoch-seeded shuffle, so a run is a pure function of the config and the data.

``model: unsupervised`` (SPEC.md, "Unsupervised GP-GAN") runs the same loop with a
:class:`gpgan.models.LatentGenerator`: the fakes are ``G(z)``, ``z ~ N(0, 1)`` of shape
``(batch_size, nz)`` drawn from the global torch RNG on the device (saved in the
checkpoints, so a resume stays bitwise), the generator minimises the adversarial term
``-mean D(G(z))`` alone and draws no data batch (as the authors' updater); the paper
uses RMSprop (``optimizer: rmsprop``, lr 5e-5 for both nets, batch 128). Only the two
task classes below (:class:`BlendingTask`, :class:`LatentTask`) differ.

The configuration is :mod:`gpgan.trainconfig`; the run folder (resumable checkpoints,
log, samples, publishing) is :mod:`gpgan.checkpoints`; checkpoint selection by the
final blend is :mod:`gpgan.select`. Re-running a finished run with the same config
returns at once; raising ``iterations`` (or ``epochs``) continues it; a killed run
resumes from its newest checkpoint, bitwise identical on the CPU.

Log columns: ``errD`` is the critic loss of the iteration's last critic step
(``mean D(fake) - mean D(real)``, minus the Wasserstein estimate), ``errG`` the
adversarial term ``-mean D(G(x))``, ``l2`` the batch MSE between ``G(x)`` and the
ground truth on [0, 1] images (the loss uses [-1, 1] images, i.e. 4x this; empty for
``model: unsupervised``),
``seconds`` the cumulative training time, ``images_per_s`` the training images
(critic and generator batches) drawn per second since the previous row.

Datasets are any ``torch.utils.data.Dataset`` whose items are
``(composite, ground_truth, mask)`` float tensors ``(3, S, S)`` in [-1, 1] and
``(1, S, S)`` in [0, 1] (:class:`gpgan.data.dataset.CompositeDataset`); for
``model: unsupervised`` such triples (only the truth is used) or single ``(3, S, S)``
images in [-1, 1] (:class:`gpgan.data.dataset.H5ImageDataset`). Items should be a
deterministic function of the index (per-item randomness in workers is seeded but
not resumable).
"""

from __future__ import annotations

import math
import random
import sys
import time

import numpy as np
import torch
from torch import nn

from .checkpoints import Nets, Position, RunFolder, sample_inputs
from .errors import ConfigError, InputError, TrainingError
from .models import Critic, Generator, LatentGenerator, resolve_device
from .precision import Precision, choose_precision
from .trainconfig import (DEFAULT_CONFIG, DEMO_CONFIG, PAPER_CONFIG,
                          PAPER_UNSUPERVISED_CONFIG, batches_per_iteration, critic_steps,
                          iterations_for_epochs, resolve_config)

__all__ = [
    "DEFAULT_CONFIG",
    "PAPER_CONFIG",
    "PAPER_UNSUPERVISED_CONFIG",
    "DEMO_CONFIG",
    "resolve_config",
    "critic_steps",
    "iterations_for_epochs",
    "BlendingTask",
    "LatentTask",
    "critic_step",
    "generator_step",
    "train",
    "train_from_manifests",
    "train_from_files",
]

#: Memory format of the models and batches: channels-last made a demo iteration 13 %
#: faster on an AVX-512 BF16 CPU (0.337 -> 0.294 s, bfloat16 autocast, 2 threads) and
#: on one restricted to AVX2, float32: D step 0.229 -> 0.203 s, G step 0.371 ->
#: 0.268 s; the results do not depend on it beyond float round-off, and a resumed run
#: stays bitwise.
_FORMAT = torch.channels_last


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


def _shape(t) -> tuple | None:
    return tuple(t.shape) if isinstance(t, torch.Tensor) else None


def _check_item(item, size: int, model: str, name: str) -> None:
    image = (3, size, size)
    triple = isinstance(item, (tuple, list)) and len(item) == 3
    if model == "unsupervised":
        if _shape(item) == image or (triple and _shape(item[1]) == image):
            return
        need = (f"(3, {size}, {size}) image tensors or (composite, truth, mask) triples "
                f"with a (3, {size}, {size}) truth for model: unsupervised")
    else:
        shapes = (image, image, (1, size, size))
        if triple and all(_shape(t) == s for t, s in zip(item, shapes)):
            return
        need = (f"(composite, truth, mask) tensors of shape (3, {size}, {size}), "
                f"(3, {size}, {size}), (1, {size}, {size})")
    got = [_shape(t) or type(t).__name__
           for t in (item if isinstance(item, (tuple, list)) else [item])]
    raise InputError(f"{name} items must be {need}; got {got}")


class _Truths(torch.utils.data.Dataset):
    """A dataset's images for ``G(z)``: the truth of ``(composite, truth, mask)`` items,
    single-image items as they are."""

    def __init__(self, base):
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i):
        if hasattr(self.base, "truth_item"):  # CompositeDataset: the truth alone, cheaper
            return self.base.truth_item(i)
        item = self.base[i]
        return item if isinstance(item, torch.Tensor) else item[1]



# --------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------

def _say(progress: bool, msg: str) -> None:
    if progress:
        print(f"[gpgan.train] {msg}", file=sys.stderr, flush=True)


def _length(cfg: dict, train_dataset, val_dataset) -> int:
    """Generator iterations of the run; checks the datasets' items first."""
    size, bs = cfg["image_size"], cfg["batch_size"]
    if len(train_dataset) < bs:
        raise ConfigError(f"training set has {len(train_dataset)} items, fewer than "
                          f"batch_size={bs}")
    _check_item(train_dataset[0], size, cfg["model"], "training set")
    if val_dataset is not None and len(val_dataset):
        _check_item(val_dataset[0], size, cfg["model"], "validation set")
    total = cfg["iterations"] if cfg["iterations"] is not None else \
        iterations_for_epochs(cfg["epochs"], len(train_dataset) // bs, cfg)
    if total < 1:
        raise ConfigError(f"epochs={cfg['epochs']} is less than one generator iteration")
    return total


def _networks(cfg: dict, device: torch.device, precision: Precision) -> Nets:
    """G, D (seeded initialisation), their optimisers and AMP gradient scalers (enabled
    for float16 autocast only)."""
    torch.manual_seed(cfg["seed"])
    np.random.seed(cfg["seed"] % 2 ** 32)
    random.seed(cfg["seed"])
    if cfg["model"] == "unsupervised":
        G = LatentGenerator(cfg["image_size"], cfg["nz"], cfg["base_width"])
    else:
        G = Generator(cfg["image_size"], cfg["n_bottleneck"], cfg["base_width"],
                      mask_input=cfg["mask_input"], skip=cfg["skip"], output=cfg["output"],
                      affine_grid=cfg["affine_grid"])
    G = G.to(device, memory_format=_FORMAT)
    D = Critic(cfg["image_size"], cfg["critic_width"]).to(device, memory_format=_FORMAT)
    return Nets(G, D, _optimizer(G, cfg["lr_g"], cfg), _optimizer(D, cfg["lr_d"], cfg),
                torch.amp.GradScaler("cuda", enabled=precision.scaled),
                torch.amp.GradScaler("cuda", enabled=precision.scaled))


def _optimizer(net: nn.Module, lr: float, cfg: dict) -> torch.optim.Optimizer:
    """Adam (``beta1``, ``beta2``) or RMSprop (torch's alpha 0.99, eps 1e-8: Chainer's
    defaults, which the authors' unsupervised training used)."""
    if cfg["optimizer"] == "rmsprop":
        return torch.optim.RMSprop(net.parameters(), lr=lr)
    return torch.optim.Adam(net.parameters(), lr=lr, betas=(cfg["beta1"], cfg["beta2"]))


def _precision(cfg: dict, device: torch.device, newest) -> Precision:
    """The run's precision (:func:`gpgan.precision.choose_precision`); ``amp: auto``
    resumes with the one the run started with (recorded in its checkpoints; a run
    saved before precision was recorded used its config's ``amp``)."""
    recorded = None
    if newest is not None:
        ckpt = newest[1]
        recorded = ckpt.get("precision")
        was = (ckpt.get("config") or {}).get("amp")
        if recorded is None and isinstance(was, bool):
            dtype = (ckpt["config"].get("amp_dtype") or "bfloat16") if was else "float32"
            recorded = {"dtype": dtype, "reason": f"amp: {str(was).lower()} in the run's "
                                                  "saved config"}
    return choose_precision(cfg["amp"], cfg["amp_dtype"], device, recorded,
                            probe=lambda precision: _probe_seconds(cfg, device, precision),
                            probe_key=_probe_key(cfg))


#: What a precision probe's timing depends on in the config: the model and its batch.
_PROBE_KEYS = ("model", "image_size", "nz", "n_bottleneck", "base_width", "critic_width",
               "mask_input", "skip", "output", "affine_grid", "batch_size", "critic_iters",
               "optimizer")


def _probe_key(cfg: dict) -> str:
    return ",".join(f"{k}={cfg[k]}" for k in _PROBE_KEYS)


def _probe_seconds(cfg: dict, device: torch.device, precision: Precision, *,
                   timed: int = 2) -> float:
    """Seconds of one steady-state iteration (``critic_iters`` critic steps and a
    generator step) of fresh copies of the run's networks in ``precision``, on random
    batches: the median of ``timed`` iterations after one warm-up. The global RNGs are
    left as they were (the run seeds its networks afterwards anyway)."""
    state = np.random.get_state(), random.getstate()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        nets = _networks(cfg, device, precision)
        task = LatentTask(cfg, device) if cfg["model"] == "unsupervised" else BlendingTask(cfg)
        gen = torch.Generator().manual_seed(0)
        b, s = cfg["batch_size"], cfg["image_size"]

        def rand(c):
            return (torch.rand(b, c, s, s, generator=gen) * 2 - 1).to(device).contiguous(
                memory_format=_FORMAT)

        y = rand(3)
        batch = y if cfg["model"] == "unsupervised" else (rand(3), y, (rand(1) > 0.4).float())
        autocast = precision.context(device.type)
        times = []
        for _ in range(timed + 1):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            nets.D.requires_grad_(True)
            for _ in range(cfg["critic_iters"]):
                critic_step(nets, task, batch, cfg["clamp"], autocast)
            nets.D.requires_grad_(False)
            generator_step(nets, task, batch if task.needs_data else None, autocast)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times.append(time.perf_counter() - t0)
        del nets
    np.random.set_state(state[0])
    random.setstate(state[1])
    return float(np.median(times[1:]))


class BlendingTask:
    """What the Blending GAN's steps do: fakes ``G(x, m)`` of a batch's composites;
    the generator loss ``l2_weight MSE(G(x), y) + (1 - l2_weight) adv``."""

    #: The generator step draws a data batch (it needs the truth for the L2 term).
    needs_data = True

    def __init__(self, cfg: dict):
        self.l2_weight = cfg["l2_weight"]

    def data(self, dataset):
        return dataset

    def real(self, batch) -> torch.Tensor:
        return batch[1]

    def fake(self, nets: Nets, batch) -> torch.Tensor:
        x, _, m = batch
        return nets.G(x, m)

    def g_loss(self, adv: torch.Tensor, fake: torch.Tensor, batch):
        """The loss to minimise and the MSE (on [-1, 1] images) to log."""
        l2 = nn.functional.mse_loss(fake.float(), batch[1].float())
        return self.l2_weight * l2 + (1.0 - self.l2_weight) * adv, l2


class LatentTask:
    """What the unsupervised GP-GAN's steps do: fakes ``G(z)``, ``z ~ N(0, 1)`` of
    shape ``(batch_size, nz)`` from the global torch RNG on ``device``; the generator
    loss is the adversarial term alone; the data are images (:class:`_Truths`)."""

    needs_data = False

    def __init__(self, cfg: dict, device: torch.device):
        self.shape, self.device = (cfg["batch_size"], cfg["nz"]), device

    def data(self, dataset):
        return _Truths(dataset)

    def real(self, batch) -> torch.Tensor:
        return batch

    def fake(self, nets: Nets, batch) -> torch.Tensor:
        return nets.G(torch.randn(self.shape, device=self.device))

    def g_loss(self, adv: torch.Tensor, fake: torch.Tensor, batch):
        return adv, None


def critic_step(nets: Nets, task, batch, clamp: float, autocast) -> torch.Tensor:
    """One WGAN critic step: clip D's weights, minimise ``mean D(fake) - mean D(real)``
    (``task``: :class:`BlendingTask` or :class:`LatentTask`)."""
    with torch.no_grad():
        for p in nets.D.parameters():
            p.clamp_(-clamp, clamp)
    with torch.no_grad(), autocast():
        fake = task.fake(nets, batch)
    with autocast():
        err_d = nets.D(fake).float().mean() - nets.D(task.real(batch)).float().mean()
    nets.opt_d.zero_grad(set_to_none=True)
    nets.scaler_d.scale(err_d).backward()
    nets.scaler_d.step(nets.opt_d)
    nets.scaler_d.update()
    return err_d


def generator_step(nets: Nets, task, batch, autocast):
    """One generator step: minimise ``task.g_loss`` of the adversarial term ``-mean
    D(fake)``; returns that term and the MSE (None for :class:`LatentTask`)."""
    with autocast():
        fake = task.fake(nets, batch)
        adv = -nets.D(fake).float().mean()
    loss, l2 = task.g_loss(adv, fake, batch)
    nets.opt_g.zero_grad(set_to_none=True)
    nets.scaler_g.scale(loss).backward()
    nets.scaler_g.step(nets.opt_g)
    nets.scaler_g.update()
    return adv, l2


class _Batches:
    """The endless batch stream on ``device`` (channels-last), counting the batches
    drawn (the resume position)."""

    def __init__(self, dataset, cfg: dict, pos: Position, device: torch.device):
        self.stream = iter(_loader(dataset, cfg, pos.batches, device))
        self.pos, self.device = pos, device

    def next(self):
        batch = next(self.stream)
        self.pos.batches += 1
        if isinstance(batch, torch.Tensor):  # single images (model unsupervised)
            return self._move(batch)
        return tuple(self._move(t) for t in batch)

    def _move(self, t: torch.Tensor) -> torch.Tensor:
        return t.to(self.device, non_blocking=True).contiguous(memory_format=_FORMAT)


def _check_finite(last: dict, iteration: int, run: RunFolder) -> None:
    """A :class:`TrainingError` naming the iteration when a logged loss is not finite."""
    if not all(math.isfinite(v) for v in last.values()):
        raise TrainingError(
            f"non-finite loss at iteration {iteration} ("
            + ", ".join(f"{k}={v:.4g}" for k, v in last.items()) + "); "
            f"last good checkpoint in {run.ckpts}")


def _progress_bar(total: int, start: int, progress: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=start, disable=not progress, file=sys.stderr,
                desc="train", unit="it", dynamic_ncols=True,
                mininterval=0.1 if sys.stderr.isatty() else 30.0)  # log files stay small


def train(cfg: dict, train_dataset, val_dataset, out_dir, *, threads: int | None = None,
          progress: bool = True) -> dict:
    """Train the Blending GAN (WGAN + L2) or, with ``model: unsupervised``, the
    unsupervised GP-GAN's ``G(z)`` (WGAN); resumes from ``out_dir/state`` if present.

    Parameters
    ----------
    cfg : dict
        Training config (:func:`gpgan.trainconfig.resolve_config`: flat, or a whole
        workflow config); missing keys take :data:`DEFAULT_CONFIG` (paper) values.
    train_dataset, val_dataset : torch.utils.data.Dataset
        Items ``(composite, truth, mask)``: float tensors ``(3, S, S)`` in [-1, 1]
        and ``(1, S, S)`` in [0, 1], ``S = cfg["image_size"]``; for ``model:
        unsupervised`` also single ``(3, S, S)`` images (of a triple only the truth is
        used). ``val_dataset`` (may be ``None``) only feeds the Blending GAN's sample
        grids (``G(z)``'s show a fixed seeded ``z``).
    out_dir : str or Path
        Run folder (layout in :mod:`gpgan.checkpoints`).
    threads : int, optional
        ``torch.set_num_threads`` for the CPU work.
    progress : bool
        Progress bar and status lines on stderr.

    Returns
    -------
    dict
        ``iterations``, ``seconds``, ``final`` (Path of ``final.pt``), ``checkpoints``
        (published Paths), ``log`` (Path), ``device``, last ``errD``/``errG`` (and
        ``l2`` for the Blending GAN).

    Raises
    ------
    TrainingError
        A non-finite loss (names the iteration), or a resume that conflicts with the
        state in ``out_dir``.
    ConfigError, InputError
        Bad config or dataset items.
    """
    cfg = resolve_config(cfg)
    if threads:
        torch.set_num_threads(int(threads))
    device = resolve_device(cfg["device"])
    total = _length(cfg, train_dataset, val_dataset)
    run = RunFolder(out_dir)
    newest = run.newest()
    precision = _precision(cfg, device, newest)
    autocast = precision.context(device.type)
    nets = _networks(cfg, device, precision)
    task = LatentTask(cfg, device) if cfg["model"] == "unsupervised" else BlendingTask(cfg)
    pos = run.resume(nets, cfg, total, precision.scaled, newest)
    del newest
    if pos.iteration:
        _say(progress, f"resuming from iteration {pos.iteration} in {run.ckpts}")
    done = run.finished(pos, total)
    if done:
        _say(progress, f"{run.out} already finished ({pos.iteration} iterations)")
        return done
    samples = sample_inputs(cfg, train_dataset, val_dataset)
    nets.G.train()
    nets.D.train()
    last = run.last_losses()
    _say(progress, f"training {total} iterations on {device} "
                   f"(G {sum(p.numel() for p in nets.G.parameters()):,} parameters) in "
                   f"{precision.describe()}")
    batches = _Batches(task.data(train_dataset), cfg, pos, device)
    bar = _progress_bar(total, pos.iteration, progress)
    t_row, imgs_row = time.perf_counter(), 0
    try:
        while pos.iteration < total:
            t0 = time.perf_counter()
            nets.D.requires_grad_(True)  # (1) the critic, on fresh batches
            for _ in range(critic_steps(pos.iteration, cfg)):
                err_d = critic_step(nets, task, batches.next(), cfg["clamp"], autocast)
            nets.D.requires_grad_(False)  # (2) the generator: (L2 +) adversarial term
            batch = batches.next() if task.needs_data else None
            adv, l2 = generator_step(nets, task, batch, autocast)
            pos.iteration += 1
            last = {"errD": err_d.item(), "errG": adv.item()}
            if l2 is not None:  # the Blending GAN's L2, logged on [0, 1] images
                last["l2"] = l2.item() / 4.0
            _check_finite(last, pos.iteration, run)
            pos.seconds += time.perf_counter() - t0
            imgs_row += batches_per_iteration(pos.iteration - 1, cfg) * cfg["batch_size"]
            if pos.iteration % cfg["log_every"] == 0 or pos.iteration == total:
                now = time.perf_counter()
                run.log({"iteration": pos.iteration, **{k: f"{v:.6g}" for k, v in last.items()},
                         "seconds": f"{pos.seconds:.3f}",
                         "images_per_s": f"{imgs_row / max(now - t_row, 1e-9):.2f}"})
                t_row, imgs_row = now, 0
                shown = ("errD", "l2") if "l2" in last else ("errD", "errG")
                bar.set_postfix({k: f"{last[k]:.3g}" for k in shown})
            if pos.iteration % cfg["checkpoint_every"] == 0 or pos.iteration == total:
                run.save(nets, pos, cfg, samples, device, precision.as_dict())
            bar.update(1)
    finally:
        bar.close()
        del batches
    result = run.publish(nets.G, pos, cfg, {"iterations": pos.iteration,
                                            "seconds": round(pos.seconds, 3),
                                            "device": str(device),
                                            "precision": precision.as_dict(), **last})
    _say(progress, f"finished {pos.iteration} iterations in {pos.seconds:.1f} s -> "
                   f"{result['final']}")
    return result


def train_from_files(cfg: dict, out_dir, *, train_csv=None, val_csv=None, scenes_root=None,
                     hdf5=None, threads: int | None = None, progress: bool = True,
                     section: str = "train") -> dict:
    """:func:`train` on files: composite manifests (``train_csv``, ``val_csv``,
    ``scenes_root``: :func:`train_from_manifests`) or, for ``model: unsupervised``, an HDF5 image file
    (``hdf5``, e.g. the paper's ``outdoor_64.hdf5``:
    :class:`gpgan.data.dataset.H5ImageDataset`). The workflow's training rules and
    ``gpgan train`` both come here; ``section`` as for :func:`train_from_manifests`.
    """
    full = resolve_config(cfg, section)  # a bad config fails before any data is read
    if hdf5 is not None:
        if full["model"] != "unsupervised":
            raise ConfigError("an HDF5 image file holds images for G(z): the config needs "
                              "model: unsupervised")
        from .data.dataset import H5ImageDataset

        return train(full, H5ImageDataset(hdf5, full["image_size"]), None, out_dir,
                     threads=threads, progress=progress)
    if not (train_csv and scenes_root):
        raise ConfigError("training needs a train manifest and its scenes folder (or an "
                          "HDF5 image file with model: unsupervised)")
    return train_from_manifests(cfg, train_csv, val_csv, scenes_root, out_dir,
                                threads=threads, progress=progress, section=section)


def train_from_manifests(cfg: dict, train_csv, val_csv, scenes_root, out_dir, *,
                         threads: int | None = None, progress: bool = True,
                         section: str = "train") -> dict:
    """:func:`train` on :class:`gpgan.data.dataset.CompositeDataset` manifests.

    Parameters
    ----------
    cfg : dict
        Training config (``image_size`` and ``ratio`` also configure the datasets).
        With ``model: unsupervised``, ``G(z)`` trains on the train manifest's ground
        truth crops (natural scenes) and ``val_csv`` is not read (may be None).
    train_csv, val_csv : str or Path
        Composite manifests of the train and validation splits.
    scenes_root : str or Path
        Folder the manifests' image paths are relative to.
    out_dir, threads, progress
        As for :func:`train`.
    section : str
        The section of a whole workflow config to train (:func:`resolve_config`),
        e.g. ``train_unsupervised``.
    """
    full = resolve_config(cfg, section)  # bad configs fail before the data layer is touched
    from .data.dataset import CompositeDataset  # lazy: the data layer is optional here

    kw = {"image_size": full["image_size"], "ratio": full["ratio"]}
    val = None if full["model"] == "unsupervised" or val_csv is None else \
        CompositeDataset(val_csv, scenes_root, **kw)
    return train(full, CompositeDataset(train_csv, scenes_root, **kw), val, out_dir,
                 threads=threads, progress=progress)
