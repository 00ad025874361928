"""Unsupervised GP-GAN blending: the latent fit of G(z) and the ``gp-gan-unsupervised``
method on real photos, in the API and the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gpgan
from gpgan.cli import main
from gpgan.errors import ConfigError, ModelError
from gpgan.io import read_image, write_image
from gpgan.models import Generator, LatentGenerator, save_generator
from gpgan.blending import blend_each
from gpgan.unsupervised import fit_latent, fit_latents

from conftest import blob_mask


def _tiny_latent(seed: int = 3) -> LatentGenerator:
    """A small G(z) whose batch-norm statistics are those of its own activations (as
    after training; at initialisation the running statistics shrink G(z) to ~1e-4)."""
    torch.manual_seed(seed)
    g = LatentGenerator(image_size=32, nz=16, base_width=8)
    for m in g.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration pass
    with torch.no_grad():
        g.train()(torch.randn(256, 16))
    return g.eval()


@pytest.fixture(scope="module")
def latent_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("latent") / "unsupervised.pt"
    save_generator(_tiny_latent(), path)
    return path


def test_paper_generator_has_the_dcgan_shape_and_size():
    g = LatentGenerator()  # paper: 64x64, nz 100, widths 512-256-128-64
    assert sum(p.numel() for p in g.parameters()) == 3_576_704
    assert not any(m.bias is not None for m in g.modules() if hasattr(m, "bias")
                   and isinstance(m, torch.nn.ConvTranspose2d))
    with torch.no_grad():
        y = g.eval()(torch.randn(2, 100))
    assert y.shape == (2, 3, 64, 64) and y.abs().max() <= 1.0


def test_latent_fit_finds_an_image_the_generator_can_make_and_is_deterministic():
    """The target is G(z_true): a fit from another seed must get most of the way."""
    torch.set_num_threads(1)
    g = _tiny_latent()
    with torch.no_grad():
        z_true = torch.from_numpy(np.random.default_rng(11).standard_normal((1, 16)))
        target = ((g(z_true.float())[0].numpy().transpose(1, 2, 0) + 1) / 2).clip(0, 1)
    color, info = fit_latent(g, target, seed=0, maxiter=200)
    assert info["latent_iterations"] > 10
    assert info["latent_loss"] < 0.2 * info["latent_loss0"]
    assert color.shape == (32, 32, 3) and color.dtype == np.float32
    assert np.mean((color - target) ** 2) * 4 == pytest.approx(info["latent_loss"], rel=1e-3)
    again, info2 = fit_latent(g, target, seed=0, maxiter=200)
    assert np.array_equal(color, again) and info == info2
    torch.set_num_threads(2)  # the fit runs on one thread and gives the thread count back
    seen = set()
    hook = g.register_forward_hook(lambda *_: seen.add(torch.get_num_threads()))
    try:
        two, info_two = fit_latent(g, target, seed=0, maxiter=200)
        assert torch.get_num_threads() == 2 and seen == {1}
    finally:
        hook.remove()
        torch.set_num_threads(1)
    assert np.array_equal(color, two) and info == info_two
    other, _ = fit_latent(g, target, seed=1, maxiter=3)
    assert not np.array_equal(color, other)
    with pytest.raises(ModelError, match=r"\(32, 32, 3\)"):
        fit_latent(g, target[:16], seed=0)
    with pytest.raises(ConfigError, match="positive integer"):
        fit_latent(g, target, maxiter=0)


def test_batched_fits_equal_one_at_a_time_fits(photos):
    """fit_latents runs every fit's passes of G together, one batch per round; each
    composite still gets its own L-BFGS-B fit, so the results are those of fit_latent
    on it alone (the same bits), whatever else is in the batch."""
    torch.set_num_threads(1)
    g = _tiny_latent()
    crops = [photos[name][k * 40:k * 40 + 128:4, k * 30:k * 30 + 128:4]
             for k in range(3) for name in ("astronaut", "coffee", "chelsea", "rocket")]
    z, infos = fit_latents(g, crops, seed=0, maxiter=30)
    assert z.shape == (12, 16) and len(infos) == 12
    assert len({i["latent_evaluations"] for i in infos}) > 1  # fits end at their own time
    for k in (0, 5, 11):
        color, info = fit_latent(g, crops[k], seed=0, maxiter=30)
        assert info == infos[k]
        assert np.array_equal(color, gpgan.unsupervised.latent_color(g, z[k]))
    z_rev, infos_rev = fit_latents(g, crops[::-1][:7], seed=0, maxiter=30)
    assert np.array_equal(z_rev, z[::-1][:7]) and infos_rev == infos[::-1][:7]
    assert fit_latents(g, [], seed=0)[0].shape == (0, 16)
    with pytest.raises(ModelError, match=r"\(32, 32, 3\)"):
        fit_latents(g, [crops[0], crops[1][:16]], seed=0)


def test_blend_each_equals_blend_on_every_composite(photos, latent_file):
    torch.set_num_threads(1)
    h, w = 96, 128
    items = []
    for k, (a, b) in enumerate([("astronaut", "coffee"), ("rocket", "chelsea"),
                                ("coffee", "astronaut")]):
        items.append((photos[a][:h, :w], photos[b][:h, :w],
                      blob_mask(h, w, 40 + 5 * k, 60, 20, 30)))
    opts = dict(model=latent_file, latent_iters=15, latent_seed=2)
    done = list(blend_each(items, "gp-gan-unsupervised", chunk=2, **opts))
    for (src, dst, mask), d in zip(items, done):
        infos = []
        ref = gpgan.blend(src, dst, mask, method="gp-gan-unsupervised", infos=infos, **opts)
        assert np.array_equal(d.image, ref) and d.infos[0] == infos[0]
        assert d.seconds > 0 and [i["level"] for i in d.infos[1:]] == \
            [i["level"] for i in infos[1:]]
    gp = list(blend_each(items, "gp"))
    assert all(np.array_equal(d.image, gpgan.blend(*it, method="gp")) for d, it in
               zip(gp, items))
    with pytest.raises(ModelError, match="needs a model"):
        next(blend_each(items, "gp-gan-unsupervised"))


def test_gp_gan_unsupervised_blends_real_photos(scene, latent_file):
    src, dst, mask = scene
    infos = []
    out = gpgan.blend(src, dst, mask, method="gp-gan-unsupervised", model=latent_file,
                      latent_iters=20, infos=infos)
    assert out.shape == dst.shape and out.dtype == np.float32 and np.isfinite(out).all()
    fit, levels = infos[0], infos[1:]
    assert fit["latent_iterations"] <= 20 and fit["latent_loss"] <= fit["latent_loss0"]
    assert [i["level"] for i in levels] == list(range(len(levels)))
    # gan_region="mask": the scene far from the object stays the scene
    far = ~(gpgan.pyramid.dilate(mask > 0, 24))
    assert np.abs(out - dst)[far].mean() < 0.02
    again = gpgan.blend(src, dst, mask, method="gp-gan-unsupervised", model=latent_file,
                        latent_iters=20)
    assert np.array_equal(out, again)
    gp = gpgan.blend(src, dst, mask, method="gp")
    assert not np.array_equal(out, gp)  # G(z*) replaced the copy-paste colour


def test_a_generator_of_the_other_kind_is_refused_in_one_line(scene, latent_file, tmp_path):
    src, dst, mask = scene
    with pytest.raises(ModelError, match="unsupervised GP-GAN generator G.z.: use method "
                                         "'gp-gan-unsupervised'"):
        gpgan.blend(src, dst, mask, method="gp-gan", model=latent_file)
    torch.manual_seed(0)
    save_generator(Generator(32, 16, 8), tmp_path / "blending.pt")
    with pytest.raises(ModelError, match="Blending GAN generator: use method 'gp-gan'"):
        gpgan.blend(src, dst, mask, method="gp-gan-unsupervised", model=tmp_path / "blending.pt")
    with pytest.raises(ModelError, match="needs a model.*unsupervised/best.pt"):
        gpgan.blend(src, dst, mask, method="gp-gan-unsupervised")


def test_cli_blends_with_an_unsupervised_model(tmp_path, capsys, photos, latent_file):
    h, w = 160, 224
    write_image(tmp_path / "src.png", photos["astronaut"][:h, :w])
    write_image(tmp_path / "dst.png", photos["rocket"][:h, :w])
    write_image(tmp_path / "mask.png", blob_mask(h, w, 80, 110, 40, 50))
    common = ["blend", "--src", str(tmp_path / "src.png"), "--dst", str(tmp_path / "dst.png"),
              "--mask", str(tmp_path / "mask.png"), "--method", "gp-gan-unsupervised",
              "--model", str(latent_file)]
    assert main(common + ["--out", str(tmp_path / "out.png"), "--latent-iters", "5"]) == 0
    assert "gp-gan-unsupervised" in capsys.readouterr().out
    assert read_image(tmp_path / "out.png").shape == (h, w, 3)
    assert main(common + ["--out", str(tmp_path / "bad.png"), "--latent-iters", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--latent-iters must be >= 1" in err
    assert not (tmp_path / "bad.png").exists()
