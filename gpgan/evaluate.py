"""Score blends of the test composites against their ground truth.

Inputs (the layout the workflow writes):

- ``test.csv`` with columns ``id,scene,src,dst,mask,gt,height,width,coverage``; image
  paths are relative to the folder of ``test.csv``.
- ``<blends_root>/<method>/<id>.png``: one blend per method and composite, and
  ``<blends_root>/<method>/timing.csv`` with columns ``id,seconds,megapixels``.

Outputs in ``out_dir``:

- ``per_image.csv``: ``id, method``, one column per metric, ``seconds, megapixels``.
- ``summary.csv``: one row per (method, metric): ``n, mean, std`` (sample std,
  ``ddof=1``), the 95% confidence interval of the mean (Student t), the metric's
  direction and ``best`` (True for the method with the best mean in that metric; ties
  are all marked). Non-finite values (``inf`` PSNR of an identical image, ``nan`` of an
  empty mask) are left out of that metric's statistics and ``n`` says how many remain.
- ``summary.md``: the same as a Markdown table (mean +- CI half-width, best in bold).

LPIPS needs the AlexNet weights (``gpgan fetch-weights``). Leaving ``"lpips"`` out of
``metrics`` skips it: the column is then absent and a notice is logged and written under
the Markdown table. No value is ever made up.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .data.composites import read_test_csv
from .errors import InputError
from .io import atomic_path, read_image, read_mask
from .metrics import DEFAULT_BAND_PX, HIGHER_IS_BETTER, METRICS, compute_metrics

__all__ = ["Evaluation", "evaluate", "read_test_csv", "read_timing", "summarize",
           "summary_markdown", "beta_ablation"]

log = logging.getLogger(__name__)

TIMING_COLUMNS = ("id", "seconds", "megapixels")

# Number formats of the Markdown table.
_FORMATS = {"mse": "{:.3g}", "fmse": "{:.3g}", "edge_mse": "{:.3g}", "psnr": "{:.2f}",
            "fpsnr": "{:.2f}", "ssim": "{:.4f}", "lpips": "{:.4f}", "seconds": "{:.3g}"}


@dataclass
class Evaluation:
    """Result of :func:`evaluate`: the two tables and the files written."""

    per_image: pd.DataFrame
    summary: pd.DataFrame
    paths: dict = field(default_factory=dict)
    notices: list = field(default_factory=list)


def read_timing(method_dir) -> pd.DataFrame:
    """Read ``<method_dir>/timing.csv``; an absent file gives an empty table (logged)."""
    path = Path(method_dir) / "timing.csv"
    if not path.is_file():
        log.warning("no timing for %s (%s missing): seconds left empty", Path(method_dir).name, path)
        return pd.DataFrame(columns=list(TIMING_COLUMNS)).astype({"id": str})
    df = pd.read_csv(path, dtype={"id": str})
    missing = [c for c in TIMING_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {missing}")
    return df[list(TIMING_COLUMNS)].drop_duplicates("id", keep="last")


def _ci95(values: np.ndarray) -> tuple[float, float, float, float]:
    """Mean, sample std and the 95% Student-t interval of the mean."""
    from scipy import stats

    n = values.size
    if n == 0:
        return (math.nan,) * 4
    mean = float(values.mean())
    if n == 1:
        return mean, math.nan, math.nan, math.nan
    std = float(values.std(ddof=1))
    half = float(stats.t.ppf(0.975, n - 1) * std / math.sqrt(n))
    return mean, std, mean - half, mean + half


def summarize(per_image: pd.DataFrame, metrics) -> pd.DataFrame:
    """Per (method, metric) statistics of a per-image table (see module docstring).

    Parameters
    ----------
    per_image : pandas.DataFrame
        Columns ``method`` and the metric columns.
    metrics : sequence of str
        Columns to summarize (e.g. the metrics and ``seconds``).

    Returns
    -------
    pandas.DataFrame
        Columns ``method, metric, n, mean, std, ci95_low, ci95_high, higher_is_better,
        best``; methods in order of first appearance.
    """
    rows = []
    methods = list(dict.fromkeys(per_image["method"]))
    for metric in metrics:
        if metric not in per_image.columns:
            continue
        higher = HIGHER_IS_BETTER.get(metric, False)
        block = []
        for method in methods:
            v = per_image.loc[per_image["method"] == method, metric].to_numpy(dtype=np.float64)
            v = v[np.isfinite(v)]
            mean, std, lo, hi = _ci95(v)
            block.append({"method": method, "metric": metric, "n": int(v.size), "mean": mean,
                          "std": std, "ci95_low": lo, "ci95_high": hi,
                          "higher_is_better": higher, "best": False})
        means = np.array([r["mean"] for r in block], dtype=np.float64)
        if np.isfinite(means).any():
            target = np.nanmax(means) if higher else np.nanmin(means)
            for r in block:
                r["best"] = bool(np.isfinite(r["mean"]) and r["mean"] == target)
        rows.extend(block)
    return pd.DataFrame(rows, columns=["method", "metric", "n", "mean", "std", "ci95_low",
                                       "ci95_high", "higher_is_better", "best"])


def summary_markdown(summary: pd.DataFrame, *, n_images: int | None = None,
                     notices=()) -> str:
    """Render :func:`summarize` output as a Markdown table (mean +- 95% CI, best in bold)."""
    metrics = list(dict.fromkeys(summary["metric"]))
    methods = list(dict.fromkeys(summary["method"]))
    arrows = {m: ("↑" if HIGHER_IS_BETTER.get(m, False) else "↓") for m in metrics}
    head = "| method | " + " | ".join(f"{m} {arrows[m]}" for m in metrics) + " |"
    lines = [head, "|---|" + "---:|" * len(metrics)]
    idx = summary.set_index(["method", "metric"])
    for method in methods:
        cells = []
        for metric in metrics:
            r = idx.loc[(method, metric)]
            fmt = _FORMATS.get(metric, "{:.4g}")
            if not math.isfinite(r["mean"]):
                cells.append("n/a")
                continue
            cell = fmt.format(r["mean"])
            if math.isfinite(r["ci95_high"]):
                cell += " ± " + fmt.format((r["ci95_high"] - r["ci95_low"]) / 2)
            cells.append(f"**{cell}**" if r["best"] else cell)
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    foot = ["", "Mean ± half-width of the 95% confidence interval of the mean (Student t); "
                "best per column in bold; ↑ higher is better, ↓ lower is better."]
    if n_images is not None:
        foot.append(f"{n_images} test composites; PSNR peak 1.0; fMSE/fPSNR over mask >= 0.5.")
    foot.extend(f"Note: {n}" for n in notices)
    return "\n".join(lines + foot) + "\n"


def _write_csv(df: pd.DataFrame, path: Path) -> Path:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.8g")
    return path


def evaluate(test_csv, blends_root, methods, out_dir, *, metrics=METRICS, lpips_weights=None,
             band_px: int = DEFAULT_BAND_PX, progress: bool = True) -> Evaluation:
    """Score every method's blends of the test composites and write the tables.

    Parameters
    ----------
    test_csv : str or Path
        The test manifest (see module docstring).
    blends_root : str or Path
        Folder holding ``<method>/<id>.png`` and ``<method>/timing.csv``.
    methods : sequence of str
        Methods to score, in table order.
    out_dir : str or Path
        Folder for ``per_image.csv``, ``summary.csv`` and ``summary.md``.
    metrics : sequence of str
        Subset of :data:`gpgan.metrics.METRICS`; leave out ``"lpips"`` to skip LPIPS.
    lpips_weights : str or Path, optional
        Folder with the LPIPS backbone (default ``resources/lpips``).
    band_px : int
        Edge-band half-width for ``edge_mse``.
    progress : bool
        Show a tqdm progress bar on stderr.

    Returns
    -------
    Evaluation
    """
    from tqdm import tqdm

    metrics = list(metrics)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise InputError(f"unknown metric(s) {unknown}; choose from {list(METRICS)}")
    methods = list(methods)
    if not methods:
        raise InputError("no methods to evaluate")
    notices = []
    if "lpips" not in metrics:
        notices.append("LPIPS not computed (disabled in the configuration).")
        log.warning("LPIPS skipped: disabled in the configuration")
    else:
        from .metrics import load_lpips

        load_lpips(lpips_weights)  # fail fast, before any work, if the weights are missing

    tests = read_test_csv(test_csv)
    blends_root = Path(blends_root)
    for method in methods:
        if not (blends_root / method).is_dir():
            raise InputError(f"{blends_root / method}: no blends for method {method!r}")

    rows = []
    with tqdm(total=len(methods) * len(tests), desc="evaluate", unit="img",
              disable=not progress) as bar:
        for method in methods:
            timing = read_timing(blends_root / method).set_index("id")
            for t in tests.itertuples(index=False):
                gt = read_image(t.gt)
                mask = read_mask(t.mask)
                blend_path = blends_root / method / f"{t.id}.png"
                pred = read_image(blend_path)
                if pred.shape != gt.shape:
                    raise InputError(f"{blend_path}: size {pred.shape[:2]} differs from the "
                                     f"ground truth's {gt.shape[:2]}")
                if mask.shape != gt.shape[:2]:
                    raise InputError(f"{t.mask}: size {mask.shape} differs from the ground "
                                     f"truth's {gt.shape[:2]}")
                row = {"id": t.id, "method": method}
                row.update(compute_metrics(pred, gt, mask, metrics=metrics, band_px=band_px,
                                           lpips_weights=lpips_weights))
                if t.id in timing.index:
                    row["seconds"] = float(timing.at[t.id, "seconds"])
                    row["megapixels"] = float(timing.at[t.id, "megapixels"])
                else:
                    row["seconds"] = math.nan
                    row["megapixels"] = gt.shape[0] * gt.shape[1] / 1e6
                rows.append(row)
                bar.update(1)

    per_image = pd.DataFrame(rows, columns=["id", "method", *metrics, "seconds", "megapixels"])
    summary = summarize(per_image, [*metrics, "seconds"])
    out_dir = Path(out_dir)
    paths = {
        "per_image": _write_csv(per_image, out_dir / "per_image.csv"),
        "summary": _write_csv(summary, out_dir / "summary.csv"),
    }
    md = summary_markdown(summary, n_images=len(tests), notices=notices)
    with atomic_path(out_dir / "summary.md") as tmp:
        tmp.write_text(md, encoding="utf-8")
    paths["markdown"] = out_dir / "summary.md"
    return Evaluation(per_image=per_image, summary=summary, paths=paths, notices=notices)


def beta_ablation(test_csv, betas, out_csv=None, *, n_images: int = 4, ids=None,
                  band_px: int = DEFAULT_BAND_PX, blend_fn=None, progress: bool = False,
                  **blend_options) -> pd.DataFrame:
    """Colour-weight (beta) ablation of the Gaussian-Poisson stage.

    For each ``beta`` the first ``n_images`` test composites (or those in ``ids``) are
    blended with ``gpgan.blend(src, dst, mask, method="gp", color_weight=beta)`` and
    scored against their ground truth.

    Parameters
    ----------
    test_csv : str or Path
        The test manifest.
    betas : sequence of float
        Colour weights to try (> 0).
    out_csv : str or Path, optional
        Where to write the table.
    n_images : int
        How many composites (from the top of ``test.csv``) when ``ids`` is None.
    ids : sequence of str, optional
        Composites to use.
    band_px : int
        Edge-band half-width.
    blend_fn : callable, optional
        ``blend_fn(src, dst, mask, method=..., color_weight=...)``; default
        :func:`gpgan.blend`.
    progress : bool
        Show a progress bar.
    **blend_options
        The other GP options of the blend (``solver``, ``pyramid``,
        ``preserve_background``, ``band``, ...: the workflow passes the blend rule's);
        not ``method`` or ``color_weight``, which the ablation sets.

    Returns
    -------
    pandas.DataFrame
        Columns ``beta, fmse, fpsnr, mse, psnr, edge_mse, n`` (means over the images).
    """
    from tqdm import tqdm

    if blend_fn is None:
        from . import blend as blend_fn  # the contract: gpgan.blend(src, dst, mask, ...)
    fixed = sorted({"method", "color_weight"} & set(blend_options))
    if fixed:
        raise InputError(f"beta_ablation sets {' and '.join(fixed)} itself; do not pass it")
    betas = [float(b) for b in betas]
    if not betas or min(betas) <= 0:
        raise InputError("betas must be a non-empty list of positive numbers")
    tests = read_test_csv(test_csv)
    if ids is not None:
        ids = [str(i) for i in ids]
        unknown = sorted(set(ids) - set(tests["id"]))
        if unknown:
            raise InputError(f"{test_csv}: unknown id(s) {unknown}")
        tests = tests.set_index("id").loc[ids].reset_index()
    else:
        tests = tests.head(n_images)
    names = ("fmse", "fpsnr", "mse", "psnr", "edge_mse")
    cases = [(read_image(t.src), read_image(t.dst), read_mask(t.mask), read_image(t.gt))
             for t in tests.itertuples(index=False)]
    rows = []
    for beta in tqdm(betas, desc="beta ablation", disable=not progress):
        scores = []
        for src, dst, mask, gt in cases:
            out = np.asarray(blend_fn(src, dst, mask, method="gp", color_weight=beta,
                                      **blend_options), dtype=np.float32)
            scores.append(compute_metrics(out, gt, mask, metrics=names, band_px=band_px))
        df = pd.DataFrame(scores)
        row = {"beta": beta}
        for name in names:
            v = df[name].to_numpy(dtype=np.float64)
            v = v[np.isfinite(v)]
            row[name] = float(v.mean()) if v.size else math.nan
        row["n"] = len(cases)
        rows.append(row)
    table = pd.DataFrame(rows, columns=["beta", *names, "n"])
    if out_csv is not None:
        _write_csv(table, Path(out_csv))
    return table


#: The paper's Table 1 (RealismCNN on 500 composites, mean and std; SPEC.md) by our
#: method names; "multi-spline" has no implementation here, unsupervised no std.
PAPER_REALISM = {"copy-paste": (-0.696, 1.799), "poisson": (-0.192, 1.565),
                 "mpb": (-0.151, 1.561), "gp-gan": (-0.069, 1.385),
                 "gp-gan-unsupervised": (-0.110, math.nan)}


def _realism_markdown(summary: pd.DataFrame, n: int, validation: dict | None) -> str:
    lines = ["| method | realism ↑ mean ± std | 95% CI of the mean | beats copy-paste | "
             "paper: RealismCNN |", "|---|---:|---:|---:|---:|"]
    best = summary["mean"].max()
    for r in summary.itertuples(index=False):
        cell = f"{r.mean:.3f} ± {r.std:.3f}"
        paper = PAPER_REALISM.get(r.method)
        ptxt = "" if paper is None else (f"{paper[0]:.3f}" + (
            f" ± {paper[1]:.3f}" if math.isfinite(paper[1]) else ""))
        share = "" if r.method == "copy-paste" else f"{100 * r.beats_copy_paste:.0f} %"
        lines.append(f"| {r.method} | {f'**{cell}**' if r.mean == best else cell} | "
                     f"[{r.ci95_low:.3f}, {r.ci95_high:.3f}] | {share} | {ptxt} |")
    foot = ["", f"{n} cross-scene composites (an object from one held-out photograph pasted "
            "into another, no ground truth). Realism = the judge's log-odds that the blend "
            "is natural (gpgan.realism; not the paper's RealismCNN, see README). "
            "Beats copy-paste = share of composites where the method's blend scores higher "
            "than the copy-paste."]
    if validation:
        auc = validation["auc"]["image"]
        foot.append(f"Judge validation on held-out photographs (whole-image views): ROC AUC "
                    f"natural vs copy-paste from another photograph {auc['other_photo']:.3f}, "
                    f"vs same-scene relit paste {auc['relit']:.3f}, vs same-photograph paste "
                    f"(no colour mismatch; 0.5 = blind to it) {auc['same_photo']:.3f}.")
    return "\n".join(lines + foot) + "\n"


def evaluate_realism(cross_csv, blends_root, methods, judge, out_dir, *, use_mask: bool = False,
                     validation_json=None, device: str = "auto",
                     progress: bool = True) -> Evaluation:
    """Score every method's blends of the cross-scene composites with the realism judge.

    Parameters
    ----------
    cross_csv : str or Path
        The composites (:func:`gpgan.data.composites.make_cross_composites`).
    blends_root : str or Path
        Folder holding ``<method>/<id>.png``; ``copy-paste`` must be among
        ``methods`` (the share that beats it is a column).
    judge : str or Path
        ``judge.pt`` (:func:`gpgan.realism.train_judge`).
    out_dir : str or Path
        Receives ``per_image.csv`` (``id, method, realism``), ``summary.csv`` (``method,
        n, mean, std, ci95_low, ci95_high, beats_copy_paste``) and ``summary.md`` (the
        paper's Table 1 beside ours).
    use_mask : bool
        Score the mask-centred view (:func:`gpgan.realism.view`) instead of the whole
        image (the paper scores whole images).
    validation_json : str or Path, optional
        The judge's ``validation.json``: its AUCs go under the table.
    """
    import json

    from tqdm import tqdm

    from .realism import load_judge, score_images

    methods = list(methods)
    if "copy-paste" not in methods:
        raise InputError("the realism table compares with copy-paste: add it to the methods")
    tests = read_test_csv(cross_csv, ground_truth=False)
    blends_root = Path(blends_root)
    for method in methods:
        if not (blends_root / method).is_dir():
            raise InputError(f"{blends_root / method}: no blends for method {method!r}")
    model = load_judge(judge, device=device)
    rows = []
    chunk = 32  # images read per call: memory stays bounded at any test-set size
    with tqdm(total=len(methods) * len(tests), desc="realism", unit="img",
              disable=not progress) as bar:
        for method in methods:
            for start in range(0, len(tests), chunk):
                part = tests.iloc[start:start + chunk]
                images = [read_image(blends_root / method / f"{i}.png") for i in part["id"]]
                masks = [read_mask(p) for p in part["mask"]] if use_mask else None
                scores = score_images(model, images, masks)
                rows += [{"id": i, "method": method, "realism": float(s)}
                         for i, s in zip(part["id"], scores)]
                bar.update(len(part))
    per_image = pd.DataFrame(rows, columns=["id", "method", "realism"])
    wide = per_image.pivot(index="id", columns="method", values="realism")
    summary = []
    for method in methods:
        mean, std, lo, hi = _ci95(wide[method].to_numpy(dtype=np.float64))
        beats = float((wide[method] > wide["copy-paste"]).mean())
        summary.append({"method": method, "n": len(wide), "mean": mean, "std": std,
                        "ci95_low": lo, "ci95_high": hi, "beats_copy_paste": beats})
    summary = pd.DataFrame(summary)
    validation = None
    if validation_json is not None:
        validation = json.loads(Path(validation_json).read_text())
    out_dir = Path(out_dir)
    paths = {"per_image": _write_csv(per_image, out_dir / "per_image.csv"),
             "summary": _write_csv(summary, out_dir / "summary.csv")}
    with atomic_path(out_dir / "summary.md") as tmp:
        tmp.write_text(_realism_markdown(summary, len(wide), validation), encoding="utf-8")
    paths["markdown"] = out_dir / "summary.md"
    return Evaluation(per_image=per_image, summary=summary, paths=paths)
