"""Checkpoint selection by the final blend: the Blending GAN is judged where GP-GAN
uses it.

Every checkpoint blends the validation composites with ``gp-gan`` (with
``gp-gan-unsupervised`` for an unsupervised ``G(z)`` checkpoint; the same GP options
as the benchmark's blends) and is scored on the final images against their ground
truth: fMSE inside the mask and, when the LPIPS weights are given, LPIPS over the whole
image (:mod:`gpgan.metrics`). Two reference rows are scored the same way: ``copy-paste``
and ``gp`` (the GP pyramid with the copy-paste colour: GP-GAN without the GAN).

Criterion (lower is better)::

    score = fmse / fmse_gp + lpips / lpips_gp        (LPIPS available)
    score = fmse / fmse_gp                            (no LPIPS)

so each term is the checkpoint's mean relative to the ``gp`` row's mean: a checkpoint
that does exactly as well as the ablation scores 2 (or 1), and the two measures weigh
the same whatever their units. The lowest score wins; ties go to the earlier
checkpoint.

Outputs in ``out_dir``: ``selection.csv`` (``name, kind, iteration, fmse, lpips, score,
selected``; ``lpips`` empty without weights) and ``best.pt``, the selected generator
(generator-only checkpoint with ``selected_from``, ``val_fmse``, ``val_lpips``,
``val_score``).
"""

from __future__ import annotations

import csv
import logging
import math
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .blending import blend_each
from .data.composites import read_test_csv
from .errors import ModelError
from .io import atomic_path, read_image, read_mask
from .metrics import fmse, lpips_distance
from .models import (generator_from_checkpoint, list_checkpoints, load_checkpoint,
                     resolve_device, save_generator)

__all__ = ["SELECTION_COLUMNS", "score_blends", "select_checkpoint"]

log = logging.getLogger(__name__)

SELECTION_COLUMNS = ("name", "kind", "iteration", "fmse", "lpips", "score", "selected")


def score_blends(composites, method: str, *, lpips_weights=None, **options) -> dict:
    """Mean fMSE (and LPIPS) of ``method``'s blends of ``composites`` against the truth.

    ``composites`` is a list of ``(src, dst, mask, gt)`` float arrays; ``options`` go to
    :func:`gpgan.blend` (through :func:`gpgan.blending.blend_each`, so the latent fits
    of ``gp-gan-unsupervised`` run batched). Returns ``{"fmse": float, "lpips": float
    or nan}``.
    """
    f, lp = [], []
    inputs = [c[:3] for c in composites]
    for (src, dst, mask, gt), done in zip(composites, blend_each(inputs, method, **options)):
        f.append(fmse(done.image, gt, mask))
        if lpips_weights is not None:
            lp.append(lpips_distance(done.image, gt, weights_dir=lpips_weights))
    return {"fmse": float(np.mean(f)), "lpips": float(np.mean(lp)) if lp else math.nan}


def _score(row: dict, ref: dict) -> float:
    s = row["fmse"] / ref["fmse"]
    if not math.isnan(row["lpips"]):
        s += row["lpips"] / ref["lpips"]
    return s


def select_checkpoint(checkpoints, val_csv, out_dir, *, lpips_weights=None, device="auto",
                      threads: int | None = None, progress: bool = True,
                      **blend_options) -> Path:
    """Pick the checkpoint whose ``gp-gan`` (or, for ``G(z)`` checkpoints,
    ``gp-gan-unsupervised``) blends of the validation composites score best (module docstring); write ``selection.csv`` and ``best.pt`` into ``out_dir``.

    Parameters
    ----------
    checkpoints : list of paths, or a folder
        Checkpoint files (any kind :func:`gpgan.models.load_generator` reads); a folder
        stands for its ``iter_*.pt`` files.
    val_csv : path-like
        Full-size validation composites (``test.csv`` layout,
        :func:`gpgan.data.composites.make_test_composites`).
    out_dir : path-like
        Receives ``selection.csv`` and ``best.pt``.
    lpips_weights : path-like, optional
        LPIPS weights folder; ``None`` scores by fMSE alone.
    device : str
        Where the generator runs (``"auto"``, ``"cpu"``, ``"cuda"``).
    threads : int, optional
        ``torch.set_num_threads``.
    blend_options
        GP options for :func:`gpgan.blend` (``color_weight``, ``solver``, ``pyramid``,
        ``gan_region``, ``latent_iters``, ...), the same as the benchmark's.

    Returns
    -------
    Path
        ``out_dir / "best.pt"``.
    """
    files = list_checkpoints(checkpoints)
    if not files:
        raise ModelError(f"no checkpoints to select from ({checkpoints})")
    if threads:
        torch.set_num_threads(int(threads))
    device = str(resolve_device(device))
    rows = read_test_csv(val_csv).to_dict("records")
    comps = [(read_image(r["src"]), read_image(r["dst"]), read_mask(r["mask"]),
              read_image(r["gt"])) for r in rows]
    score = dict(lpips_weights=lpips_weights, **blend_options)
    refs = [{"name": name, "kind": "reference", "iteration": "",
             **score_blends(comps, name, **score)} for name in ("copy-paste", "gp")]
    gp = refs[1]
    table, best, best_gen = [], None, None
    for path in tqdm(files, desc="select", unit="ckpt", disable=not progress):
        meta = load_checkpoint(path)
        gen = generator_from_checkpoint(meta, str(path)).to(device).eval()
        method = "gp-gan-unsupervised" if gen.arch.get("kind") == "latent" else "gp-gan"
        row = {"name": path.name, "kind": "checkpoint", "iteration": meta.get("iteration", ""),
               **score_blends(comps, method, model=gen, device=device, **score)}
        row["score"] = _score(row, gp)
        table.append(row)
        log.info("%s: fmse %.5f lpips %.4f score %.4f", path.name, row["fmse"], row["lpips"],
                 row["score"])
        if best is None or row["score"] < best["score"]:
            best, best_gen = row, gen.cpu()
    for r in refs:
        r["score"] = _score(r, gp)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "selection.csv") as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(SELECTION_COLUMNS)
        for r in table + refs:
            w.writerow([r["name"], r["kind"], r["iteration"], f"{r['fmse']:.8g}",
                        "" if math.isnan(r["lpips"]) else f"{r['lpips']:.6g}",
                        f"{r['score']:.6g}", int(r is best)])
    return save_generator(best_gen, out_dir / "best.pt",
                          extra={"selected_from": best["name"], "iteration": best["iteration"],
                                 "val_fmse": best["fmse"], "val_lpips": best["lpips"],
                                 "val_score": best["score"]})
