"""Every blending method on real photos: shapes, odd/prime sizes, border masks,
inputs in any encoding, offsets, and that blending beats copy-paste on a relit scene."""

from __future__ import annotations

import numpy as np
import pytest

import gpgan
from gpgan import blending
from gpgan.errors import InputError, ModelError
from gpgan.pyramid import dilate, downsample2, gaussian_pyramid, level_sizes, upsample2

from conftest import blob_mask

NO_MODEL = [m for m in gpgan.METHODS if m not in blending.GAN_METHODS]


@pytest.mark.parametrize("method", NO_MODEL)
@pytest.mark.parametrize("size", [(257, 383), (96, 64), (65, 129), (7, 5)])
def test_methods_run_on_odd_prime_sizes_and_border_masks(photos, method, size):
    h, w = size
    src = photos["astronaut"][:h, :w]
    dst = photos["rocket"][:h, :w]
    mask = blob_mask(h, w, 0, w * 0.6, h * 0.45, w * 0.3)  # touches the top border
    mask[:, : max(1, w // 10)] = 1  # and the left border
    out = gpgan.blend(src, dst, mask, method=method)
    assert out.shape == (h, w, 3) and out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


def test_copy_paste_is_exact(scene):
    src, dst, mask = scene
    out = gpgan.blend(src, dst, mask, method="copy-paste")
    assert np.array_equal(out[mask == 1], src[mask == 1])
    assert np.array_equal(out[mask == 0], dst[mask == 0])


def offset_case(photos):
    """The same textured scene under a different illumination (an additive colour
    shift keeps every gradient): the ideal blend is dst itself."""
    dst = 0.1 + 0.75 * photos["chelsea"][:256, :384]
    src = np.clip(dst + np.array([0.12, 0.04, -0.08], np.float32), 0, 1)
    mask = blob_mask(256, 384, 130, 190, 70, 90)
    return src.astype(np.float32), dst.astype(np.float32), mask


def fmse(out, dst, mask):
    return float(((out - dst)[mask > 0] ** 2).mean())


# Measured fMSE on this case: copy-paste 0.0075, poisson 0.0, mpb 0.0067,
# laplacian 0.0043, gp 0.0066, GP stage with the ideal colour 0.00063.
@pytest.mark.parametrize("method,factor", [("poisson", 0.01), ("mpb", 0.95),
                                           ("laplacian", 0.7), ("gp", 0.95)])
def test_blending_beats_copy_paste_on_a_relit_scene(photos, method, factor):
    src, dst, mask = offset_case(photos)
    cp = fmse(gpgan.blend(src, dst, mask, method="copy-paste"), dst, mask)
    got = fmse(gpgan.blend(src, dst, mask, method=method), dst, mask)
    assert got < factor * cp, (method, got, cp)


def test_gp_stage_with_ideal_colour_recovers_the_scene(photos):
    """The GP stage fed the colour a perfect Blending GAN would give (the ground truth
    at level 0) removes most of the illumination error: what the GAN is for."""
    src, dst, mask = offset_case(photos)
    sizes = level_sizes(*mask.shape)
    ideal = gaussian_pyramid(dst.transpose(2, 0, 1), sizes)[0].transpose(1, 2, 0)
    cp = fmse(gpgan.blend(src, dst, mask, method="copy-paste"), dst, mask)
    got = fmse(blending.gp_pyramid(src, dst, mask, ideal), dst, mask)
    assert got < 0.15 * cp


def test_gp_and_reference_pyramid(scene):
    src, dst, mask = scene
    infos = []
    a = gpgan.blend(src, dst, mask, method="gp", infos=infos)
    assert [i["size"] for i in infos] == level_sizes(256, 320)
    # S = ceil(log2(320 / 64)) = 3 halvings.
    assert level_sizes(256, 320) == [(32, 40), (64, 80), (128, 160), (256, 320)]
    b = gpgan.blend(src, dst, mask, method="gp", pyramid="reference")
    assert level_sizes(256, 320, mode="reference") == [(64, 64), (128, 128), (256, 256),
                                                       (256, 320)]
    # Both are blends of the same inputs: close, but the pyramids differ.
    assert 0 < np.abs(a - b).mean() < 0.05


def test_gp_solvers_agree_on_full_pyramid(scene):
    src, dst, mask = scene
    a = gpgan.blend(src, dst, mask, method="gp", solver="cg")
    b = gpgan.blend(src, dst, mask, method="gp", solver="dct")
    assert np.abs(a - b).max() < 1e-4


@pytest.mark.parametrize("options", [dict(solver="cg"), dict(solver="dct"),
                                     dict(solver="cg", preserve_background=True)])
def test_gp_output_is_fresh_and_repeatable(scene, options):
    """The finest level recycles its own buffers (gpgan._arrays.Workspace): the output must
    not share memory with the inputs, leave them unchanged, and repeat exactly."""
    src, dst, mask = scene
    keep = [a.copy() for a in (src, dst, mask)]
    a = gpgan.blend(src, dst, mask, method="gp", **options)
    b = gpgan.blend(src, dst, mask, method="gp", **options)
    assert np.array_equal(a, b)
    for x, k in zip((src, dst, mask), keep):
        assert not np.shares_memory(a, x) and np.array_equal(x, k)


def test_preserve_background_holds_the_scene(scene):
    src, dst, mask = scene
    plain = gpgan.blend(src, dst, mask, method="gp")
    kept = gpgan.blend(src, dst, mask, method="gp", preserve_background=True, band=5)
    away = ~dilate(mask, 5)
    mse_plain = float(((plain - dst)[away] ** 2).mean())
    mse_kept = float(((kept - dst)[away] ** 2).mean())
    assert mse_plain > 1e-5  # the reference behaviour: the whole scene drifts a little
    assert mse_kept == 0.0  # held exactly
    # Inside the object both are blends of the same inputs.
    assert np.abs(plain - kept)[mask > 0].mean() < 0.05


def test_one_default_solver_for_every_method(scene):
    """gp, gp-gan and mpb default to poisson.DEFAULT_SOLVER wherever a solver is taken
    (the workflow's blend.solver reaches all three); mpb through gpgan.blend is
    modified_poisson with its defaults, bit for bit."""
    import inspect

    from gpgan import baselines, poisson

    for fn in (gpgan.blend, blending.gp_pyramid, poisson.gaussian_poisson,
               poisson.solve_level, poisson.solve_levels, baselines.modified_poisson):
        assert inspect.signature(fn).parameters["solver"].default == poisson.DEFAULT_SOLVER
    src, dst, mask = scene
    assert np.array_equal(gpgan.blend(src, dst, mask, method="mpb"),
                          baselines.modified_poisson(src, dst, mask))
    with pytest.raises(InputError, match="solver"):
        baselines.modified_poisson(src, dst, mask, solver="lu")


def test_gp_gan_without_model_is_a_clear_error(scene):
    src, dst, mask = scene
    with pytest.raises(ModelError, match="needs a model"):
        gpgan.blend(src, dst, mask, method="gp-gan")


def test_encodings_give_the_same_blend(scene):
    src, dst, mask = scene
    ref = gpgan.blend(src, dst, mask, method="poisson")
    s8 = (src * 255 + 0.5).astype(np.uint8)
    d8 = (dst * 255 + 0.5).astype(np.uint8)
    m255 = (mask * 255).astype(np.uint8)
    rgba_mask = np.dstack([np.zeros_like(s8), m255])  # mask in the alpha channel
    for m in (m255, np.dstack([m255] * 3), rgba_mask, mask.astype(bool)):
        out = gpgan.blend(s8, d8, m, method="poisson")
        assert np.abs(out - ref).max() < 2.5 / 255


def test_offset_places_a_smaller_source(photos):
    dst = photos["coffee"][:200, :300]
    src = photos["astronaut"][180:260, 200:300]  # 80x100
    mask = blob_mask(80, 100, 40, 50, 35, 45)
    out = gpgan.blend(src, dst, mask, method="copy-paste", offset=(30, 50))
    assert np.array_equal(out[30:110, 50:150][mask > 0], src[mask > 0])
    # Partly outside: clipped, not an error.
    out = gpgan.blend(src, dst, mask, method="gp", offset=(-20, 250))
    assert out.shape == dst.shape
    with pytest.raises(InputError, match="entirely outside"):
        gpgan.blend(src, dst, mask, method="gp", offset=(500, 0))
    with pytest.raises(InputError, match="src's size"):
        gpgan.blend(src, dst, np.ones(dst.shape[:2]), method="gp", offset=(0, 0))


def test_bad_inputs(scene):
    src, dst, mask = scene
    with pytest.raises(InputError, match="same size"):
        gpgan.blend(src[:-3], dst, mask, method="gp")
    with pytest.raises(InputError, match="empty"):
        gpgan.blend(src, dst, np.zeros_like(mask), method="gp")
    with pytest.raises(InputError, match="unknown method"):
        gpgan.blend(src, dst, mask, method="magic")
    with pytest.raises(InputError, match="mask is"):
        gpgan.blend(src, dst, mask[:-1], method="gp")


@pytest.mark.parametrize("method", gpgan.METHODS)
@pytest.mark.parametrize("where", ["src", "dst", "mask"])
def test_nan_input_is_refused_by_every_method(scene, method, where):
    """Issue 13, case 2: NaN gave NaN output or a misleading CG message."""
    arrays = dict(zip(("src", "dst", "mask"), (a.copy() for a in scene)))
    arrays[where][100, 150] = np.nan
    with pytest.raises(InputError, match=f"{where}: contains NaN"):
        gpgan.blend(arrays["src"], arrays["dst"], arrays["mask"], method=method,
                    model="unused.pt")


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.int16, np.uint32])
def test_integer_arrays_blend_like_uint8(scene, dtype):
    """Issue 13, case 2: int arrays of 0..255 are 8-bit data, not an almost white
    image; float64 of 0..255 is refused with the fix in the message."""
    src, dst, mask = scene
    s8, d8 = ((a * 255 + 0.5).astype(np.uint8) for a in (src, dst))
    ref = gpgan.blend(s8, d8, mask, method="gp")
    out = gpgan.blend(s8.astype(dtype), d8.astype(dtype), mask, method="gp")
    assert np.array_equal(out, ref)
    with pytest.raises(InputError, match="src: float values must be in .*divide by 255"):
        gpgan.blend(s8.astype(np.float64), d8.astype(np.float64), mask, method="gp")


@pytest.mark.parametrize("beta", [1e-9, 1e-4, 0.0, -1.0, float("nan")])
def test_colour_weight_below_the_minimum_is_refused(scene, beta):
    """Issue 13, case 5: beta 1e-9 left 25-49 % of the pixels black."""
    src, dst, mask = scene
    with pytest.raises(InputError, match="color weight .* must be >= 0.001"):
        gpgan.blend(src, dst, mask, method="gp", color_weight=beta)
    per_pixel = np.ones(mask.shape, np.float32)
    per_pixel[0, 0] = beta
    with pytest.raises(InputError, match="must be >= 0.001"):
        gpgan.blend(src, dst, mask, method="gp", color_weight=per_pixel)
    out = gpgan.blend(src, dst, mask, method="gp", color_weight=blending.MIN_COLOR_WEIGHT)
    assert (out.max(axis=2) <= 1 / 255).mean() < 0.01  # not black


def test_laplacian_full_mask_returns_src(scene):
    src, dst, _ = scene
    out = gpgan.blend(src, dst, np.ones(src.shape[:2]), method="laplacian")
    assert np.abs(out - src).max() < 1e-5


def test_pyramid_filters():
    rng = np.random.default_rng(1)
    x = rng.random((3, 33, 20)).astype(np.float32)
    d = downsample2(x)
    assert d.shape == (3, 17, 10)
    c = np.full((1, 9, 12), 0.7, np.float32)  # constants are preserved
    assert np.allclose(downsample2(c), 0.7) and np.allclose(upsample2(c, (18, 23)), 0.7)
    ramp = np.tile(np.arange(10, dtype=np.float32), (1, 4, 1))
    up = upsample2(ramp, (8, 20))
    assert np.allclose(up[0, 0, 1:-1], (np.arange(1, 19) - 0.5) / 2)  # bilinear


@pytest.mark.parametrize("h, w", [(2101, 2049), (2050, 2895)])
def test_row_blocked_resampling_equals_whole_image_passes(photos, monkeypatch, h, w):
    """Above pyramid.BLOCK_MIN_PIXELS the 2x filters run in row blocks; the result must
    be identical to the whole-image passes (odd sizes, 2n and 2n - 1 targets)."""
    from PIL import Image

    from gpgan import pyramid

    img = np.asarray(Image.fromarray((photos["astronaut"] * 255).astype(np.uint8))
                     .resize((w, h)), dtype=np.float32)[:, :, 1] / 255.0
    small = img[: (h + 1) // 2, : (w + 1) // 2]
    assert small.size >= pyramid.BLOCK_MIN_PIXELS  # both filters take the blocked path
    hs, ws = small.shape

    def resampled():
        return [downsample2(img)] + [upsample2(small, (H, W)) for H in (2 * hs, 2 * hs - 1)
                                     for W in (2 * ws, 2 * ws - 1)]

    blocked = resampled()
    monkeypatch.setattr(pyramid, "BLOCK_MIN_PIXELS", 1 << 40)
    whole = resampled()
    for a, b in zip(blocked, whole):
        assert a.shape == b.shape and np.array_equal(a, b)


def test_object_window_pyramid_equals_full_pyramid(scene, monkeypatch):
    """The src - dst pyramid is only built on a window around the mask; the result
    must equal building it on the whole image."""
    src, dst, mask = scene
    small_mask = blob_mask(256, 320, 150, 200, 30, 25)
    fast = blending.gp_pyramid(src, dst, small_mask)
    r0, r1, c0, c1 = blending._object_window(small_mask, 2)
    assert (r1 - r0) * (c1 - c0) < 0.8 * 256 * 320  # the window is a real saving
    monkeypatch.setattr(blending, "_object_window", lambda m, levels: (0, 256, 0, 320))
    full = blending.gp_pyramid(src, dst, small_mask)
    assert np.abs(fast - full).max() < 1e-6
