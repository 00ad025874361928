"""Figures of a run (matplotlib, Agg backend, PNG files).

One function per figure; each reads its inputs from files, writes one PNG atomically
and returns its path. :func:`make_figures` draws them all from the paths it is given
(the workflow passes the files its rule declares; nothing here knows a run's layout):

    test_csv          test composites (id, src, dst, mask, gt, ...)
    blends_root       <blends_root>/<method>/<id>.png and <method>/timing.csv
    summary_csv       from gpgan.evaluate.evaluate
    ablation_csv      from gpgan.evaluate.beta_ablation
    train_log         train_log.csv of the Blending GAN (optional)
    samples_dir       its sample sheets, the newest one is drawn (optional)
    unsupervised      (train_log.csv, samples folder) of the unsupervised G(z) (optional)

:func:`realism_figures` draws the cross-scene figures (``realism.png``,
``cross_scene.png``) from the realism table (:func:`gpgan.evaluate.evaluate_realism`).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .errors import InputError  # noqa: E402
from .io import atomic_path, read_image, read_mask, to_float_image  # noqa: E402
from .metrics import HIGHER_IS_BETTER  # noqa: E402

__all__ = [
    "qualitative_grid",
    "metric_bars",
    "training_curves",
    "sample_grid",
    "beta_ablation_curve",
    "timing_plot",
    "make_figures",
    "realism_bars",
    "realism_figures",
]

log = logging.getLogger(__name__)

DPI = 120
_LABELS = {"mse": "MSE", "psnr": "PSNR (dB)", "ssim": "SSIM", "fmse": "fMSE",
           "fpsnr": "fPSNR (dB)", "edge_mse": "edge-band MSE", "lpips": "LPIPS",
           "seconds": "seconds / image"}


def _save(fig, out_png) -> Path:
    out_png = Path(out_png)
    if out_png.suffix.lower() != ".png":
        raise InputError(f"{out_png}: figures are written as .png")
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=DPI, bbox_inches="tight", format="png")
    plt.close(fig)
    return out_png


def _read_csv(path, columns) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    df = pd.read_csv(path, dtype={"id": str})
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {missing}")
    return df


def qualitative_grid(test_csv, blends_root, methods, out_png, *, ids=None,
                     max_rows: int = 4, cell_inches: float = 2.0, scores=None,
                     title: str | None = None) -> Path:
    """Comparison grid like the paper's: one row per test composite.

    Columns: the copy-paste composite with the mask outline (yellow), each method's
    blend, the ground truth (when the table has one: cross-scene composites do not).
    A method named ``copy-paste`` is not repeated.

    Parameters
    ----------
    test_csv : str or Path
        Test manifest (paths relative to its folder), or a cross-scene table.
    blends_root : str or Path
        Folder with ``<method>/<id>.png``.
    methods : sequence of str
    out_png : str or Path
    ids : sequence of str, optional
        Composites to show (default: the first ``max_rows``).
    max_rows : int
    cell_inches : float
        Size of one panel.
    scores : pandas.DataFrame, optional
        ``id, method, realism``: each panel is labelled with its score.
    title : str, optional
        Figure title.
    """
    from .data.composites import read_test_csv

    tests = read_test_csv(test_csv, ground_truth=False)
    if ids is not None:
        tests = tests.set_index("id").loc[[str(i) for i in ids]].reset_index()
    else:
        tests = tests.head(max_rows)
    has_gt = "gt" in tests.columns
    shown = [m for m in methods if m != "copy-paste"]
    cols = ["copy-paste + mask", *shown] + (["ground truth"] if has_gt else [])
    score = {} if scores is None else {(str(r.id), r.method): r.realism
                                       for r in scores.itertuples(index=False)}
    aspect = float(np.median(tests["height"] / tests["width"]))  # panel height / width
    fig, axes = plt.subplots(len(tests), len(cols), squeeze=False,
                             figsize=(cell_inches * len(cols),
                                      cell_inches * aspect * len(tests) + 0.4
                                      + (0.3 if title else 0)))
    for r, t in enumerate(tests.itertuples(index=False)):
        src, dst, mask = read_image(t.src), read_image(t.dst), read_mask(t.mask)
        composite = mask[..., None] * src + (1.0 - mask[..., None]) * dst
        panels = [(composite, "copy-paste")]
        for m in shown:
            panels.append((read_image(Path(blends_root) / m / f"{t.id}.png"), m))
        if has_gt:
            panels.append((read_image(t.gt), None))
        for c, (img, method) in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(np.clip(img, 0, 1), interpolation="lanczos")
            if c == 0:
                ax.contour(mask, levels=[0.5], colors="yellow", linewidths=1.0)
                ax.set_ylabel(str(t.id), fontsize=8)
            if (str(t.id), method) in score:
                ax.set_xlabel(f"realism {score[(str(t.id), method)]:+.2f}", fontsize=8)
            if r == 0:
                ax.set_title(cols[c], fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return _save(fig, out_png)


def realism_bars(summary_csv, out_png) -> Path:
    """The cross-scene table as a chart (the paper's Table 1 drawn): left, the mean
    realism per method with its 95% confidence interval and, where the paper has the
    method, its RealismCNN mean; right, the share of composites where each method's
    blend scores above the copy-paste, with a 95% Wilson interval.

    Parameters
    ----------
    summary_csv : str or Path
        ``summary.csv`` from :func:`gpgan.evaluate.evaluate_realism`.
    """
    from scipy.stats import binomtest

    from .evaluate import PAPER_REALISM

    s = _read_csv(summary_csv, ["method", "n", "mean", "ci95_low", "ci95_high",
                                "beats_copy_paste"])
    if s.empty:
        raise InputError(f"{summary_csv}: nothing to plot")
    methods = list(s["method"])
    x = np.arange(len(methods))
    colors = plt.get_cmap("tab10")(x % 10)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(max(7.0, 1.6 * len(methods)), 3.4))
    mean = s["mean"].to_numpy(dtype=float)
    err = [np.nan_to_num(mean - s["ci95_low"].to_numpy(dtype=float)),
           np.nan_to_num(s["ci95_high"].to_numpy(dtype=float) - mean)]
    ax.bar(x, mean, color=colors, yerr=err, capsize=3, label="this judge, 95% CI")
    paper = [PAPER_REALISM.get(m, (math.nan,))[0] for m in methods]
    if np.isfinite(paper).any():
        ax.scatter(x, paper, marker="D", color="black", zorder=3, s=18,
                   label="paper (RealismCNN)")
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_title("Realism score ↑ (log-odds natural)", fontsize=10)
    ax.legend(fontsize=7)
    others = [i for i, m in enumerate(methods) if m != "copy-paste"]
    n = s["n"].to_numpy(dtype=int)[others]
    p = s["beats_copy_paste"].to_numpy(dtype=float)[others]
    cis = [binomtest(int(round(pi * ni)), int(ni)).proportion_ci(method="wilson")
           for pi, ni in zip(p, n)]
    xo = np.arange(len(others))
    bx.bar(xo, 100 * p, color=colors[others], capsize=3,
           yerr=[[100 * (pi - ci.low) for pi, ci in zip(p, cis)],
                 [100 * (ci.high - pi) for pi, ci in zip(p, cis)]])
    bx.axhline(50.0, color="grey", linewidth=0.8, linestyle="--")
    bx.set_ylim(0, 100)
    bx.set_title("Beats copy-paste (% of composites, 95% CI)", fontsize=10)
    for a, pos, names in ((ax, x, methods), (bx, xo, [methods[i] for i in others])):
        a.set_xticks(pos, names, rotation=35, ha="right", fontsize=8)
        a.grid(axis="y", alpha=0.3)
    fig.suptitle(f"Cross-scene composites (n = {int(s['n'].iloc[0])}), no ground truth",
                 fontsize=11)
    fig.tight_layout()
    return _save(fig, out_png)


def realism_figures(out_dir, *, cross_csv, blends_root, summary_csv, per_image_csv,
                    methods, max_rows: int = 4) -> dict:
    """``realism.png`` (:func:`realism_bars`) and ``cross_scene.png`` (the cross-scene
    blends, :func:`qualitative_grid`, each panel labelled with its realism score)."""
    out = Path(out_dir)
    scores = _read_csv(per_image_csv, ["id", "method", "realism"])
    return {
        "realism": realism_bars(summary_csv, out / "realism.png"),
        "cross_scene": qualitative_grid(
            cross_csv, blends_root, list(methods), out / "cross_scene.png",
            max_rows=max_rows, scores=scores,
            title="Cross-scene composites: an object from another photograph"),
    }


def metric_bars(summary_csv, out_png, *, metrics=None, methods=None) -> Path:
    """Bar chart per metric: mean per method with its 95% confidence interval.

    Parameters
    ----------
    summary_csv : str or Path
        ``summary.csv`` from :func:`gpgan.evaluate.evaluate`.
    out_png : str or Path
    metrics, methods : sequence of str, optional
        Subsets to draw (default: all in the file, ``seconds`` excluded).
    """
    s = _read_csv(summary_csv, ["method", "metric", "mean", "ci95_low", "ci95_high"])
    if metrics is None:
        metrics = [m for m in dict.fromkeys(s["metric"]) if m != "seconds"]
    if methods is None:
        methods = list(dict.fromkeys(s["method"]))
    if not metrics or not methods:
        raise InputError(f"{summary_csv}: nothing to plot")
    ncols = min(len(metrics), 4)
    nrows = math.ceil(len(metrics) / ncols)
    fig, axes = plt.subplots(nrows, ncols, squeeze=False, figsize=(3.2 * ncols, 2.8 * nrows))
    colors = plt.get_cmap("tab10")(np.arange(len(methods)) % 10)
    x = np.arange(len(methods))
    for k, metric in enumerate(metrics):
        ax = axes.flat[k]
        sub = s[s["metric"] == metric].set_index("method").reindex(methods)
        mean = sub["mean"].to_numpy(dtype=float)
        lo = np.nan_to_num(mean - sub["ci95_low"].to_numpy(dtype=float))
        hi = np.nan_to_num(sub["ci95_high"].to_numpy(dtype=float) - mean)
        ax.bar(x, mean, color=colors, yerr=[lo, hi], capsize=3)
        arrow = "↑" if HIGHER_IS_BETTER.get(metric, False) else "↓"
        ax.set_title(f"{_LABELS.get(metric, metric)} {arrow}", fontsize=10)
        ax.set_xticks(x, methods, rotation=35, ha="right", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[len(metrics):]:
        ax.set_visible(False)
    fig.suptitle("Mean per method, 95% CI", fontsize=11)
    fig.tight_layout()
    return _save(fig, out_png)


def training_curves(train_log_csv, out_png, *, smooth: int = 0) -> Path:
    """Critic loss, generator loss and L2 against iteration from ``train_log.csv``.

    Parameters
    ----------
    train_log_csv : str or Path
        Columns ``iteration, errD, errG, l2`` (``seconds, images_per_s`` unused). An
        empty ``l2`` column (the unsupervised GP-GAN's ``G(z)``) draws errD and errG only.
    out_png : str or Path
    smooth : int
        Width of a centred moving average drawn over the raw curve (0 = none).
    """
    df = _read_csv(train_log_csv, ["iteration", "errD", "errG", "l2"])
    if df.empty:
        raise InputError(f"{train_log_csv}: no rows")
    panels = [("errD", "critic loss errD"), ("errG", "generator loss errG")]
    if df["l2"].notna().any():
        panels.append(("l2", "L2 (MSE)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(11 * len(panels) / 3, 3))
    for ax, (col, title) in zip(axes, panels):
        ax.plot(df["iteration"], df[col], lw=0.8, alpha=0.5 if smooth > 1 else 1.0)
        if smooth > 1:
            ax.plot(df["iteration"], df[col].rolling(smooth, center=True, min_periods=1).mean(),
                    lw=1.5)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
    if len(panels) == 3:
        axes[2].set_yscale("log" if (df["l2"] > 0).all() else "linear")
    fig.tight_layout()
    return _save(fig, out_png)


def sample_grid(images, out_png, *, ncols: int = 8, title: str | None = None) -> Path:
    """Show GAN samples: one PNG (e.g. a saved sample sheet) or a list of images.

    Parameters
    ----------
    images : str, Path, or sequence of (path or ndarray)
        A single file is shown as it is; a sequence is tiled ``ncols`` per row.
    out_png : str or Path
    ncols : int
    title : str, optional
    """
    if isinstance(images, (str, Path)):
        images = [images]
    imgs = [read_image(x) if isinstance(x, (str, Path)) else to_float_image(x) for x in images]
    if not imgs:
        raise InputError("sample_grid: no images")
    ncols = 1 if len(imgs) == 1 else min(ncols, len(imgs))
    nrows = math.ceil(len(imgs) / ncols)
    if len(imgs) == 1:  # a sample sheet: the figure takes the sheet's own aspect
        h, w = imgs[0].shape[:2]
        width = 6.0 if h >= w else 9.0
        figsize = (width, width * h / w + (0.4 if title else 0.0))
    else:
        figsize = (1.4 * ncols, 1.4 * nrows)
    fig, axes = plt.subplots(nrows, ncols, squeeze=False, figsize=figsize)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img in zip(axes.flat, imgs):
        ax.imshow(img, interpolation="nearest")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return _save(fig, out_png)


def beta_ablation_curve(ablation_csv, out_png, *, metric: str = "fmse") -> Path:
    """``metric`` (default fMSE) against the colour weight beta (log x axis).

    Parameters
    ----------
    ablation_csv : str or Path
        From :func:`gpgan.evaluate.beta_ablation` (columns ``beta``, ``fmse``, ...).
    out_png : str or Path
    metric : str
    """
    df = _read_csv(ablation_csv, ["beta", metric]).sort_values("beta")
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    ax.plot(df["beta"], df[metric], "o-")
    ax.set_xscale("log")
    ax.set_xlabel("colour weight β")
    ax.set_ylabel(_LABELS.get(metric, metric))
    best = df.loc[df[metric].idxmax() if HIGHER_IS_BETTER.get(metric) else df[metric].idxmin()]
    ax.axvline(best["beta"], color="gray", ls="--", lw=0.8)
    ax.set_title(f"GP stage: {_LABELS.get(metric, metric)} vs β (best β={best['beta']:g})",
                 fontsize=10)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return _save(fig, out_png)


def timing_plot(blends_root, methods, out_png) -> Path:
    """Seconds per blend against megapixels, one series per method (log-log).

    Parameters
    ----------
    blends_root : str or Path
        Folder with ``<method>/timing.csv`` (columns ``id, seconds, megapixels``).
    methods : sequence of str
    out_png : str or Path
    """
    fig, ax = plt.subplots(figsize=(5, 3.6))
    drawn = 0
    for m in methods:
        path = Path(blends_root) / m / "timing.csv"
        if not path.is_file():
            log.warning("timing plot: %s missing, %s left out", path, m)
            continue
        df = _read_csv(path, ["seconds", "megapixels"])
        df = df[(df["seconds"] > 0) & (df["megapixels"] > 0)]
        if df.empty:
            continue
        per = df.groupby("megapixels")["seconds"].median().sort_index()
        line, = ax.plot(per.index, per.values, "-", lw=1)
        ax.scatter(df["megapixels"], df["seconds"], s=10, color=line.get_color(), label=m)
        drawn += 1
    if not drawn:
        plt.close(fig)
        raise InputError(f"{blends_root}: no timing.csv with positive times for {list(methods)}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("megapixels")
    ax.set_ylabel("seconds per blend")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, out_png)


def make_figures(out_dir, *, test_csv, blends_root, summary_csv, ablation_csv,
                 methods=None, train_log=None, samples_dir=None, unsupervised=None,
                 max_rows: int = 4) -> dict:
    """Draw the figures of a run from the given files into ``out_dir``.

    Parameters
    ----------
    out_dir : str or Path
        Receives ``<name>.png``.
    test_csv, blends_root, summary_csv, ablation_csv : str or Path
        Inputs of ``qualitative``, ``timing``, ``metrics`` and ``beta`` (module
        docstring); a missing file is an :class:`InputError` naming it.
    methods : sequence of str, optional
        Columns of the qualitative grid and timing series; default: the methods of
        ``summary_csv`` in its order.
    train_log, samples_dir : str or Path, optional
        The Blending GAN's log and sample folder: ``training`` and ``samples`` are
        drawn when given (runs without ``gp-gan`` have neither).
    unsupervised : (str or Path, str or Path), optional
        The unsupervised ``G(z)``'s log and sample folder: ``training_unsupervised``
        and ``samples_unsupervised``.
    max_rows : int
        Rows of the qualitative grid.

    Returns
    -------
    dict of str to Path
        Figure name -> PNG written.
    """
    out = Path(out_dir)
    if methods is None:
        methods = list(dict.fromkeys(_read_csv(summary_csv, ["method"])["method"]))
    methods = list(methods)
    made = {
        "qualitative": qualitative_grid(test_csv, blends_root, methods,
                                        out / "qualitative.png", max_rows=max_rows),
        "metrics": metric_bars(summary_csv, out / "metrics.png"),
        "beta": beta_ablation_curve(ablation_csv, out / "beta.png"),
        "timing": timing_plot(blends_root, methods, out / "timing.png"),
    }
    gans = [("", train_log, samples_dir, "Blending GAN samples")]
    if unsupervised is not None:
        gans.append(("_unsupervised", *unsupervised, "Unsupervised GP-GAN: G(z) samples"))
    for suffix, log_csv, samples, title in gans:
        if log_csv is not None:
            made[f"training{suffix}"] = training_curves(log_csv, out / f"training{suffix}.png")
        if samples is not None:
            sheets = sorted(Path(samples).glob("*.png"))
            if not sheets:
                raise InputError(f"{samples}: no sample sheets (*.png)")
            made[f"samples{suffix}"] = sample_grid(sheets[-1], out / f"samples{suffix}.png",
                                                   title=title)
    return made
