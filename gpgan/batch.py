"""Blend a whole test set with one method (the workflow's ``blend`` step).

Reads the test manifest written by :func:`gpgan.data.composites.make_test_composites`
(``test.csv``: ``id, scene, src, dst, mask, gt, height, width, coverage``, paths
relative to the manifest's folder; ``gt`` is not needed, so the cross-scene table of
:func:`gpgan.data.composites.make_cross_composites` works too), blends every composite
with :func:`gpgan.blending.blend_each` (:func:`gpgan.blend` on each; the latent fits of
``gp-gan-unsupervised`` run batched) and writes ``<out_dir>/<id>.png`` plus
``<out_dir>/timing.csv`` (``id, seconds, megapixels``: wall time of the blend alone,
reading and writing files excluded, after a warm-up blend so one-off costs such as
loading the GAN are not counted; for ``gp-gan-unsupervised`` each composite's own work
plus an equal share of its batch's latent fit).
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from ._arrays import set_fft_workers
from .blending import blend, blend_each
from .data.composites import read_test_csv
from .io import atomic_path, read_image, read_mask, write_image

log = logging.getLogger(__name__)


def blend_test_set(test_csv, method: str, out_dir, *, threads: int | None = None,
                   progress: bool = True, **options) -> Path:
    """Blend every test composite with ``method``; returns ``<out_dir>/timing.csv``.

    ``threads`` caps the FFT workers (:func:`gpgan._arrays.set_fft_workers`) and
    torch's intra-op threads for the rest of the process (default: all cores).
    ``options`` go to :func:`gpgan.blend` (``model``, ``color_weight``, ``solver``,
    ``pyramid``, ``preserve_background``, ...).
    """
    if threads:
        set_fft_workers(int(threads))
        if method in ("gp-gan", "gp-gan-unsupervised"):
            import torch

            torch.set_num_threads(int(threads))
    rows = read_test_csv(test_csv, ground_truth=False).to_dict("records")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    composites = _Composites(rows)
    if rows:  # the first call pays imports, model loading, FFT plans
        blend(*composites[0], method=method, **dict(options, latent_iters=1)
              if method == "gp-gan-unsupervised" else options)
    timing = []
    results = blend_each(composites, method, **options)
    for r, done in tqdm(zip(rows, results), total=len(rows), desc=f"blend {method}",
                        disable=not progress, unit="img"):
        write_image(out_dir / f"{r['id']}.png", done.image)
        timing.append((r["id"], done.seconds,
                       done.image.shape[0] * done.image.shape[1] / 1e6))
        log.info("%s %s: %.4f s", method, r["id"], done.seconds)
    timing_csv = out_dir / "timing.csv"
    with atomic_path(timing_csv) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "seconds", "megapixels"])
        for row in timing:
            w.writerow([row[0], f"{row[1]:.6f}", f"{row[2]:.6f}"])
    return timing_csv


class _Composites(Sequence):
    """The ``(src, dst, mask)`` of manifest rows, read from disk when indexed."""

    def __init__(self, rows: list[dict]):
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int):
        r = self.rows[i]
        return read_image(r["src"]), read_image(r["dst"]), read_mask(r["mask"])
