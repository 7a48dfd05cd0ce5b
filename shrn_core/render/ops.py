"""The rasterizer interface: nvdiffrast's four primitives with two interchangeable backends.

``create_context`` picks the backend; ``rasterize`` uses it. ``interpolate``, ``texture`` and
``antialias`` take no context (like nvdiffrast): they use nvdiffrast when it is importable and the
tensors live on CUDA, else the PyTorch implementation; pass ``backend="torch"`` or
``backend="nvdiffrast"`` to force one. Both backends accept each other's ``rast`` tensors.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Optional

import torch
import torch.nn.functional as F

from ..device import resolve_device
from ..errors import InputError
from . import torch_raster

BACKENDS = ("auto", "torch", "nvdiffrast")
NVDIFFRAST_INSTALL = (
    "nvdiffrast is not installed: build it from source with "
    "'pip install ninja && pip install --no-build-isolation git+https://github.com/NVlabs/nvdiffrast.git' "
    "(needs the CUDA toolkit; see docs/rendering.md), or use backend='torch'"
)


@functools.lru_cache(maxsize=1)
def nvdiffrast_module():
    """``nvdiffrast.torch`` or None when it cannot be imported (looked up once per process)."""
    try:
        import nvdiffrast.torch as dr  # noqa: PLC0415 - optional dependency
    except Exception:  # ImportError, or a broken build failing to load its extension
        return None
    return dr


@dataclass
class RenderContext:
    backend: str  # "torch" or "nvdiffrast"
    device: torch.device
    native: Any = None  # nvdiffrast.torch.RasterizeCudaContext for the nvdiffrast backend


def create_context(backend: str = "auto", device: str | torch.device = "auto") -> RenderContext:
    """``backend="auto"`` takes nvdiffrast when it is importable and ``device`` is CUDA, else torch."""
    if backend not in BACKENDS:
        raise InputError(f"unknown render backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    device = resolve_device(device)
    dr = nvdiffrast_module() if (backend != "torch" and device.type == "cuda") else None
    if backend == "nvdiffrast":
        if device.type != "cuda":
            raise InputError(f"the nvdiffrast render backend needs a CUDA device, got {device}; use backend='torch'")
        if dr is None:
            raise InputError(NVDIFFRAST_INSTALL)
    if backend == "nvdiffrast" or (backend == "auto" and dr is not None):
        try:
            native = dr.RasterizeCudaContext(device=device)
        except RuntimeError as exc:  # e.g. an nvdiffrast build for another CUDA version
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InputError(f"nvdiffrast could not start on {device} ({first}); "
                             "rebuild it (docs/rendering.md) or use backend='torch'") from None
        return RenderContext("nvdiffrast", device, native)
    return RenderContext("torch", device)


def rasterize(ctx: RenderContext, pos: torch.Tensor, tri: torch.Tensor, resolution) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Rasterize clip-space triangles.

    pos: (B, V, 4) float32 clip-space positions (x right, y up, visible z/w in [-1, 1]); tri: (F, 3)
    int32. Returns ``rast`` (B, H, W, 4) = (u, v, z/w, triangle_id + 1), all zero where empty, with
    row 0 at the bottom of the image (y = -1) and pixel centres at (i + 0.5). The interpolation
    weights are u for tri[:, 0], v for tri[:, 1] and 1 - u - v for tri[:, 2]. The second output is
    nvdiffrast's barycentric screen derivatives, or None for the torch backend.
    """
    height, width = _check_rasterize_inputs(pos, tri, resolution)
    if ctx.backend == "nvdiffrast":
        dr = nvdiffrast_module()
        if tri.shape[0] == 0:  # nvdiffrast rejects an empty triangle list
            return pos.new_zeros(pos.shape[0], height, width, 4), None
        return dr.rasterize(ctx.native, pos.float().contiguous(), tri.int().contiguous(), (height, width))
    return torch_raster.rasterize(pos, tri, (height, width)), None


def refresh_rast(ctx: RenderContext, pos: torch.Tensor, tri: torch.Tensor, rast: torch.Tensor) -> torch.Tensor:
    """``rast`` for new ``pos`` while keeping the pixel -> triangle map of an earlier ``rast`` (torch
    backend: barycentrics only, no visibility pass; several times cheaper). Useful inside a fit, where
    visibility changes slowly: rasterize every few iterations and refresh in between. ``rast`` must be
    in the rasterizer's own row order (not flipped with ``to_image_rows``). With the nvdiffrast
    backend this simply rasterizes again."""
    if ctx.backend == "nvdiffrast":
        return rasterize(ctx, pos, tri, rast.shape[1:3])[0]
    _check_rasterize_inputs(pos, tri, rast.shape[1:3])
    if rast.shape[0] != pos.shape[0]:
        raise InputError(f"rast batch {rast.shape[0]} does not match pos batch {pos.shape[0]}")
    return torch_raster.refresh(pos, tri, rast)


def interpolate(attr: torch.Tensor, rast: torch.Tensor, tri: torch.Tensor, backend: str = "auto"):
    """Interpolate vertex attributes (B, V, C) or (V, C) over ``rast``: (B, H, W, C), zero where empty.

    Differentiable w.r.t. ``attr`` and, through ``rast``'s (u, v), w.r.t. the rasterized ``pos``.
    Returns ``(image, None)`` to mirror nvdiffrast's tuple.
    """
    if attr.dim() not in (2, 3) or rast.dim() != 4 or rast.shape[-1] != 4:
        raise InputError("interpolate needs attr (B, V, C) or (V, C) and rast (B, H, W, 4); "
                         f"got {tuple(attr.shape)} and {tuple(rast.shape)}")
    if attr.dim() == 3 and attr.shape[0] not in (1, rast.shape[0]):
        raise InputError(f"attr batch {attr.shape[0]} does not match rast batch {rast.shape[0]}")
    if _use_nvdiffrast(backend, rast):
        dr = nvdiffrast_module()
        out, _ = dr.interpolate(attr.float().contiguous(), rast.float().contiguous(), tri.int().contiguous())
        return out, None
    return torch_raster.interpolate(attr, rast, tri), None


def texture(tex: torch.Tensor, uv: torch.Tensor, filter_mode: str = "linear", boundary_mode: str = "wrap",
            backend: str = "auto") -> torch.Tensor:
    """Sample ``tex`` (B, Ht, Wt, C) at ``uv`` (B, H, W, 2) -> (B, H, W, C), nvdiffrast's convention:
    u runs along the texture width, v along its height, (0, 0) is the outer corner of texel [0, 0]
    (the first row in memory), texel centres sit at ((i + 0.5) / Wt, (j + 0.5) / Ht). An image
    loaded top row first therefore has v pointing down; flip it (``tex.flip(1)``) for v-up UVs.
    filter_mode: "linear" (bilinear) or "nearest"; boundary_mode: "wrap" (nvdiffrast's default),
    "clamp" or "zero". Differentiable w.r.t. ``tex`` and (for "linear") ``uv``."""
    if filter_mode == "auto":
        filter_mode = "linear"
    if filter_mode not in ("linear", "nearest"):
        raise InputError(f"texture filter_mode {filter_mode!r} is not supported; use 'linear' or 'nearest'")
    if boundary_mode not in ("wrap", "clamp", "zero"):
        raise InputError(f"texture boundary_mode {boundary_mode!r} is not supported; use 'wrap', 'clamp' or 'zero'")
    if tex.dim() != 4 or uv.dim() != 4 or uv.shape[-1] != 2 or tex.shape[0] not in (1, uv.shape[0]):
        raise InputError(f"texture needs tex (B, Ht, Wt, C) and uv (B, H, W, 2); got {tuple(tex.shape)} and {tuple(uv.shape)}")
    if _use_nvdiffrast(backend, uv):
        dr = nvdiffrast_module()
        return dr.texture(tex.float().contiguous(), uv.float().contiguous(), filter_mode=filter_mode, boundary_mode=boundary_mode)
    return _texture_torch(tex, uv, filter_mode, boundary_mode)


def _texture_torch(tex, uv, filter_mode, boundary_mode):
    batch = uv.shape[0]
    image = tex.permute(0, 3, 1, 2)
    if image.shape[0] != batch:
        image = image.expand(batch, -1, -1, -1)
    t_h, t_w = image.shape[-2:]
    if boundary_mode == "wrap":
        # take the fractional part, and pad one texel circularly so bilinear taps wrap around
        uv = uv - torch.floor(uv.detach())
        image = torch.cat([image[..., -1:], image, image[..., :1]], dim=-1)
        image = torch.cat([image[..., -1:, :], image, image[..., :1, :]], dim=-2)
        gx = (2 * (uv[..., 0] * t_w + 1)) / (t_w + 2) - 1
        gy = (2 * (uv[..., 1] * t_h + 1)) / (t_h + 2) - 1
        padding = "border"
    else:
        gx, gy = 2 * uv[..., 0] - 1, 2 * uv[..., 1] - 1
        padding = "border" if boundary_mode == "clamp" else "zeros"
    grid = torch.stack([gx, gy], dim=-1).to(image.dtype)
    mode = "bilinear" if filter_mode == "linear" else "nearest"
    out = F.grid_sample(image, grid, mode=mode, padding_mode=padding, align_corners=False)
    return out.permute(0, 2, 3, 1)


def antialias(color: torch.Tensor, rast: torch.Tensor, pos: torch.Tensor, tri: torch.Tensor, backend: str = "auto") -> torch.Tensor:
    """nvdiffrast's analytic silhouette antialiasing (and its gradients to ``pos``) on CUDA with
    nvdiffrast; with the torch backend a no-op that returns ``color`` unchanged (no silhouette
    gradients: fit with losses that do not need them, e.g. landmarks and masked photometric terms)."""
    if _use_nvdiffrast(backend, color):
        dr = nvdiffrast_module()
        return dr.antialias(color.float().contiguous(), rast.float().contiguous(), pos.float().contiguous(), tri.int().contiguous())
    return color


def _use_nvdiffrast(backend: str, tensor: torch.Tensor) -> bool:
    if backend == "torch":
        return False
    if backend == "nvdiffrast":
        if not tensor.is_cuda:
            raise InputError("the nvdiffrast render backend needs CUDA tensors; use backend='torch'")
        if nvdiffrast_module() is None:
            raise InputError(NVDIFFRAST_INSTALL)
        return True
    if backend != "auto":
        raise InputError(f"unknown render backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    return tensor.is_cuda and nvdiffrast_module() is not None


def _check_rasterize_inputs(pos, tri, resolution) -> tuple[int, int]:
    if not isinstance(pos, torch.Tensor) or pos.dim() != 3 or pos.shape[-1] != 4:
        raise InputError(f"rasterize needs pos of shape (B, V, 4), got {tuple(getattr(pos, 'shape', ()))}")
    if not isinstance(tri, torch.Tensor) or tri.dim() != 2 or tri.shape[-1] != 3:
        raise InputError(f"rasterize needs tri of shape (F, 3), got {tuple(getattr(tri, 'shape', ()))}")
    if tri.numel() and (int(tri.min()) < 0 or int(tri.max()) >= pos.shape[1]):
        raise InputError(f"tri indexes vertices outside 0..{pos.shape[1] - 1}")
    try:
        height, width = (int(r) for r in resolution)
    except (TypeError, ValueError):
        raise InputError(f"resolution must be (height, width), got {resolution!r}") from None
    if height <= 0 or width <= 0 or height > 16384 or width > 16384:
        raise InputError(f"resolution must be positive (at most 16384), got {(height, width)}")
    if not torch.isfinite(pos.detach().sum()):  # one reduction; NaN/inf anywhere makes the sum non-finite
        from ..errors import NumericalError  # noqa: PLC0415
        raise NumericalError("rasterize got NaN or infinite vertex positions")
    return height, width
