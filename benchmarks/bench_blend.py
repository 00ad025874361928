"""Benchmark of the Gaussian-Poisson stage and the Poisson baseline.

Times ``gpgan.blend(method="gp")`` (the full GP pyramid on RGB, no GAN) at 0.25, 1, 4
and 16 megapixels for ``solver="cg"`` and ``solver="dct"``, with the peak resident
memory of each case (every case runs in a fresh child process, so its peak RSS is its
own), plus one RGB DCT round trip at each size (the physical floor) and, when
``opencv-python-headless`` is installed, OpenCV ``seamlessClone`` (NORMAL_CLONE) against
our ``poisson`` method (both boundaries: the exact Perez problem on the mask, and
``poisson_boundary="box"``, the rectangle problem OpenCV solves) on the same
400x400-object-in-1024x1024 inputs. ``poisson-bg-1024`` is the exact Perez problem on
the complement of that mask (the scene around the object, a mask on all four image
borders; no OpenCV counterpart).

Inputs are real photographs (scikit-image's astronaut and coffee) resized with
bilinear interpolation to each size: none of the shipped photos is >= 1024 px, so the
large cases are up-sampled photos (smooth at the pixel level; the solvers' cost does
not depend on content).

Usage::

    python benchmarks/bench_blend.py [--sizes 512,1024,2048,4096] [--repeats 5]
        [--out benchmarks/out]

Writes ``<out>/bench_blend.csv`` and ``<out>/bench_blend.png`` (log-log time vs MP)
and prints a Markdown table. Times are medians over ``--repeats`` runs after one
warm-up run (which also fills the eigenvalue cache, as in repeated use).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def make_inputs(n: int):
    """src, dst (n x n x 3 float32) and an elliptic mask covering ~20% of the image."""
    from PIL import Image
    from skimage import data

    def up(a):
        return np.asarray(Image.fromarray(a).resize((n, n), Image.BILINEAR),
                          dtype=np.float32) / 255.0

    src = up(data.astronaut())
    dst = up(data.coffee()[:400, 100:500])
    yy, xx = np.ogrid[0:n, 0:n]
    mask = ((((yy - 0.45 * n) / (0.28 * n)) ** 2 + ((xx - 0.5 * n) / (0.22 * n)) ** 2) <= 1)
    return src, dst, mask.astype(np.float32)


def _median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run_case(case: dict) -> dict:
    """Run one case in this process; returns timing and peak RSS."""
    import scipy.fft as sfft

    import gpgan

    n, kind, repeats = case["n"], case["kind"], case["repeats"]
    if kind in ("opencv", "poisson-1024", "poisson-box-1024", "poisson-bg-1024"):
        src, dst, mask = make_inputs(1024)
        obj = np.zeros((1024, 1024), np.float32)
        obj[300:700, 300:700] = 1.0  # a 400x400 object
        yy, xx = np.ogrid[0:1024, 0:1024]
        obj *= ((((yy - 500) / 200.0) ** 2 + ((xx - 500) / 200.0) ** 2) <= 1.0)
        if kind == "opencv":
            import cv2

            s8 = (src[250:750, 250:750] * 255).astype(np.uint8)[:, :, ::-1].copy()
            d8 = (dst * 255).astype(np.uint8)[:, :, ::-1].copy()
            m8 = (obj[250:750, 250:750] * 255).astype(np.uint8)
            fn = lambda: cv2.seamlessClone(s8, d8, m8, (500, 500), cv2.NORMAL_CLONE)  # noqa
        else:
            boundary = "box" if kind == "poisson-box-1024" else "mask"
            if kind == "poisson-bg-1024":  # the scene around the object: on every border
                obj = 1.0 - obj
            fn = lambda: gpgan.blend(src, dst, obj, method="poisson",  # noqa
                                     poisson_boundary=boundary)
        n = 1024
    elif kind == "floor":
        x = np.random.default_rng(0).random((3, n, n), dtype=np.float32)

        def fn():
            y = sfft.dctn(x, axes=(1, 2), norm="ortho", workers=-1)
            sfft.idctn(y, axes=(1, 2), norm="ortho", workers=-1, overwrite_x=True)
    else:
        src, dst, mask = make_inputs(n)
        fn = lambda: gpgan.blend(src, dst, mask, method="gp", solver=kind)  # noqa
    seconds = _median_time(fn, repeats)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return dict(kind=kind, n=n, megapixels=n * n / 1e6, seconds=seconds, peak_rss_mb=rss_mb,
                repeats=repeats)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="512,1024,2048,4096")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", default="benchmarks/out")
    p.add_argument("--case", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.case:
        print(json.dumps(run_case(json.loads(args.case))))
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    cases = [dict(kind=k, n=n, repeats=args.repeats if n <= 2048 else max(3, args.repeats // 2))
             for n in sizes for k in ("floor", "dct", "cg")]
    cases.append(dict(kind="poisson-1024", n=1024, repeats=args.repeats))
    cases.append(dict(kind="poisson-box-1024", n=1024, repeats=args.repeats))
    cases.append(dict(kind="poisson-bg-1024", n=1024, repeats=args.repeats))
    try:
        import cv2  # noqa: F401

        cases.append(dict(kind="opencv", n=1024, repeats=args.repeats))
    except ImportError:
        print("opencv-python-headless not installed: skipping the seamlessClone peer",
              file=sys.stderr)
    rows = []
    for case in cases:
        proc = subprocess.run([sys.executable, __file__, "--case", json.dumps(case)],
                              capture_output=True, text=True, check=True)
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(f"{row['kind']:>13} {row['n']:>5}^2  {row['seconds']:8.4f} s  "
              f"{row['peak_rss_mb']:8.0f} MB", flush=True)

    import pandas as pd

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame(rows)
    floor = df[df.kind == "floor"].set_index("n")["seconds"]
    df["x_floor"] = [r.seconds / floor.get(r.n, np.nan) if r.kind in ("dct", "cg") else np.nan
                     for r in df.itertuples()]
    df.to_csv(out / "bench_blend.csv", index=False)
    _plot(df, out / "bench_blend.png")
    print()
    print("| case | size | MP | seconds | x floor | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    for r in df.itertuples():
        xf = "" if np.isnan(r.x_floor) else f"{r.x_floor:.1f}"
        print(f"| {r.kind} | {r.n}x{r.n} | {r.megapixels:.2f} | {r.seconds:.3f} | {xf} | "
              f"{r.peak_rss_mb:.0f} |")
    gp = df[df.kind.isin(["dct", "cg"])].pivot(index="n", columns="kind", values="seconds")
    if 1024 in gp.index and 4096 in gp.index:
        for k in gp.columns:
            print(f"t(16 MP) / t(1 MP), {k}: {gp.loc[4096, k] / gp.loc[1024, k]:.1f}")
    if "opencv" in set(df.kind):
        ours = df[df.kind == "poisson-1024"].seconds.iloc[0]
        cv = df[df.kind == "opencv"].seconds.iloc[0]
        box = df[df.kind == "poisson-box-1024"].seconds.iloc[0]
        print(f"poisson (Dirichlet on the mask) / OpenCV seamlessClone: {ours / cv:.2f}x "
              f"({ours * 1e3:.0f} ms vs {cv * 1e3:.0f} ms)")
        print(f"poisson, box boundary (OpenCV's problem) / OpenCV seamlessClone: "
              f"{box / cv:.2f}x ({box * 1e3:.0f} ms vs {cv * 1e3:.0f} ms)")
    print(f"cpu count: {os.cpu_count()}")
    return 0


def _plot(df, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for kind, label in (("dct", "gp, solver=dct"), ("cg", "gp, solver=cg"),
                        ("floor", "one RGB DCT round trip (floor)")):
        d = df[df.kind == kind].sort_values("megapixels")
        ax.loglog(d.megapixels, d.seconds, "o-", label=label)
    ax.set_xlabel("megapixels")
    ax.set_ylabel("seconds (median)")
    ax.set_title("Gaussian-Poisson pyramid, RGB")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
