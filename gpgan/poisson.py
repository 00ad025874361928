"""Solving the Gaussian-Poisson equation (GP-GAN, Wu et al. 2019, Eq. 7-9).

One level of GP-GAN's high-resolution stage solves, per colour channel, the screened
Poisson system (``SPEC.md``; its terms are in :mod:`gpgan.operators`)::

    (-Lap_N + beta * G_N) Y = -div F + beta * x~                                 (1)

with ``x~`` the colour constraint (the GAN image, up-sampled). Both operators are
symmetric and diagonalised by the orthonormal 2-D DCT-II [2]_ with eigenvalues
``lambda_L(k, l) = 4 - 2 cos(pi k/H) - 2 cos(pi l/W)`` and
``lambda_G(k, l) = (g0 + 2 g1 cos(pi k/H)) (g0 + 2 g1 cos(pi l/W))``, so (1) has the
closed form ``Y = IDCT((DCT(rhs)) / (lambda_L + beta lambda_G))`` (``solver="dct"``,
:func:`dct_solve`; the same diagonalisation with DST / DCT-IV for zero or mixed
boundaries is :func:`box_solve`).

The default ``solver="cg"`` solves (1) with :func:`scipy.sparse.linalg.cg` on the
operator as a :class:`scipy.sparse.linalg.LinearOperator` (the matrix-free stencil
:func:`gpgan.operators.apply_operator`; assembled as a ``scipy.sparse`` matrix it is
:func:`gpgan.operators.operator_matrix`), with the closed form as preconditioner and
as the starting point. For a constant ``beta`` the preconditioner is exact: the start
already meets cg's stopping rule ``||b - A x0|| < rtol ||b||``, which is checked in one
pass before :func:`scipy.sparse.linalg.cg` would be entered (0 iterations); the sparse
form is what allows what the closed form cannot:

- a per-pixel colour weight ``beta(x) >= 0``: the symmetric positive definite form
  ``(-Lap_N + S G_N S) Y = -div F + beta * x~`` with ``S = diag(sqrt(beta))``, which is
  exactly (1) when ``beta`` is constant;
- Dirichlet pixels (``fixed``): pixels held at a given value (``beta -> inf`` limit),
  used by ``preserve_background`` (:func:`solve_dirichlet`, also used by the classic
  Poisson baseline in :mod:`gpgan.baselines`).

Entry points: :func:`gaussian_poisson` (one level, ``(H, W, 3)`` images: the stable
contract), :func:`solve_level` (the same on channel-first arrays) and
:func:`solve_levels` (the walk up a pyramid the caller built, as
:func:`gpgan.blending.gp_pyramid` does). All arrays are ``float32``; buffers are
reused where an array is dead (:class:`gpgan._arrays.Workspace`).

References
----------
.. [1] H. Wu, S. Zheng, J. Zhang and K. Huang, "GP-GAN: Towards Realistic
   High-Resolution Image Blending", ACM Multimedia 2019, arXiv:1703.07195. The
   Gaussian-Poisson equation (their Eq. 7-9, (1) here); their public implementation
   solves it by the DCT closed form.
.. [2] G. Strang, "The Discrete Cosine Transform", SIAM Review 41(1):135-147, 1999.
   The DCT-II (and the other DCT / DST types) as the eigenvectors of the second
   difference with Neumann (Dirichlet, mixed) boundaries.
.. [3] P. Bhat, B. Curless, M. Cohen and C. L. Zitnick, "Fourier Analysis of the 2D
   Screened Poisson Equation for Gradient Domain Problems", ECCV 2008. The screened
   Poisson equation solved in closed form by a DCT.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import scipy.fft as sfft
from scipy.sparse.linalg import LinearOperator, cg

from ._arrays import Workspace, bbox, chw, fft_workers, for_channels, hwc
from .errors import InputError
from .operators import apply_operator, gaussian_taps, guidance_divergence

__all__ = [
    "DEFAULT_MAXITER",
    "DEFAULT_RTOL",
    "DEFAULT_SOLVER",
    "SOLVERS",
    "Level",
    "SolveInfo",
    "box_solve",
    "check_beta",
    "check_solver",
    "dct_solve",
    "gaussian_poisson",
    "run_cg",
    "solve_dirichlet",
    "solve_level",
    "solve_levels",
    "solve_neumann",
]

#: The solvers of Eq. (1): ``"cg"`` (default of every method that takes a solver:
#: ``gp``, ``gp-gan`` and ``mpb``) and ``"dct"`` (the closed form alone).
SOLVERS = ("cg", "dct")
DEFAULT_SOLVER = "cg"
#: Default relative tolerance of the CG solver (on the joint RGB residual).
DEFAULT_RTOL = 1e-5
#: Default CG iteration cap.
DEFAULT_MAXITER = 500


class SolveInfo(dict):
    """Diagnostics of a solve: ``solver`` and ``iterations`` (the pyramid adds
    ``level`` and ``size``)."""


def check_solver(solver: str) -> None:
    """Refuse a solver name other than :data:`SOLVERS` with one line."""
    if solver not in SOLVERS:
        raise InputError(f"unknown solver {solver!r} (use 'cg' or 'dct')")


# --------------------------------------------------------------------------------------
# Closed forms: the DCT / DST diagonalisation
# --------------------------------------------------------------------------------------
#: The orthonormal transforms (scipy.fft name, type) that diagonalise the 1-D stencils,
#: by boundary: ``DCT2`` Neumann at both ends (half-sample symmetric); ``DST2`` zero
#: half a pixel outside both ends (antisymmetric); ``DST1`` zero one pixel outside;
#: ``("dct", 4)`` / ``("dst", 4)`` Neumann at the low / high end, zero at the other.
DCT2, DST2, DST1 = ("dct", 2), ("dst", 2), ("dst", 1)


def _cos_pi(n: int, transform: tuple[str, int]) -> np.ndarray:
    """``cos(theta_k)`` of the transform's frequencies (eigenvalues ``2 - 2 cos``)."""
    k = np.arange(n, dtype=np.float64)
    if transform == DCT2:
        return np.cos(np.pi * k / n)
    if transform == DST2:
        return np.cos(np.pi * (k + 1) / n)
    if transform == DST1:
        return np.cos(np.pi * (k + 1) / (n + 1))
    return np.cos(np.pi * (k + 0.5) / n)  # type IV, either kind


@lru_cache(maxsize=64)
def _inverse_eigenvalues(h: int, w: int, beta: float, g0: float, g1: float,
                         ty: tuple[str, int] = DCT2, tx: tuple[str, int] | None = None,
                         ) -> np.ndarray:
    """``1 / (lambda_L + beta lambda_G)`` as float32 ``(h, w)`` for the transforms
    ``ty`` (rows) and ``tx`` (columns, default ``ty``); cached per size."""
    ch, cw = _cos_pi(h, ty), _cos_pi(w, ty if tx is None else tx)
    lam = (2.0 - 2.0 * ch)[:, None] + (2.0 - 2.0 * cw)[None, :]
    if beta:
        lam = lam + beta * (g0 + 2.0 * g1 * ch)[:, None] * (g0 + 2.0 * g1 * cw)[None, :]
    if lam[0, 0] <= 1e-12:  # pure Neumann Poisson: the mean is free (pseudo-inverse)
        lam[0, 0] = np.inf
    inv = (1.0 / lam).astype(np.float32)
    inv.flags.writeable = False
    return inv


def _largest_prime_factor(n: int) -> int:
    p, largest = 2, 1
    while p * p <= n:
        while n % p == 0:
            largest, n = p, n // p
        p += 1
    return max(largest, n) if n > 1 else largest


def _padded_length(n: int, beta: float, g_dc: float) -> int:
    """Length to solve a Neumann problem of length ``n`` on (>= n).

    DCT lengths with a large prime factor are 2-4x slower (Bluestein). For those we
    solve on a mirror-extended domain of a fast length: the mirror extension is exact
    for the boundary itself, and the far end's error decays like ``exp(-kappa p)``
    with the screened operator's decay rate ``kappa = acosh(1 + beta g_dc / 2)``; the
    pad ``p`` is chosen so that factor is below 1e-7. If that pad would be as large
    as ``n`` (tiny beta), no padding is done.
    """
    if n < 64 or _largest_prime_factor(n) <= 13 or beta <= 0:
        return n
    kappa = math.acosh(1.0 + 0.5 * beta * g_dc)
    pad = int(math.ceil(16.2 / kappa))  # exp(-16.2) ~ 1e-7
    if pad >= n:
        return n
    return sfft.next_fast_len(n + pad, real=True)


def dct_solve(rhs: np.ndarray, beta: float, taps) -> np.ndarray:
    """Closed-form solve of ``(-Lap_N + beta G_N) Y = rhs`` for ``rhs`` (C, H, W), Neumann
    boundary (``solver="dct"``; ``taps`` from :func:`gpgan.operators.gaussian_taps`, or
    ``(1.0, 0.0)`` for the identity). ``beta = 0`` applies the pseudo-inverse."""
    return _dct_solve(rhs, beta, taps)


def _dct_solve(rhs: np.ndarray, beta: float, taps, *, overwrite: bool = False) -> np.ndarray:
    """:func:`dct_solve`; ``overwrite``: ``rhs`` may be used as the work (and output)
    buffer.

    DCT lengths with a large prime factor are solved on a mirror-extended domain of a
    fast length (:func:`_padded_length`)."""
    c, h, w = rhs.shape
    g0, g1 = taps
    g_dc = (g0 + 2 * g1) ** 2
    hp = _padded_length(h, beta, g_dc)
    wp = _padded_length(w, beta, g_dc)
    x = rhs
    if (hp, wp) != (h, w):
        x = np.pad(rhs, ((0, 0), (0, hp - h), (0, wp - w)), mode="symmetric")
    y = box_solve(x, DCT2, beta=beta, taps=taps, overwrite=overwrite or x is not rhs)
    if (hp, wp) != (h, w):
        y = np.ascontiguousarray(y[:, :h, :w])
    return y


def box_solve(x: np.ndarray, ty: tuple[str, int], tx: tuple[str, int] | None = None, *,
              beta: float = 0.0, taps=(1.0, 0.0), overwrite: bool = True) -> np.ndarray:
    """Closed-form solve of ``(-Lap + beta G) Y = x`` on a (C, H, W) box whose rows and
    columns have the boundaries of the transforms ``ty`` and ``tx`` (default ``ty``;
    see :data:`DCT2`). An all-Neumann box with ``beta = 0`` is singular: the
    pseudo-inverse is applied. ``overwrite`` (as scipy.fft's ``overwrite_x``): ``x``
    may be used as the work buffer.

    DST-II is ~2.5x cheaper than DST-I at fast lengths (measured 1.8 vs 4.4 ms for
    3x405^2 vs 3x404^2), so where the solve is only a preconditioner the box is
    padded for DST-II; DST-I is the exact inverse of the Dirichlet problem on a
    rectangle.
    """
    tx = ty if tx is None else tx
    g0, g1 = taps
    inv_eig = _inverse_eigenvalues(x.shape[1], x.shape[2], float(beta), g0, g1, ty, tx)
    kw = dict(norm="ortho", workers=fft_workers())
    if ty == tx:
        nd, ind = (sfft.dstn, sfft.idstn) if ty[0] == "dst" else (sfft.dctn, sfft.idctn)
        y = nd(x, type=ty[1], axes=(1, 2), overwrite_x=overwrite, **kw)
        y *= inv_eig
        return ind(y, type=ty[1], axes=(1, 2), overwrite_x=True, **kw)
    fwd = {"dst": sfft.dst, "dct": sfft.dct}
    inv = {"dst": sfft.idst, "dct": sfft.idct}
    y = fwd[ty[0]](x, type=ty[1], axis=1, overwrite_x=overwrite, **kw)
    y = fwd[tx[0]](y, type=tx[1], axis=2, overwrite_x=True, **kw)
    y *= inv_eig
    y = inv[tx[0]](y, type=tx[1], axis=2, overwrite_x=True, **kw)
    return inv[ty[0]](y, type=ty[1], axis=1, overwrite_x=True, **kw)


# --------------------------------------------------------------------------------------
# Conjugate gradients
# --------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _blas_threads():
    """The process's BLAS thread pools (:class:`threadpoolctl.ThreadpoolController`,
    found once: ~2 ms)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def run_cg(matvec, psolve, b: np.ndarray, x0: np.ndarray | None, rtol: float,
           maxiter: int, what: str) -> tuple[np.ndarray, SolveInfo]:
    """:func:`scipy.sparse.linalg.cg` on ``A x = b`` (``A`` and the preconditioner
    ``M`` given as functions of a flat float32 vector), from ``x0``.

    Returns the solution and a :class:`SolveInfo`; a solve that does not reach
    ``rtol`` in ``maxiter`` iterations is an :class:`~gpgan.errors.InputError` naming
    ``what``.
    """
    n = b.size
    A = LinearOperator((n, n), matvec=matvec, dtype=np.float32)
    M = LinearOperator((n, n), matvec=psolve, dtype=np.float32)
    count = [0]

    def callback(_):
        count[0] += 1

    # cg's dot products go through BLAS. Above ~10k entries OpenBLAS runs them on its
    # threads, which then busy-wait and take the cores from scipy.fft's workers in the
    # next transform: one BLAS thread here (Perez on a 1 MP background mask: 1.36 s
    # with OpenBLAS's 2 threads, 0.84 s with 1).
    with _blas_threads().limit(limits=1, user_api="blas"):
        x, status = cg(A, b, x0=x0, rtol=rtol, atol=0.0, maxiter=maxiter, M=M,
                       callback=callback)
    if status != 0:
        res = np.linalg.norm(b - matvec(x)) / max(np.linalg.norm(b), 1e-30)
        raise InputError(f"{what}: CG did not reach rtol={rtol:g} in {maxiter} iterations "
                         f"(relative residual {res:.2e}); raise maxiter or rtol")
    return x, SolveInfo(solver="cg", iterations=count[0])


def _start_converged(matvec, b: np.ndarray, x0: np.ndarray, rtol: float,
                     workspace: Workspace) -> bool:
    """cg's own stopping rule ``||b - A x0|| < rtol ||b||`` for the start ``x0``, in one
    fused pass without cg's copies of ``x0`` and ``b`` (for a start expected to be
    converged: the preconditioner is the exact inverse, e.g. a constant beta). The
    residual's buffer is given to ``workspace`` afterwards."""
    r = matvec(x0)
    np.subtract(b, r, out=r)
    done = np.linalg.norm(r) < rtol * np.linalg.norm(b)
    workspace.give(r.reshape(-1))
    return bool(done)


# --------------------------------------------------------------------------------------
# Solves on the whole image (Neumann) and with Dirichlet pixels
# --------------------------------------------------------------------------------------
def solve_neumann(rhs: np.ndarray, beta, taps, solver: str = DEFAULT_SOLVER,
                  rtol: float = DEFAULT_RTOL, maxiter: int = DEFAULT_MAXITER,
                  ) -> tuple[np.ndarray, SolveInfo]:
    """Solve ``(-Lap_N + S G_N S) Y = rhs`` on the whole image (Neumann boundary).

    ``rhs`` (C, H, W) float32; ``beta`` a scalar or (H, W) (``"cg"`` only); ``taps``
    of ``G_N`` (``(1.0, 0.0)``: the identity). Returns ``(Y, SolveInfo)``.
    """
    return _solve_full(rhs, beta, taps, solver, rtol, maxiter)


def _solve_full(rhs: np.ndarray, beta, taps, solver: str, rtol: float, maxiter: int,
                *, overwrite: bool = False, workspace: Workspace | None = None,
                ) -> tuple[np.ndarray, SolveInfo]:
    """:func:`solve_neumann` (``overwrite``: the dct solver may use ``rhs`` as its work
    buffer; ``workspace``: buffers for the cg start and residual check, the check's
    buffer is given back)."""
    scalar = np.ndim(beta) == 0
    if solver == "dct":
        if not scalar:
            raise InputError("solver='dct' needs a constant beta; use solver='cg' for a "
                             "per-pixel beta")
        return (_dct_solve(rhs, float(beta), taps, overwrite=overwrite),
                SolveInfo(solver="dct", iterations=0))
    shape = rhs.shape
    beta_pc = float(beta) if scalar else float(np.mean(beta))
    beta_op = beta if scalar else np.asarray(beta, dtype=np.float32)

    ws = workspace if workspace is not None else Workspace()

    def matvec(v):
        # Channel by channel (in parallel above 2 MP), straight into the output.
        z, out = v.reshape(shape), ws.take(shape)
        for_channels(lambda k: apply_operator(z[k], beta_op, taps, out=out[k]), shape[0],
                     math.prod(shape[1:]))
        return out.ravel()

    def psolve(r):
        return _dct_solve(r.reshape(shape), beta_pc, taps).ravel()

    # Start from the closed form: with a constant beta it is the solution, and CG only
    # checks its residual (one operator application) and stops.
    b = rhs.ravel()
    x0 = ws.take(shape)
    np.copyto(x0, rhs)
    x0 = _dct_solve(x0, beta_pc, taps, overwrite=True).ravel()
    if scalar and _start_converged(matvec, b, x0, rtol, ws):
        return x0.reshape(shape), SolveInfo(solver="cg", iterations=0)
    y, info = run_cg(matvec, psolve, b, x0, rtol, maxiter, "gaussian_poisson")
    return y.reshape(shape), info


def solve_dirichlet(rhs: np.ndarray, fixed_values: np.ndarray, free: np.ndarray, beta,
                    taps, rtol: float = DEFAULT_RTOL, maxiter: int = DEFAULT_MAXITER,
                    what: str = "gaussian_poisson") -> tuple[np.ndarray, SolveInfo]:
    """Solve ``A Y = rhs`` on the ``free`` pixels with ``Y = fixed_values`` elsewhere.

    ``A = -Lap_N + S G_N S`` (``beta`` scalar or (H, W), ``taps`` of ``G_N``); ``rhs``
    and ``fixed_values`` are (C, H, W), ``free`` (H, W) bool; ``what`` names the solve
    in cg's error.

    Works on the bounding box of ``free`` plus one pixel (the fixed ring around it).
    The CG vectors are whole boxes with the fixed entries kept at 0 (``P A P`` with
    ``P`` = the free-pixel indicator, exact on the free unknowns); the preconditioner
    is ``P (-Lap_D + beta G_D)^-1 P``, a zero-Dirichlet closed form on the box (DST-I,
    exact, when the free pixels fill it; else DST-II on the box padded to a fast
    length). Returns the full ``(C, H, W)`` solution.
    """
    c = rhs.shape[0]
    out = fixed_values.copy()
    box = bbox(free, margin=1)
    if box is None:
        return out, SolveInfo(solver="cg", iterations=0)
    r0, r1, c0, c1 = box
    f0, f1, g0_, g1_ = bbox(free, margin=0)
    f0, f1, g0_, g1_ = f0 - r0, f1 - r0, g0_ - c0, g1_ - c0  # free bbox inside the box
    bh, bw = r1 - r0, c1 - c0
    ih, iw = f1 - f0, g1_ - g0_
    sub_free = free[r0:r1, c0:c1]
    fm = sub_free.astype(np.float32)
    sub_beta = beta if np.ndim(beta) == 0 else np.asarray(beta, np.float32)[r0:r1, c0:c1]
    # The preconditioner is a zero-Dirichlet closed form on the free pixels' bounding
    # box. If the free pixels fill that box, DST-I is its exact inverse (CG stops at
    # once). Otherwise it is only an approximation anyway: use the cheaper DST-II on
    # the box padded to a fast length, centred (measured on a 400 px disk: 24 CG
    # iterations and 154 ms, against 27 and 204 ms with DST-I on the bare box).
    if sub_free[f0:f1, g0_:g1_].all():
        ph, pw, kind = ih, iw, 1
    else:
        ph, pw, kind = sfft.next_fast_len(ih + 4, real=True), sfft.next_fast_len(iw + 4, real=True), 2
    oh, ow = (ph - ih) // 2, (pw - iw) // 2  # where the free bbox sits in the padded box
    beta_pc = float(sub_beta) if np.ndim(sub_beta) == 0 else float(np.mean(sub_beta[sub_free]))
    shape = (c, bh, bw)

    fixed_box = np.ascontiguousarray(fixed_values[:, r0:r1, c0:c1], dtype=np.float32)
    base = fixed_box * (1.0 - fm)
    b = rhs[:, r0:r1, c0:c1] - apply_operator(base, sub_beta, taps)
    b *= fm

    def matvec(v):
        az = apply_operator(v.reshape(shape) * fm, sub_beta, taps)
        az *= fm
        return az.ravel()

    fm_in = fm[f0:f1, g0_:g1_]
    work = np.empty((c, ph, pw), dtype=np.float32)  # reused by every psolve

    inner = (slice(None), slice(oh, oh + ih), slice(ow, ow + iw))

    def psolve(r):
        work.fill(0.0)  # the transform padding (overwritten by the last solve)
        np.multiply(r.reshape(shape)[:, f0:f1, g0_:g1_], fm_in, out=work[inner])
        sol = box_solve(work, ("dst", kind), beta=beta_pc, taps=taps)
        y = np.zeros(shape, dtype=np.float32)
        np.multiply(sol[inner], fm_in, out=y[:, f0:f1, g0_:g1_])
        return y.ravel()

    b = b.ravel()
    y, info = run_cg(matvec, psolve, b, psolve(b), rtol, maxiter, what)
    out[:, r0:r1, c0:c1] = np.where(sub_free, y.reshape(shape), fixed_box)
    return out, info


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------
def check_beta(beta, shape) -> float | np.ndarray:
    """The colour weight as a float > 0, or a float32 array of ``shape`` (>= 0, not all
    zero); anything else is an :class:`~gpgan.errors.InputError`."""
    if np.ndim(beta) == 0:
        beta = float(beta)
        if not (beta > 0 and np.isfinite(beta)):
            raise InputError(f"color weight beta must be a finite number > 0, got {beta} "
                             "(beta = 0 is pure Poisson: ill-posed without a boundary)")
        return beta
    b = np.asarray(beta, dtype=np.float32)
    if b.shape != shape:
        raise InputError(f"beta array has shape {b.shape}, expected {shape}")
    if not np.all(np.isfinite(b)) or b.min() < 0 or b.max() <= 0:
        raise InputError("beta array must be finite, >= 0 and not all zero")
    return b


def gaussian_poisson(src, dst, mask, color, beta=1.0, solver: str = DEFAULT_SOLVER, *,
                     sigma: float = 0.5, rtol: float = DEFAULT_RTOL,
                     maxiter: int = DEFAULT_MAXITER, fixed=None,
                     return_info: bool = False):
    """Solve one level of the Gaussian-Poisson equation (Eq. 1 in the module docstring).

    Parameters
    ----------
    src, dst : ndarray, float32 (H, W, C), [0, 1]
        Object image and scene image, already aligned and the same size.
    mask : ndarray, float32 (H, W), [0, 1]
        1 on the object; soft values weight the guidance field.
    color : ndarray, float32 (H, W, C)
        Colour constraint ``x~`` (the GAN image up-sampled to this level).
    beta : float or ndarray (H, W)
        Colour weight (paper default 1.0). An array gives a per-pixel weight
        (``solver="cg"`` only); a constant array equals the scalar.
    solver : {"cg", "dct"}
        ``"cg"``: :func:`scipy.sparse.linalg.cg` with the DCT closed form as
        preconditioner. ``"dct"``: the closed form alone (constant ``beta``).
    sigma : float
        Sigma of the 3x3 Gaussian ``G_N`` (0.5).
    rtol, maxiter : float, int
        CG relative tolerance on the joint RGB residual, and iteration cap.
    fixed : ndarray of bool (H, W), optional
        Pixels held at ``dst`` (Dirichlet, the ``beta -> inf`` limit); needs ``"cg"``.
    return_info : bool
        Also return a :class:`SolveInfo` (iterations, solver).

    Returns
    -------
    ndarray, float32 (H, W, C) in [0, 1] (clipped), and the info when asked.
    """
    s, d, x = chw(src, "src"), chw(dst, "dst"), chw(color, "color")
    m = np.asarray(mask, dtype=np.float32)
    if m.ndim == 3:
        m = m[:, :, 0]
    shape = d.shape[1:]
    if s.shape != d.shape or x.shape != d.shape or m.shape != shape:
        raise InputError(f"size mismatch: src {s.shape[1:]}, dst {shape}, "
                         f"color {x.shape[1:]}, mask {m.shape}")
    y, info = solve_level(s, d, m, x, check_beta(beta, shape), solver,
                          taps=gaussian_taps(sigma), fixed=fixed, rtol=rtol, maxiter=maxiter)
    out = hwc(y)
    return (out, info) if return_info else out


def solve_level(src, dst, mask, color, beta, solver: str = DEFAULT_SOLVER, *, taps,
                fixed=None, rtol: float = DEFAULT_RTOL, maxiter: int = DEFAULT_MAXITER,
                diff=None, clip: bool = True) -> tuple[np.ndarray, SolveInfo]:
    """:func:`gaussian_poisson` on channel-first ``(C, H, W)`` float32 arrays.

    No input conversion (``beta`` already checked by :func:`check_beta`; ``taps`` from
    :func:`gpgan.operators.gaussian_taps`); the inputs are left unchanged. ``src`` may
    be None when ``diff`` is given (see :func:`gpgan.operators.guidance_divergence`).
    Returns ``(Y, SolveInfo)`` with ``Y`` clipped to [0, 1] (unless ``clip=False``).
    """
    return _solve_level(src, dst, mask, color, beta, solver, taps=taps, fixed=fixed,
                        rtol=rtol, maxiter=maxiter, diff=diff, clip=clip)


def _solve_level(src, dst, mask, color, beta, solver, *, taps, fixed, rtol, maxiter, diff,
                 clip, consume_color=False, workspace=None, spare=()):
    """:func:`solve_level` with the memory plumbing of :func:`solve_levels`.

    ``consume_color``: ``color`` is a temporary the solve may overwrite (it becomes the
    right-hand side; saves a full-size array). ``workspace`` (:class:`Workspace`)
    lends buffers to the cg path; ``spare`` arrays (owned by the caller, e.g. ``dst``
    and the ``diff`` window) are given to it once the right-hand side is built.
    """
    check_solver(solver)
    if np.ndim(beta) == 0 and beta != 1.0:
        color, consume_color = color * np.float32(beta), True
    elif np.ndim(beta) != 0:
        color, consume_color = color * beta, True
    rhs = guidance_divergence(src, dst, mask, diff=diff, add=color, inplace=consume_color)
    if workspace is not None:
        workspace.give(*spare)
    if fixed is not None:
        fixed = np.asarray(fixed, dtype=bool)
        if fixed.shape != dst.shape[1:]:
            raise InputError(f"fixed mask has shape {fixed.shape}, expected {dst.shape[1:]}")
        if solver != "cg":
            raise InputError("Dirichlet (fixed) pixels need solver='cg'")
        y, info = solve_dirichlet(rhs, dst, ~fixed, beta, taps, rtol, maxiter,
                                  "gaussian_poisson")
    elif solver == "dct":  # rhs is a temporary: the transforms may work in it
        y, info = _solve_full(rhs, beta, taps, solver, rtol, maxiter, overwrite=True)
    else:
        y, info = _solve_full(rhs, beta, taps, solver, rtol, maxiter, workspace=workspace)
    if clip:
        np.clip(y, 0.0, 1.0, out=y)
    return y, info


class Level(NamedTuple):
    """The inputs of one pyramid level for :func:`solve_levels` (float32)."""

    #: Scene image at this level, ``(C, h, w)``.
    dst: np.ndarray
    #: Mask at this level, ``(h, w)`` in [0, 1].
    mask: np.ndarray
    #: ``(src - dst on a window, (row0, col0) of the window)``; the window covers the
    #: mask's bounding box plus one pixel.
    diff: tuple[np.ndarray, tuple[int, int]]
    #: Colour weight: a float or ``(h, w)`` (checked by :func:`check_beta`).
    beta: float | np.ndarray
    #: Pixels held at ``dst`` (``(h, w)`` bool, needs ``"cg"``), or None.
    fixed: np.ndarray | None = None


def solve_levels(levels: list[Level], color: np.ndarray, solver: str = DEFAULT_SOLVER, *,
                 taps, upsample, rtol: float = DEFAULT_RTOL,
                 maxiter: int = DEFAULT_MAXITER, infos: list | None = None) -> np.ndarray:
    """Solve Eq. (1) level after level, coarsest first: GP-GAN's high-resolution stage.

    Parameters
    ----------
    levels : list of Level
        The pyramid, coarsest first (built by the caller, e.g.
        :func:`gpgan.blending.gp_pyramid`).
    color : ndarray, float32 (C, h0, w0)
        Colour constraint of level 0 (the GAN image at level 0's size). Level ``s > 0``
        takes ``upsample(Y_{s-1}, (h_s, w_s))``.
    solver, taps, rtol, maxiter
        As :func:`solve_level`.
    upsample : callable
        ``upsample(y, size)``: ``(C, h, w)`` -> a new ``(C, *size)`` array.
    infos : list, optional
        Gets one :class:`SolveInfo` per level, with ``level`` and ``size`` added.

    Returns
    -------
    ndarray, float32 (H, W, C) in [0, 1], a new array.

    Notes
    -----
    The arrays are consumed, to save full-size copies at 4-16 MP: ``color`` and every
    up-sampled colour become the right-hand side, and the finest level's ``dst`` and
    ``diff`` window are recycled (for the cg start, the residual check and the output)
    once its right-hand side is built. Pass arrays you own and do not use afterwards.
    """
    ws = Workspace()
    last = len(levels) - 1
    y = color
    for k, level in enumerate(levels):
        size = tuple(level.dst.shape[1:])
        if k > 0:
            y = upsample(y, size)
        finest = k == last
        y, info = _solve_level(None, level.dst, level.mask, y, level.beta, solver, taps=taps,
                               fixed=level.fixed, rtol=rtol, maxiter=maxiter,
                               diff=level.diff, clip=not finest, consume_color=True,
                               workspace=ws if finest else None,
                               spare=(level.dst, level.diff[0]) if finest else ())
        if infos is not None:
            infos.append(dict(info, level=k, size=size))
    out = ws.take(y.shape[1:] + y.shape[:1])
    return hwc(y, clip=True, out=None if np.may_share_memory(out, y) else out)
