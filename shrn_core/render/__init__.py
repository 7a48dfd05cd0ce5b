"""Rasterizer backends behind one nvdiffrast-shaped interface (see docs/rendering.md).

``create_context(backend, device)`` -> ``rasterize(ctx, pos, tri, (H, W))`` -> ``interpolate``,
``texture``, ``antialias``; ``render_mesh`` bundles them; ``camera`` builds clip-space positions.
"""
from .camera import camera_to_clip, clip_to_pixels, projection_matrix, to_image_rows, world_to_camera, world_to_clip
from .mesh import MeshRender, render_mesh, visible_faces, visible_vertices
from .ops import BACKENDS, RenderContext, antialias, create_context, interpolate, nvdiffrast_module, rasterize, refresh_rast, texture

__all__ = [
    "BACKENDS", "RenderContext", "create_context", "rasterize", "refresh_rast", "interpolate", "texture", "antialias",
    "nvdiffrast_module", "render_mesh", "MeshRender", "visible_faces", "visible_vertices",
    "projection_matrix", "camera_to_clip", "world_to_camera", "world_to_clip", "clip_to_pixels", "to_image_rows",
]
