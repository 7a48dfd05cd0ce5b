"""Thin helpers over ``shrn_core.render``: camera and UV-space rasterization in the orientations the
fit uses (camera renders flipped to photo rows, row 0 at the top; UV renders with row 0 at v = 0)."""
from __future__ import annotations

import numpy as np
import torch

from ...render import create_context, interpolate, rasterize, texture, world_to_clip  # noqa: F401 - re-exported

NEAR_MM, FAR_MM = 10.0, 100000.0


def crop_intrinsics(K: np.ndarray, box: tuple[float, float, float], resolution: int) -> np.ndarray:
    """Intrinsics of the square crop ``box`` = (x0, y0, side) of the photo resampled to ``resolution``."""
    x0, y0, side = box
    s = resolution / side
    K2 = np.array(K, dtype=np.float64).copy()
    K2[0, 0] *= s
    K2[1, 1] *= s
    K2[0, 2] = (K2[0, 2] - x0) * s
    K2[1, 2] = (K2[1, 2] - y0) * s
    return K2.astype(np.float32)


def rasterize_view(ctx, vertices: torch.Tensor, faces: torch.Tensor, K, R, t, width: int, height: int):
    """(1, H, W, 4) rast with row 0 at the top of the photo, and the camera-space vertices."""
    R_t = torch.as_tensor(np.asarray(R), dtype=vertices.dtype, device=vertices.device)
    t_t = torch.as_tensor(np.asarray(t), dtype=vertices.dtype, device=vertices.device)
    cam = vertices @ R_t.T + t_t
    K_t = torch.as_tensor(np.asarray(K), dtype=vertices.dtype, device=vertices.device)
    pos = world_to_clip(vertices, K_t, R_t, t_t, width, height, NEAR_MM, FAR_MM)
    rast, _ = rasterize(ctx, pos.contiguous(), faces, (height, width))
    return rast.flip(1), cam


def rasterize_uv(ctx, uvs: torch.Tensor, faces: torch.Tensor, size: int) -> torch.Tensor:
    """(1, size, size, 4) rast of the UV layout; texel row r covers v in [r/size, (r+1)/size]."""
    pos = torch.cat([uvs * 2 - 1, torch.zeros_like(uvs[:, :1]), torch.ones_like(uvs[:, :1])], 1)[None]
    rast, _ = rasterize(ctx, pos.contiguous(), faces, (size, size))
    return rast


def sample_image(image: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
    """Bilinear colours of an (H, W, C) image at (N, 2) pixel coordinates (corner origin)."""
    height, width = image.shape[:2]
    grid = torch.stack([pixels[:, 0] / width * 2 - 1, pixels[:, 1] / height * 2 - 1], -1)
    out = torch.nn.functional.grid_sample(image.permute(2, 0, 1)[None], grid[None, None].to(image.dtype),
                                          mode="bilinear", padding_mode="border", align_corners=False)
    return out[0, :, 0].T
