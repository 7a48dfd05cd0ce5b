"""One UV space for every face model: the "canonical texture" that appearance banks are stored in.

The space is the cylindrical unwrap shrn's face topology uses (``shrn_core.face.topology``: angle
around a vertical axis 80 mm behind the mediapipe mean face, height), with v stretched so the face
fills the square. Photos reach it through their 468 face-mesh landmarks (a piecewise-affine warp,
``bank``); a shape model reaches it through its iBUG-68 landmarks: a thin-plate warp moves the
model's mean shape onto the mediapipe mean shape landmark by landmark, then the same cylinder gives
each model vertex its UV. Vertices outside the mediapipe face (ears, neck, scalp) get an
``outside`` weight rising from 0 at the face outline to 1 a little beyond; the renderer fades them
to the texture's mean skin colour.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .facemesh import CYLINDER_AXIS_DEPTH_MM, LANDMARKS_68, NUM_MESH_POINTS, UV_MARGIN, load_topology
from .meshutil import ThinPlate, boundary_loops

V_STRETCH = 1.8  # the mean face spans v in [0.24, 0.76] of the topology's UVs; use the whole square
OUTSIDE_RAMP_UV = 0.12  # outside weight reaches 1 this far (in UV units, ~20 mm) beyond the face outline
# iBUG points used to register a model onto the mediapipe mean: chin and all inner points (the
# mediapipe jaw line is placed differently from iBUG's, so 0-7 and 9-16 are left out).
REGISTRATION_POINTS = np.array([8] + list(range(17, 68)), dtype=np.int64)


@dataclass(frozen=True)
class CanonicalMesh:
    """mediapipe's 468-point face mesh with its eye and mouth holes closed by fans (one centre vertex
    each, appended as vertices 468, 469, 470), in mm, with canonical UVs."""

    vertices: np.ndarray  # (471, 3) float32
    triangles: np.ndarray  # (F, 3) int64
    uvs: np.ndarray  # (471, 2) float32 in [0, 1], v up
    outline: np.ndarray  # (N,) vertex loop of the outer face boundary
    holes: tuple[np.ndarray, ...]  # vertex loops of the right eye, left eye, mouth (subject's sides)
    visible_triangles: int  # triangles [0, visible_triangles) are mediapipe's, the rest are the fans


@functools.lru_cache(maxsize=1)
def _cylinder():
    mean = load_topology().mean_shape[:NUM_MESH_POINTS].astype(np.float64)
    axis_depth = mean[:, 2].mean() - CYLINDER_AXIS_DEPTH_MM
    radius = mean[:, 2].max() - axis_depth
    flat = _flat(mean, axis_depth, radius)
    centre = (flat.max(0) + flat.min(0)) / 2
    scale = (1 - 2 * UV_MARGIN) / np.ptp(flat, axis=0).max()
    return axis_depth, radius, centre, scale


def _flat(points, axis_depth, radius):
    return np.stack([radius * np.arctan2(points[:, 0], points[:, 2] - axis_depth), points[:, 1]], axis=1)


def canonical_uv(points: np.ndarray) -> np.ndarray:
    """(N, 2) canonical UVs of points (N, 3) in the mediapipe mean-shape frame (mm)."""
    axis_depth, radius, centre, scale = _cylinder()
    uv = (_flat(np.asarray(points, np.float64), axis_depth, radius) - centre) * scale + 0.5
    uv[:, 1] = 0.5 + (uv[:, 1] - 0.5) * V_STRETCH
    return uv.astype(np.float32)


@functools.lru_cache(maxsize=1)
def canonical_mesh() -> CanonicalMesh:
    topo = load_topology()
    vertices = topo.mean_shape[:NUM_MESH_POINTS].astype(np.float64)
    loops = boundary_loops(topo.triangles)
    outline, holes = loops[0], loops[1:]
    # order the holes: subject's right eye (x < 0), left eye (x > 0), mouth (lowest)
    holes = sorted(holes, key=lambda loop: vertices[loop, 1].mean())
    mouth, eyes = holes[0], sorted(holes[1:], key=lambda loop: vertices[loop, 0].mean())
    holes = (eyes[0], eyes[1], mouth)
    fans, centres = [], []
    for index, loop in enumerate(holes):
        centre = NUM_MESH_POINTS + index
        centres.append(vertices[loop].mean(0))
        # a boundary loop runs against its hole's interior: (b, a, centre) keeps the orientation
        fans.append(np.stack([np.roll(loop, -1), loop, np.full(len(loop), centre)], axis=1))
    all_vertices = np.concatenate([vertices, np.array(centres)]).astype(np.float32)
    triangles = np.concatenate([topo.triangles] + fans).astype(np.int64)
    return CanonicalMesh(all_vertices, triangles, canonical_uv(all_vertices), outline, holes, len(topo.triangles))


@dataclass(frozen=True)
class ModelTexturing:
    """Per-vertex canonical UV and outside weight of a shape model's vertices."""

    uvs: np.ndarray  # (V, 2) float32 (may leave [0, 1] far from the face)
    outside: np.ndarray  # (V,) float32 in [0, 1]


def register_to_canonical(points: np.ndarray, landmarks68: np.ndarray) -> ThinPlate:
    """The thin-plate warp taking a model (whose iBUG-68 points are ``points[landmarks68]``, -1 = none)
    onto the mediapipe mean shape."""
    ids = [i for i in REGISTRATION_POINTS if landmarks68[i] >= 0]
    mean = load_topology().mean_shape
    return ThinPlate(np.asarray(points)[landmarks68[ids]], mean[LANDMARKS_68[ids]], smoothing=0.5)


def model_texturing(points: np.ndarray, landmarks68: np.ndarray) -> ModelTexturing:
    """Canonical UVs of ``points`` (a model's mean shape, or extra geometry in its frame)."""
    warped = register_to_canonical(points, landmarks68)(points)
    return texturing_of_canonical_points(warped)


def texturing_of_canonical_points(warped: np.ndarray) -> ModelTexturing:
    mesh = canonical_mesh()
    uvs = canonical_uv(warped)
    outline = mesh.uvs[mesh.outline]
    distance = _distance_to_polygon(uvs, outline)
    inside = _inside_polygon(uvs, outline)
    # behind the cylinder axis the angle wraps around: those points are far outside
    behind = warped[:, 2] < _cylinder()[0]
    outside = np.where(inside & ~behind, 0.0, np.clip(distance / OUTSIDE_RAMP_UV, 0, 1))
    outside = np.where(behind, 1.0, outside)
    return ModelTexturing(np.clip(uvs, 0.0, 1.0).astype(np.float32), outside.astype(np.float32))


def _inside_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    x, y = points[:, 0:1], points[:, 1:2]
    a, b = polygon, np.roll(polygon, -1, axis=0)
    crosses = (a[:, 1] > y) != (b[:, 1] > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_at = a[:, 0] + (y - a[:, 1]) * (b[:, 0] - a[:, 0]) / (b[:, 1] - a[:, 1])
    return (crosses & (x < x_at)).sum(1) % 2 == 1


def _distance_to_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    a, b = polygon[None], np.roll(polygon, -1, axis=0)[None]
    p = points[:, None, :]
    ab = b - a
    t = np.clip(((p - a) * ab).sum(-1) / np.maximum((ab**2).sum(-1), 1e-12), 0, 1)
    return np.sqrt((((a + t[..., None] * ab) - p) ** 2).sum(-1)).min(1)
