"""gpgan.select: the checkpoint whose final gp-gan blends score best is chosen."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from gpgan.data.composites import make_test_composites
from gpgan.data.demo import build_demo_dataset
from gpgan.errors import ModelError
from gpgan.io import read_image, read_mask
from gpgan.models import Generator, load_generator, save_generator
from gpgan.select import score_blends, select_checkpoint

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def val_csv(tmp_path_factory):
    """Three relit real-photo scenes, four full-size validation composites."""
    root = tmp_path_factory.mktemp("sel")
    build_demo_dataset(root / "scenes", n_scenes=3, n_variants=3, size=96, seed=5)
    return make_test_composites(root / "scenes", None, root / "validation", n=4, seed=1,
                                coverage=(0.15, 0.3), csv_name="validation.csv")


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _affine(shift: float) -> Generator:
    """A generator that adds ``shift`` to every channel inside the mask (zero: the
    identity, i.e. the copy-paste colour, which is what ``gp`` uses)."""
    torch.manual_seed(0)
    g = Generator(32, 8, 4, mask_input=True, output="affine", affine_grid=8)
    with torch.no_grad():
        g.head.bias[9:] = shift
    return g.eval()


def test_selection_picks_the_checkpoint_with_the_best_final_blend(tmp_path, val_csv):
    ckpts = tmp_path / "checkpoints"
    ckpts.mkdir()
    # iteration 1 is the worst (a strong colour cast), 3 the copy-paste colour, 2 between
    for it, shift in ((1, 0.8), (2, 0.3), (3, 0.0)):
        save_generator(_affine(shift), ckpts / f"iter_{it:07d}.pt", extra={"iteration": it})
    best = select_checkpoint(ckpts, val_csv, tmp_path / "model", device="cpu",
                             progress=False, image_size=32)
    rows = _rows(tmp_path / "model" / "selection.csv")
    assert [r["name"] for r in rows] == ["iter_0000001.pt", "iter_0000002.pt",
                                         "iter_0000003.pt", "copy-paste", "gp"]
    chosen = [r for r in rows if r["selected"] == "1"]
    assert [r["name"] for r in chosen] == ["iter_0000003.pt"]
    scores = [float(r["score"]) for r in rows[:3]]
    assert scores[0] > scores[1] > scores[2]
    # fMSE alone decides without LPIPS weights; the gp row scores 1 by definition, and
    # the identity generator gives gp's colour (up to the resampling to G's size and
    # back), hence nearly gp's blend
    gp = next(r for r in rows if r["name"] == "gp")
    assert float(gp["score"]) == pytest.approx(1.0) and gp["lpips"] == ""
    assert float(chosen[0]["score"]) == pytest.approx(1.0, abs=0.05)
    # best.pt is that generator and reproduces the reported score
    g = load_generator(best, device="cpu")
    assert torch.equal(g.head.bias, _affine(0.0).head.bias)
    comps = [(read_image(r["src"]), read_image(r["dst"]), read_mask(r["mask"]),
              read_image(r["gt"])) for r in _read(val_csv)]
    again = score_blends(comps, "gp-gan", model=g, device="cpu", image_size=32)
    assert again["fmse"] == pytest.approx(float(chosen[0]["fmse"]), rel=1e-6)
    assert torch.load(best, weights_only=True)["selected_from"] == "iter_0000003.pt"


def _read(csv_path):
    from gpgan.data.composites import read_test_csv

    return read_test_csv(csv_path).to_dict("records")


def test_selection_with_lpips_adds_both_terms(tmp_path, val_csv, lpips_weights):
    ckpts = tmp_path / "checkpoints"
    ckpts.mkdir()
    save_generator(_affine(0.2), ckpts / "iter_0000001.pt", extra={"iteration": 1})
    select_checkpoint(ckpts, val_csv, tmp_path / "model", lpips_weights=lpips_weights,
                      device="cpu", progress=False, image_size=32)
    rows = {r["name"]: r for r in _rows(tmp_path / "model" / "selection.csv")}
    gp, ck = rows["gp"], rows["iter_0000001.pt"]
    assert float(gp["score"]) == pytest.approx(2.0)
    expect = float(ck["fmse"]) / float(gp["fmse"]) + float(ck["lpips"]) / float(gp["lpips"])
    assert float(ck["score"]) == pytest.approx(expect, rel=1e-5)
    assert float(rows["copy-paste"]["lpips"]) > 0


def test_no_checkpoints_is_one_line(tmp_path, val_csv):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="no checkpoints"):
        select_checkpoint(tmp_path / "empty", val_csv, tmp_path / "model", progress=False)
    assert not (tmp_path / "model").exists()
