"""Checks every mesh goes through before geometry uses it: clear errors instead of silent garbage."""
from __future__ import annotations

import logging

import numpy as np

from ..errors import FormatError, InputError, NumericalError

log = logging.getLogger("shrn.geometry")


def as_arrays(mesh) -> tuple[np.ndarray, np.ndarray]:
    """(vertices, faces) from a ``(V, F)`` tuple or anything with ``.vertices`` and ``.faces``."""
    if isinstance(mesh, tuple) and len(mesh) == 2:
        vertices, faces = mesh
    elif hasattr(mesh, "vertices"):
        vertices, faces = mesh.vertices, getattr(mesh, "faces", None)
    else:
        raise InputError(f"expected a mesh (vertices, faces), got {type(mesh).__name__}")
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.zeros((0, 3), np.int64) if faces is None else np.asarray(faces, dtype=np.int64)
    return vertices, faces.reshape(-1, 3) if faces.size else np.zeros((0, 3), np.int64)


def validate_mesh(vertices: np.ndarray, faces: np.ndarray, name: object = None,
                  require_faces: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Return (vertices, faces) with zero-area triangles removed, or raise a clear error.

    ``FormatError``: no vertices, no faces (when required), face indices out of range.
    ``NumericalError``: NaN or inf coordinates.
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3) if np.size(faces) else np.zeros((0, 3), np.int64)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or len(vertices) == 0:
        raise FormatError("mesh has no vertices", name)
    bad = ~np.isfinite(vertices).all(axis=1)
    if bad.any():
        raise NumericalError(f"mesh has {int(bad.sum())} vertices with NaN or inf coordinates", name)
    if len(faces) and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise FormatError(f"face indices out of range (mesh has {len(vertices)} vertices)", name)
    if require_faces:
        if len(faces) == 0:
            raise FormatError("mesh has no faces (a triangle surface is needed here, not a point cloud)", name)
        tri = vertices[faces]
        area2 = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
        scale = max(float(np.ptp(vertices, axis=0).max()), 1e-300)
        keep = area2 > 1e-12 * scale * scale
        if not keep.any():
            raise FormatError("every face of the mesh has zero area (degenerate mesh)", name)
        if not keep.all():
            log.debug("%s: dropped %d zero-area faces", name or "mesh", int((~keep).sum()))
            faces = faces[keep]
    return vertices, faces
