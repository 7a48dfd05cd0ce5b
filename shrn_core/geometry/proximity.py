"""Exact nearest points on a triangle surface, fast enough for 100k query points.

A KD-tree over triangle centroids proposes the k nearest triangles of each query point; the exact
point-to-triangle distance is computed for those. The answer is provably exact when the best
distance found is no larger than (distance to the k-th centroid - largest triangle radius), since
no other triangle can then come closer. Points that fail the test are retried with 4x more
candidates. The few unusually large triangles (which would spoil the bound) are checked against
every point directly.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from ..errors import InputError

_PAIR_BUDGET = 1 << 19  # point-triangle pairs per batch (bounds memory: ~40 arrays of this many 3-vectors)
_MAX_BIG_TRIANGLES = 64


def closest_points_on_triangles(points: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Closest point of triangle (a, b, c) to each point; all arrays (..., 3), broadcast together.

    Voronoi-region test of Ericson, *Real-Time Collision Detection*, 5.1.5, written for arrays.
    Degenerate (zero-area) triangles fall back to the closest of their vertices.
    """
    p = np.asarray(points, dtype=np.float64)
    ab, ac, ap = b - a, c - a, p - a
    bp, cp = p - b, p - c
    d1 = np.einsum("...i,...i->...", ab, ap)
    d2 = np.einsum("...i,...i->...", ac, ap)
    d3 = np.einsum("...i,...i->...", ab, bp)
    d4 = np.einsum("...i,...i->...", ac, bp)
    d5 = np.einsum("...i,...i->...", ab, cp)
    d6 = np.einsum("...i,...i->...", ac, cp)
    va = d3 * d6 - d5 * d4
    vb = d5 * d2 - d1 * d6
    vc = d1 * d4 - d3 * d2
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = va + vb + vc
        v = vb / denom
        w = vc / denom
        result = a + ab * v[..., None] + ac * w[..., None]  # interior
        # Later assignments win, so regions go in the reverse of Ericson's test order.
        edge_bc = (va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0)
        t_bc = (d4 - d3) / ((d4 - d3) + (d5 - d6))
        result = np.where(edge_bc[..., None], b + (c - b) * t_bc[..., None], result)
        edge_ac = (vb <= 0) & (d2 >= 0) & (d6 <= 0)
        t_ac = d2 / (d2 - d6)
        result = np.where(edge_ac[..., None], a + ac * t_ac[..., None], result)
        result = np.where(((d6 >= 0) & (d5 <= d6))[..., None], c, result)
        edge_ab = (vc <= 0) & (d1 >= 0) & (d3 <= 0)
        t_ab = d1 / (d1 - d3)
        result = np.where(edge_ab[..., None], a + ab * t_ab[..., None], result)
        result = np.where(((d3 >= 0) & (d4 <= d3))[..., None], b, result)
        result = np.where(((d1 <= 0) & (d2 <= 0))[..., None], a, result)
    bad = ~np.isfinite(result).all(axis=-1)
    if bad.any():
        corners = np.stack(np.broadcast_arrays(a, b, c), axis=-2)[bad]
        pts = np.broadcast_to(p, result.shape)[bad]
        nearest = np.argmin(((corners - pts[:, None, :]) ** 2).sum(-1), axis=1)
        result[bad] = corners[np.arange(len(corners)), nearest]
    return result


@dataclass
class Nearest:
    """Per query point: the closest surface point, its distance and the triangle it lies on."""

    points: np.ndarray  # (N, 3)
    distances: np.ndarray  # (N,)
    faces: np.ndarray  # (N,) int64


class SurfaceIndex:
    """Nearest-point queries against one fixed triangle mesh (build once, query many times)."""

    def __init__(self, vertices: np.ndarray, faces: np.ndarray, start_k: int = 16):
        vertices = np.asarray(vertices, dtype=np.float64)
        faces = np.asarray(faces, dtype=np.int64)
        if faces.ndim != 2 or faces.shape[1] != 3 or len(faces) == 0:
            raise InputError("surface queries need a mesh with at least one triangle")
        self.triangles = vertices[faces]  # (F, 3, 3)
        centroids = self.triangles.mean(axis=1)
        radii = np.linalg.norm(self.triangles - centroids[:, None, :], axis=2).max(axis=1)
        order = np.argsort(radii)[::-1]
        typical = float(np.median(radii))
        n_big = int(min(_MAX_BIG_TRIANGLES, np.count_nonzero(radii > 4 * typical)))
        if len(faces) - n_big < 1:
            n_big = 0
        self.big = np.sort(order[:n_big])
        self.small = np.sort(order[n_big:])
        self.small_radius = float(radii[self.small].max())
        self.tree = cKDTree(centroids[self.small])
        self.start_k = start_k

    @property
    def n_faces(self) -> int:
        return len(self.triangles)

    def query(self, points: np.ndarray, exact: bool = True) -> Nearest:
        """Closest surface point of each point. ``exact=False`` only looks at the triangles of the
        ``start_k`` nearest centroids (a close upper bound; good enough inside ICP iterations)."""
        points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        n = len(points)
        best_pt = np.zeros((n, 3))
        best_d2 = np.full(n, np.inf)
        best_f = np.zeros(n, dtype=np.int64)
        self._check_big(points, best_pt, best_d2, best_f)
        todo = np.arange(n)
        k = min(self.start_k, len(self.small))
        while len(todo):
            exact_rows = []
            rows = max(1, _PAIR_BUDGET // k)
            for start in range(0, len(todo), rows):
                batch = todo[start:start + rows]
                exact_rows.append(self._check_candidates(points, batch, k, best_pt, best_d2, best_f))
            if not exact or k >= len(self.small):
                break
            todo = todo[~np.concatenate(exact_rows)]
            k = min(k * 4, len(self.small))
        return Nearest(best_pt, np.sqrt(best_d2), best_f)

    def _check_big(self, points, best_pt, best_d2, best_f) -> None:
        for face in self.big:  # few triangles, every point
            tri = self.triangles[face]
            cand = closest_points_on_triangles(points, tri[0], tri[1], tri[2])
            d2 = ((cand - points) ** 2).sum(axis=1)
            better = d2 < best_d2
            best_pt[better], best_d2[better], best_f[better] = cand[better], d2[better], face

    def _check_candidates(self, points, batch, k, best_pt, best_d2, best_f) -> np.ndarray:
        """Try the k nearest-centroid triangles for ``batch``; return which answers are proven exact."""
        dist_k, idx = self.tree.query(points[batch], k=k, workers=-1)
        dist_k = dist_k.reshape(len(batch), k)
        idx = idx.reshape(len(batch), k)
        tri = self.triangles[self.small[idx]]  # (m, k, 3, 3)
        q = points[batch][:, None, :]
        cand = closest_points_on_triangles(q, tri[:, :, 0], tri[:, :, 1], tri[:, :, 2])
        d2 = ((cand - q) ** 2).sum(axis=2)
        j = np.argmin(d2, axis=1)
        rows = np.arange(len(batch))
        d2_min = d2[rows, j]
        better = d2_min < best_d2[batch]
        upd = batch[better]
        best_pt[upd] = cand[rows[better], j[better]]
        best_d2[upd] = d2_min[better]
        best_f[upd] = self.small[idx[rows[better], j[better]]]
        bound = dist_k[:, -1] - self.small_radius
        return (bound > 0) & (np.sqrt(best_d2[batch]) <= bound)


def nearest_on_surface(vertices: np.ndarray, faces: np.ndarray, points: np.ndarray) -> Nearest:
    """One-off query: closest point on the triangle surface ``(vertices, faces)`` for each point."""
    return SurfaceIndex(vertices, faces).query(points)


class PointIndex:
    """The same interface as ``SurfaceIndex`` for a point cloud (distance to the nearest point)."""

    def __init__(self, points: np.ndarray):
        self.cloud = np.asarray(points, dtype=np.float64)
        if len(self.cloud) == 0:
            raise InputError("point queries need at least one point")
        self.tree = cKDTree(self.cloud)

    def query(self, points: np.ndarray) -> Nearest:
        dist, idx = self.tree.query(np.asarray(points, dtype=np.float64).reshape(-1, 3), k=1, workers=-1)
        return Nearest(self.cloud[idx], dist, idx.astype(np.int64))
