"""Helpers shared by the reconstruct benchmarks: photo lists, timing, result tables, re-rendering."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import clean_photos, commit, machine, shared_data_dir, write_json  # noqa: E402,F401


def print_table(rows: list[dict], columns: list[str]) -> None:
    widths = {c: max(len(c), *(len(_fmt(r.get(c))) for r in rows)) if rows else len(c) for c in columns}
    print(" | ".join(c.ljust(widths[c]) for c in columns))
    print("-|-".join("-" * widths[c] for c in columns))
    for row in rows:
        print(" | ".join(_fmt(row.get(c)).ljust(widths[c]) for c in columns))


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return "" if value is None else str(value)


def render_textured(recon, R: np.ndarray, t: np.ndarray, K: np.ndarray, lighting: np.ndarray, width: int, height: int,
                    background: np.ndarray) -> np.ndarray:
    """The reconstruction's final mesh, textured with its albedo and lit by ``lighting`` (9, 3), seen
    by the camera (K, R, t), over ``background`` (HxWx3 uint8)."""
    from shrn_core.reconstruct.fit.mesh_ops import vertex_normals
    from shrn_core.reconstruct.fit.raster import create_context, interpolate, rasterize_view, texture
    from shrn_core.reconstruct.fit.shading import shade

    mesh = recon.final
    ctx = create_context("auto", "cpu")
    vertices = torch.as_tensor(mesh.vertices, dtype=torch.float32)
    faces = torch.as_tensor(mesh.faces, dtype=torch.int32)
    uvs = torch.as_tensor(mesh.uvs, dtype=torch.float32)
    albedo = torch.as_tensor(recon.albedo, dtype=torch.float32) / 255
    with torch.no_grad():
        rast, _ = rasterize_view(ctx, vertices, faces, K, R, t, width, height)
        normals, _ = interpolate(vertex_normals(vertices, faces)[None], rast, faces)
        n = torch.nn.functional.normalize(normals[0], dim=-1, eps=1e-12) @ torch.as_tensor(R, dtype=torch.float32).T
        uv, _ = interpolate(uvs[None], rast, faces)
        colour = texture(albedo[None], uv, boundary_mode="clamp")[0] * shade(n, torch.as_tensor(lighting, dtype=torch.float32))
    covered = (rast[0, ..., 3] > 0).numpy()
    image = np.clip(colour.numpy() * 255 + 0.5, 0, 255).astype(np.uint8)
    return np.where(covered[..., None], image, background)
