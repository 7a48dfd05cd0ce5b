"""Occluder meshes and the primitives they are built from (numpy; head frame, mm)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# patterns evaluated per pixel from the interpolated pattern coordinates (renderer.pattern_mix)
PATTERNS = ("plain", "stripes", "checks", "dots", "fabric", "grille", "pleats")


@dataclass
class OccluderMesh:
    """One rigid or deformable occluder part: geometry, colour and material."""

    kind: str  # the occluder kind it belongs to (hand, glasses, ...)
    vertices: np.ndarray  # (V, 3) float mm, head frame
    triangles: np.ndarray  # (F, 3) int64
    colour: np.ndarray  # (V, 3) sRGB 0..1 (or (3,) for all vertices)
    pattern_coords: np.ndarray | None = None  # (V, 2), in pattern periods
    pattern: str = "plain"
    pattern_colour: tuple[float, float, float] = (0.0, 0.0, 0.0)
    alpha: float = 1.0  # opacity: < 1 for tinted lenses
    gloss: float = 0.2  # specular strength
    shininess: float = 20.0
    counts_as_occluder: bool = True  # False: drawn but never in the mask (e.g. a clear lens)
    extras: dict = field(default_factory=dict)

    def colours(self) -> np.ndarray:
        colour = np.asarray(self.colour, np.float32)
        return np.broadcast_to(colour, (len(self.vertices), 3)) if colour.ndim == 1 else colour

    def coords(self) -> np.ndarray:
        if self.pattern_coords is None:
            return np.zeros((len(self.vertices), 2), np.float32)
        return np.asarray(self.pattern_coords, np.float32)


def tube(path: np.ndarray, radius, segments: int = 12, caps: bool = True, ups: np.ndarray | None = None):
    """A tube (generalised cylinder) along ``path`` (P, 3) with per-point ``radius`` (P,) or a scalar:
    (vertices, triangles, coords (u around, v along in mm))."""
    path = np.asarray(path, np.float64)
    radius = np.broadcast_to(np.asarray(radius, np.float64), (len(path),))
    tangents = np.gradient(path, axis=0)
    tangents /= np.maximum(np.linalg.norm(tangents, axis=1, keepdims=True), 1e-9)
    normal = _perpendicular(tangents[0]) if ups is None else ups[0]
    rings, coords = [], []
    along = np.concatenate([[0], np.cumsum(np.linalg.norm(np.diff(path, axis=0), axis=1))])
    angles = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    for i, (point, tangent) in enumerate(zip(path, tangents)):
        if ups is not None:
            normal = ups[i]
        normal = normal - tangent * (normal @ tangent)  # parallel transport (approximately)
        normal /= max(np.linalg.norm(normal), 1e-9)
        binormal = np.cross(tangent, normal)
        rings.append(point + radius[i] * (np.cos(angles)[:, None] * normal + np.sin(angles)[:, None] * binormal))
        coords.append(np.stack([angles / (2 * np.pi) * 2 * np.pi * radius[i], np.full(segments, along[i])], 1))
    vertices = np.concatenate(rings)
    tris = []
    for i in range(len(path) - 1):
        a = i * segments + np.arange(segments)
        b = i * segments + (np.arange(segments) + 1) % segments
        tris += [np.stack([a, b, b + segments], 1), np.stack([a, b + segments, a + segments], 1)]
    coords = np.concatenate(coords)
    if caps:
        for end, index in ((0, 0), (len(path) - 1, len(path) - 1)):
            centre = len(vertices)
            vertices = np.concatenate([vertices, path[end][None]])
            coords = np.concatenate([coords, [[0.0, along[end]]]])
            ring = index * segments + np.arange(segments)
            nxt = index * segments + (np.arange(segments) + 1) % segments
            fan = np.stack([ring, np.full(segments, centre), nxt], 1) if end == 0 else \
                np.stack([ring, nxt, np.full(segments, centre)], 1)
            tris.append(fan)
    return vertices, np.concatenate(tris).astype(np.int64), coords


def ellipsoid(centre, radii, rotation=None, rings: int = 10, segments: int = 16):
    """Ellipsoid mesh: (vertices, triangles, coords)."""
    theta = np.linspace(0, np.pi, rings + 1)[1:-1]
    phi = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    unit = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], -1).reshape(-1, 3)
    unit = np.concatenate([[[0, 0, 1.0]], unit, [[0, 0, -1.0]]])
    points = unit * np.asarray(radii, np.float64)
    if rotation is not None:
        points = points @ np.asarray(rotation).T
    vertices = points + np.asarray(centre, np.float64)
    tris = [[0, 1 + j, 1 + (j + 1) % segments] for j in range(segments)]
    inner = rings - 1
    for i in range(inner - 1):
        for j in range(segments):
            a, b = 1 + i * segments + j, 1 + i * segments + (j + 1) % segments
            tris += [[a, a + segments, b + segments], [a, b + segments, b]]
    last = len(vertices) - 1
    base = 1 + (inner - 1) * segments
    tris += [[base + j, last, base + (j + 1) % segments] for j in range(segments)]
    coords = np.stack([p.reshape(-1), t.reshape(-1)], 1) * np.mean(radii)
    coords = np.concatenate([[[0, 0]], coords, [[0, np.pi * np.mean(radii)]]])
    return vertices, np.array(tris, np.int64), coords


def rounded_box(size, radius: float, segments: int = 6):
    """A box (size = (x, y, z) extents) with rounded edges, centred at the origin: a superellipsoid-like
    sphere mapped onto the box (vertices, triangles, coords)."""
    vertices, tris, coords = ellipsoid((0, 0, 0), (1, 1, 1), rings=4 * segments, segments=8 * segments // 2 * 2)
    half = np.asarray(size, np.float64) / 2
    # push the sphere towards the box: keep the direction, scale each axis by a soft sign
    exponent = max(0.08, radius / max(half.min(), 1e-6) * 0.5)
    shaped = np.sign(vertices) * np.abs(vertices) ** exponent
    vertices = shaped * half
    return vertices, tris, coords * half.mean()


def frustum(radius_bottom: float, radius_top: float, height: float, segments: int = 24, open_top: bool = True):
    """A cup-like truncated cone along +y from y = 0, closed at the bottom; coords u around (mm), v up (mm)."""
    angles = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    rings = []
    heights = np.linspace(0, height, 6)
    for h in heights:
        r = radius_bottom + (radius_top - radius_bottom) * h / height
        rings.append(np.stack([r * np.cos(angles), np.full(segments, h), r * np.sin(angles)], 1))
    vertices = np.concatenate(rings + [[[0.0, 0.0, 0.0]]])
    tris = []
    for i in range(len(heights) - 1):
        a = i * segments + np.arange(segments)
        b = i * segments + (np.arange(segments) + 1) % segments
        tris += [np.stack([a, b + segments, b], 1), np.stack([a, a + segments, b + segments], 1)]
    centre = len(vertices) - 1
    tris.append(np.stack([np.arange(segments), (np.arange(segments) + 1) % segments, np.full(segments, centre)], 1))
    u = np.tile(angles * (radius_bottom + radius_top) / 2, len(heights))
    v = np.repeat(heights, segments)
    coords = np.concatenate([np.stack([u, v], 1), [[0.0, 0.0]]])
    return vertices, np.concatenate(tris).astype(np.int64), coords


def grid_surface(points: np.ndarray):
    """Triangles over an (R, C, 3) grid of points: (vertices, triangles, coords (column, row) in mm-ish)."""
    rows, cols = points.shape[:2]
    index = np.arange(rows * cols).reshape(rows, cols)
    a, b, c, d = index[:-1, :-1], index[:-1, 1:], index[1:, :-1], index[1:, 1:]
    tris = np.concatenate([np.stack([a, c, b], -1).reshape(-1, 3), np.stack([b, c, d], -1).reshape(-1, 3)])
    across = np.concatenate([np.zeros((rows, 1)), np.cumsum(np.linalg.norm(np.diff(points, axis=1), axis=2), 1)], 1)
    down = np.concatenate([np.zeros((1, cols)), np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=2), 0)], 0)
    return points.reshape(-1, 3), tris.astype(np.int64), np.stack([across, down], -1).reshape(-1, 2)


def rotation_from_axes(forward: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Rotation whose columns are (right, up, forward) built from a forward and an approximate up."""
    forward = forward / np.linalg.norm(forward)
    right = np.cross(up, forward)
    right /= max(np.linalg.norm(right), 1e-9)
    up = np.cross(forward, right)
    return np.stack([right, up, forward], 1)


def axis_rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    axis = np.asarray(axis, np.float64)
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def _perpendicular(vector: np.ndarray) -> np.ndarray:
    other = np.array([1.0, 0, 0]) if abs(vector[0]) < 0.9 else np.array([0, 1.0, 0])
    out = np.cross(vector, other)
    return out / np.linalg.norm(out)


def merge(parts):
    """Concatenate (vertices, triangles, coords) tuples into one."""
    vertices, tris, coords, offset = [], [], [], 0
    for v, t, c in parts:
        vertices.append(v)
        tris.append(t + offset)
        coords.append(c)
        offset += len(v)
    return np.concatenate(vertices), np.concatenate(tris), np.concatenate(coords)
