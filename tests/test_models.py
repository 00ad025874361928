"""Blending GAN architecture, checkpoints and inference (the Chainer weights:
test_chainer.py)."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch
from torch import nn

from gpgan.errors import ConfigError, ModelError
from gpgan.models import (Critic, Generator, generate_color,
                          load_generator, resolve_device, save_generator)

PAPER_G_PARAMS = 71_058_880  # conv weights 71,047,168 + batch-norm scale/shift 11,712


def _n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _photo64() -> np.ndarray:
    """A real 64x64 photo crop (astronaut's face, 2x2-averaged), float32 [0, 1]."""
    img = skimage.data.astronaut()[40:168, 150:278].astype(np.float32) / 255.0
    return img.reshape(64, 2, 64, 2, 3).mean(axis=(1, 3))


def test_paper_generator_parameter_count_and_shape():
    torch.manual_seed(0)
    g = Generator()  # paper: 64, 4000, 64
    assert _n_params(g) == PAPER_G_PARAMS
    x = torch.from_numpy(_photo64().transpose(2, 0, 1))[None] * 2 - 1
    with torch.no_grad():
        y = g.eval()(x)
    assert y.shape == (1, 3, 64, 64)
    assert float(y.abs().max()) <= 1.0  # tanh output


def test_paper_layer_shapes_follow_spec():
    g = Generator()
    convs = [m for m in g.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    shapes = [(type(m).__name__, m.in_channels, m.out_channels, m.kernel_size, m.stride,
               m.padding) for m in convs]
    k4s2 = ((4, 4), (2, 2), (1, 1))
    k4s1 = ((4, 4), (1, 1), (0, 0))
    assert shapes == [
        ("Conv2d", 3, 64, *k4s2), ("Conv2d", 64, 128, *k4s2), ("Conv2d", 128, 256, *k4s2),
        ("Conv2d", 256, 512, *k4s2), ("Conv2d", 512, 4000, *k4s1),
        ("ConvTranspose2d", 4000, 512, *k4s1), ("ConvTranspose2d", 512, 256, *k4s2),
        ("ConvTranspose2d", 256, 128, *k4s2), ("ConvTranspose2d", 128, 64, *k4s2),
        ("ConvTranspose2d", 64, 3, *k4s2),
    ]
    assert all(m.bias is None for m in convs)
    # no norm after the first encoder conv; BN after the others incl. the bottleneck
    assert isinstance(g.encoder[1], nn.LeakyReLU) and g.encoder[1].negative_slope == 0.2
    bns = [m.num_features for m in g.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns == [128, 256, 512, 4000, 512, 256, 128, 64]
    assert isinstance(g.decoder[-1], nn.Tanh)
    acts = {type(m) for m in g.decoder if not isinstance(m, (nn.ConvTranspose2d,
                                                              nn.BatchNorm2d))}
    assert acts == {nn.ReLU, nn.Tanh}


def test_paper_critic_shape_and_init_statistics():
    torch.manual_seed(1)
    d = Critic()
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert [m.out_channels for m in convs] == [64, 128, 256, 512, 1]
    assert all(m.bias is None for m in convs)
    assert not any(isinstance(m, nn.Sigmoid) for m in d.modules())
    out = d(torch.zeros(5, 3, 64, 64))
    assert out.shape == (5,)
    w = torch.cat([m.weight.detach().flatten() for m in convs])
    assert abs(float(w.mean())) < 1e-3 and abs(float(w.std()) - 0.02) < 1e-3
    gamma = torch.cat([m.weight.detach() for m in d.modules()
                       if isinstance(m, nn.BatchNorm2d)])
    assert abs(float(gamma.mean()) - 1.0) < 5e-3 and abs(float(gamma.std()) - 0.02) < 5e-3


@pytest.mark.parametrize("size", [16, 32, 128])
def test_other_image_sizes(size):
    g = Generator(image_size=size, n_bottleneck=8, base_width=4)
    d = Critic(image_size=size, base_width=4)
    x = torch.zeros(2, 3, size, size)
    assert g(x).shape == x.shape and d(x).shape == (2,)


@pytest.mark.parametrize("kw", [{"image_size": 48}, {"image_size": 4}, {"n_bottleneck": 0},
                                {"base_width": 2.5}])
def test_bad_architecture_is_config_error(kw):
    with pytest.raises(ConfigError):
        Generator(**{"image_size": 32, "n_bottleneck": 8, "base_width": 4, **kw})


def test_save_load_roundtrip_eval_mode(tmp_path):
    torch.manual_seed(2)
    g = Generator(64, 32, 8)
    g.train()
    with torch.no_grad():  # move BN running stats away from their defaults
        g(torch.rand(8, 3, 64, 64) * 2 - 1)
    path = save_generator(g, tmp_path / "g.pt", extra={"iteration": 7})
    h = load_generator(path, device="cpu")
    assert not h.training and h.arch == g.arch
    x = torch.from_numpy(_photo64().transpose(2, 0, 1))[None] * 2 - 1
    with torch.no_grad():
        assert torch.equal(h(x), g.eval()(x))
    # a bare state dict works too (architecture inferred from shapes)
    torch.save(g.state_dict(), tmp_path / "bare.pt")
    assert load_generator(tmp_path / "bare.pt", device="cpu").arch == g.arch


def test_checkpoint_of_another_architecture_is_one_line_model_error(tmp_path):
    path = save_generator(Generator(64, 32, 8), tmp_path / "g.pt")
    ckpt = torch.load(path, weights_only=True)
    ckpt["arch"]["n_bottleneck"] = 64  # claims another architecture
    torch.save(ckpt, tmp_path / "bad.pt")
    with pytest.raises(ModelError) as err:
        load_generator(tmp_path / "bad.pt", device="cpu")
    msg = str(err.value)
    assert "\n" not in msg and "bad.pt" in msg and "n_bottleneck=64" in msg
    # a critic checkpoint is not a generator
    torch.save({"critic": Critic(64, 8).state_dict()}, tmp_path / "critic.pt")
    with pytest.raises(ModelError, match="no generator weights"):
        load_generator(tmp_path / "critic.pt", device="cpu")
    with pytest.raises(ModelError, match="no such model"):
        load_generator(tmp_path / "missing.pt", device="cpu")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="not a torch checkpoint; expected a .pt"):
        load_generator(tmp_path / "junk.pt", device="cpu")
    (tmp_path / "cut.pt").write_bytes((tmp_path / "bad.pt").read_bytes()[:2000])
    with pytest.raises(ModelError, match="damaged or truncated"):
        load_generator(tmp_path / "cut.pt", device="cpu")


class _Evil:
    def __reduce__(self):
        return (print, ("unpickled code ran",))


def test_loading_refuses_arbitrary_pickles(tmp_path):
    g = Generator(32, 8, 4)
    torch.save({"arch": g.arch, "generator": g.state_dict(), "x": _Evil()}, tmp_path / "e.pt")
    with pytest.raises(ModelError, match="not a readable torch checkpoint"):
        load_generator(tmp_path / "e.pt", device="cpu")


def test_generate_color_matches_manual_forward():
    torch.manual_seed(3)
    g = Generator(64, 16, 8).eval()
    comp = _photo64()
    out = generate_color(g, comp)
    assert out.dtype == np.float32 and out.shape == (64, 64, 3)
    assert out.min() >= 0.0 and out.max() <= 1.0
    with torch.no_grad():
        ref = g(torch.from_numpy(comp.transpose(2, 0, 1))[None] * 2 - 1)[0]
    np.testing.assert_allclose(out, (ref.numpy().transpose(1, 2, 0) + 1) / 2, atol=1e-6)
    with pytest.raises(ModelError, match=r"\(64, 64, 3\)"):
        generate_color(g, comp[:32])


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            resolve_device("cuda")


# ----------------------------------------------------------------- options beyond the paper
_OPTIONS = [dict(mask_input=True), dict(skip=True), dict(mask_input=True, skip=True),
            dict(mask_input=True, skip=True, output="affine"),
            dict(mask_input=True, output="affine", affine_grid=8)]


def _mask64() -> np.ndarray:
    from gpgan.data.composites import random_blob_mask

    return random_blob_mask(64, 64, 0.25, np.random.default_rng(3))


def test_skip_decoder_takes_the_encoder_activations():
    g = Generator(64, 64, 8, skip=True, mask_input=True)
    deconvs = [m for m in g.decoder if isinstance(m, nn.ConvTranspose2d)]
    # first deconv from the bottleneck; then each takes its input + the encoder's
    # same-resolution activation (widths 64, 32, 16, 8 -> doubled)
    assert [(m.in_channels, m.out_channels) for m in deconvs] == [
        (64, 64), (128, 32), (64, 16), (32, 8), (16, 3)]
    assert g.encoder[0].in_channels == 4
    x = torch.from_numpy(_photo64().transpose(2, 0, 1))[None] * 2 - 1
    m = torch.from_numpy(_mask64())[None, None]
    with torch.no_grad():
        y = g.eval()(x, m)
        # the skip path carries a pixel-level change of the input to the output
        x2 = x.clone()
        x2[..., 10, 10] = -x2[..., 10, 10]
        assert not torch.equal(g(x2, m), y)
    assert y.shape == (1, 3, 64, 64)


def test_affine_output_starts_as_identity_and_never_changes_the_background():
    torch.manual_seed(1)
    g = Generator(64, 32, 8, mask_input=True, skip=True, output="affine").eval()
    x = torch.from_numpy(_photo64().transpose(2, 0, 1))[None] * 2 - 1
    m = torch.from_numpy(_mask64())[None, None]
    with torch.no_grad():
        assert torch.equal(g(x, m), x.clamp(-1, 1))  # zero-initialised head
        g.head.weight.normal_(0, 0.05)
        g.head.bias.normal_(0, 0.05)
        y = g(x, m)
    outside = (m == 0).expand_as(x)
    assert torch.equal(y[outside], x[outside])
    assert float((y - x)[~outside].abs().mean()) > 1e-3


@pytest.mark.parametrize("kw", _OPTIONS)
def test_options_round_trip_through_a_bare_state_dict(tmp_path, kw):
    g = Generator(32, 16, 4, **kw)
    torch.save(g.state_dict(), tmp_path / "bare.pt")
    h = load_generator(tmp_path / "bare.pt", device="cpu")
    assert h.arch == g.arch
    comp = _photo64()[::2, ::2].copy()
    mask = _mask64()[::2, ::2].copy()
    np.testing.assert_array_equal(generate_color(h, comp, mask),
                                  generate_color(g.eval(), comp, mask))


def test_mask_input_needs_a_mask_and_affine_needs_mask_input():
    g = Generator(32, 8, 4, mask_input=True)
    with pytest.raises(ModelError, match="mask"):
        generate_color(g, _photo64()[::2, ::2].copy())
    with pytest.raises(ConfigError, match="mask_input"):
        Generator(32, 8, 4, output="affine")
    with pytest.raises(ConfigError, match="affine_grid"):
        Generator(32, 8, 4, mask_input=True, output="affine", affine_grid=32)
    with pytest.raises(ConfigError, match="output"):
        Generator(32, 8, 4, output="picture")
