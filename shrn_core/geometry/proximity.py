"""Exact nearest points on a triangle surface, fast enough for 100k query points.

KD-trees over vertices and triangle centroids narrow the candidates (see ``SurfaceIndex``); the
exact point-to-triangle distance is computed for those, so the answer equals a brute-force search
over every triangle (tests check this), not a nearest-vertex approximation.
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

    Each point starts with its nearest *vertex* as an upper bound U on its surface distance (a
    vertex lies on the surface). A triangle of radius r (centroid to farthest corner) can only come
    closer than U if its centroid lies within U + r, so each size group's KD-tree is asked only for
    centroids inside that ball, nearest first, in rounds of growing k until the ball is exhausted;
    U shrinks as closer triangles are found. Triangles are grouped by radius (groups a factor of 2
    apart) so a few large triangles do not widen the ball for all.
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
        used = np.unique(faces)  # vertices on at least one face
        self.vertices = vertices[used]
        self.vertex_tree = cKDTree(self.vertices)
        owner = np.empty(len(vertices), np.int64)
        owner[faces.ravel()] = np.repeat(np.arange(len(faces)), 3)
        self.vertex_face = owner[used]

    @property
    def n_faces(self) -> int:
        return len(self.triangles)

    def query(self, points: np.ndarray, exact: bool = True) -> Nearest:
        """Closest surface point of each point. ``exact=False`` stops after the first round of
        ``start_k`` candidates per size group (nearly always exact anyway; used inside ICP)."""
        points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        dist, nearest_vertex = self.vertex_tree.query(points, k=1, workers=-1)
        best = (self.vertices[nearest_vertex].copy(), dist**2, self.vertex_face[nearest_vertex].copy())
        # Points sorted by their bound, so each batch's (scalar) KD-tree radius is tight for all of it.
        order = np.argsort(dist, kind="stable")
        for group in self.groups:
            ids = group[0]
            todo, k0, k1 = order, 0, min(self.start_k, len(ids))
            while len(todo):
                rows = max(1, _PAIR_BUDGET // (k1 - k0))
                open_ = np.concatenate([self._check_ball(points, todo[i:i + rows], k0, k1, group, best)
                                        for i in range(0, len(todo), rows)])
                if not exact or k1 >= len(ids):
                    break
                todo = todo[open_]
                k0, k1 = k1, min(k1 * 4, len(ids))
        return Nearest(best[0], np.sqrt(best[1]), best[2])

    def _check_ball(self, points, batch, k0, k1, group, best) -> np.ndarray:
        """Try the (k0+1)-th to k1-th nearest centroids of one group that lie inside each point's
        ball (radius current bound + group radius); return which points may have more inside."""
        ids, radius, tree = group
        best_pt, best_d2, best_f = best
        reach = np.sqrt(best_d2[batch]) + radius
        dist, idx = tree.query(points[batch], k=list(range(k0 + 1, k1 + 1)), workers=-1,
                               distance_upper_bound=float(reach.max()) * (1 + 1e-12) + 1e-12)
        dist = dist.reshape(len(batch), -1)
        idx = idx.reshape(len(batch), -1)
        inside = dist <= reach[:, None]
        row, col = np.nonzero(inside)
        if len(row):
            faces = ids[idx[row, col]]
            q = points[batch[row]]
            cand = closest_points_on_triangles(q, self.corner_a[faces], self.corner_b[faces], self.corner_c[faces])
            d2 = ((cand - q) ** 2).sum(axis=1)
            # best candidate per point: sort by (row, d2) and take each row's first
            pick = np.lexsort((d2, row))
            first = pick[np.r_[True, row[pick][1:] != row[pick][:-1]]]
            target = batch[row[first]]
            better = d2[first] < best_d2[target]
            target, first = target[better], first[better]
            best_pt[target] = cand[first]
            best_d2[target] = d2[first]
            best_f[target] = faces[first]
        # More centroids may lie inside the (possibly shrunk) ball only if the last one tried did.
        return dist[:, -1] <= np.sqrt(best_d2[batch]) + radius


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
