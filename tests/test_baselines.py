"""The Poisson baselines (gpgan.baselines) against their defining equations: Perez's
problem and modified Poisson solved directly (spsolve, float64). Real photos, small
sizes."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve

from gpgan import baselines, poisson
from poisson_reference import reference_matrix, reference_rhs, small_case


@pytest.fixture(scope="module")
def small(photos):
    return small_case(photos)


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
    y, info = baselines.poisson_blend(src, dst, mask, rtol=1e-8, return_info=True)
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
        got = baselines.modified_poisson(src, dst, mask, epsilon=eps, solver=solver)
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
    y, info = baselines.poisson_blend(src, dst, free.astype(np.float32), rtol=1e-7,
                                    return_info=True)
    assert np.abs(y - _perez_direct(src, dst, free)).max() < 1e-4
    assert np.array_equal(y[~free], dst[~free])
    assert info["iterations"] > 0


def test_poisson_blend_of_the_whole_image_is_src(photos):
    src = photos["astronaut"][:40, :50]
    dst = photos["coffee"][:40, :50]
    y, info = baselines.poisson_blend(src, dst, np.ones((40, 50), np.float32),
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
    _, info = baselines.poisson_blend(src, dst, disk, return_info=True)
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
    t = baselines._AXIS_TRANSFORM
    y = poisson.box_solve(x.copy(), t[ty], t[tx])
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
    coef = baselines._ring_chebyshev(baselines._CHEB_DEGREE, lmax)
    x = np.linspace(0.0, lmax, 20001)
    p = np.polynomial.chebyshev.chebval(2.0 * x / lmax - 1.0, coef)
    assert p.min() > 0
    exact = np.sqrt(x * (x + 4.0) + 1e-3)
    assert np.abs(p - exact).max() < 0.1 * lmax ** 0.5
