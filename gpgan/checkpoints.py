"""The training run's folder: resumable checkpoints, the loss log, sample grids, and
publishing the finished artefacts.

Layout of ``out_dir`` (``docs/training.md``)::

    state/                      working state, never a workflow output (kept on failure)
      checkpoints/iter_XXXXXXX.pt   every `checkpoint_every` iterations, atomic; the
                                    newest holds the full training state (G, D, both
                                    optimiser states, AMP scalers, RNG states, batch
                                    position, config, precision); older ones are slimmed to the
                                    generator (+ config) once a newer one exists
      train_log.csv             running log (truncated to the checkpoint on resume)
      samples/iter_XXXXXXX_{train,val}.png   rows: composite | G(composite) | truth
      samples/iter_XXXXXXX_z.png    model unsupervised: G of a fixed seeded z, 8 a row
    checkpoints/iter_XXXXXXX.pt published at the end (hard links to state/, else copies)
    samples/*.png               published at the end
    train_log.csv               published at the end: iteration, errD, errG, l2,
                                seconds, images_per_s
    final.pt                    generator of the last iteration (generator-only file)
    done                        written last (JSON summary); its presence = finished

A workflow rule therefore declares only ``final.pt`` / ``done`` / ``train_log.csv`` /
``checkpoints/`` / ``samples/`` as outputs: if the job dies, Snakemake deletes those,
``state/`` survives and the rerun resumes from the newest checkpoint.
"""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import ModelError, TrainingError
from .io import atomic_path, write_image
from .models import CHECKPOINT_FORMAT, list_checkpoints, load_checkpoint, save_generator
from .trainconfig import config_changes

__all__ = ["LOG_FIELDS", "Nets", "Position", "RunFolder", "fixed_batch", "fixed_latents",
           "sample_inputs"]

#: Columns of ``train_log.csv`` (``l2`` is empty for ``model: unsupervised``).
LOG_FIELDS = ["iteration", "errD", "errG", "l2", "seconds", "images_per_s"]

#: Images per row of the ``G(z)`` sample grid.
LATENT_GRID_COLUMNS = 8


@dataclass
class Nets:
    """Everything a training checkpoint holds besides the position: the two networks,
    their optimisers and the AMP gradient scalers."""

    G: torch.nn.Module
    D: torch.nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    scaler_g: torch.amp.GradScaler
    scaler_d: torch.amp.GradScaler


@dataclass
class Position:
    """Where a run stands: generator iterations done, batches drawn, seconds trained."""

    iteration: int = 0
    batches: int = 0
    seconds: float = 0.0


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
            w = csv.DictWriter(fh, fieldnames=LOG_FIELDS)
            w.writeheader()
            w.writerows(rows)


# --------------------------------------------------------------------------------------
# Samples
# --------------------------------------------------------------------------------------

def fixed_batch(dataset, n: int) -> tuple[torch.Tensor, ...] | None:
    """The first ``n`` items of ``dataset`` stacked (the sample grids' rows), or None."""
    n = min(n, len(dataset)) if dataset is not None else 0
    if n == 0:
        return None
    items = [dataset[i] for i in range(n)]
    return tuple(torch.stack(parts) for parts in zip(*items))


def fixed_latents(n: int, nz: int, seed: int) -> torch.Tensor | None:
    """``n`` latent vectors ``(n, nz)`` from N(0, 1), seeded by ``seed`` (a generator of
    their own: the global RNG, and so a resume, is untouched), or None for ``n == 0``."""
    if n == 0:
        return None
    return torch.randn(n, nz, generator=torch.Generator().manual_seed(seed))


def sample_inputs(cfg: dict, train_dataset, val_dataset) -> dict:
    """What the sample grids show, split -> input: the first ``n_samples`` items of
    both sets for the Blending GAN, a fixed seeded ``z`` for ``model: unsupervised``."""
    n = cfg["n_samples"]
    if cfg["model"] == "unsupervised":
        return {"z": fixed_latents(n, cfg["nz"], cfg["seed"])}
    return {"train": fixed_batch(train_dataset, n), "val": fixed_batch(val_dataset, n)}


def _to_unit(t: torch.Tensor) -> np.ndarray:
    """``(N, 3, S, S)`` in [-1, 1] -> ``(N, S, S, 3)`` float32 in [0, 1]."""
    return ((t.detach().float().cpu().numpy().transpose(0, 2, 3, 1) + 1.0) / 2.0).clip(0, 1)


def _tile(rows: list[list[np.ndarray]], gap: int = 2) -> np.ndarray:
    """Images ``(S, S, 3)`` laid out in rows on white, ``gap`` pixels apart."""
    s = rows[0][0].shape[0]
    n, m = len(rows), max(len(r) for r in rows)
    grid = np.ones((n * s + (n - 1) * gap, m * s + (m - 1) * gap, 3), np.float32)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            grid[i * (s + gap):i * (s + gap) + s, j * (s + gap):j * (s + gap) + s] = img
    return grid


def _sample_grid(G: torch.nn.Module, batch, device: torch.device) -> np.ndarray:
    """G in eval mode on a sample input: rows ``composite | G(composite) | truth`` for
    a Blending GAN batch, rows of :data:`LATENT_GRID_COLUMNS` images ``G(z)`` for a
    latent tensor ``z``."""
    was_training = G.training
    G.eval()
    with torch.no_grad():
        if isinstance(batch, torch.Tensor):
            fake = _to_unit(G(batch.to(device)).float())
        else:
            x, y, m = batch
            fake = G(x.to(device), m.to(device)).float()
    G.train(was_training)
    if isinstance(batch, torch.Tensor):
        k = LATENT_GRID_COLUMNS
        return _tile([list(fake[i:i + k]) for i in range(0, len(fake), k)])
    return _tile([list(r) for r in zip(_to_unit(x), _to_unit(fake), _to_unit(y))])


# --------------------------------------------------------------------------------------
# The run folder
# --------------------------------------------------------------------------------------

class RunFolder:
    """``out_dir`` of one training run (layout in the module docstring)."""

    def __init__(self, out_dir):
        self.out = Path(out_dir)
        self.state = self.out / "state"
        self.ckpts, self.samples = self.state / "checkpoints", self.state / "samples"
        self.log_path = self.state / "train_log.csv"
        self.done = self.out / "done"

    def newest(self) -> tuple[Path, dict] | None:
        """The newest checkpoint of ``state/`` and its contents, or None for a new run.
        Also removes temp files of a killed atomic write."""
        for folder in (self.ckpts, self.samples, self.state):
            if folder.is_dir():
                for junk in folder.glob(".*.tmp*"):
                    junk.unlink(missing_ok=True)
        existing = _saved(self.ckpts)
        return (existing[-1], load_checkpoint(existing[-1])) if existing else None

    def resume(self, nets: Nets, cfg: dict, total: int, scaled: bool,
               newest: tuple[Path, dict] | None) -> Position:
        """Load ``newest`` (:meth:`newest`) into ``nets`` and the RNGs; the position to
        continue from (zero for a new run, ``newest`` None). Also truncates the running
        log to the checkpoint. ``scaled``: the run uses float16 gradient scalers."""
        pos = Position()
        if newest is not None:
            pos = self._load(*newest, nets, cfg, total, scaled)
        if pos.iteration < total:
            self.done.unlink(missing_ok=True)
        _write_log(self.log_path, _read_log(self.log_path, pos.iteration))
        return pos

    def _load(self, path: Path, ckpt: dict, nets: Nets, cfg: dict, total: int,
              scaled: bool) -> Position:
        if ckpt.get("kind") != "training":
            raise TrainingError(f"{path}: newest checkpoint lacks the training state; "
                                "cannot resume")
        changes = config_changes(ckpt["config"], cfg)
        if changes:
            raise TrainingError(f"{self.out}: holds a run with another config "
                                f"({', '.join(changes)}); use a new out_dir")
        if ckpt["iteration"] > total:
            raise TrainingError(f"{self.out}: already trained {ckpt['iteration']} "
                                f"iterations, more than the {total} asked for")
        try:
            nets.G.load_state_dict(ckpt["generator"])
            nets.D.load_state_dict(ckpt["critic"])
        except RuntimeError as exc:
            raise ModelError(f"{path}: weights do not fit the configured models "
                             f"({' '.join(str(exc).split())[:200]})") from None
        nets.opt_g.load_state_dict(ckpt["opt_g"])
        nets.opt_d.load_state_dict(ckpt["opt_d"])
        if scaled and ckpt.get("scaler_g"):
            nets.scaler_g.load_state_dict(ckpt["scaler_g"])
            nets.scaler_d.load_state_dict(ckpt["scaler_d"])
        _set_rng_state(ckpt["rng"])
        return Position(ckpt["iteration"], ckpt["batches"], ckpt["seconds"])

    def finished(self, pos: Position, total: int) -> dict | None:
        """The published result if the run already reached ``total``, else None."""
        if pos.iteration == total and _saved(self.ckpts) and self.done.exists() \
                and (self.out / "final.pt").exists():
            return {**json.loads(self.done.read_text()), "final": self.out / "final.pt",
                    "checkpoints": _saved(self.out / "checkpoints"),
                    "log": self.out / "train_log.csv"}
        return None

    def last_losses(self) -> dict:
        """The last logged losses (NaN for a new run; an empty column, such as ``l2``
        of ``model: unsupervised``, is left out)."""
        rows = _read_log(self.log_path, 2 ** 62)
        keys = ("errD", "errG", "l2")
        if not rows:
            return {k: float("nan") for k in keys}
        return {k: float(rows[-1][k]) for k in keys if rows[-1][k] not in ("", None)}

    def log(self, row: dict) -> None:
        """Append one row (:data:`LOG_FIELDS`) to the running log."""
        with open(self.log_path, "a", newline="") as fh:
            csv.DictWriter(fh, fieldnames=LOG_FIELDS).writerow(row)

    def save(self, nets: Nets, pos: Position, cfg: dict, samples: dict, device,
             precision: dict) -> Path:
        """Write the full training checkpoint of ``pos`` (atomic; with ``precision``,
        :meth:`gpgan.precision.Precision.as_dict`), slim the older ones to their
        generator, and draw the sample grids of ``samples`` (split -> batch)."""
        self.ckpts.mkdir(parents=True, exist_ok=True)
        previous = _saved(self.ckpts)
        path = self.ckpts / _ckpt_name(pos.iteration)
        state = {
            "format": CHECKPOINT_FORMAT, "kind": "training", "arch": dict(nets.G.arch),
            "critic_arch": dict(nets.D.arch), "generator": nets.G.state_dict(),
            "critic": nets.D.state_dict(), "opt_g": nets.opt_g.state_dict(),
            "opt_d": nets.opt_d.state_dict(), "scaler_g": nets.scaler_g.state_dict(),
            "scaler_d": nets.scaler_d.state_dict(), "rng": _rng_state(),
            "iteration": pos.iteration, "batches": pos.batches, "seconds": pos.seconds,
            "config": dict(cfg), "precision": dict(precision),
        }
        with atomic_path(path) as tmp:
            torch.save(state, tmp)
        for old_path in previous:
            if old_path != path:
                _slim(old_path)
        for split, batch in samples.items():
            if batch is not None:
                write_image(self.samples / f"iter_{pos.iteration:07d}_{split}.png",
                            _sample_grid(nets.G, batch, device))
        return path

    def publish(self, G: torch.nn.Module, pos: Position, cfg: dict, result: dict) -> dict:
        """Publish the checkpoints, samples and log, write ``final.pt`` and ``done``
        (last); returns ``result`` with ``final``, ``checkpoints`` and ``log``."""
        published = []
        for p in _saved(self.ckpts):
            _publish(p, self.out / "checkpoints" / p.name)
            published.append(self.out / "checkpoints" / p.name)
        if self.samples.exists():
            for p in sorted(self.samples.glob("iter_*.png")):  # not a temp file
                _publish(p, self.out / "samples" / p.name)
        _write_log(self.out / "train_log.csv", _read_log(self.log_path, pos.iteration))
        final = save_generator(G.cpu(), self.out / "final.pt",
                               extra={"iteration": pos.iteration, "config": dict(cfg)})
        with atomic_path(self.done) as tmp:
            tmp.write_text(json.dumps(result, indent=1) + "\n")
        return {**result, "final": final, "checkpoints": published,
                "log": self.out / "train_log.csv"}
