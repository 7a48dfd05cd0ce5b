"""HRN's renderer on shrn's rasterizer: the perspective camera of the aligned crop and UV-textured
rendering (``MeshRenderer.render_uv_texture`` of the original, without antialiasing)."""
from __future__ import annotations

import torch

from ...render import create_context, interpolate, rasterize, texture
from .bfm import CAMERA_DISTANCE, CENTER, FOCAL, Z_FAR, Z_NEAR


def posed_to_clip(posed: torch.Tensor) -> torch.Tensor:
    """Posed head points (B, V, 3) -> clip space; clip y is negated so that rasterized row 0 is the
    top of the crop, as in the original renderer."""
    depth = CAMERA_DISTANCE - posed[..., 2]
    scale = FOCAL / CENTER
    z = (Z_FAR + Z_NEAR) / (Z_FAR - Z_NEAR) * depth - 2 * Z_FAR * Z_NEAR / (Z_FAR - Z_NEAR)
    return torch.stack([scale * posed[..., 0], -scale * posed[..., 1], z, depth], dim=-1)


class HRNRenderer:
    def __init__(self, device: torch.device, backend: str = "auto"):
        self.ctx = create_context(backend, device)

    def render_uv_texture(self, posed: torch.Tensor, tri: torch.Tensor, uvs: torch.Tensor,
                          uv_texture: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Render the mesh with a (B, C, S, S) UV map (row 0 = v 1) into a ``size`` crop.

        Returns mask (B, 1, size, size) and image (B, C, size, size), zero off the face.
        """
        tri32 = tri.int()
        rast, _ = rasterize(self.ctx, posed_to_clip(posed).contiguous(), tri32, (size, size))
        mask = (rast[..., 3:4] > 0).to(posed.dtype)
        tex_coords = torch.stack([uvs[:, 0], 1 - uvs[:, 1]], dim=-1)
        coords, _ = interpolate(tex_coords.contiguous(), rast, tri32)
        image = texture(uv_texture.permute(0, 2, 3, 1).contiguous(), coords.contiguous(), filter_mode="linear")
        image = image * mask
        return mask.permute(0, 3, 1, 2), image.permute(0, 3, 1, 2)
