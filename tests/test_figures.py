"""Tests of gpgan.figures: every figure is drawn from real inputs into a readable PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from gpgan import figures as F
from gpgan.errors import InputError
from gpgan.evaluate import beta_ablation, evaluate
from gpgan.metrics import METRICS

try:  # tests/ as a rootdir-inserted folder (default) or as a package
    from test_evaluate import METHODS, _toy_blend, make_run
except ImportError:  # pragma: no cover
    from tests.test_evaluate import METHODS, _toy_blend, make_run

NO_LPIPS = [m for m in METRICS if m != "lpips"]


def _png(path: Path, min_size=(200, 150)) -> tuple[int, int]:
    assert path.is_file() and path.suffix == ".png"
    with Image.open(path) as im:
        im.load()
        assert im.format == "PNG"
        assert im.size[0] >= min_size[0] and im.size[1] >= min_size[1]
        # not a blank canvas
        assert np.asarray(im.convert("L")).std() > 5
        return im.size


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run folder as the workflow lays it out, with real blends, metrics and logs."""
    root = tmp_path_factory.mktemp("run")
    test_csv = make_run(root, n=3)
    evaluate(test_csv, root / "blends", METHODS, root / "metrics", metrics=NO_LPIPS,
             progress=False)
    beta_ablation(test_csv, [0.1, 0.3, 1, 3, 10], root / "metrics" / "beta_ablation.csv",
                  n_images=2, blend_fn=_toy_blend)
    it = np.arange(0, 500, 10)
    rng = np.random.default_rng(0)
    pd.DataFrame({"iteration": it, "errD": -0.01 * np.exp(-it / 200) + rng.normal(0, 1e-3, it.size),
                  "errG": 0.02 + rng.normal(0, 1e-3, it.size),
                  "l2": 0.05 * np.exp(-it / 150) + 0.005,
                  "seconds": it * 0.1, "images_per_s": 640.0}).to_csv(root / "train_log.csv",
                                                                       index=False)
    (root / "samples").mkdir()
    from skimage import data

    Image.fromarray(data.astronaut()[::4, ::4]).save(root / "samples" / "iter_000500.png")
    return root


def test_qualitative_grid(run, tmp_path):
    out = F.qualitative_grid(run / "composites" / "test.csv", run / "blends", METHODS,
                             tmp_path / "q.png", max_rows=2)
    w, h = _png(out)
    # copy-paste is the first column, not repeated: 1 + 2 methods + ground truth = 4 columns
    assert w > h


def test_metric_bars(run, tmp_path):
    _png(F.metric_bars(run / "metrics" / "summary.csv", tmp_path / "bars.png"))
    with pytest.raises(InputError):
        F.metric_bars(tmp_path / "missing.csv", tmp_path / "x.png")


def test_training_curves(run, tmp_path):
    _png(F.training_curves(run / "train_log.csv", tmp_path / "train.png", smooth=5))


def test_sample_grid_single_and_many(run, tmp_path):
    one = run / "samples" / "iter_000500.png"
    _png(F.sample_grid(one, tmp_path / "s1.png"))
    rng = np.random.default_rng(0)
    imgs = [rng.random((16, 16, 3)).astype(np.float32) for _ in range(10)]
    _png(F.sample_grid(imgs, tmp_path / "s2.png", ncols=5, title="samples"))
    # a one-row sheet (as G(z)'s samples are) is drawn at its own aspect, not in a square
    strip = tmp_path / "strip.png"
    Image.fromarray((rng.random((66, 530, 3)) * 255).astype(np.uint8)).save(strip)
    w, h = _png(F.sample_grid(strip, tmp_path / "s3.png", title="G(z)"), min_size=(200, 50))
    assert 4 < w / h < 8


def test_beta_ablation_curve(run, tmp_path):
    _png(F.beta_ablation_curve(run / "metrics" / "beta_ablation.csv", tmp_path / "beta.png"))
    with pytest.raises(InputError, match="missing column"):
        F.beta_ablation_curve(run / "train_log.csv", tmp_path / "x.png")


def test_timing_plot(run, tmp_path):
    _png(F.timing_plot(run / "blends", METHODS, tmp_path / "t.png"))
    with pytest.raises(InputError):
        F.timing_plot(run / "blends", ["none"], tmp_path / "t2.png")


def _inputs(run):
    return dict(test_csv=run / "composites" / "test.csv", blends_root=run / "blends",
                summary_csv=run / "metrics" / "summary.csv",
                ablation_csv=run / "metrics" / "beta_ablation.csv")


def test_make_figures_from_the_given_files(run, tmp_path):
    made = F.make_figures(tmp_path / "figs", **_inputs(run), train_log=run / "train_log.csv",
                          samples_dir=run / "samples")
    assert set(made) == {"qualitative", "metrics", "training", "samples", "beta", "timing"}
    for p in made.values():
        _png(p)
    # without the GAN's files (a run without gp-gan) those two are not drawn
    assert set(F.make_figures(tmp_path / "figs2", **_inputs(run))) == {
        "qualitative", "metrics", "beta", "timing"}
    # a given input that is missing is an error naming it, not a silent skip
    with pytest.raises(InputError, match="beta_ablation"):
        F.make_figures(tmp_path / "figs3", **dict(_inputs(run),
                                                  ablation_csv=run / "beta_ablation.csv"))


def test_cli_figures(run, tmp_path, capsys):
    from gpgan.cli import main

    i = _inputs(run)
    assert main(["figures", "--test-csv", str(i["test_csv"]), "--blends", str(i["blends_root"]),
                 "--summary", str(i["summary_csv"]), "--ablation", str(i["ablation_csv"]),
                 "--train-log", str(run / "train_log.csv"), "--out", str(tmp_path / "f")]) == 0
    out = capsys.readouterr().out
    assert "qualitative:" in out and (tmp_path / "f" / "timing.png").is_file()
