"""Mesh operations the fit needs in torch: normals and 1-to-4 subdivision that keeps the original
vertices first (so the face model's vertex ids stay valid on every level)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


def vertex_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Area-weighted unit vertex normals of (V, 3) vertices."""
    faces = faces.long()
    v0, v1, v2 = (vertices[faces[:, k]] for k in range(3))
    face_n = torch.cross(v1 - v0, v2 - v0, dim=-1)
    normals = torch.zeros_like(vertices).index_add(0, faces.T.reshape(-1), face_n.repeat(3, 1))
    return torch.nn.functional.normalize(normals, dim=-1, eps=1e-12)


def unique_edges(faces: np.ndarray) -> np.ndarray:
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    return np.unique(np.sort(edges, axis=1), axis=0)


@dataclass
class Subdivision:
    """One 1-to-4 split: vertex ``num_old + k`` sits on edge ``edges[k]``."""

    faces: np.ndarray  # (4F, 3)
    edges: np.ndarray  # (E, 2) old vertex ids
    opposite: np.ndarray  # (E, 2) the vertices opposite the edge in its two faces (-1 on the boundary)
    num_old: int

    def midpoints(self, values: np.ndarray | torch.Tensor):
        """Linear interpolation (UVs, colours): append the edge midpoints."""
        a, b = self.edges[:, 0], self.edges[:, 1]
        if isinstance(values, torch.Tensor):
            return torch.cat([values, (values[a] + values[b]) / 2])
        return np.concatenate([values, (values[a] + values[b]) / 2])

    def smooth_points(self, vertices: np.ndarray) -> np.ndarray:
        """Positions by Loop subdivision: new edge points (3/8, 3/8, 1/8, 1/8; midpoints on the
        boundary) and old vertices relaxed by Loop's even rule (Warren's weights; boundary vertices
        3/4 + 1/8 + 1/8 of their boundary neighbours). Old vertices keep their index (and meaning),
        only moving onto the smooth limit surface."""
        a, b = self.edges[:, 0], self.edges[:, 1]
        c, d = self.opposite[:, 0], self.opposite[:, 1]
        interior = d >= 0
        new = (vertices[a] + vertices[b]) / 2
        new[interior] = (3 * (vertices[a[interior]] + vertices[b[interior]])
                         + vertices[c[interior]] + vertices[d[interior]]) / 8
        n = self.num_old
        neighbour_sum = np.zeros_like(vertices)
        valence = np.zeros(n)
        np.add.at(neighbour_sum, a, vertices[b])
        np.add.at(neighbour_sum, b, vertices[a])
        np.add.at(valence, a, 1)
        np.add.at(valence, b, 1)
        beta = np.where(valence == 3, 3 / 16, 3 / (8 * np.maximum(valence, 1)))
        old = (1 - valence * beta)[:, None] * vertices + beta[:, None] * neighbour_sum
        boundary_sum = np.zeros_like(vertices)
        boundary_count = np.zeros(n)
        np.add.at(boundary_sum, a[~interior], vertices[b[~interior]])
        np.add.at(boundary_sum, b[~interior], vertices[a[~interior]])
        np.add.at(boundary_count, a[~interior], 1)
        np.add.at(boundary_count, b[~interior], 1)
        on_boundary = boundary_count == 2
        old[on_boundary] = 0.75 * vertices[on_boundary] + boundary_sum[on_boundary] / 8
        return np.concatenate([old, new])


def subdivide(faces: np.ndarray, num_vertices: int) -> Subdivision:
    faces = np.asarray(faces, dtype=np.int64)
    half_edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    opposite_of_half = np.concatenate([faces[:, 2], faces[:, 0], faces[:, 1]])
    keys = np.sort(half_edges, axis=1)
    edges, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    opposite = np.full((len(edges), 2), -1, dtype=np.int64)
    order = np.argsort(inverse, kind="stable")
    seen = np.zeros(len(edges), dtype=np.int64)
    for half in order:
        e = inverse[half]
        opposite[e, seen[e]] = opposite_of_half[half]
        seen[e] += 1
    mid = inverse.reshape(3, -1).T + num_vertices  # (F, 3): midpoints of edges 01, 12, 20
    v0, v1, v2 = faces[:, 0], faces[:, 1], faces[:, 2]
    m01, m12, m20 = mid[:, 0], mid[:, 1], mid[:, 2]
    new_faces = np.concatenate([
        np.stack([v0, m01, m20], 1), np.stack([v1, m12, m01], 1),
        np.stack([v2, m20, m12], 1), np.stack([m01, m12, m20], 1),
    ])
    return Subdivision(new_faces, edges, opposite, num_vertices)


def subdivided_mirror(sub: Subdivision, mirror: np.ndarray) -> np.ndarray:
    """Extend a left/right vertex map to the vertices a subdivision added (edge (a, b) -> edge
    (mirror a, mirror b)); an edge without a mirrored edge (the tessellation is not perfectly
    symmetric) maps to itself."""
    lookup = {(int(a), int(b)): k for k, (a, b) in enumerate(sub.edges)}
    mapped = np.sort(mirror[sub.edges], axis=1)
    new = np.array([lookup.get((int(a), int(b)), k) for k, (a, b) in enumerate(mapped)], dtype=np.int64)
    return np.concatenate([mirror, new + sub.num_old])
