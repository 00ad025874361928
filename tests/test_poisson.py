"""The Gaussian-Poisson solver against an independent direct sparse solve, and the
Poisson baselines against their defining equations. Real photos, small sizes."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve

from gpgan import poisson
from gpgan.errors import InputError

G0, G1 = 0.786571, 0.106451  # SPEC.md, sigma 0.5


# ----------------------------------------------------------------------------------
# Independent reference: per-pixel loops straight from SPEC.md's definitions
# ----------------------------------------------------------------------------------
def reference_matrix(h, w, beta, g0=G0, g1=G1):
    """(-Lap_N + S G_N S) assembled pixel by pixel (no code shared with gpgan)."""
    n = h * w
    rows, cols, vals = [], [], []
    taps = {-1: g1, 0: g0, 1: g1}
    b = np.broadcast_to(np.asarray(beta, dtype=np.float64), (h, w))
    for i in range(h):
        for j in range(w):
            p = i * w + j
            for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                ii, jj = i + di, j + dj
                if 0 <= ii < h and 0 <= jj < w:  # Neumann: missing neighbours dropped
                    rows += [p, p]
                    cols += [p, ii * w + jj]
                    vals += [1.0, -1.0]
            for di in (-1, 0, 1):
                for dj in (-1, 0, 1):
                    ii = min(max(i + di, 0), h - 1)  # reflect: index -1 -> 0, h -> h-1
                    jj = min(max(j + dj, 0), w - 1)
                    q = ii * w + jj
                    rows.append(p)
                    cols.append(q)
                    vals.append(np.sqrt(b[i, j] * b[ii, jj]) * taps[di] * taps[dj])
    return sp.csc_matrix((vals, (rows, cols)), shape=(n, n))


def reference_rhs(src, dst, mask, color, beta):
    """-div F + beta * color with F the half-mask guidance (SPEC.md), per channel."""
    h, w, c = dst.shape
    out = np.zeros((h, w, c))
    fh = np.zeros((h, w, c))
    fv = np.zeros((h, w, c))
    for i in range(h):
        for j in range(w):
            if j + 1 < w:
                mb = (mask[i, j] + mask[i, j + 1]) / 2
                fh[i, j] = (src[i, j + 1] - src[i, j]) * mb + (dst[i, j + 1] - dst[i, j]) * (1 - mb)
            if i + 1 < h:
                mb = (mask[i, j] + mask[i + 1, j]) / 2
                fv[i, j] = (src[i + 1, j] - src[i, j]) * mb + (dst[i + 1, j] - dst[i, j]) * (1 - mb)
    for i in range(h):
        for j in range(w):
            left = fh[i, j - 1] if j > 0 else 0.0
            up = fv[i - 1, j] if i > 0 else 0.0
            out[i, j] = left - fh[i, j] + up - fv[i, j]
    return out + np.asarray(beta, dtype=np.float64)[..., None] * color if np.ndim(beta) else \
        out + beta * color


def reference_solve(src, dst, mask, color, beta):
    h, w, c = dst.shape
    A = reference_matrix(h, w, beta)
    rhs = reference_rhs(src.astype(np.float64), dst.astype(np.float64), mask, color, beta)
    y = np.stack([spsolve(A, rhs[:, :, k].ravel()).reshape(h, w) for k in range(c)], axis=2)
    return np.clip(y, 0.0, 1.0)


@pytest.fixture(scope="module")
def small(photos):
    """48x64 crops of two real photos, an elliptic mask and a blurry colour image."""
    from scipy.ndimage import gaussian_filter

    src = photos["astronaut"][60:108, 180:244].copy()
    dst = photos["coffee"][150:198, 250:314].copy()
    yy, xx = np.mgrid[0:48, 0:64]
    mask = (((yy - 22) / 14.0) ** 2 + ((xx - 30) / 20.0) ** 2 <= 1).astype(np.float32)
    color = gaussian_filter(dst + mask[..., None] * (src - dst), (3, 3, 0)).astype(np.float32)
    return src, dst, mask, color


def test_gaussian_taps_match_spec():
    g0, g1 = poisson.gaussian_taps(0.5)
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
    s, d, x = (poisson._chw(a) for a in (src, dst, color))
    rhs = poisson.guidance_divergence(s, d, mask, add=x)
    taps = poisson.gaussian_taps()
    A = poisson.operator_matrix(mask.shape, 1.0)
    exact = np.stack([spsolve(A.tocsc(), r.ravel().astype(np.float64)).reshape(mask.shape)
                      for r in rhs])

    def matvec(v):
        return poisson.apply_operator(v.reshape(rhs.shape), 1.0, taps).ravel()

    def psolve(r):
        return poisson._dct_solve(r.reshape(rhs.shape), 1.0, taps).ravel()

    b = rhs.ravel()
    x0 = psolve(b) + np.float32(0.01)
    y, info = poisson._cg(matvec, psolve, b, x0, 1e-6, 100, "test", check_x0=True)
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
    A = poisson.operator_matrix((h, w), beta)
    R = reference_matrix(h, w, beta)
    assert abs(A - R).max() < 1e-5  # SPEC taps are given to 6 decimals
    z = rng.standard_normal((1, h, w)).astype(np.float32)
    az = poisson.apply_operator(z, beta.astype(np.float32), poisson.gaussian_taps())
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
    taps = poisson.gaussian_taps()
    assert np.abs(poisson.apply_operator(z, beta, taps).ravel() - want).max() < 1e-5
    assert np.abs(poisson.apply_operator(z[None], beta, taps).ravel() - want).max() < 1e-5
    lap = reference_matrix(h, w, 0.0) @ z.ravel().astype(np.float64)
    acc = np.full((h, w), 0.25, np.float32)
    poisson.neg_laplacian(z, out=acc)
    assert np.abs(acc.ravel() - (lap + 0.25)).max() < 1e-5


def test_accumulating_laplacian_in_row_blocks(photos):
    """Wide images take several row blocks (16 rows at >= 2048 px): same as one pass."""
    z = np.ascontiguousarray(photos["astronaut"][:, :, 0])
    z = np.tile(z, (1, 5))[:61, :2500]  # 61 rows = 4 blocks, the last one partial
    acc = np.full(z.shape, -0.5, np.float32)
    poisson.neg_laplacian(z, out=acc)
    assert np.abs(acc - (poisson.neg_laplacian(z) - 0.5)).max() < 1e-5


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


# ----------------------------------------------------------------------------------
# Poisson (Perez) and modified Poisson (Tanaka)
# ----------------------------------------------------------------------------------
def _neg_lap_np(img):
    """-Lap_N of an (H, W, C) image, written independently with np.pad (edge = Neumann)."""
    p = np.pad(img.astype(np.float64), ((1, 1), (1, 1), (0, 0)), mode="edge")
    return 4 * p[1:-1, 1:-1] - p[:-2, 1:-1] - p[2:, 1:-1] - p[1:-1, :-2] - p[1:-1, 2:]


def test_poisson_blend_boundary_and_laplacian(photos):
    # Mid-range images so nothing clips and the equation can be checked exactly.
    src = 0.25 + 0.5 * photos["astronaut"][100:196, 150:278]
    dst = 0.25 + 0.5 * photos["coffee"][100:196, 200:328]
    yy, xx = np.mgrid[0:96, 0:128]
    mask = (((yy - 40) / 30.0) ** 2 + ((xx - 70) / 45.0) ** 2 <= 1).astype(np.float32)
    mask[:5, 60:80] = 1  # touches the image border (Neumann there)
    y, info = poisson.poisson_blend(src, dst, mask, rtol=1e-8, return_info=True)
    inside = mask > 0.5
    assert np.array_equal(y[~inside], dst[~inside])  # every pixel off the mask is dst
    assert 0.0 < y.min() and y.max() < 1.0
    lap_y, lap_s = _neg_lap_np(y), _neg_lap_np(src)
    assert np.abs(lap_y[inside] - lap_s[inside]).max() < 1e-4
    assert info["iterations"] > 0


def test_modified_poisson_matches_direct_solve(small):
    src, dst, mask, _ = small
    eps = 0.05
    h, w = mask.shape
    lap = reference_matrix(h, w, 0.0)
    A = (lap + eps * sp.identity(h * w)).tocsc()
    cp = dst + mask[..., None] * (src - dst)
    rhs = reference_rhs(src.astype(np.float64), dst.astype(np.float64), mask,
                        np.zeros_like(cp), 0.0) + eps * cp
    expected = np.clip(np.stack([spsolve(A, rhs[:, :, k].ravel()).reshape(h, w)
                                 for k in range(3)], 2), 0, 1)
    for solver in ("dct", "cg"):
        got = poisson.modified_poisson(src, dst, mask, epsilon=eps, solver=solver)
        assert np.abs(got - expected).max() < 1e-4


def _perez_direct(src, dst, free):
    """Perez's problem solved by spsolve (float64) on the unknowns, written from its
    definition: 5-point -Lap_N (missing neighbours at the image border dropped),
    Dirichlet neighbours moved to the right-hand side."""
    h, w = free.shape
    lap = reference_matrix(h, w, 0.0).tocsr()
    idx = np.flatnonzero(free.ravel())
    rest = np.flatnonzero(~free.ravel())
    a = lap[idx][:, idx].tocsc()
    out = dst.astype(np.float64).copy()
    for k in range(dst.shape[2]):
        s = src[..., k].astype(np.float64).ravel()
        d = dst[..., k].astype(np.float64).ravel()
        b = (lap @ s)[idx] - lap[idx][:, rest] @ d[rest]
        o = d.copy()
        o[idx] = spsolve(a, b)
        out[..., k] = o.reshape(h, w)
    return np.clip(out, 0.0, 1.0)


def _shapes(h, w):
    """Irregular masks that reach 0, 1, 2 (opposite and adjacent) and 4 image borders."""
    yy, xx = np.mgrid[0:h, 0:w]
    disk = ((yy - h / 2) / (0.35 * h)) ** 2 + ((xx - w / 2) / (0.3 * w)) ** 2 <= 1
    ring = disk & ~(((yy - h / 2) / (0.12 * h)) ** 2 + ((xx - w / 2) / (0.1 * w)) ** 2 <= 1)
    bottom = disk | ((yy > 0.6 * h) & (np.abs(xx - w / 2) < 0.1 * w))
    band = (np.abs(xx - w / 2 - 6 * np.sin(yy / 5.0)) < 0.15 * w)  # top to bottom
    notch = (yy < 8) & (xx > 5) & (xx < 12)
    corner = ((yy / (0.6 * h)) ** 2 + (xx / (0.5 * w)) ** 2 <= 1) & ~notch
    cross = (np.abs(yy - h / 2) < 5) | (np.abs(xx - w / 3) < 4)
    return {"interior disk": disk, "annulus": ring, "bottom border": bottom,
            "top-bottom band": band, "corner": corner, "all four borders": cross}


@pytest.mark.parametrize("name", list(_shapes(8, 8)))
def test_poisson_blend_matches_direct_solve_on_irregular_masks(photos, name):
    # The capacitance solver against spsolve, with each box: DST-II, DCT-IV / DST-IV
    # (one border on an axis), DCT-II (both), and a mask on all four borders (a
    # singular Neumann box: pseudo-inverse, zero-sum charges, constant from the ring).
    src = photos["astronaut"][180:232, 200:270]
    dst = photos["rocket"][100:152, 300:370]
    free = _shapes(52, 70)[name]
    y, info = poisson.poisson_blend(src, dst, free.astype(np.float32), rtol=1e-7,
                                    return_info=True)
    assert np.abs(y - _perez_direct(src, dst, free)).max() < 1e-4
    assert np.array_equal(y[~free], dst[~free])
    assert info["iterations"] > 0


def test_poisson_blend_of_the_whole_image_is_src(photos):
    src = photos["astronaut"][:40, :50]
    dst = photos["coffee"][:40, :50]
    y, info = poisson.poisson_blend(src, dst, np.ones((40, 50), np.float32),
                                    return_info=True)
    assert np.array_equal(y, src) and info["iterations"] == 0
    assert not np.shares_memory(y, src)


def test_poisson_blend_iterations_on_a_disk(photos):
    # The ring preconditioner's effect, as an iteration count (deterministic): the
    # box-preconditioned cg on the unknowns needed 21 here (rtol 1e-5).
    src = photos["astronaut"][56:456, 56:456]
    dst = photos["coffee"][:400, 100:500]
    yy, xx = np.mgrid[0:400, 0:400]
    disk = (((yy - 200) / 150.0) ** 2 + ((xx - 200) / 150.0) ** 2 <= 1).astype(np.float32)
    _, info = poisson.poisson_blend(src, dst, disk, return_info=True)
    assert info["iterations"] <= 10


@pytest.mark.parametrize("ends", [(False, False), (True, True), (True, False),
                                  (False, True)])
@pytest.mark.parametrize("axis", [1, 2])
def test_box_solve_inverts_the_laplacian_with_each_boundary(photos, ends, axis):
    # -Lap applied by an explicit ghost-cell stencil: a Neumann end mirrors the edge
    # pixel, a free end is zero half a pixel outside (the ghost is minus the edge pixel).
    # ``ends`` applies to ``axis``; the other axis has two free ends. float64 in, so the
    # check sees the boundary handling, not float32 round-off.
    x = np.ascontiguousarray(photos["chelsea"][:30, :40].transpose(2, 0, 1), np.float64)
    free = (False, False)
    ty, tx = (ends, free) if axis == 1 else (free, ends)
    t = poisson._AXIS_TRANSFORM
    y = poisson._box_solve(x.copy(), t[ty], t[tx])
    yp = np.pad(y, ((0, 0), (1, 1), (1, 1)))
    yp[:, 0, 1:-1] = y[:, 0] if ty[0] else -y[:, 0]
    yp[:, -1, 1:-1] = y[:, -1] if ty[1] else -y[:, -1]
    yp[:, 1:-1, 0] = y[:, :, 0] if tx[0] else -y[:, :, 0]
    yp[:, 1:-1, -1] = y[:, :, -1] if tx[1] else -y[:, :, -1]
    lap = 4 * yp[:, 1:-1, 1:-1] - yp[:, :-2, 1:-1] - yp[:, 2:, 1:-1] - yp[:, 1:-1, :-2] \
        - yp[:, 1:-1, 2:]
    assert np.abs(lap - x).max() < 1e-5


@pytest.mark.parametrize("lmax", [2.0 * k for k in range(1, 9)])
def test_ring_preconditioner_is_positive(lmax):
    # p(A) is SPD iff the Chebyshev interpolant is > 0 on A's spectrum, inside [0, lmax].
    coef = poisson._ring_chebyshev(poisson._CHEB_DEGREE, lmax)
    x = np.linspace(0.0, lmax, 20001)
    p = np.polynomial.chebyshev.chebval(2.0 * x / lmax - 1.0, coef)
    assert p.min() > 0
    exact = np.sqrt(x * (x + 4.0) + 1e-3)
    assert np.abs(p - exact).max() < 0.1 * lmax ** 0.5
