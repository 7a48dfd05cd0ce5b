"""Gradient-domain filling: solve a discrete Poisson equation on the masked pixels.

The unknowns are the masked pixels. For each one, with ``N(p)`` its 4-neighbours inside the image,

    |N(p)| f_p - sum_{q in N(p), q masked} f_q = sum_{q in N(p), q known} I_q + sum_{q in N(p)} v_pq

where ``v_pq = G_p - G_q`` is the guidance (the gradient of a guide image ``G``) on edges whose two
ends both have a guide value, and 0 elsewhere. Where the guide is defined everywhere this is
Poisson image editing (Perez et al. 2003): the guide's texture with the surroundings' colours at the
seam; where it is nowhere defined it is harmonic (membrane) interpolation, i.e. diffusion filling.

A 1024x1024 photo can have 150k masked pixels, where a direct sparse factorisation takes seconds.
The system is solved instead by conjugate gradients preconditioned with one multigrid V-cycle whose
coarse levels aggregate 2x2 pixel blocks (Galerkin products ``P^T A P``), which converges in ~10
iterations independent of the mask size.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spl

from ..errors import NumericalError

_NEIGHBOURS = ((0, 1), (0, -1), (1, 0), (-1, 0))
COARSEST_SIZE = 1500  # unknowns solved directly at the bottom of the hierarchy


@dataclass
class PoissonProblem:
    matrix: sp.csr_matrix
    rhs: np.ndarray  # (n, C) float64
    rows: np.ndarray  # (n,) row of each unknown
    cols: np.ndarray  # (n,) column of each unknown


def build_problem(image: np.ndarray, mask: np.ndarray, guide: np.ndarray | None = None,
                  guide_valid: np.ndarray | None = None) -> PoissonProblem:
    """The linear system for the masked pixels of ``image`` (HxWxC float) given an optional guide."""
    height, width = mask.shape
    rows, cols = np.nonzero(mask)
    n = len(rows)
    index = np.full(mask.shape, -1, np.int64)
    index[rows, cols] = np.arange(n)
    channels = image.shape[2]
    rhs = np.zeros((n, channels))
    degree = np.zeros(n)
    off_rows, off_cols = [], []
    if guide is not None:
        valid = guide_valid if guide_valid is not None else np.ones(mask.shape, bool)
        guide_here = guide[rows, cols].astype(np.float64)
        valid_here = valid[rows, cols]
    for dy, dx in _NEIGHBOURS:
        ny, nx = rows + dy, cols + dx
        inside = (ny >= 0) & (ny < height) & (nx >= 0) & (nx < width)
        degree += inside
        nyi, nxi = ny[inside], nx[inside]
        neighbour = index[nyi, nxi]
        own = np.flatnonzero(inside)
        unknown = neighbour >= 0
        off_rows.append(own[unknown])
        off_cols.append(neighbour[unknown])
        known = ~unknown
        rhs[own[known]] += image[nyi[known], nxi[known]]
        if guide is not None:
            both = valid_here[own] & valid[nyi, nxi]
            sel = own[both]
            rhs[sel] += guide_here[sel] - guide[nyi[both], nxi[both]]
    off_r = np.concatenate(off_rows)
    off_c = np.concatenate(off_cols)
    matrix = sp.csr_matrix(
        (np.concatenate([degree, -np.ones(len(off_r))]), (np.concatenate([np.arange(n), off_r]), np.concatenate([np.arange(n), off_c]))),
        shape=(n, n),
    )
    return PoissonProblem(matrix, rhs, rows, cols)


class MultigridPreconditioner:
    """One V-cycle of aggregation multigrid (2x2 pixel blocks per level) with damped Jacobi smoothing."""

    def __init__(self, matrix: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray, damping: float = 0.8):
        self.levels: list[tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray]] = []
        self.damping = damping
        a = matrix
        while a.shape[0] > COARSEST_SIZE:
            rows, cols = rows // 2, cols // 2
            key = rows * (int(cols.max()) + 1) + cols
            unique, aggregate = np.unique(key, return_inverse=True)
            if len(unique) == a.shape[0]:  # no further coarsening possible
                break
            prolong = sp.csr_matrix((np.ones(len(aggregate)), (np.arange(len(aggregate)), aggregate)), shape=(len(aggregate), len(unique)))
            self.levels.append((a, prolong, 1.0 / a.diagonal()))
            a = (prolong.T @ a @ prolong).tocsr()
            rows, cols = np.divmod(unique, int(cols.max()) + 1)
        self.coarsest = spl.splu(a.tocsc())

    def __call__(self, residual: np.ndarray) -> np.ndarray:
        return self._cycle(residual, 0)

    def _cycle(self, b: np.ndarray, level: int) -> np.ndarray:
        if level == len(self.levels):
            return self.coarsest.solve(b)
        a, prolong, inv_diag = self.levels[level]
        w = self.damping * inv_diag[:, None]
        x = w * b
        r = b - a @ x
        x += prolong @ self._cycle(prolong.T @ r, level + 1)
        x += w * (b - a @ x)
        return x


def solve(problem: PoissonProblem, initial: np.ndarray | None = None, tolerance: float = 1e-3,
          max_iterations: int = 60) -> np.ndarray:
    """Preconditioned conjugate gradients on all channels at once; returns (n, C)."""
    a, b = problem.matrix, problem.rhs
    if a.shape[0] == 0:
        return np.zeros_like(b)
    precondition = MultigridPreconditioner(a, problem.rows, problem.cols)
    x = np.zeros_like(b) if initial is None else initial.astype(np.float64).copy()
    r = b - a @ x
    norm_b = np.maximum(np.linalg.norm(b, axis=0), 1e-12)
    z = precondition(r)
    p = z.copy()
    rz = (r * z).sum(axis=0)
    for _ in range(max_iterations):
        if (np.linalg.norm(r, axis=0) / norm_b).max() < tolerance:
            break
        ap = a @ p
        alpha = rz / np.maximum((p * ap).sum(axis=0), 1e-30)
        x += alpha * p
        r -= alpha * ap
        z = precondition(r)
        rz_next = (r * z).sum(axis=0)
        p = z + (rz_next / np.maximum(rz, 1e-30)) * p
        rz = rz_next
    if not np.all(np.isfinite(x)):
        raise NumericalError("Poisson fill produced non-finite values")
    return x


def poisson_fill(image: np.ndarray, mask: np.ndarray, guide: np.ndarray | None = None,
                 guide_valid: np.ndarray | None = None, initial: np.ndarray | None = None,
                 tolerance: float = 1e-3) -> np.ndarray:
    """``image`` (HxWxC float) with its masked pixels replaced by the Poisson solution."""
    mask = np.asarray(mask, bool)
    out = np.array(image, dtype=np.float32, copy=True)
    if not mask.any():
        return out
    problem = build_problem(out, mask, guide, guide_valid)
    start = None if initial is None else initial[problem.rows, problem.cols]
    out[problem.rows, problem.cols] = solve(problem, start, tolerance).astype(np.float32)
    return out


def harmonic_fill(image: np.ndarray, mask: np.ndarray, tolerance: float = 1e-3) -> np.ndarray:
    """Diffusion fill: the smoothest (membrane) surface through the known pixels around the mask."""
    return poisson_fill(image, mask, tolerance=tolerance)
