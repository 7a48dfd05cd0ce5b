"""Batched 2D shape primitives as signed distance fields (negative inside), in pixels.

Every function takes per-sample parameters with a leading batch dimension ``n`` and the pixel-centre
coordinate grids ``X``, ``Y`` of shape (1, H, W) (``pixel_grid``), and returns (n, H, W) (or
(n, K, H, W) for ``K`` primitives at once). Distances are exact for capsules and polygons and a
good approximation near the boundary for (super)ellipses, which is all the compositing needs.
"""
from __future__ import annotations

import math

import torch


def pixel_grid(size: int, device, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    coords = torch.arange(size, device=device, dtype=dtype) + 0.5
    Y, X = torch.meshgrid(coords, coords, indexing="ij")
    return X[None], Y[None]


def coverage(sdf: torch.Tensor, softness: torch.Tensor | float = 0.7) -> torch.Tensor:
    """Soft inside-ness in [0, 1]: 0.5 on the boundary, ``softness`` px wide ramps (anti-aliasing, blur)."""
    if isinstance(softness, torch.Tensor):
        softness = softness.reshape(-1, *([1] * (sdf.dim() - 1)))
    return torch.clamp(0.5 - sdf / (2.0 * softness), 0.0, 1.0)


def _local(X, Y, centre, angle):
    """Coordinates in a frame centred at ``centre`` (n, 2) and rotated by ``angle`` (n,) radians."""
    dx = X - centre[:, 0, None, None]
    dy = Y - centre[:, 1, None, None]
    c, s = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    return c * dx + s * dy, -s * dx + c * dy


def superellipse(X, Y, centre, half_axes, angle, power) -> torch.Tensor:
    """|x/a|^p + |y/b|^p = 1 (p = 2 ellipse, large p rounded rectangle). ``half_axes`` (n, 2), ``power`` (n,)."""
    u, v = _local(X, Y, centre, angle)
    a, b = half_axes[:, 0, None, None], half_axes[:, 1, None, None]
    p = power[:, None, None]
    radius = ((u.abs() / a).clamp_min(1e-6) ** p + (v.abs() / b).clamp_min(1e-6) ** p) ** (1.0 / p)
    return (radius - 1.0) * torch.minimum(a, b)


def ellipse(X, Y, centre, half_axes, angle) -> torch.Tensor:
    return superellipse(X, Y, centre, half_axes, angle, torch.full_like(angle, 2.0))


def capsules(X, Y, start, end, radius_start, radius_end=None) -> torch.Tensor:
    """Segments ``start``-``end`` (n, K, 2) thickened by a radius that goes linearly from
    ``radius_start`` to ``radius_end`` (n, K) -> (n, K, H, W)."""
    radius_end = radius_start if radius_end is None else radius_end
    ax, ay = start[..., 0, None, None], start[..., 1, None, None]
    dx, dy = (end - start)[..., 0, None, None], (end - start)[..., 1, None, None]
    px, py = X[:, None] - ax, Y[:, None] - ay
    t = ((px * dx + py * dy) / (dx * dx + dy * dy).clamp_min(1e-6)).clamp(0.0, 1.0)
    dist = torch.sqrt((px - t * dx) ** 2 + (py - t * dy) ** 2 + 1e-12)
    radius = radius_start[..., None, None] + t * (radius_end - radius_start)[..., None, None]
    return dist - radius


def capsule_fields(X, Y, start, end, radius_start, radius_end=None):
    """Capsules (n, K, H, W) as in ``capsules``, plus a cylinder-like unit surface normal (nx, ny, nz)
    for shading: (sdf, nx, ny, nz)."""
    radius_end = radius_start if radius_end is None else radius_end
    ax, ay = start[..., 0, None, None], start[..., 1, None, None]
    dx, dy = (end - start)[..., 0, None, None], (end - start)[..., 1, None, None]
    px, py = X[:, None] - ax, Y[:, None] - ay
    t = ((px * dx + py * dy) / (dx * dx + dy * dy).clamp_min(1e-6)).clamp(0.0, 1.0)
    ox, oy = px - t * dx, py - t * dy
    radius = (radius_start[..., None, None] + t * (radius_end - radius_start)[..., None, None]).clamp_min(1e-3)
    dist = torch.sqrt(ox * ox + oy * oy + 1e-12)
    nx, ny = (ox / radius).clamp(-1, 1), (oy / radius).clamp(-1, 1)
    nz = torch.sqrt((1.0 - nx * nx - ny * ny).clamp_min(0.0))
    return dist - radius, nx, ny, nz


def polygon(X, Y, vertices: torch.Tensor, coarse: int = 1) -> torch.Tensor:
    """Closed polygons (n, P, 2) (any winding, may be non-convex) -> (n, H, W) signed distance.

    ``coarse`` > 1 evaluates on a grid that many times coarser and interpolates (``coarse`` x fewer
    operations squared; the distance is piecewise linear, so only corners round off slightly)."""
    if coarse > 1 and X.shape[-1] % coarse == 0:
        size = X.shape[-1]
        Xc, Yc = pixel_grid(size // coarse, X.device, X.dtype)
        sdf = polygon(Xc * coarse, Yc * coarse, vertices)
        return torch.nn.functional.interpolate(sdf[:, None], size=(size, size), mode="bilinear", align_corners=False)[:, 0]
    start = vertices
    end = torch.roll(vertices, -1, dims=1)
    edge_distance = capsules(X, Y, start, end, torch.zeros(start.shape[:2], device=X.device, dtype=X.dtype))
    distance = edge_distance.min(dim=1).values
    # Even-odd rule: count the edges a ray towards +x crosses.
    x0, y0 = start[..., 0, None, None], start[..., 1, None, None]
    x1, y1 = end[..., 0, None, None], end[..., 1, None, None]
    Yb, Xb = Y[:, None], X[:, None]
    straddles = (y0 > Yb) != (y1 > Yb)
    x_cross = x0 + (Yb - y0) * (x1 - x0) / torch.where((y1 - y0).abs() < 1e-9, torch.full_like(y1, 1e-9), y1 - y0)
    inside = ((straddles & (Xb < x_cross)).sum(dim=1) % 2) == 1
    return torch.where(inside, -distance, distance)


def union(sdfs: torch.Tensor, dim: int = 1) -> torch.Tensor:
    return sdfs.min(dim=dim).values


def rotate(points: torch.Tensor, angle: torch.Tensor, centre: torch.Tensor | None = None) -> torch.Tensor:
    """Rotate (n, K, 2) points by ``angle`` (n,) radians about ``centre`` (n, 2) (default origin)."""
    c, s = torch.cos(angle)[:, None], torch.sin(angle)[:, None]
    if centre is not None:
        points = points - centre[:, None]
    x, y = points[..., 0], points[..., 1]
    out = torch.stack([c * x - s * y, s * x + c * y], dim=-1)
    return out + centre[:, None] if centre is not None else out


def degrees(value: torch.Tensor | float) -> torch.Tensor | float:
    return value * (math.pi / 180.0)
