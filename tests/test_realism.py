"""The realism judge (gpgan.realism), its samples (gpgan.data.realism), the cross-scene
composites, the realism table and figures, and ``gpgan realism``: on the demo scenes of
the six package photographs (real photos, relit), with the real AlexNet weights."""

from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from gpgan.data.demo import build_demo_dataset
from gpgan.data.realism import KINDS, LABELS, SceneImages, draw_sample, draw_samples, fit_to
from gpgan.data.scenes import list_scenes
from gpgan.errors import ConfigError, InputError, ModelError
from gpgan.realism import (JUDGE_DEFAULTS, context_box, load_judge, roc_auc, score_images,
                           train_judge, validate_judge, view)

TRAIN = ["astronaut", "coffee", "grace_hopper", "motorcycle"]
HELD = ["chelsea", "rocket"]
TINY = dict(n_samples=48, steps=6, batch_size=16, checkpoint_every=3, log_every=2)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """Six scenes (one per package photo, its own group), three relit variants each,
    short side 96, and a splits table: four train photos, two held out (test)."""
    root = tmp_path_factory.mktemp("scenes")
    build_demo_dataset(root, n_variants=3, size=96, seed=0)
    index = list_scenes(root)
    splits = root / "splits.csv"
    with open(splits, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["scene", "split"])
        for s in index:
            w.writerow([s, "train" if s.rsplit("_", 1)[0] in TRAIN else "test"])
    return root, index, splits


def data_of(scenes, names) -> SceneImages:
    root, index, _ = scenes
    return SceneImages(root, {s: index[s] for s in index if s.rsplit("_", 1)[0] in names})


@pytest.fixture(scope="module")
def tiny_judge(scenes, lpips_weights, tmp_path_factory):
    out = tmp_path_factory.mktemp("judge")
    return train_judge(data_of(scenes, TRAIN), out, seed=0, lpips_weights=lpips_weights,
                       device="cpu", progress=False, **TINY)


# ------------------------------------------------------------------ samples


def test_each_kind_is_what_it_says(scenes):
    data = data_of(scenes, TRAIN)
    for kind in KINDS:
        rng = np.random.default_rng(3)
        img, mask = draw_sample(data, kind, rng)
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[:2] == mask.shape
        assert set(np.unique(mask)) <= {0.0, 1.0} and 0.03 < mask.mean() < 0.6
        # replay the draw up to the paste: the region outside the mask is the scene image
        rng = np.random.default_rng(3)
        scene = data.scenes[int(rng.integers(len(data.scenes)))]
        dst = data.image(scene, int(rng.integers(data.count(scene))))
        inside = mask >= 0.5
        if kind == "natural":
            continue
        # the image is a mirrored crop of dst: find it by matching the outside pixels
        found = False
        for flipped in (dst, dst[:, ::-1]):
            h, w = img.shape[:2]
            for top in range(flipped.shape[0] - h + 1):
                for left in range(flipped.shape[1] - w + 1):
                    crop = flipped[top:top + h, left:left + w]
                    if np.array_equal(crop[~inside], img[~inside]):
                        found = True
                        differs = np.abs(crop[inside].astype(int) - img[inside]).mean()
                        assert differs > 2, (kind, differs)  # something else was pasted
                        break
                if found:
                    break
            if found:
                break
        assert found, kind


def test_same_photo_pastes_keep_the_photos_colours_and_other_photo_pastes_do_not(scenes):
    """Colour statistics inside the pasted region: from the same image (same_photo) they
    are close to the image's own; from another photograph they differ more."""
    data = data_of(scenes, TRAIN)

    def colour_gap(kind, n=40):
        gaps = []
        for i in range(n):
            img, mask = draw_sample(data, kind, np.random.default_rng(i))
            m = mask >= 0.5
            gaps.append(np.abs(img[m].mean(0) - img[~m].mean(0)).mean())
        return float(np.median(gaps))

    assert colour_gap("other_photo") > colour_gap("same_photo")


def test_draw_samples_balances_the_classes_and_is_seeded(scenes):
    data = data_of(scenes, TRAIN)
    mix = {"natural": 1.0, "same_photo": 1.0, "other_photo": 1.0}
    a = list(draw_samples(data, mix, 200, 7))
    b = list(draw_samples(data, mix, 200, 7))
    assert [k for k, _, _ in a] == [k for k, _, _ in b]
    assert all(np.array_equal(x[1], y[1]) for x, y in zip(a, b))
    labels = np.array([LABELS[k] for k, _, _ in a])
    assert 0.4 < labels.mean() < 0.6
    assert {k for k, _, _ in a} == set(mix)
    with pytest.raises(ConfigError, match="natural kind and a composite kind"):
        next(draw_samples(data, {"natural": 1.0}, 4, 0))
    with pytest.raises(ConfigError, match="unknown realism sample kind"):
        next(draw_samples(data, {"natural": 1.0, "pasted": 1.0}, 4, 0))


def test_fit_to_covers_and_crops():
    img = np.arange(20 * 30 * 3, dtype=np.uint8).reshape(20, 30, 3)
    assert fit_to(img, 20, 30) is img
    out = fit_to(img, 40, 40)
    assert out.shape == (40, 40, 3)


# ------------------------------------------------------------------ views and AUC


def test_context_box_centres_on_the_mask_and_stays_inside():
    m = np.zeros((100, 200), np.float32)
    m[40:50, 150:170] = 1  # 10 x 20 box
    top, left, side = context_box(m, context=2.0)
    assert side == 50  # 2 x 20 = 40, but at least half the short side (50)
    assert 0 <= top and top + side <= 100 and 0 <= left and left + side <= 200
    assert top <= 40 and top + side >= 50 and left <= 150 and left + side >= 170
    m[:] = 0
    m[0:90, 190:200] = 1
    top, left, side = context_box(m, context=2.0)
    assert side == 100 and left + side == 200  # clamped to the short side, moved inside
    assert context_box(np.zeros((60, 80)), 2.0) == (0, 10, 60)


def test_view_is_a_fixed_size_unit_tensor_and_checks_the_mask(photos):
    img = photos["coffee"]
    v = view(img)
    assert v.shape == (3, 224, 224) and v.dtype == torch.float32
    assert 0 <= float(v.min()) and float(v.max()) <= 1
    mask = np.zeros(img.shape[:2], np.float32)
    mask[100:150, 200:260] = 1
    vm = view(img, mask)
    assert vm.shape == (3, 224, 224) and not torch.equal(v, vm)
    with pytest.raises(InputError, match="does not fit"):
        view(img, mask[:-1])


def test_roc_auc_is_the_pairwise_win_rate():
    rng = np.random.default_rng(0)
    pos, neg = rng.normal(1, 1, 50).round(1), rng.normal(0, 1, 40).round(1)
    wins = (pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()
    assert roc_auc(pos, neg) == pytest.approx(wins / (50 * 40))
    assert roc_auc([1, 2], [0]) == 1.0 and roc_auc([0], [1, 2]) == 0.0
    assert roc_auc([1, 1], [1]) == 0.5


# ------------------------------------------------------------------ training


def test_judge_trains_deterministically_and_resumes_bit_identical(scenes, lpips_weights,
                                                                  tmp_path, tiny_judge):
    data = data_of(scenes, TRAIN)
    again = train_judge(data, tmp_path / "again", seed=0, lpips_weights=lpips_weights,
                        device="cpu", progress=False, **TINY)
    a = torch.load(tiny_judge, weights_only=True)["state"]
    b = torch.load(again, weights_only=True)["state"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    # killed after step 3 (its checkpoint written), then rerun: the same judge
    state = train_judge(data, tmp_path / "killed", seed=0, lpips_weights=lpips_weights,
                        device="cpu", progress=False, stop_after=3, **TINY)
    assert state.name == "judge_state.pt" and not (tmp_path / "killed/judge.pt").exists()
    resumed = train_judge(data, tmp_path / "killed", seed=0, lpips_weights=lpips_weights,
                          device="cpu", progress=False, **TINY)
    c = torch.load(resumed, weights_only=True)["state"]
    assert all(torch.equal(a[k], c[k]) for k in a)
    log = pd.read_csv(tmp_path / "killed/train_log.csv")
    assert list(log["step"]) == [2, 4, 6]
    # another seed: another judge
    other = train_judge(data, tmp_path / "seed1", seed=1, lpips_weights=lpips_weights,
                        device="cpu", progress=False, **TINY)
    d = torch.load(other, weights_only=True)["state"]
    assert not torch.equal(a["fc.weight"], d["fc.weight"])
    # the backbone is AlexNet's, unchanged by training
    feats = torch.load(lpips_weights / "alexnet_features.pth", weights_only=True)
    assert torch.equal(a["backbone.0.weight"], feats["0.weight"])


def test_natural_images_score_above_copy_paste_on_a_tiny_fixture(scenes, lpips_weights,
                                                                 tmp_path):
    """A judge trained briefly on four photographs' scenes ranks natural images above
    copy-paste composites in fresh samples of them (other crops, masks and pairs: another
    seed). Four photographs are too few to generalise to others (the demo's 45 do)."""
    data = data_of(scenes, TRAIN)
    path = train_judge(data, tmp_path, seed=0, lpips_weights=lpips_weights, device="cpu",
                       progress=False, n_samples=400, steps=150, batch_size=64)
    judge = load_judge(path, device="cpu")
    result = validate_judge(judge, data, tmp_path, n=120, seed=99, progress=False)
    assert result["auc"]["image"]["other_photo"] > 0.8, result
    assert result["mean"]["image"]["natural"] > result["mean"]["image"]["other_photo"] + 1
    table = pd.read_csv(tmp_path / "validation.csv")
    assert set(table["view"]) == {"image", "mask"} and len(table) == 240


def test_judge_options_are_checked(scenes, lpips_weights, tmp_path):
    data = data_of(scenes, TRAIN)
    for bad, match in (({"steps": 0}, "steps must be"), ({"mask_views": 2}, "mask_views"),
                       ({"colour": 1}, "unknown realism option"),
                       ({"coverage": (0.5, 0.2)}, "coverage")):
        with pytest.raises(ConfigError, match=match):
            train_judge(data, tmp_path, lpips_weights=lpips_weights, **{**TINY, **bad})
    with pytest.raises(ModelError, match="fetch-weights"):
        train_judge(data, tmp_path, lpips_weights=tmp_path / "none", **TINY)
    assert set(TINY) <= set(JUDGE_DEFAULTS)


def test_load_judge_refuses_other_files(tmp_path):
    with pytest.raises(ModelError, match="no such realism judge"):
        load_judge(tmp_path / "judge.pt")
    (tmp_path / "text.pt").write_text("not a judge")
    with pytest.raises(ModelError, match="not a realism judge file"):
        load_judge(tmp_path / "text.pt")
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(ModelError, match="not a realism judge file"):
        load_judge(tmp_path / "other.pt")


def test_scores_do_not_depend_on_the_batch(tiny_judge, photos):
    judge = load_judge(tiny_judge, device="cpu")
    imgs = [photos[n] for n in ("coffee", "chelsea", "rocket")]
    together = score_images(judge, imgs)
    alone = np.array([score_images(judge, [im])[0] for im in imgs])
    assert together.shape == (3,) and np.allclose(together, alone, atol=1e-5)


# ------------------------------------------------------------------ cross-scene table


@pytest.fixture(scope="module")
def cross(scenes, tmp_path_factory):
    from gpgan.data.composites import make_cross_composites

    root, _, splits = scenes
    out = tmp_path_factory.mktemp("cross") / "composites"
    return make_cross_composites(root, splits, out, n=4, seed=0, splits=("train", "test"))


def test_cross_composites_pair_two_photographs_and_are_seeded(scenes, cross, tmp_path):
    from gpgan.data.composites import make_cross_composites, read_test_csv

    root, _, splits = scenes
    df = read_test_csv(cross, ground_truth=False)
    assert len(df) == 4 and "gt" not in df.columns
    assert (df["scene"].str.rsplit("_", n=1).str[0]
            != df["src_scene"].str.rsplit("_", n=1).str[0]).all()
    for r in df.itertuples():
        src, dst = np.asarray(Image.open(r.src)), np.asarray(Image.open(r.dst))
        assert src.shape == dst.shape == (r.height, r.width, 3)
        assert np.asarray(Image.open(r.mask)).mean() / 255 == pytest.approx(r.coverage, abs=1e-6)
    again = make_cross_composites(root, splits, tmp_path / "c", n=4, seed=0,
                                  splits=("train", "test"))
    for name in ("0000/src.png", "0003/mask.png", "cross.csv"):
        assert (cross.parent / name).read_bytes() == (again.parent / name).read_bytes()
    with pytest.raises(InputError, match="two photograph groups"):
        make_cross_composites(root, splits, tmp_path / "d", n=2, seed=0, splits=("val",))


def test_realism_table_and_figures(cross, tiny_judge, tmp_path):
    from gpgan.batch import blend_test_set
    from gpgan.evaluate import evaluate_realism
    from gpgan.figures import realism_figures

    blends = tmp_path / "blends"
    methods = ["copy-paste", "poisson"]
    for m in methods:
        blend_test_set(cross, m, blends / m, progress=False)
    result = evaluate_realism(cross, blends, methods, tiny_judge, tmp_path / "table",
                              device="cpu", progress=False)
    s = result.summary.set_index("method")
    assert list(s.index) == methods and (s["n"] == 4).all()
    assert s.loc["copy-paste", "beats_copy_paste"] == 0.0
    per = result.per_image.pivot(index="id", columns="method", values="realism")
    assert s.loc["poisson", "beats_copy_paste"] == (per["poisson"] > per["copy-paste"]).mean()
    assert s.loc["poisson", "mean"] == pytest.approx(per["poisson"].mean())
    md = (tmp_path / "table/summary.md").read_text()
    assert "-0.192 ± 1.565" in md and "| poisson |" in md  # the paper's Table 1 beside
    made = realism_figures(tmp_path / "fig", cross_csv=cross, blends_root=blends,
                           summary_csv=result.paths["summary"],
                           per_image_csv=result.paths["per_image"], methods=methods)
    for png in made.values():
        assert Image.open(png).size[0] > 500
    with pytest.raises(InputError, match="add it to the methods"):
        evaluate_realism(cross, blends, ["poisson"], tiny_judge, tmp_path / "t2")


# ------------------------------------------------------------------ API and CLI


def test_metrics_realism_api_matches_score_images(tiny_judge, photos):
    from gpgan.metrics import realism

    imgs = [photos["coffee"], photos["rocket"]]
    direct = score_images(load_judge(tiny_judge, device="cpu"), imgs)
    assert np.allclose(realism(imgs, model=tiny_judge, device="cpu"), direct, atol=1e-6)


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "gpgan.cli", "realism", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


def test_cli_prints_one_score_per_image(tiny_judge, cross):
    from gpgan.io import read_image, read_mask
    from gpgan.metrics import realism

    folder = cross.parent
    imgs = [folder / "0000/dst.png", folder / "0001/dst.png"]
    proc = cli(*imgs, "--model", tiny_judge)
    assert proc.returncode == 0, proc.stderr
    lines = [ln.split("\t") for ln in proc.stdout.splitlines()]
    assert [p for _, p in lines] == [str(p) for p in imgs]
    expected = realism([read_image(p) for p in imgs], model=tiny_judge, device="cpu")
    assert np.allclose([float(s) for s, _ in lines], expected, atol=1e-4)
    masked = cli(imgs[0], "--mask", folder / "0000/mask.png", "--model", tiny_judge)
    assert masked.returncode == 0, masked.stderr
    expected = realism([read_image(imgs[0])], [read_mask(folder / "0000/mask.png")],
                       model=tiny_judge, device="cpu")
    assert float(masked.stdout.split("\t")[0]) == pytest.approx(expected[0], abs=1e-4)


@pytest.mark.parametrize("case", ["missing image", "mask count", "mask size", "no judge",
                                  "not a judge"])
def test_cli_rejects_bad_input_with_one_line(case, tiny_judge, cross, tmp_path):
    folder = cross.parent
    img = folder / "0000/dst.png"
    small = tmp_path / "small.png"
    Image.new("L", (10, 10)).save(small)
    args = {"missing image": [tmp_path / "nope.png", "--model", tiny_judge],
            "mask count": [img, img, img, "--mask", small, small, "--model", tiny_judge],
            "mask size": [img, "--mask", small, "--model", tiny_judge],
            "no judge": [img],
            "not a judge": [img, "--model", small]}[case]
    proc = cli(*args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == "" and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith("error: ")
