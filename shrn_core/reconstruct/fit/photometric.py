"""Mid and fine levels: shape from shading through the renderer.

All images of a batch (independent subjects) and all views of a subject are optimised together:
every tensor carries a subject axis, and the valid pixels of all views are concatenated. Each view
is rendered once per level (the G-buffer: which triangle and barycentrics every pixel of a
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
from .raster import rasterize_view
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
    subject: int = 0  # which face (of a batch) this view shows


@dataclass
class PixelSet:
    """The valid covered pixels of every view, with their interpolation stencil (vertex ids and
    barycentric weights from the rasterizer) precomputed, since visibility is fixed per level."""

    corners: torch.Tensor  # (N, 3) vertex ids within the subject's mesh
    weights: torch.Tensor  # (N, 3) barycentric weights
    target: torch.Tensor  # (N, 3) observed colours
    view: torch.Tensor  # (N,) view index
    subject: torch.Tensor  # (N,) subject index
    uv: torch.Tensor  # (N, 2) texture coordinates
    norm: torch.Tensor  # (N,) 1 / (pixels of the view * views of the subject): per-subject mean weights

    def select(self, view: int) -> torch.Tensor:
        return torch.nonzero(self.view == view).squeeze(1)


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


def batched_faces(faces: torch.Tensor, subjects: int, num_vertices: int) -> torch.Tensor:
    """(S * F, 3) faces indexing the flattened (S * V, 3) vertices of S copies of one mesh."""
    offsets = torch.arange(subjects, device=faces.device)[:, None, None] * num_vertices
    return (faces.long()[None] + offsets).reshape(-1, 3)


def build_pixels(ctx, vertices: torch.Tensor, faces: torch.Tensor, uvs: torch.Tensor,
                 views: list[CropView]) -> PixelSet:
    """Rasterize every view (``vertices`` (S, V, 3)) and gather its valid covered pixels."""
    parts = []
    views_per_subject = np.bincount([v.subject for v in views], minlength=vertices.shape[0])
    with torch.no_grad():
        for index, view in enumerate(views):
            size = view.image.shape[0]
            rast, _ = rasterize_view(ctx, vertices[view.subject], faces, view.K, view.R, view.t, size, size)
            flat = rast.reshape(-1, 4)
            pixel = torch.nonzero((flat[:, 3] > 0) & view.valid.reshape(-1)).squeeze(1)
            values = flat[pixel]
            corners = faces.long()[values[:, 3].long() - 1]
            u, v = values[:, 0:1], values[:, 1:2]
            weights = torch.cat([u, v, 1 - u - v], 1)
            n = len(pixel)
            parts.append((corners, weights, view.image.reshape(-1, 3)[pixel],
                          torch.full((n,), index, dtype=torch.long, device=flat.device),
                          torch.full((n,), view.subject, dtype=torch.long, device=flat.device),
                          (uvs[corners] * weights[..., None]).sum(1),
                          torch.full((n,), 1.0 / max(n, 1) / views_per_subject[view.subject], device=flat.device)))
    return PixelSet(*(torch.cat(items) for items in zip(*parts)))


def observed_vertices(pixels: PixelSet, subjects: int, num_vertices: int) -> torch.Tensor:
    seen = torch.zeros(subjects * num_vertices, dtype=torch.bool, device=pixels.corners.device)
    seen[(pixels.subject[:, None] * num_vertices + pixels.corners).reshape(-1)] = True
    return seen.view(subjects, num_vertices)


def pixel_normals(vertices: torch.Tensor, faces_flat: torch.Tensor, pixels: PixelSet,
                  rotations: torch.Tensor) -> torch.Tensor:
    """Unit normals in camera coordinates at the pixels: (S, V, 3) vertices -> (N, 3)."""
    subjects, num_vertices = vertices.shape[:2]
    normals = vertex_normals(vertices.reshape(-1, 3), faces_flat)
    index = pixels.subject[:, None] * num_vertices + pixels.corners
    n = (normals[index] * pixels.weights[..., None]).sum(1)
    n = torch.einsum("nij,nj->ni", rotations[pixels.view], n)
    return torch.nn.functional.normalize(n, dim=-1, eps=1e-12)


def lookup(texture: torch.Tensor, subject: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """Bilinear lookup (clamped at the border) in (S, A, A, C) textures whose row 0 is v = 0, texel
    centres at (i + 0.5) / A: the renderer's ``texture`` convention, per pixel's subject."""
    subjects, height, width, channels = texture.shape
    x = (uv[:, 0] * width - 0.5).clamp(0, width - 1)
    y = (uv[:, 1] * height - 0.5).clamp(0, height - 1)
    x0 = x.detach().floor().long().clamp(max=width - 2) if width > 1 else torch.zeros_like(x, dtype=torch.long)
    y0 = y.detach().floor().long().clamp(max=height - 2) if height > 1 else torch.zeros_like(y, dtype=torch.long)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    flat = texture.reshape(-1, channels)
    base = subject * (height * width)
    x1 = (x0 + 1).clamp(max=width - 1)
    y1 = (y0 + 1).clamp(max=height - 1)
    at = lambda yy, xx: flat[base + yy * width + xx]  # noqa: E731
    top = at(y0, x0) * (1 - fx) + at(y0, x1) * fx
    bottom = at(y1, x0) * (1 - fx) + at(y1, x1) * fx
    return top * (1 - fy) + bottom * fy


def predict(vertices, faces_flat, pixels: PixelSet, albedo, lights, rotations) -> torch.Tensor:
    """albedo * SH shading at every pixel: (N, 3)."""
    n = pixel_normals(vertices, faces_flat, pixels, rotations)
    shading = torch.einsum("nk,nkc->nc", sh_basis(n), lights[pixels.view])
    return lookup(albedo, pixels.subject, pixels.uv) * shading


def fit_level(
    ctx,
    base: torch.Tensor,  # (S, V, 3) vertices of the level's starting meshes
    faces: torch.Tensor,
    uvs: torch.Tensor,
    views: list[CropView],
    lighting: torch.Tensor,  # (n_views, 9, 3)
    albedo_init: torch.Tensor,  # (S, A, A, 3)
    offsets_of: Callable[[torch.Tensor], torch.Tensor],  # parameter -> (S, V) normal offsets in mm
    parameter: torch.Tensor,
    regulariser: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],  # (param, observed (S, V)) -> loss
    options: PhotometricOptions,
    label: str,
    report: Callable[[str], None] | None = None,
):
    """Optimise a normal-offset field (through ``offsets_of``), the smooth albedo and the lighting.
    The loss is a sum over subjects of per-subject terms, so faces of a batch do not interact."""
    subjects, num_vertices = base.shape[:2]
    pixels = build_pixels(ctx, base, faces, uvs, views)
    observed = observed_vertices(pixels, subjects, num_vertices)
    faces_flat = batched_faces(faces, subjects, num_vertices)
    base_normals = vertex_normals(base.reshape(-1, 3), faces_flat).view_as(base).detach()
    rotations = torch.as_tensor(np.stack([v.R for v in views]), dtype=base.dtype, device=base.device)
    param = torch.nn.Parameter(parameter.clone())
    albedo = torch.nn.Parameter(albedo_init.clone())
    lights = torch.nn.Parameter(lighting.clone())
    optimizer = torch.optim.Adam([
        {"params": [param], "lr": options.lr},
        {"params": [albedo], "lr": 0.01},
        {"params": [lights], "lr": 0.005},
    ])

    def shape_of(p):
        offsets = options.max_offset_mm * torch.tanh(offsets_of(p) / options.max_offset_mm)
        return base + base_normals * offsets[..., None]

    first = last = float("nan")
    for step in range(options.iterations):
        optimizer.zero_grad()
        vertices = shape_of(param)
        error = torch.sqrt(((predict(vertices, faces_flat, pixels, albedo, lights, rotations) - pixels.target) ** 2)
                           .sum(-1) + 1e-6)
        data = (error * pixels.norm).sum()
        albedo_smooth = ((albedo[:, 1:] - albedo[:, :-1]) ** 2).mean((1, 2, 3)).sum() \
            + ((albedo[:, :, 1:] - albedo[:, :, :-1]) ** 2).mean((1, 2, 3)).sum()
        loss = data + regulariser(param, observed) + options.albedo_smooth_weight * albedo_smooth
        if not torch.isfinite(loss):
            raise NumericalError(f"{label} level fit produced a non-finite loss at iteration {step} (NaN/inf)")
        loss.backward()
        optimizer.step()
        last = float(data.detach()) / subjects
        first = last if step == 0 else first
    with torch.no_grad():
        vertices = shape_of(param)
    if not torch.isfinite(vertices).all():
        raise NumericalError(f"{label} level fit produced non-finite vertices")
    message = f"{label} level: photometric error {first:.4f} -> {last:.4f} over {options.iterations} iterations"
    (report or log.info)(message)
    return vertices.detach(), param.detach(), albedo.detach(), lights.detach()
