"""Small mesh helpers for the generator, in numpy and torch only (the generator must run where
scipy/trimesh/OpenCV are missing, e.g. a bare GPU machine)."""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch


def boundary_loops(triangles: np.ndarray) -> list[np.ndarray]:
    """Ordered vertex loops of the mesh boundary (edges used by one triangle), longest first.

    Each loop follows its triangles' orientation (a -> b for a boundary edge a -> b of a triangle)."""
    directed = {}
    for tri in np.asarray(triangles):
        for a, b in ((tri[0], tri[1]), (tri[1], tri[2]), (tri[2], tri[0])):
            directed[(int(a), int(b))] = True
    following = {a: b for (a, b) in directed if (b, a) not in directed}
    loops, seen = [], set()
    for start in sorted(following):
        if start in seen:
            continue
        loop, current = [], start
        while current not in seen and current in following:
            seen.add(current)
            loop.append(current)
            current = following[current]
        loops.append(np.array(loop, dtype=np.int64))
    return sorted(loops, key=len, reverse=True)


def vertex_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(V, 3) unit area-weighted vertex normals (numpy)."""
    v = np.asarray(vertices, np.float64)
    face = np.cross(v[triangles[:, 1]] - v[triangles[:, 0]], v[triangles[:, 2]] - v[triangles[:, 0]])
    corners = np.asarray(triangles).reshape(-1)
    normals = np.stack([np.bincount(corners, np.repeat(face[:, axis], 3), minlength=len(v)) for axis in range(3)], 1)
    return (normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def vertex_normals_torch(vertices: torch.Tensor, triangles: torch.Tensor) -> torch.Tensor:
    """(B, V, 3) unit vertex normals of (B, V, 3) vertices, triangles (F, 3) long."""
    a, b, c = (vertices[:, triangles[:, k]] for k in range(3))
    face = torch.cross(b - a, c - a, dim=-1)
    normals = torch.zeros_like(vertices)
    for k in range(3):
        normals.index_add_(1, triangles[:, k], face)
    return torch.nn.functional.normalize(normals, dim=-1, eps=1e-12)


def similarity_fit(source: np.ndarray, target: np.ndarray, with_scale: bool = True):
    """(scale, R, t) minimising |scale R source + t - target|^2 (Umeyama; proper rotation)."""
    src, dst = np.asarray(source, np.float64), np.asarray(target, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    cov = (dst - mu_d).T @ (src - mu_s) / len(src)
    u, sing, vt = np.linalg.svd(cov)
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0])
    rotation = u @ d @ vt
    scale = float(np.trace(np.diag(sing) @ d) / ((src - mu_s) ** 2).sum(1).mean()) if with_scale else 1.0
    return scale, rotation, mu_d - scale * rotation @ mu_s


class ThinPlate:
    """3D thin-plate (biharmonic, phi(r) = r) warp that maps ``source`` points exactly onto ``target``
    points (``smoothing`` > 0 relaxes that), affine far away. The warp is linear in the targets:
    ``operator(points)`` is the matrix L with warp(points) = L @ target for any target."""

    def __init__(self, source: np.ndarray, target: np.ndarray | None = None, smoothing: float = 0.0):
        self.source = np.asarray(source, np.float64)
        n = len(self.source)
        kernel = _distances(self.source, self.source) + smoothing * np.eye(n)
        affine = np.hstack([np.ones((n, 1)), self.source])
        system = np.zeros((n + 4, n + 4))
        system[:n, :n], system[:n, n:], system[n:, :n] = kernel, affine, affine.T
        self.solve = np.linalg.pinv(system)[:, :n]  # coefficients = solve @ target
        self.coef = self.solve @ np.asarray(target, np.float64) if target is not None else None

    def operator(self, points: np.ndarray) -> np.ndarray:
        points = np.asarray(points, np.float64)
        basis = np.hstack([_distances(points, self.source), np.ones((len(points), 1)), points])
        return basis @ self.solve

    def __call__(self, points: np.ndarray) -> np.ndarray:
        points = np.asarray(points, np.float64)
        n = len(self.source)
        return _distances(points, self.source) @ self.coef[:n] + np.hstack([np.ones((len(points), 1)), points]) @ self.coef[n:]


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.sqrt(np.maximum(squared, 0.0))


def gaussian_rbf_operator(centres: np.ndarray, points: np.ndarray, sigma: float, ridge: float = 1e-3) -> np.ndarray:
    """Matrix L with L @ values = the smooth field of ``gaussian_rbf`` (fixed centres) at ``points``."""
    centres = np.asarray(centres, np.float64)
    kernel = np.exp(-_squared(centres, centres) / (2 * sigma**2))
    return np.exp(-_squared(np.asarray(points, np.float64), centres) / (2 * sigma**2)) @ np.linalg.inv(
        kernel + ridge * np.eye(len(centres)))


def gaussian_rbf(centres: np.ndarray, values: np.ndarray, sigma: float, ridge: float = 1e-3):
    """A smooth field f(x) = sum_i w_i exp(-|x - c_i|^2 / 2 sigma^2) that takes ``values`` (N, C) at
    ``centres`` (N, 3) (least squares with a small ridge) and fades to 0 far away; returns f."""
    centres = np.asarray(centres, np.float64)
    kernel = np.exp(-_squared(centres, centres) / (2 * sigma**2))
    weights = np.linalg.solve(kernel + ridge * np.eye(len(centres)), np.asarray(values, np.float64))

    def field(points: np.ndarray) -> np.ndarray:
        return np.exp(-_squared(np.asarray(points, np.float64), centres) / (2 * sigma**2)) @ weights

    return field


def geodesic_rings(triangles: np.ndarray, seeds: np.ndarray, num_vertices: int, steps: int) -> np.ndarray:
    """Edge-hop distance of every vertex from ``seeds`` (capped at ``steps``; unreachable = ``steps``)."""
    neighbours = defaultdict(set)
    for a, b, c in np.asarray(triangles):
        neighbours[a].update((b, c))
        neighbours[b].update((a, c))
        neighbours[c].update((a, b))
    hops = np.full(num_vertices, steps, dtype=np.int64)
    frontier = set(int(s) for s in seeds)
    for step in range(steps):
        for v in frontier:
            hops[v] = step
        frontier = {n for v in frontier for n in neighbours[v] if hops[n] == steps} - frontier
        if not frontier:
            break
    return hops


def _squared(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T), 0.0)
