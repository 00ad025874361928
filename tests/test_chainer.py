"""The authors' released Chainer weights, used as they are (``gpgan.chainer``).

Synthetic npz files of the real key layouts (the released files are not reachable
from here): the Blending GAN's ``EncoderDecoder`` and the unsupervised GP-GAN's bare
``DCGAN_G`` ChainList, both with Chainer's batch-norm counters ``N``. Then the
automatic conversion every loader does: once, cached beside the file or in the cache
folder, again when the file changes, one line for a file of another layout.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image
from torch import nn

import gpgan
from gpgan import chainer
from gpgan.chainer import (cache_candidates, cache_dir, chainer_key_to_torch,
                           convert_chainer_npz, is_chainer_npz, resolve_model_file)
from gpgan.cli import main
from gpgan.errors import ModelError
from gpgan.io import read_image, read_mask, write_image
from gpgan.models import (Critic, Generator, LatentGenerator, generate_color, load_checkpoint,
                          load_generator, save_generator)

EXPECTED = "expected the authors' blending_gan.npz (keys encoder/0/W ... decoder/N/W)"


def _photo64() -> np.ndarray:
    """A real 64x64 photo crop (astronaut's face, 2x2-averaged), float32 [0, 1]."""
    img = skimage.data.astronaut()[40:168, 150:278].astype(np.float32) / 255.0
    return img.reshape(64, 2, 64, 2, 3).mean(axis=(1, 3))


def _randomise_bn(model: nn.Module) -> nn.Module:
    """Batch-norm statistics and shifts away from their defaults, so a mix-up shows."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 2.0)
                m.bias.uniform_(-0.1, 0.1)
    return model.eval()


# --- the authors' key layouts (model.py of wuhuikai/GP-GAN) -------------------------------
# DCGAN_G(isize=64) ChainList: 0 deconv, 1 BN, 2 ReLU, then per stride-2 block (deconv,
# BN, ReLU) at 3/4/5, 6/7/8, 9/10/11, last deconv at 12, 13 tanh.
# DCGAN_D(isize=64) ChainList: 0 conv, 1 LeakyReLU, blocks (conv, BN, LeakyReLU) at
# 2/3/4, 5/6/7, 8/9/10, final conv at 11. EncoderDecoder = encoder (DCGAN_D), bn, decoder
# (DCGAN_G). save_npz writes "<child>/<index>/<param>"; a bare ChainList "<index>/<param>";
# batch norm as gamma, beta, avg_mean, avg_var and the counter N.
G_CONV, G_BN = [0, 3, 6, 9, 12], [1, 4, 7, 10]
D_CONV, D_BN = [0, 2, 5, 8, 11], [3, 6, 9]


def _bn(arrays: dict, prefix: str, m: nn.BatchNorm2d) -> None:
    arrays[f"{prefix}gamma"] = m.weight.detach().numpy()
    arrays[f"{prefix}beta"] = m.bias.detach().numpy()
    arrays[f"{prefix}avg_mean"] = m.running_mean.numpy()
    arrays[f"{prefix}avg_var"] = m.running_var.numpy()
    arrays[f"{prefix}N"] = np.array(17)


def _chain_list(layers: nn.Sequential, conv_idx, bn_idx, prefix="") -> dict:
    """A Chainer ChainList's arrays at the authors' indices (by layer order)."""
    arrays = {}
    convs = [m for m in layers if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    bns = [m for m in layers if isinstance(m, nn.BatchNorm2d)]
    assert len(convs) == len(conv_idx) and len(bns) == len(bn_idx)
    for i, m in zip(conv_idx, convs):
        arrays[f"{prefix}{i}/W"] = m.weight.detach().numpy()  # deconv: (in, out, kh, kw)
    for i, m in zip(bn_idx, bns):
        _bn(arrays, f"{prefix}{i}/", m)
    return arrays


def blending_gan_arrays(g: Generator) -> dict:
    arrays = _chain_list(g.encoder, D_CONV, D_BN, "encoder/")
    _bn(arrays, "bn/", g.bn)
    arrays.update(_chain_list(g.decoder, G_CONV, G_BN, "decoder/"))
    return arrays


def unsupervised_arrays(g: LatentGenerator) -> dict:
    return _chain_list(g.decoder, G_CONV, G_BN)


def _blending_gan(seed=4) -> Generator:
    torch.manual_seed(seed)
    return _randomise_bn(Generator(64, 40, 8))


def _latent(seed=5) -> LatentGenerator:
    torch.manual_seed(seed)
    return _randomise_bn(LatentGenerator(64, 100, 8))


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    """The conversion cache folder, inside the test's tmp_path."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("GPGAN_CACHE_DIR", str(folder))
    return folder


# --- conversion ---------------------------------------------------------------------------
def test_key_mapping():
    assert chainer_key_to_torch("encoder/2/W") == "encoder.2.weight"
    assert chainer_key_to_torch("decoder/1/gamma") == "decoder.1.weight"
    assert chainer_key_to_torch("bn/avg_var") == "bn.running_var"
    assert chainer_key_to_torch("3/W") == "decoder.3.weight"  # bare DCGAN_G
    assert chainer_key_to_torch("4/beta") == "decoder.4.bias"
    assert chainer_key_to_torch("main/encoder/0/W") == "encoder.0.weight"  # snapshot
    assert chainer_key_to_torch("1/N") is None
    with pytest.raises(ModelError, match="unexpected key 'encoder/0/Q'"):
        chainer_key_to_torch("encoder/0/Q")


def test_blending_gan_round_trip(tmp_path, cache):
    g = _blending_gan()
    np.savez(tmp_path / "blending_gan.npz", **blending_gan_arrays(g))
    out = convert_chainer_npz(tmp_path / "blending_gan.npz", tmp_path / "converted.pt")
    h = load_generator(out, device="cpu")
    assert type(h) is Generator
    assert h.arch == {"image_size": 64, "n_bottleneck": 40, "base_width": 8,
                      "mask_input": False, "skip": False, "output": "image",
                      "affine_grid": 16}  # the paper's options
    comp = _photo64()
    np.testing.assert_array_equal(generate_color(h, comp), generate_color(g, comp))
    rec = load_checkpoint(out)["chainer_source"]
    assert rec["name"] == "blending_gan.npz" and len(rec["sha256"]) == 64


def test_unsupervised_round_trip(tmp_path, cache):
    g = _latent()
    arrays = unsupervised_arrays(g)
    assert len(arrays) == 5 + 4 * 5 and sorted(arrays)[:6] == [
        "0/W", "1/N", "1/avg_mean", "1/avg_var", "1/beta", "1/gamma"]
    np.savez_compressed(tmp_path / "unsupervised_blending_gan.npz", **arrays)  # as Chainer
    h = load_generator(tmp_path / "unsupervised_blending_gan.npz", device="cpu")
    assert type(h) is LatentGenerator
    assert h.arch == {"kind": "latent", "image_size": 64, "nz": 100, "base_width": 8}
    z = torch.randn(3, 100, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(h(z), g(z))


def test_snapshot_prefix(tmp_path, cache):
    g = _latent()
    np.savez(tmp_path / "snap.npz", **{f"main/{k}": v for k, v in unsupervised_arrays(g).items()})
    h = load_generator(tmp_path / "snap.npz", device="cpu")
    with torch.no_grad():
        assert torch.equal(h(torch.ones(1, 100)), g(torch.ones(1, 100)))


def _critic_arrays() -> dict:
    torch.manual_seed(1)
    return _chain_list(Critic(64, 8).encoder, D_CONV, D_BN)


def _wrong_layouts() -> dict:
    g, z = blending_gan_arrays(_blending_gan()), unsupervised_arrays(_latent())
    no_bn = {k: v for k, v in g.items() if not k.startswith("bn/")}
    shape = dict(z, **{"3/W": np.zeros((64, 16, 4, 4), np.float32)})
    return {
        "critic": (_critic_arrays(), "a critic (DCGAN_D"),
        "random keys": ({"weights": np.zeros(3), "bias": np.ones(2)}, "keys bias, weights"),
        "missing arrays": (no_bn, "missing bn/gamma, bn/beta, bn/avg_mean (+1 more)"),
        "missing first layer": ({k: v for k, v in g.items() if k != "encoder/0/W"},
                                "missing encoder/0/W"),
        "wrong shape": (shape, "shape of 3/W (64, 16, 4, 4) instead of (64, 32, 4, 4)"),
        "unknown parameter": (dict(z, **{"1/Q": np.zeros(3)}), "unexpected key '1/Q'"),
        "mixed layouts": (dict(z, **{"encoder/0/W": g["encoder/0/W"]}), "keys 0/W"),
        "text": (None, "not a readable npz"),
    }


@pytest.mark.parametrize("case", list(_wrong_layouts()))
def test_wrong_layout_is_one_line(tmp_path, cache, case):
    arrays, says = _wrong_layouts()[case]
    path = tmp_path / "model.npz"
    if arrays is None:
        path.write_text("these are not the weights you are looking for\n")
    else:
        np.savez(path, **arrays)
    with pytest.raises(ModelError) as info:
        load_generator(path, device="cpu")
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(f"{path}: "), msg
    assert says in msg and EXPECTED in msg, msg
    assert not any(p.exists() for p in cache_candidates(path))  # nothing cached


# --- detection and the cache ----------------------------------------------------------------
def test_npz_told_from_a_torch_zip(tmp_path, cache):
    g = _latent()
    np.savez(tmp_path / "w.npz", **unsupervised_arrays(g))
    pt = save_generator(g, tmp_path / "w.pt")
    assert open(pt, "rb").read(2) == b"PK"  # a torch checkpoint is a zip as well
    assert is_chainer_npz(tmp_path / "w.npz") and not is_chainer_npz(pt)
    (tmp_path / "w.npz").rename(tmp_path / "weights.bin")  # renamed: its members tell
    assert is_chainer_npz(tmp_path / "weights.bin")
    assert resolve_model_file(pt) == pt and not is_chainer_npz(tmp_path / "nope.npz")
    h = load_generator(tmp_path / "weights.bin", device="cpu")
    assert (tmp_path / "weights.gpgan.pt").is_file() and type(h) is LatentGenerator


def _no_conversion(*args, **kwargs):
    raise AssertionError("converted again")


def test_converts_once(tmp_path, cache, capsys, monkeypatch):
    g = _blending_gan()
    npz = tmp_path / "blending_gan.npz"
    np.savez(npz, **blending_gan_arrays(g))
    h = load_generator(npz, device="cpu")
    pt = tmp_path / "blending_gan.gpgan.pt"
    err = capsys.readouterr().err
    assert err.startswith(f"converted {npz} -> {pt} (once; cached; ")
    assert err.endswith(" s)\n") and err.count("\n") == 1
    stamp = pt.stat().st_mtime_ns
    monkeypatch.setattr(chainer, "generator_from_chainer_npz", _no_conversion)
    monkeypatch.setattr(chainer, "file_sha256", _no_conversion)  # size, time match: no hash
    h2 = load_generator(npz, device="cpu")
    assert capsys.readouterr().err == "" and pt.stat().st_mtime_ns == stamp
    assert resolve_model_file(npz) == pt and not cache.exists()
    comp = _photo64()
    np.testing.assert_array_equal(generate_color(h2, comp), generate_color(h, comp))


def test_changed_npz_is_converted_again_touched_is_not(tmp_path, cache, capsys, monkeypatch):
    npz = tmp_path / "blending_gan.npz"
    np.savez(npz, **blending_gan_arrays(_blending_gan(seed=1)))
    load_generator(npz, device="cpu")
    assert "converted" in capsys.readouterr().err
    g2 = _blending_gan(seed=2)
    np.savez(npz, **blending_gan_arrays(g2))  # same size, new weights
    st = npz.stat()
    os.utime(npz, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    h = load_generator(npz, device="cpu")
    assert "converted" in capsys.readouterr().err
    comp = _photo64()
    np.testing.assert_array_equal(generate_color(h, comp), generate_color(g2, comp))
    # touched (same bytes, new time): the hash matches, no conversion, the time is
    # recorded so the next load needs no hash
    os.utime(npz, ns=(st.st_atime_ns, st.st_mtime_ns + 5 * 10**9))
    monkeypatch.setattr(chainer, "generator_from_chainer_npz", _no_conversion)
    load_generator(npz, device="cpu")
    assert capsys.readouterr().err == ""
    rec = load_checkpoint(tmp_path / "blending_gan.gpgan.pt")["chainer_source"]
    assert rec["mtime_ns"] == npz.stat().st_mtime_ns
    monkeypatch.setattr(chainer, "file_sha256", _no_conversion)
    load_generator(npz, device="cpu")


def test_damaged_cache_is_converted_again(tmp_path, cache, capsys):
    npz = tmp_path / "u.npz"
    np.savez(npz, **unsupervised_arrays(_latent()))
    (tmp_path / "u.gpgan.pt").write_bytes(b"PK\x03\x04 truncated")
    assert type(load_generator(npz, device="cpu")) is LatentGenerator
    assert "converted" in capsys.readouterr().err


def _convert_into_cache_dir(g, folder, cache, capsys):
    npz = folder / "blending_gan.npz"
    h = load_generator(npz, device="cpu")
    err = capsys.readouterr().err
    (pt,) = list(cache.glob("blending_gan-*.gpgan.pt"))
    assert f"-> {pt} (once; cached" in err
    assert not (folder / "blending_gan.gpgan.pt").exists()
    assert load_generator(npz, device="cpu") is not None and capsys.readouterr().err == ""
    comp = _photo64()
    np.testing.assert_array_equal(generate_color(h, comp), generate_color(g, comp))


def test_read_only_folder_converts_into_the_cache_dir(tmp_path, cache, capsys):
    folder, g = tmp_path / "models", _blending_gan()
    folder.mkdir()
    np.savez(folder / "blending_gan.npz", **blending_gan_arrays(g))
    folder.chmod(0o555)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running as root: chmod does not make the folder read-only")
        _convert_into_cache_dir(g, folder, cache, capsys)
    finally:
        folder.chmod(0o755)


def test_unwritable_folder_converts_into_the_cache_dir(tmp_path, cache, capsys, monkeypatch):
    """The same as root can run it: the folder reported unwritable."""
    folder, g = tmp_path / "models", _blending_gan()
    folder.mkdir()
    np.savez(folder / "blending_gan.npz", **blending_gan_arrays(g))
    access = os.access
    monkeypatch.setattr(chainer.os, "access",
                        lambda p, mode: access(p, mode) and os.fspath(p) != str(folder))
    _convert_into_cache_dir(g, folder, cache, capsys)


def test_cache_dir_order(monkeypatch, tmp_path):
    monkeypatch.setenv("GPGAN_CACHE_DIR", str(tmp_path / "a"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "b"))
    assert cache_dir() == tmp_path / "a"
    monkeypatch.delenv("GPGAN_CACHE_DIR")
    assert cache_dir() == tmp_path / "b" / "gpgan"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c" / ".cache" / "gpgan"


# --- every loader ---------------------------------------------------------------------------
@pytest.fixture()
def files(tmp_path, scene):
    src, dst, mask = scene
    write_image(tmp_path / "src.png", src)
    write_image(tmp_path / "dst.png", dst)
    Image.fromarray((mask * 255).astype(np.uint8)).save(tmp_path / "mask.png")
    return tmp_path


def _blend_cli(capsys, files, model, out, *extra):
    code = main(["blend", "--src", str(files / "src.png"), "--dst", str(files / "dst.png"),
                 "--mask", str(files / "mask.png"), "--out", str(out), "--method", "gp-gan",
                 "--model", str(model), "--device", "cpu", *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_blends_with_blending_gan_npz(files, cache, capsys):
    g = _blending_gan()
    np.savez(files / "blending_gan.npz", **blending_gan_arrays(g))
    code, out, err = _blend_cli(capsys, files, files / "blending_gan.npz", files / "a.png")
    assert code == 0, err
    assert "converted" in err and "(once; cached" in err
    assert read_image(files / "a.png").shape == (256, 320, 3)
    code, out, err = _blend_cli(capsys, files, files / "blending_gan.npz", files / "b.png")
    assert code == 0 and err == "", err  # the cache, silently
    # the same pixels as the generator itself (gpgan.blend with the npz, too)
    src, dst, mask = (read_image(files / "src.png"), read_image(files / "dst.png"),
                      read_mask(files / "mask.png"))
    ref = gpgan.blend(src, dst, mask, method="gp-gan", model=g, device="cpu")
    api = gpgan.blend(src, dst, mask, method="gp-gan", model=files / "blending_gan.npz",
                      device="cpu")
    np.testing.assert_array_equal(api, ref)
    np.testing.assert_array_equal(read_image(files / "b.png"),
                                  read_image(files / "a.png"))


def test_cli_blends_with_unsupervised_npz(files, cache, capsys):
    """gp-gan-unsupervised with the authors' G(z) file: its colour is fitted by
    L-BFGS-B (10 iterations here, not the default 1000: a test, not a blend worth
    looking at); gp-gan with it is refused in one line naming the right method."""
    np.savez_compressed(files / "unsupervised_blending_gan.npz",
                        **unsupervised_arrays(_latent()))
    npz = files / "unsupervised_blending_gan.npz"
    code, out, err = _blend_cli(capsys, files, npz, files / "u.png",
                                "--method", "gp-gan-unsupervised", "--latent-iters", "10")
    assert code == 0, err
    assert read_image(files / "u.png").shape == (256, 320, 3)
    code, out, err = _blend_cli(capsys, files, npz, files / "v.png")
    assert code == 2 and err.count("\n") == 1
    assert "is an unsupervised GP-GAN generator G(z): use method 'gp-gan-unsupervised'" in err
    assert not (files / "v.png").exists()


def test_cli_wrong_layout_is_one_error_line(files, cache, capsys):
    np.savez(files / "critic.npz", **_critic_arrays())
    code, out, err = _blend_cli(capsys, files, files / "critic.npz", files / "c.png")
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert "a critic (DCGAN_D" in err and EXPECTED in err
    assert not (files / "c.png").exists()


def test_serve_serves_the_cached_conversion(tmp_path, cache, capsys):
    from gpgan.serve import find_models

    np.savez(tmp_path / "blending_gan.npz", **blending_gan_arrays(_blending_gan()))
    label = str(tmp_path / "blending_gan.npz")
    assert find_models(label) == {label: (tmp_path / "blending_gan.gpgan.pt").resolve()}
    assert "converted" in capsys.readouterr().err
    np.savez(tmp_path / "critic.npz", **_critic_arrays())
    with pytest.raises(ModelError, match="a critic"):
        find_models(tmp_path / "critic.npz")


def test_install_released_model_checks_the_kind(tmp_path, cache, capsys):
    """The workflow's released_* rules: the npz becomes the method's model file (same
    weights); a file of the other kind is one line and writes nothing."""
    from gpgan.chainer import install_released_model
    from gpgan.models import load_generator

    g, z = _blending_gan(), _latent()
    np.savez(tmp_path / "blending_gan.npz", **blending_gan_arrays(g))
    np.savez_compressed(tmp_path / "unsupervised_blending_gan.npz", **unsupervised_arrays(z))
    out = install_released_model(tmp_path / "blending_gan.npz", tmp_path / "m" / "best.pt",
                                 "gp-gan")
    loaded = load_generator(out, "cpu")
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(),
                                                 g.state_dict().values()))
    out = install_released_model(tmp_path / "unsupervised_blending_gan.npz",
                                 tmp_path / "u" / "best.pt", "gp-gan-unsupervised")
    assert load_generator(out, "cpu").arch["kind"] == "latent"
    with pytest.raises(ModelError, match="models.gp-gan needs a Blending GAN generator"):
        install_released_model(tmp_path / "unsupervised_blending_gan.npz",
                               tmp_path / "x" / "best.pt", "gp-gan")
    assert not (tmp_path / "x").exists()
