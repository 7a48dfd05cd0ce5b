"""Per-texel albedo: each texel's surface point is projected into every view, its colour divided by
the fitted shading, and the views blended by how squarely they see it. Texels that no view sees
(occluded, masked, turned away) are completed from their left/right mirror texel, then by
inpainting from their neighbours inside the UV chart."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from .mesh_ops import vertex_normals
from .raster import interpolate, rasterize_uv, rasterize_view, sample_image
from .shading import shade

VISIBILITY_TOLERANCE_MM = 3.0
MIN_COSINE = 0.25
MAX_VISIBILITY_SIDE = 512
INPAINT_SIZE = 128


@dataclass
class TextureView:
    image: torch.Tensor  # (H, W, 3) float in [0, 1]
    valid: torch.Tensor  # (H, W) bool: face pixel not occluded
    K: np.ndarray
    R: np.ndarray
    t: np.ndarray
    lighting: torch.Tensor | None  # (9, 3); None = raw colours (no shading removed)


def uv_surface(ctx, vertices: torch.Tensor, faces: torch.Tensor, uvs: torch.Tensor, size: int):
    """Per texel: covered flag (T, T), world position (T, T, 3) and unit normal (T, T, 3)."""
    rast = rasterize_uv(ctx, uvs, faces, size)
    covered = rast[0, ..., 3] > 0
    points, _ = interpolate(vertices[None], rast, faces)
    normals, _ = interpolate(vertex_normals(vertices, faces.long())[None], rast, faces)
    return covered, points[0], torch.nn.functional.normalize(normals[0], dim=-1, eps=1e-12)


def unwrap(ctx, vertices: torch.Tensor, faces: torch.Tensor, uvs: torch.Tensor, views: list[TextureView],
           size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(albedo (T, T, 3), weight (T, T), chart (T, T) bool) with texel row 0 at v = 0."""
    with torch.no_grad():
        chart, points, normals = uv_surface(ctx, vertices, faces, uvs, size)
        index = torch.nonzero(chart.reshape(-1)).squeeze(1)
        p = points.reshape(-1, 3)[index]
        n = normals.reshape(-1, 3)[index]
        total = torch.zeros(len(index), 3, dtype=vertices.dtype, device=vertices.device)
        weight = torch.zeros(len(index), dtype=vertices.dtype, device=vertices.device)
        for view in views:
            colour, w = _observe(ctx, vertices, faces, p, n, view)
            total += colour * w[:, None]
            weight += w
        albedo = torch.zeros(size * size, 3, dtype=vertices.dtype, device=vertices.device)
        albedo[index] = total / weight.clamp(min=1e-6)[:, None]
        weights = torch.zeros(size * size, dtype=vertices.dtype, device=vertices.device)
        weights[index] = weight
    return albedo.view(size, size, 3), weights.view(size, size), chart


def _observe(ctx, vertices, faces, points, normals, view: TextureView):
    height, width = view.image.shape[:2]
    R = torch.as_tensor(view.R, dtype=points.dtype, device=points.device)
    t = torch.as_tensor(view.t, dtype=points.dtype, device=points.device)
    cam = points @ R.T + t
    n_cam = normals @ R.T
    facing = (n_cam * torch.nn.functional.normalize(-cam, dim=-1)).sum(-1)
    K = torch.as_tensor(view.K, dtype=points.dtype, device=points.device)
    depth = (-cam[:, 2]).clamp(min=1e-3)
    pix = torch.stack([K[0, 0] * cam[:, 0] / depth + K[0, 2], K[1, 1] * -cam[:, 1] / depth + K[1, 2]], -1)
    inside = (pix[:, 0] >= 0) & (pix[:, 0] < width) & (pix[:, 1] >= 0) & (pix[:, 1] < height)
    # depth test against a render of the mesh (at most 512 px on a side)
    scale = min(1.0, MAX_VISIBILITY_SIDE / max(width, height))
    vis_w, vis_h = max(1, round(width * scale)), max(1, round(height * scale))
    K_vis = view.K.copy()
    K_vis[:2] *= np.array([[vis_w / width], [vis_h / height]], dtype=np.float32)
    rast, cam_vertices = rasterize_view(ctx, vertices, faces, K_vis, view.R, view.t, vis_w, vis_h)
    z_image, _ = interpolate(cam_vertices[None, :, 2:3], rast, faces)
    # texels that land within a few pixels of the silhouette would pick up background colour
    covered = (rast[0, ..., 3] > 0).cpu().numpy().astype(np.uint8)
    inner = cv2.erode(covered, np.ones((5, 5), np.uint8)) > 0
    inner = torch.as_tensor(inner, device=rast.device)[None, ..., None]
    z_image = torch.where(inner, z_image, torch.full_like(z_image, -1e9))
    pix_vis = pix * torch.tensor([vis_w / width, vis_h / height], dtype=pix.dtype, device=pix.device)
    z_seen = sample_nearest(z_image[0, ..., 0], pix_vis)
    visible = inside & ((z_seen - cam[:, 2]).abs() < VISIBILITY_TOLERANCE_MM) & (facing > MIN_COSINE)
    valid = sample_nearest(view.valid.to(points.dtype), pix) > 0.5
    colour = sample_image(view.image.to(points.dtype), pix)
    if view.lighting is not None:
        shading = shade(n_cam, view.lighting.to(points.dtype)).clamp(min=0.05)
        colour = colour / shading
    weight = torch.where(visible & valid, facing.clamp(min=0) ** 2, torch.zeros_like(facing))
    return colour, weight


def sample_nearest(image: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
    height, width = image.shape[:2]
    col = pixels[:, 0].floor().long().clamp(0, width - 1)
    row = pixels[:, 1].floor().long().clamp(0, height - 1)
    return image[row, col]


def complete(albedo: np.ndarray, weight: np.ndarray, chart: np.ndarray, min_weight: float = 0.05) -> np.ndarray:
    """Fill unseen texels: mirror texel first (the UV layout is left/right symmetric: u -> 1 - u),
    then Telea inpainting inside the chart; texels outside the chart get the nearest chart colour
    (so bilinear lookups and mip-maps at the seams do not pull in black)."""
    seen = (weight > min_weight) & chart
    mirrored_seen = seen[:, ::-1]
    out = albedo.copy()
    use_mirror = chart & ~seen & mirrored_seen
    out[use_mirror] = albedo[:, ::-1][use_mirror]
    known = seen | use_mirror
    if not known.any():
        return np.full_like(albedo, 0.6)
    # inpaint at <= 128 px (fast; the holes are filled smoothly anyway), then upsample the fill
    size = out.shape[0]
    small = max(1, min(size, INPAINT_SIZE))
    known_small = cv2.resize(known.astype(np.uint8), (small, small), interpolation=cv2.INTER_AREA) > 0
    weights = cv2.resize(known.astype(np.float32), (small, small), interpolation=cv2.INTER_AREA)
    colour_sum = cv2.resize(np.where(known[..., None], out, 0).astype(np.float32), (small, small),
                            interpolation=cv2.INTER_AREA)
    colour_small = colour_sum / np.maximum(weights[..., None], 1e-6)
    image8 = np.clip(colour_small * 255, 0, 255).astype(np.uint8)
    holes = (~known_small).astype(np.uint8) * 255
    filled_small = cv2.inpaint(image8, holes, 3, cv2.INPAINT_TELEA).astype(np.float32) / 255
    filled = cv2.resize(filled_small, (size, size), interpolation=cv2.INTER_LINEAR)
    out = np.where(known[..., None], out, filled)
    return out
