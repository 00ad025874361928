"""Blend a whole test set with one method (the workflow's ``blend`` step).

Reads the test manifest written by :func:`gpgan.data.composites.make_test_composites`
(``test.csv``: ``id, scene, src, dst, mask, gt, height, width, coverage``, paths
relative to the manifest's folder; ``gt`` is not needed, so the cross-scene table of
:func:`gpgan.data.composites.make_cross_composites` works too), blends every composite
with :func:`gpgan.blend` and writes ``<out_dir>/<id>.png`` plus
``<out_dir>/timing.csv`` (``id, seconds, megapixels``: wall time of the blend call
alone, after a warm-up blend so one-off costs such as loading the GAN are not counted).
"""

from __future__ import annotations

import csv
import logging
import time
from pathlib import Path

from tqdm import tqdm

from ._arrays import set_fft_workers
from .blending import blend
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
        if method == "gp-gan":
            import torch

            torch.set_num_threads(int(threads))
    rows = read_test_csv(test_csv, ground_truth=False).to_dict("records")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    timing = []
    warmed = False
    for r in tqdm(rows, desc=f"blend {method}", disable=not progress, unit="img"):
        src, dst, mask = read_image(r["src"]), read_image(r["dst"]), read_mask(r["mask"])
        if not warmed:  # first call pays imports, model loading, FFT plans
            blend(src, dst, mask, method=method, **options)
            warmed = True
        t0 = time.perf_counter()
        out = blend(src, dst, mask, method=method, **options)
        seconds = time.perf_counter() - t0
        write_image(out_dir / f"{r['id']}.png", out)
        timing.append((r["id"], seconds, out.shape[0] * out.shape[1] / 1e6))
        log.info("%s %s: %.4f s", method, r["id"], seconds)
    timing_csv = out_dir / "timing.csv"
    with atomic_path(timing_csv) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "seconds", "megapixels"])
        for row in timing:
            w.writerow([row[0], f"{row[1]:.6f}", f"{row[2]:.6f}"])
    return timing_csv
