"""HRN's fixed UV layout: per-vertex attributes -> UV maps, and the dense UV-grid mesh.

The layout never changes, so it is rasterized once (texel centre -> triangle and barycentrics);
turning any per-vertex attribute into a UV map is then a differentiable gather. Row 0 of a map is
v = 1 (top), texel (r, c) sits at u = (c + .5) / S, v = 1 - (r + .5) / S.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...render import create_context, rasterize


class UVLayout(nn.Module):
    def __init__(self, uvs: np.ndarray, tri: np.ndarray, size: int):
        super().__init__()
        self.size = size
        face, bary = _rasterize_layout(uvs, tri, size)
        covered = face >= 0
        self.register_buffer("tri", torch.from_numpy(tri))
        self.register_buffer("texel_vertices", torch.from_numpy(tri[np.where(covered, face, 0)]))  # (S*S, 3)
        self.register_buffer("texel_weights", torch.from_numpy(bary * covered[:, None]))  # (S*S, 3)
        self.register_buffer("covered", torch.from_numpy(covered.reshape(size, size)))
        self.register_buffer("grid_tri", torch.from_numpy(_grid_triangles(size)))

    def to_uv(self, attr: torch.Tensor) -> torch.Tensor:
        """(B, V, C) per-vertex values -> (B, C, S, S) UV map, zero off the layout."""
        corners = attr[:, self.texel_vertices]  # (B, S*S, 3, C)
        mixed = (corners * self.texel_weights.to(attr.dtype)[None, :, :, None]).sum(2)
        return mixed.transpose(1, 2).reshape(attr.shape[0], -1, self.size, self.size)

    def texel_uvs(self) -> torch.Tensor:
        """(S*S, 2) UV coordinates (u right, v up) of the texel centres, row-major."""
        centres = (torch.arange(self.size, dtype=torch.float32, device=self.covered.device) + 0.5) / self.size
        v, u = torch.meshgrid(1 - centres, centres, indexing="ij")
        return torch.stack([u, v], dim=-1).reshape(-1, 2)

    def grid_normals(self, position_map: torch.Tensor) -> torch.Tensor:
        """Area-weighted vertex normals of the dense UV-grid mesh built on a (B, 3, S, S) position
        map, with x and y negated as HRN's ``displacement2normal`` does (its grid winding makes
        raw normals point inwards in x and y)."""
        batch = position_map.shape[0]
        verts = position_map.flatten(2).transpose(1, 2)  # (B, S*S, 3)
        tri = self.grid_tri
        v0, v1, v2 = verts[:, tri[:, 0]], verts[:, tri[:, 1]], verts[:, tri[:, 2]]
        face_n = torch.cross(v1 - v0, v2 - v0, dim=-1)
        normals = torch.zeros_like(verts)
        for k in range(3):
            normals.index_add_(1, tri[:, k], face_n)
        normals = F.normalize(normals, eps=1e-6, dim=-1)
        normals = normals * normals.new_tensor([-1.0, -1.0, 1.0])
        return normals.transpose(1, 2).reshape(batch, 3, self.size, self.size)


def _grid_triangles(size: int, margin_x: int = 2, margin_y: int = 5) -> np.ndarray:
    """Two triangles per texel quad inside HRN's margins (winding as DECA's ``generate_triangles``)."""
    xs, ys = np.meshgrid(np.arange(margin_x, size - 1 - margin_x), np.arange(margin_y, size - 1 - margin_y), indexing="ij")
    xs, ys = xs.ravel(), ys.ravel()
    a, b = ys * size + xs, ys * size + xs + 1
    c, d = (ys + 1) * size + xs, (ys + 1) * size + xs + 1
    tri = np.concatenate([np.stack([a, c, b], 1), np.stack([b, c, d], 1)])
    return tri.astype(np.int64)


def _rasterize_layout(uvs: np.ndarray, tri: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Texel -> triangle id (-1 where empty) and barycentric weights, via shrn's rasterizer."""
    uv = torch.from_numpy(np.asarray(uvs, np.float32))
    pos = torch.stack([2 * uv[:, 0] - 1, 1 - 2 * uv[:, 1], torch.zeros_like(uv[:, 0]), torch.ones_like(uv[:, 0])], -1)
    ctx = create_context("torch", "cpu")
    rast, _ = rasterize(ctx, pos[None], torch.from_numpy(tri).int(), (size, size))
    rast = rast[0].reshape(-1, 4).numpy()
    face = rast[:, 3].astype(np.int64) - 1
    u, v = rast[:, 0], rast[:, 1]
    bary = np.stack([u, v, 1 - u - v], axis=1).astype(np.float32)
    return face, bary
