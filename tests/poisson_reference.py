"""Independent references for the Poisson tests: the Gaussian-Poisson system assembled
pixel by pixel straight from SPEC.md's definitions (no code shared with gpgan), and
the small real-photo case the solver tests use."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve

G0, G1 = 0.786571, 0.106451  # SPEC.md, sigma 0.5


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



def small_case(photos):
    """48x64 crops of two real photos, an elliptic mask and a blurry colour image."""
    src = photos["astronaut"][60:108, 180:244].copy()
    dst = photos["coffee"][150:198, 250:314].copy()
    yy, xx = np.mgrid[0:48, 0:64]
    mask = (((yy - 22) / 14.0) ** 2 + ((xx - 30) / 20.0) ** 2 <= 1).astype(np.float32)
    color = gaussian_filter(dst + mask[..., None] * (src - dst), (3, 3, 0)).astype(np.float32)
    return src, dst, mask, color
