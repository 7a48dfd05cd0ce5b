"""Conveniences on top of the four primitives for the common "render this mesh" case."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch

from .camera import to_image_rows
from .ops import RenderContext, antialias as _antialias, interpolate, rasterize


@dataclass
class MeshRender:
    """Per-pixel outputs of ``render_mesh``; all (B, H, W, C) in the orientation that was asked for."""

    rast: torch.Tensor  # (B, H, W, 4) u, v, z/w, triangle_id + 1 (always nvdiffrast's row order)
    mask: torch.Tensor  # (B, H, W, 1) float, 1 where a triangle covers the pixel
    depth: torch.Tensor  # (B, H, W, 1) clip w (= -z_camera for a perspective camera), 0 where empty
    attrs: dict[str, torch.Tensor] = field(default_factory=dict)
    image_rows: bool = True  # True: row 0 is the top of the photo (outputs flipped from rast)


def render_mesh(ctx: RenderContext, pos: torch.Tensor, tri: torch.Tensor, resolution, attrs: Optional[dict[str, torch.Tensor]] = None,
                antialias: bool = False, image_rows: bool = True) -> MeshRender:
    """Rasterize clip-space ``pos`` (B, V, 4) and interpolate each named attribute ((B, V, C) or (V, C)).

    ``antialias=True`` runs ``antialias`` on every attribute image (a no-op with the torch backend).
    With ``image_rows`` (default) the mask, depth and attribute images are flipped so that row 0 is the
    top of the photo; ``rast`` keeps the rasterizer's own order (row 0 = bottom).
    """
    rast, _ = rasterize(ctx, pos, tri, resolution)
    mask = (rast[..., 3:4] > 0).to(pos.dtype)
    depth, _ = interpolate(pos[..., 3:4], rast, tri)
    images = {}
    for name, value in (attrs or {}).items():
        image, _ = interpolate(value, rast, tri)
        if antialias:
            image = _antialias(image, rast, pos, tri)
        images[name] = image
    flip = to_image_rows if image_rows else (lambda x: x)
    return MeshRender(rast=rast, mask=flip(mask), depth=flip(depth), attrs={k: flip(v) for k, v in images.items()}, image_rows=image_rows)


def visible_faces(rast: torch.Tensor, num_faces: int) -> torch.Tensor:
    """(B, F) bool: the triangle is the nearest one at one pixel or more."""
    batch = rast.shape[0]
    ident = rast[..., 3].detach().reshape(batch, -1).long()
    seen = torch.zeros(batch, num_faces + 1, dtype=torch.bool, device=rast.device)
    seen.scatter_(1, ident, True)
    return seen[:, 1:]


def visible_vertices(rast: torch.Tensor, tri: torch.Tensor, num_vertices: int) -> torch.Tensor:
    """(B, V) bool: the vertex belongs to a triangle that is visible at one pixel or more."""
    faces = visible_faces(rast, tri.shape[0])
    out = torch.zeros(faces.shape[0], num_vertices, dtype=torch.bool, device=rast.device)
    tri = tri.long()
    for b in range(faces.shape[0]):
        out[b, tri[faces[b]].reshape(-1)] = True
    return out
