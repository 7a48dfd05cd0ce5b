"""Exact nearest points on a triangle surface, fast enough for 100k query points.

A KD-tree over triangle centroids proposes the k nearest triangles of each query point; the exact
point-to-triangle distance is computed for those. The answer is provably exact when the best
distance found is no larger than (distance to the k-th centroid - largest triangle radius), since
no other triangle can then come closer. Points that fail the test are retried with 4x more
candidates. Triangles are grouped by size so a few large ones do not loosen the bound for all.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from ..errors import InputError

_PAIR_BUDGET = 1 << 19  # point-triangle pairs per batch (bounds memory: ~40 arrays of this many 3-vectors)
_MIN_GROUP = 256


def closest_points_on_triangles(points: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Closest point of triangle (a, b, c) to each point; all arrays (..., 3), broadcast together.

    Voronoi-region test of Ericson, *Real-Time Collision Detection*, 5.1.5, written for arrays: each
    region gives the answer as a + v (b - a) + w (c - a), so only the two weights are selected.
    Degenerate (zero-area) triangles fall back to the closest of their vertices.
    """
    p, a, b, c = (np.asarray(x, dtype=np.float64) for x in (points, a, b, c))
    shape = np.broadcast_shapes(p.shape, a.shape, b.shape, c.shape)
    p, a, b, c = (np.ascontiguousarray(np.broadcast_to(x, shape)).reshape(-1, 3) for x in (p, a, b, c))

    def dot(x, y):
        return np.einsum("ij,ij->i", x, y)

    ab, ac = b - a, c - a
    ap, bp, cp = p - a, p - b, p - c
    d1, d2 = dot(ab, ap), dot(ac, ap)
    d3, d4 = dot(ab, bp), dot(ac, bp)
    d5, d6 = dot(ab, cp), dot(ac, cp)
    va = d3 * d6 - d5 * d4
    vb = d5 * d2 - d1 * d6
    vc = d1 * d4 - d3 * d2
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = va + vb + vc
        v = vb / denom  # interior
        w = vc / denom
        # Later assignments win, so regions go in the reverse of Ericson's test order.
        region = (va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0)  # edge BC
        t = (d4 - d3) / ((d4 - d3) + (d5 - d6))
        v = np.where(region, 1 - t, v)
        w = np.where(region, t, w)
        region = (vb <= 0) & (d2 >= 0) & (d6 <= 0)  # edge AC
        v = np.where(region, 0.0, v)
        w = np.where(region, d2 / (d2 - d6), w)
        region = (d6 >= 0) & (d5 <= d6)  # vertex C
        v = np.where(region, 0.0, v)
        w = np.where(region, 1.0, w)
        region = (vc <= 0) & (d1 >= 0) & (d3 <= 0)  # edge AB
        v = np.where(region, d1 / (d1 - d3), v)
        w = np.where(region, 0.0, w)
        region = (d3 >= 0) & (d4 <= d3)  # vertex B
        v = np.where(region, 1.0, v)
        w = np.where(region, 0.0, w)
        region = (d1 <= 0) & (d2 <= 0)  # vertex A
        v = np.where(region, 0.0, v)
        w = np.where(region, 0.0, w)
    result = a + ab * v[:, None] + ac * w[:, None]
    bad = ~(np.isfinite(v) & np.isfinite(w))
    if bad.any():
        corners = np.stack([a[bad], b[bad], c[bad]], axis=1)
        nearest = np.argmin(((corners - p[bad][:, None, :]) ** 2).sum(-1), axis=1)
        result[bad] = corners[np.arange(len(corners)), nearest]
    return result.reshape(shape)


@dataclass
class Nearest:
    """Per query point: the closest surface point, its distance and the triangle it lies on."""

    points: np.ndarray  # (N, 3)
    distances: np.ndarray  # (N,)
    faces: np.ndarray  # (N,) int64


class SurfaceIndex:
    """Nearest-point queries against one fixed triangle mesh (build once, query many times).

    Triangles are grouped by size (radius from centroid, buckets a factor of 2 apart) with one
    centroid KD-tree per group, so a mesh mixing tiny and large triangles keeps a tight bound.
    """

    def __init__(self, vertices: np.ndarray, faces: np.ndarray, start_k: int = 8):
        vertices = np.asarray(vertices, dtype=np.float64)
        faces = np.asarray(faces, dtype=np.int64)
        if faces.ndim != 2 or faces.shape[1] != 3 or len(faces) == 0:
            raise InputError("surface queries need a mesh with at least one triangle")
        self.triangles = vertices[faces]  # (F, 3, 3)
        self.corner_a, self.corner_b, self.corner_c = (np.ascontiguousarray(self.triangles[:, i]) for i in range(3))
        centroids = self.triangles.mean(axis=1)
        radii = np.linalg.norm(self.triangles - centroids[:, None, :], axis=2).max(axis=1)
        self.start_k = start_k
        self.groups = [(ids, float(radii[ids].max()), cKDTree(centroids[ids])) for ids in _size_groups(radii)]

    @property
    def n_faces(self) -> int:
        return len(self.triangles)

    def query(self, points: np.ndarray, exact: bool = True) -> Nearest:
        """Closest surface point of each point. ``exact=False`` only looks at the triangles of the
        ``start_k`` nearest centroids of each size group (a close upper bound; good enough inside
        ICP iterations)."""
        points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        n = len(points)
        best = (np.zeros((n, 3)), np.full(n, np.inf), np.zeros(n, dtype=np.int64))
        everyone = np.arange(n)
        # A first pass with the single nearest centroid of every group gives each point an upper
        # bound; a group is then searched further only where it might still hold a closer triangle.
        bounds = [self._check_batched(points, everyone, 1, group, best) for group in self.groups]
        for group, bound in zip(self.groups, bounds):
            ids = group[0]
            k = 1
            todo = everyone[np.sqrt(best[1]) > bound]
            while len(todo) and k < len(ids):
                k_next = min(max(self.start_k, k * 4), len(ids))
                if not exact and k >= self.start_k:
                    break
                bound = self._check_batched(points, todo, (k, k_next), group, best)
                k = k_next
                todo = todo[np.sqrt(best[1][todo]) > bound]
        return Nearest(best[0], np.sqrt(best[1]), best[2])

    def _check_batched(self, points, todo, k, group, best) -> np.ndarray:
        """``k``: try the k nearest centroids, or (k0, k1): only the (k0+1)-th to k1-th nearest."""
        rows = max(1, _PAIR_BUDGET // (k if np.isscalar(k) else k[1] - k[0]))
        parts = [self._check_candidates(points, todo[i:i + rows], k, group, best) for i in range(0, len(todo), rows)]
        return np.concatenate(parts) if parts else np.zeros(0)

    def _check_candidates(self, points, batch, k, group, best) -> np.ndarray:
        """Try the k nearest-centroid triangles of one group for ``batch``; return, per point, a
        lower bound on the distance to every triangle of the group that was not tried."""
        ids, radius, tree = group
        best_pt, best_d2, best_f = best
        ranks = list(range(k[0] + 1, k[1] + 1)) if not np.isscalar(k) else k
        dist_k, idx = tree.query(points[batch], k=ranks, workers=-1)
        dist_k = dist_k.reshape(len(batch), -1)
        idx = idx.reshape(len(batch), dist_k.shape[1])
        k = k if np.isscalar(k) else k[1]
        faces = ids[idx].reshape(-1)
        q = np.repeat(points[batch], idx.shape[1], axis=0)
        cand = closest_points_on_triangles(q, self.corner_a[faces], self.corner_b[faces], self.corner_c[faces])
        d2 = ((cand - q) ** 2).sum(axis=1).reshape(idx.shape)
        cand = cand.reshape(idx.shape + (3,))
        j = np.argmin(d2, axis=1)
        rows = np.arange(len(batch))
        d2_min = d2[rows, j]
        better = d2_min < best_d2[batch]
        upd = batch[better]
        best_pt[upd] = cand[rows[better], j[better]]
        best_d2[upd] = d2_min[better]
        best_f[upd] = ids[idx[rows[better], j[better]]]
        if k >= len(ids):
            return np.full(len(batch), np.inf)
        return dist_k[:, -1] - radius


def _size_groups(radii: np.ndarray) -> list[np.ndarray]:
    """Face ids grouped by radius, groups a factor of 2 apart; groups under 256 faces merge upwards."""
    r_max = max(float(radii.max()), 1e-300)
    level = np.floor(np.log2(r_max / np.maximum(radii, r_max * 2.0**-30))).astype(np.int64)
    groups: list[np.ndarray] = []
    pending = np.zeros(0, np.int64)
    for lvl in range(int(level.max()), -1, -1):  # smallest triangles first
        pending = np.concatenate([pending, np.flatnonzero(level == lvl)])
        if len(pending) >= _MIN_GROUP:
            groups.append(pending)
            pending = np.zeros(0, np.int64)
    if len(pending):
        if groups:
            groups[-1] = np.concatenate([groups[-1], pending])
        else:
            groups.append(pending)
    return groups


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
