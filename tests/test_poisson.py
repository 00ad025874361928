"""The Gaussian-Poisson solver and its operators against an independent direct sparse
solve (tests/poisson_reference.py). Real photos, small sizes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse.linalg import spsolve

from gpgan import operators, poisson
from gpgan.errors import InputError
from poisson_reference import (G0, G1, reference_matrix, reference_rhs, reference_solve,
                               small_case)


@pytest.fixture(scope="module")
def small(photos):
    return small_case(photos)


def test_gaussian_taps_match_spec():
    g0, g1 = operators.gaussian_taps(0.5)
    assert g0 == pytest.approx(G0, abs=1e-6)
    assert g1 == pytest.approx(G1, abs=1e-6)
    assert (g0 + 2 * g1) ** 2 == pytest.approx(0.998945, abs=1e-6)


@pytest.mark.parametrize("beta", [1.0, 0.2, 5.0])
@pytest.mark.parametrize("solver", ["cg", "dct"])
def test_matches_independent_direct_solve(small, beta, solver):
    src, dst, mask, color = small
    expected = reference_solve(src, dst, mask, color, beta)
    got = poisson.gaussian_poisson(src, dst, mask, color, beta=beta, solver=solver)
    assert got.shape == (48, 64, 3) and got.dtype == np.float32
    assert np.abs(got - expected).max() < 1e-4


def test_per_pixel_beta_matches_direct_solve(small):
    src, dst, mask, color = small
    beta = np.where(mask > 0, 0.5, 4.0).astype(np.float32)
    expected = reference_solve(src, dst, mask, color, beta)
    got, info = poisson.gaussian_poisson(src, dst, mask, color, beta=beta, return_info=True)
    assert np.abs(got - expected).max() < 1e-4
    assert info["iterations"] > 1  # a real CG solve, not the closed form


def test_cg_and_dct_agree(small):
    src, dst, mask, color = small
    a = poisson.gaussian_poisson(src, dst, mask, color, solver="cg")
    b = poisson.gaussian_poisson(src, dst, mask, color, solver="dct")
    assert np.abs(a - b).max() < 1e-4


def test_cg_checks_the_closed_form_and_iterates_when_it_is_not_converged(small):
    """Constant beta: the closed form passes cg's stopping rule at once (0 iterations).
    A start that is not converged (here: a perturbed closed form) goes through
    scipy's cg iterations and still reaches the direct solve."""
    src, dst, mask, color = small
    _, info = poisson.gaussian_poisson(src, dst, mask, color, solver="cg", return_info=True)
    assert info["iterations"] == 0
    s, d, x = (np.ascontiguousarray(a.transpose(2, 0, 1)) for a in (src, dst, color))
    rhs = operators.guidance_divergence(s, d, mask, add=x)
    taps = operators.gaussian_taps()
    A = operators.operator_matrix(mask.shape, 1.0)
    exact = np.stack([spsolve(A.tocsc(), r.ravel().astype(np.float64)).reshape(mask.shape)
                      for r in rhs])

    def matvec(v):
        return operators.apply_operator(v.reshape(rhs.shape), 1.0, taps).ravel()

    def psolve(r):
        return poisson.dct_solve(r.reshape(rhs.shape), 1.0, taps).ravel()

    y, info = poisson.solve_neumann(rhs, 1.0, taps, "cg")
    assert info["iterations"] == 0 and np.abs(y - exact).max() < 1e-4
    b = rhs.ravel()
    x0 = psolve(b) + np.float32(0.01)
    y, info = poisson.run_cg(matvec, psolve, b, x0, 1e-6, 100, "test")
    assert info["iterations"] >= 1
    assert np.abs(y.reshape(rhs.shape) - exact).max() < 1e-4


def test_cg_and_dct_agree_at_prime_size(photos):
    """257x383 (both prime): the dct path pads to a fast length; cg solves exactly."""
    src = photos["astronaut"][:257, :383]
    dst = photos["rocket"][:257, :383]
    yy, xx = np.mgrid[0:257, 0:383]
    mask = (((yy - 120) / 90.0) ** 2 + ((xx - 200) / 120.0) ** 2 <= 1).astype(np.float32)
    color = 0.5 * dst + 0.25
    a = poisson.gaussian_poisson(src, dst, mask, color, solver="cg", rtol=1e-7)
    b = poisson.gaussian_poisson(src, dst, mask, color, solver="dct")
    assert np.abs(a - b).max() < 1e-4


def test_constant_beta_array_equals_scalar(small):
    src, dst, mask, color = small
    for beta in (1.0, 0.3):
        a = poisson.gaussian_poisson(src, dst, mask, color, beta=beta)
        b = poisson.gaussian_poisson(src, dst, mask, color,
                                     beta=np.full(mask.shape, beta, np.float32))
        assert np.abs(a - b).max() < 1e-5


def test_operator_matrix_equals_stencil_and_reference():
    rng = np.random.default_rng(0)
    h, w = 9, 13
    beta = rng.uniform(0.1, 3.0, (h, w))
    A = operators.operator_matrix((h, w), beta)
    R = reference_matrix(h, w, beta)
    assert abs(A - R).max() < 1e-5  # SPEC taps are given to 6 decimals
    z = rng.standard_normal((1, h, w)).astype(np.float32)
    az = operators.apply_operator(z, beta.astype(np.float32), operators.gaussian_taps())
    assert np.abs(az.ravel() - A @ z.ravel().astype(np.float64)).max() < 1e-5


@pytest.mark.parametrize("shape", [(9, 13), (1, 7), (6, 1), (2, 2)])
@pytest.mark.parametrize("beta", [0.0, 0.3, 2.0])
def test_constant_beta_stencil_and_accumulating_laplacian(shape, beta):
    """The one-pass 3x3 stencil (constant beta, 2-D slices), the slice-sum form (3-D
    input) and the accumulating -Lap (``out=``) all equal the assembled reference."""
    rng = np.random.default_rng(1)
    h, w = shape
    R = reference_matrix(h, w, beta)
    z = rng.standard_normal((h, w)).astype(np.float32)
    want = R @ z.ravel().astype(np.float64)
    taps = operators.gaussian_taps()
    assert np.abs(operators.apply_operator(z, beta, taps).ravel() - want).max() < 1e-5
    assert np.abs(operators.apply_operator(z[None], beta, taps).ravel() - want).max() < 1e-5
    lap = reference_matrix(h, w, 0.0) @ z.ravel().astype(np.float64)
    acc = np.full((h, w), 0.25, np.float32)
    operators.neg_laplacian(z, out=acc)
    assert np.abs(acc.ravel() - (lap + 0.25)).max() < 1e-5


def test_accumulating_laplacian_in_row_blocks(photos):
    """Wide images take several row blocks (16 rows at >= 2048 px): same as one pass."""
    z = np.ascontiguousarray(photos["astronaut"][:, :, 0])
    z = np.tile(z, (1, 5))[:61, :2500]  # 61 rows = 4 blocks, the last one partial
    acc = np.full(z.shape, -0.5, np.float32)
    operators.neg_laplacian(z, out=acc)
    assert np.abs(acc - (operators.neg_laplacian(z) - 0.5)).max() < 1e-5


def test_identity_input_changes_only_by_dc_gain(photos):
    """src = dst = colour = I: the solution is I + A^-1 beta (I - G I). For a constant
    image that is exactly I / 0.998945 (the 3x3 Gaussian's DC gain: +0.106%); on a real
    photo the high frequencies of I - G I add a little (measured: max 0.0126, i.e.
    ~3/255, mean 0.0014 on this crop)."""
    c = np.full((32, 40, 3), 0.6, np.float32)
    m = np.zeros((32, 40), np.float32)
    y = poisson.gaussian_poisson(c, c, m, c)
    assert np.allclose(y, 0.6 / 0.998945, atol=2e-6)

    img = photos["chelsea"][:96, :128]
    y = poisson.gaussian_poisson(img, img, np.ones((96, 128), np.float32), img)
    assert np.abs(y - img).max() < 0.02
    assert np.abs(y - img).mean() < 0.002
    assert abs(float(y.mean() - img.mean())) < 2e-3


def test_zero_mask_returns_dst(small):
    src, dst, _, _ = small
    zero = np.zeros(dst.shape[:2], np.float32)
    y = poisson.gaussian_poisson(src, dst, zero, dst)
    # Same effect as above: only the DC gain and I - G I (measured max 0.015, mean 0.0013).
    assert np.abs(y - dst).max() < 0.02
    assert np.abs(y - dst).mean() < 0.002


def test_fixed_pixels_hold_dst_and_match_direct_solve(small):
    """Dirichlet pixels: equals eliminating them from the independent system."""
    src, dst, mask, color = small
    fixed = np.ones(mask.shape, bool)
    fixed[8:40, 6:56] = False
    y = poisson.gaussian_poisson(src, dst, mask, color, fixed=fixed, rtol=1e-8)
    assert np.array_equal(y[fixed], dst[fixed])
    A = reference_matrix(48, 64, 1.0).tocsr()
    rhs = reference_rhs(src.astype(np.float64), dst.astype(np.float64), mask, color, 1.0)
    free = ~fixed.ravel()
    for k in range(3):
        b = rhs[:, :, k].ravel() - A[:, fixed.ravel()] @ dst[:, :, k].ravel()[fixed.ravel()]
        yk = spsolve(A[free][:, free].tocsc(), b[free])
        assert np.abs(np.clip(yk, 0, 1) - y[:, :, k].ravel()[free]).max() < 1e-4


def test_bad_beta_and_solver_are_refused(small):
    src, dst, mask, color = small
    with pytest.raises(InputError, match="beta"):
        poisson.gaussian_poisson(src, dst, mask, color, beta=0.0)
    with pytest.raises(InputError, match="solver"):
        poisson.gaussian_poisson(src, dst, mask, color, solver="lu")
    with pytest.raises(InputError, match="constant beta"):
        poisson.gaussian_poisson(src, dst, mask, color, beta=np.ones(mask.shape) * 2,
                                 solver="dct")
    with pytest.raises(InputError, match="size mismatch"):
        poisson.gaussian_poisson(src[:-1], dst, mask, color)
