"""Pinhole cameras -> clip space for the rasterizer.

Conventions (``shrn_core.reconstruct.types.Camera``): camera coordinates x right, y up, the camera
looks down -z; a camera point projects to pixel u = fx * x / -z + cx, v = fy * -y / -z + cy with the
origin at the top-left corner of the top-left pixel (pixel (c, r) has its centre at (c + .5, r + .5)).
The clip space follows OpenGL/nvdiffrast (y up), so row r of a rasterized image shows photo row
H - 1 - r; ``to_image_rows`` flips a (B, H, W, C) render into photo orientation.
"""
from __future__ import annotations

import numpy as np
import torch


def _tensor(value, like: torch.Tensor | None = None, dtype=torch.float32) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.to(dtype=like.dtype if like is not None else value.dtype,
                        device=like.device if like is not None else value.device)
    return torch.as_tensor(np.asarray(value), dtype=like.dtype if like is not None else dtype,
                           device=like.device if like is not None else None)


def projection_matrix(K, width: int, height: int, near: float = 10.0, far: float = 10000.0) -> torch.Tensor:
    """4x4 (or (B, 4, 4) for batched K) OpenGL projection so that clip = P @ (x, y, z, 1) of a camera
    point lands on pixel (u, v) of a ``width`` x ``height`` image; depth z in [-far, -near] maps to
    z/w in [-1, 1] (near/far in the units of the points, mm in shrn)."""
    K = _tensor(K)
    batched = K.dim() == 3
    K = K if batched else K.unsqueeze(0)
    fx, fy, cx, cy = K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2]
    skew = K[:, 0, 1]
    P = torch.zeros(K.shape[0], 4, 4, dtype=K.dtype, device=K.device)
    P[:, 0, 0] = 2 * fx / width
    P[:, 0, 1] = -2 * skew / width
    P[:, 0, 2] = 1 - 2 * cx / width
    P[:, 1, 1] = 2 * fy / height
    P[:, 1, 2] = 2 * cy / height - 1
    P[:, 2, 2] = -(far + near) / (far - near)
    P[:, 2, 3] = -2 * far * near / (far - near)
    P[:, 3, 2] = -1
    return P if batched else P[0]


def camera_to_clip(points: torch.Tensor, K, width: int, height: int, near: float = 10.0, far: float = 10000.0) -> torch.Tensor:
    """Camera-space points (B, V, 3) or (V, 3) -> clip-space (B, V, 4), differentiable w.r.t. points
    (and K when it is a tensor)."""
    points = points if points.dim() == 3 else points.unsqueeze(0)
    P = projection_matrix(_tensor(K, points), width, height, near, far)
    homogeneous = torch.cat([points, torch.ones_like(points[..., :1])], dim=-1)
    if P.dim() == 2:
        return homogeneous @ P.T
    return torch.einsum("bvi,bji->bvj", homogeneous, P)


def world_to_camera(points: torch.Tensor, R, t) -> torch.Tensor:
    """x_cam = R @ x_world + t for (B, V, 3) or (V, 3) points, R (3, 3) or (B, 3, 3), t (3,) or (B, 3)."""
    R = _tensor(R, points)
    t = _tensor(t, points)
    if R.dim() == 2:
        return points @ R.T + t
    points = points if points.dim() == 3 else points.unsqueeze(0)
    return torch.einsum("bvi,bji->bvj", points, R) + t.unsqueeze(1)


def world_to_clip(points: torch.Tensor, K, R, t, width: int, height: int, near: float = 10.0, far: float = 10000.0) -> torch.Tensor:
    """World (head-frame) points -> clip space through the pinhole camera (K, R, t)."""
    return camera_to_clip(world_to_camera(points, R, t), K, width, height, near, far)


def clip_to_pixels(pos: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Clip-space (..., 4) -> photo pixel coordinates (..., 2) (u right, v down, corner origin)."""
    ndc = pos[..., :2] / pos[..., 3:4]
    u = (ndc[..., 0] + 1) * (width / 2)
    v = (1 - ndc[..., 1]) * (height / 2)
    return torch.stack([u, v], dim=-1)


def to_image_rows(image: torch.Tensor) -> torch.Tensor:
    """Flip a rasterized (B, H, W, C) tensor so that row 0 is the top of the photo."""
    return image.flip(1)
