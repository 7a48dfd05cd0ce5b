"""Mid and fine levels: shape from shading through the renderer.

Each view is rendered once per level (the G-buffer: which triangle and barycentrics every pixel of a
square face crop sees); the geometry then changes the shading through the interpolated normals,
which carries the gradient, so visibility is not recomputed at every step. The colour model is
albedo * SH shading. During geometry fitting the albedo is a low-resolution UV texture (smooth), so
fine intensity variation must be explained by shape; the per-texel albedo is computed afterwards.
Pixels outside the valid mask (occluded, background) are excluded; unobserved vertices/texels are
pulled towards their left/right mirror and otherwise follow the smoothness prior.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ...errors import NumericalError
from .mesh_ops import vertex_normals
from .raster import interpolate, rasterize_view, texture
from .shading import sh_basis

log = logging.getLogger("shrn.reconstruct")


@dataclass
class CropView:
    """One view prepared for the photometric fit."""

    image: torch.Tensor  # (S, S, 3) float in [0, 1], the face crop, row 0 at the top
    valid: torch.Tensor  # (S, S) bool: not occluded
    K: np.ndarray  # intrinsics of the crop
    R: np.ndarray
    t: np.ndarray


@dataclass
class GBuffer:
    """The valid covered pixels of one view's render, with their interpolation stencil precomputed
    (vertex ids and barycentric weights from the rasterizer), since visibility is fixed per level."""

    pixel: torch.Tensor  # (N,) flat indices of valid covered pixels
    rast: torch.Tensor  # (N, 4) their rast values
    target: torch.Tensor  # (N, 3) observed colours
    R: torch.Tensor  # (3, 3)
    corners: torch.Tensor = None  # (N, 3) vertex ids
    weights: torch.Tensor = None  # (N, 3) barycentric weights (u, v, 1 - u - v)

    def __post_init__(self):
        if self.corners is None:
            self.corners = torch.zeros(0, 3, dtype=torch.long)
            self.weights = torch.zeros(0, 3)


@dataclass
class PhotometricOptions:
    iterations: int = 40
    lr: float = 0.05
    laplacian_weight: float = 2.0
    magnitude_weight: float = 0.02
    symmetry_weight: float = 0.02
    unobserved_symmetry_weight: float = 2.0
    albedo_size: int = 48
    albedo_smooth_weight: float = 0.5
    max_offset_mm: float = 6.0


def build_gbuffers(ctx, vertices: torch.Tensor, faces: torch.Tensor, views: list[CropView]) -> list[GBuffer]:
    out = []
    with torch.no_grad():
        for view in views:
            size = view.image.shape[0]
            rast, _ = rasterize_view(ctx, vertices, faces, view.K, view.R, view.t, size, size)
            flat = rast.reshape(-1, 4)
            keep = (flat[:, 3] > 0) & view.valid.reshape(-1)
            pixel = torch.nonzero(keep).squeeze(1)
            values = flat[pixel]
            corners = faces.long()[values[:, 3].long() - 1]
            u, v = values[:, 0:1], values[:, 1:2]
            out.append(GBuffer(pixel, values, view.image.reshape(-1, 3)[pixel],
                               torch.as_tensor(view.R, dtype=vertices.dtype), corners,
                               torch.cat([u, v, 1 - u - v], 1)))
    return out


def observed_vertices(gbuffers: list[GBuffer], faces: torch.Tensor, num_vertices: int) -> torch.Tensor:
    seen = torch.zeros(num_vertices, dtype=torch.bool)
    for g in gbuffers:
        tri = g.rast[:, 3].long() - 1
        seen[faces[tri].reshape(-1).long()] = True
    return seen


def pixel_attributes(attr: torch.Tensor, g: GBuffer, faces: torch.Tensor) -> torch.Tensor:
    """Interpolate (V, C) vertex attributes at the G-buffer's pixels -> (N, C) (what the renderer's
    ``interpolate`` computes, restricted to the pixels the loss uses)."""
    return (attr[g.corners] * g.weights[..., None]).sum(1)


def render_pixels(vertices, faces, uvs, albedo_tex, lighting, g: GBuffer, pixel_uv=None):
    normals = vertex_normals(vertices, faces.long())
    n = torch.nn.functional.normalize(pixel_attributes(normals, g, faces) @ g.R.T, dim=-1, eps=1e-12)
    if pixel_uv is None:
        pixel_uv = pixel_attributes(uvs, g, faces)
    albedo = texture(albedo_tex[None], pixel_uv.view(1, 1, -1, 2), boundary_mode="clamp").view(-1, 3)
    return albedo * (sh_basis(n) @ lighting)


def robust_l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return torch.sqrt(((pred - target) ** 2).sum(-1) + 1e-6).mean()


def fit_level(
    ctx,
    base: torch.Tensor,  # (V, 3) vertices of the level's starting mesh
    faces: torch.Tensor,
    uvs: torch.Tensor,
    views: list[CropView],
    lighting: list[torch.Tensor],  # per view (9, 3)
    albedo_init: torch.Tensor,  # (A, A, 3)
    offsets_of: Callable[[torch.nn.Parameter], torch.Tensor],  # parameter -> (V,) normal offsets in mm
    parameter: torch.Tensor,
    regulariser: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],  # (param, observed) -> loss
    options: PhotometricOptions,
    label: str,
):
    """Optimise a normal-offset field (through ``offsets_of``), the smooth albedo and the lighting."""
    gbuffers = build_gbuffers(ctx, base, faces, views)
    observed = observed_vertices(gbuffers, faces, len(base))
    base_normals = vertex_normals(base, faces.long()).detach()
    pixel_uvs = [pixel_attributes(uvs, g, faces).detach() for g in gbuffers]
    param = torch.nn.Parameter(parameter.clone())
    albedo = torch.nn.Parameter(albedo_init.clone())
    lights = [torch.nn.Parameter(light.clone()) for light in lighting]
    optimizer = torch.optim.Adam([
        {"params": [param], "lr": options.lr},
        {"params": [albedo], "lr": 0.01},
        {"params": lights, "lr": 0.005},
    ])
    history = []
    for step in range(options.iterations):
        optimizer.zero_grad()
        offsets = options.max_offset_mm * torch.tanh(offsets_of(param) / options.max_offset_mm)
        vertices = base + base_normals * offsets[:, None]
        data = sum(robust_l1(render_pixels(vertices, faces, uvs, albedo, light, g, puv), g.target)
                   for light, g, puv in zip(lights, gbuffers, pixel_uvs) if len(g.pixel)) / len(views)
        albedo_smooth = ((albedo[1:] - albedo[:-1]) ** 2).mean() + ((albedo[:, 1:] - albedo[:, :-1]) ** 2).mean()
        loss = data + regulariser(param, observed) + options.albedo_smooth_weight * albedo_smooth
        if not torch.isfinite(loss):
            raise NumericalError(f"{label} level fit produced a non-finite loss at iteration {step} (NaN/inf)")
        loss.backward()
        optimizer.step()
        history.append(float(data.detach()))
    with torch.no_grad():
        offsets = options.max_offset_mm * torch.tanh(offsets_of(param) / options.max_offset_mm)
        vertices = base + base_normals * offsets[:, None]
    if not torch.isfinite(vertices).all():
        raise NumericalError(f"{label} level fit produced non-finite vertices")
    log.info("%s level: photometric error %.4f -> %.4f over %d iterations", label,
             history[0] if history else float("nan"), history[-1] if history else float("nan"), options.iterations)
    return vertices.detach(), param.detach(), albedo.detach(), [light.detach() for light in lights], observed
