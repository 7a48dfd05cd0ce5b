"""Untextured "clay" renders of a face mesh for the summary sheet, with shrn's own rasterizer.

Works on any triangle mesh (``vertices`` (V, 3) in mm, ``faces`` (F, 3)) and any pinhole camera
(K, R, t as in ``shrn_core.reconstruct.types.Camera``): no vertex ids are assumed, so a change of
topology needs no change here. Views around the head (front, 3/4, profile) come from
``orbit_cameras``; the view of the photo comes from the reconstruction's own camera.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..render import create_context, interpolate, rasterize, world_to_clip

NEAR_MM, FAR_MM = 10.0, 100000.0
CLAY = np.array([0.80, 0.76, 0.71], np.float32)  # front faces
INSIDE = np.array([0.36, 0.40, 0.50], np.float32)  # back faces (seen through holes, from behind)
# head-frame view directions: x towards the subject's left, y up, z out of the face
_KEY = np.array([-0.45, 0.55, 0.70])
_FILL = np.array([0.65, 0.05, 0.75])


@dataclass
class ViewCamera:
    """A pinhole camera for a ``size`` x ``size`` (or ``width`` x ``height``) render."""

    K: np.ndarray  # (3, 3)
    R: np.ndarray  # (3, 3) head frame -> camera
    t: np.ndarray  # (3,) mm
    width: int
    height: int


def yaw_rotation(degrees: float) -> np.ndarray:
    """Rotation about the head's vertical axis; positive turns the face towards the image left."""
    a = math.radians(degrees)
    return np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]], np.float64)


def orbit_cameras(vertices: np.ndarray, yaws_deg, size: int, fill: float = 0.86) -> list[ViewCamera]:
    """Cameras looking at the mesh's bounding-box centre from the given yaws (0 = the head frame's
    front), all with one focal length so the views share a scale; the largest view fills ``fill``
    of the square image and each view is centred."""
    points = np.asarray(vertices, np.float64)
    centre = (points.min(0) + points.max(0)) / 2
    radius = max(float(np.linalg.norm(points.max(0) - points.min(0))) / 2, 1e-3)
    distance = 6.0 * radius  # a long lens: little perspective, like a portrait photo
    rotations, bounds = [], []
    for yaw in yaws_deg:
        R = yaw_rotation(yaw)
        cam = (points - centre) @ R.T
        depth = distance - cam[:, 2]
        X, Y = cam[:, 0] / depth, cam[:, 1] / depth
        rotations.append(R)
        bounds.append((X.min(), X.max(), Y.min(), Y.max()))
    span = max(max(b[1] - b[0], b[3] - b[2]) for b in bounds)
    focal = fill * size / max(span, 1e-9)
    cameras = []
    for R, (x0, x1, y0, y1) in zip(rotations, bounds):
        K = np.array([[focal, 0, size / 2 - focal * (x0 + x1) / 2],
                      [0, focal, size / 2 + focal * (y0 + y1) / 2], [0, 0, 1]], np.float64)
        t = np.array([0.0, 0.0, -distance]) - R @ centre
        cameras.append(ViewCamera(K, R, t, size, size))
    return cameras


def crop_camera(K, R, t, box: tuple[float, float, float], size: int) -> ViewCamera:
    """The photo camera (K, R, t) seen through the square crop ``box`` = (x0, y0, side) of the
    photo, resampled to ``size`` x ``size`` pixels."""
    x0, y0, side = box
    s = size / side
    K2 = np.array(K, np.float64).copy()
    K2[:2] *= s
    K2[0, 2] -= x0 * s
    K2[1, 2] -= y0 * s
    return ViewCamera(K2, np.asarray(R, np.float64), np.asarray(t, np.float64), size, size)


def render_clay(vertices, faces: np.ndarray, cameras: list[ViewCamera],
                colours: np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Shaded renders of a mesh, one per camera (all of one size, rendered as one batch):
    [(HxWx3 uint8 colour, HxW bool coverage), ...]. ``vertices`` is one (V, 3) array for every
    camera, or a list with one per camera (meshes sharing ``faces``, such as a face and its
    neutral expression). Lights are fixed to the head, so every view shows the shape under the
    same light; back faces (seen through holes) are flat bluish grey, and triangles that face away
    from every camera are not drawn (hidden behind the rest in a closed view; through a hole the
    background shows). ``colours`` ((V, 3) floats in [0, 1]) paint the vertices instead of clay,
    under a softer light that keeps them readable (error heatmaps)."""
    if not cameras:
        return []
    height, width = cameras[0].height, cameras[0].width
    if any((c.height, c.width) != (height, width) for c in cameras):
        raise ValueError("render_clay renders one batch: every camera needs the same image size")
    per_view = list(vertices) if isinstance(vertices, (list, tuple)) else [vertices] * len(cameras)
    if len(per_view) != len(cameras):
        raise ValueError(f"{len(per_view)} vertex arrays for {len(cameras)} cameras")
    # One thread: these renders are small, and on a busy CPU more OpenMP threads mostly spin
    # (2 threads took 3-8x longer than 1 on the shared 2-core dev machine).
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _render(per_view, faces, cameras, colours, height, width)
    finally:
        torch.set_num_threads(saved)


def _render(per_view: list, faces, cameras, colours, height: int, width: int):
    tri = torch.as_tensor(np.asarray(faces), dtype=torch.int64)
    K = torch.as_tensor(np.stack([c.K for c in cameras]), dtype=torch.float32)
    R = torch.as_tensor(np.stack([c.R for c in cameras]), dtype=torch.float32)
    t = torch.as_tensor(np.stack([c.t for c in cameras]), dtype=torch.float32)
    with torch.no_grad():
        # vertices, normals and lit colours once per distinct mesh, not once per view
        meshes: dict[int, tuple] = {}
        for array in per_view:
            if id(array) not in meshes:
                v = torch.as_tensor(np.asarray(array), dtype=torch.float32)
                face_n = _face_normals(v, tri)
                meshes[id(array)] = (v, face_n, _vertex_normals(v, tri, face_n))
        v = torch.stack([meshes[id(a)][0] for a in per_view])
        face_n = torch.stack([meshes[id(a)][1] for a in per_view])  # (B, F, 3)
        # camera z axis in the head frame is R[2]; a triangle faces the camera when its normal
        # points along it (a long lens makes this the same for the whole image)
        facing = torch.einsum("bfc,bc->bf", face_n, R[:, 2]) >= 0
        kept = facing.any(0)  # the rasterizer's cost is per triangle: skip those no view faces
        if not kept.any():
            empty = np.zeros((height, width), bool)
            return [(np.zeros((height, width, 3), np.uint8), empty) for _ in cameras]
        tri, facing = tri[kept], facing[:, kept]
        tri32 = tri.to(torch.int32)
        pos = world_to_clip(v, K, R, t, width, height, NEAR_MM, FAR_MM)
        rast, _ = rasterize(create_context("torch", "cpu"), pos.contiguous(), tri32, (height, width))
        # Gouraud shading: the mesh is dense (a triangle covers a few pixels), so lighting the
        # vertices and interpolating colours looks like per-pixel lighting at a fraction of the cost
        normals = torch.stack([meshes[id(a)][2] for a in per_view])
        colour, _ = interpolate(_vertex_colours(normals, R, colours), rast, tri32)
        ident = rast[..., 3].long()
        covered = ident > 0
        front = torch.gather(facing, 1, (ident - 1).clamp(min=0).view(len(cameras), -1)).view(ident.shape)
        colour = torch.where(front[..., None], colour, torch.as_tensor(INSIDE))
        colour = (colour.clamp(0, 1) * 255 + 0.5).to(torch.uint8)
    # rasterizer row 0 is the bottom of the image
    colour = colour.flip(1).numpy()
    covered = covered.flip(1).numpy()
    return [(colour[i], covered[i]) for i in range(len(cameras))]


def splat_points(points: np.ndarray, colours: np.ndarray, camera: ViewCamera) -> tuple[np.ndarray, np.ndarray]:
    """A point cloud (a scan without triangles) as discs, nearest point in front: (HxWx3 uint8,
    HxW bool). The disc radius follows the typical point spacing on screen, so the cloud reads as a
    surface."""
    from scipy.spatial import cKDTree

    cam = np.asarray(points, np.float64) @ np.asarray(camera.R).T + np.asarray(camera.t)
    ahead = cam[:, 2] < -NEAR_MM
    cam, rgb = cam[ahead], (np.clip(np.asarray(colours, np.float64)[ahead], 0, 1) * 255 + 0.5).astype(np.uint8)
    image = np.zeros((camera.height, camera.width, 3), np.uint8)
    covered = np.zeros((camera.height, camera.width), bool)
    if not len(cam):
        return image, covered
    K = np.asarray(camera.K)
    u = K[0, 0] * cam[:, 0] / -cam[:, 2] + K[0, 2]
    v = K[1, 1] * -cam[:, 1] / -cam[:, 2] + K[1, 2]
    screen = np.stack([u, v], 1)
    sample = screen[:: max(1, len(screen) // 2000)]
    # the spacing where the cloud is sparsest (98th percentile) sets one disc size for all: nearer
    # points win, so overlapping discs in dense areas cost nothing
    spacing = float(np.percentile(cKDTree(screen).query(sample, k=2)[0][:, 1], 98)) if len(screen) > 1 else 1.0
    radius = int(np.clip(np.ceil(spacing * 0.75) + 1, 1, 8))
    offsets = [(dy, dx) for dy in range(-radius + 1, radius) for dx in range(-radius + 1, radius)
               if dy * dy + dx * dx < radius * radius] or [(0, 0)]
    row = np.concatenate([np.floor(v).astype(int) + dy for dy, _ in offsets])
    col = np.concatenate([np.floor(u).astype(int) + dx for _, dx in offsets])
    depth = np.tile(cam[:, 2], len(offsets))
    index = np.tile(np.arange(len(cam)), len(offsets))
    ok = (row >= 0) & (row < camera.height) & (col >= 0) & (col < camera.width)
    row, col, depth, index = row[ok], col[ok], depth[ok], index[ok]
    order = np.argsort(-depth, kind="stable")  # nearest (largest z) first
    pixel = row[order] * camera.width + col[order]
    pixel, first = np.unique(pixel, return_index=True)
    image.reshape(-1, 3)[pixel] = rgb[index[order][first]]
    covered.reshape(-1)[pixel] = True
    return image, covered


def composite(render: np.ndarray, covered: np.ndarray, background) -> np.ndarray:
    """The render over ``background`` (HxWx3 uint8, or one colour), with the silhouette softened
    over one pixel (the torch rasterizer does no anti-aliasing)."""
    import cv2

    back = np.broadcast_to(np.asarray(background, np.uint8), render.shape)
    out = np.where(covered[..., None], render, back)
    alpha = cv2.blur(covered.astype(np.float32), (3, 3))
    edge = (alpha > 0) & (alpha < 1)  # only pixels by the silhouette need blending
    inside = covered[edge]
    weight = np.where(inside, np.maximum(alpha[edge], 0.5), alpha[edge])[:, None]
    # outside the silhouette the render holds no colour: take the nearest covered one
    colour = np.where(inside[:, None], render[edge], cv2.dilate(render, np.ones((3, 3), np.uint8))[edge])
    out[edge] = (colour * weight + back[edge] * (1 - weight) + 0.5).astype(np.uint8)
    return out


def _face_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(F, 3) area-weighted (unnormalised) triangle normals."""
    v0, v1, v2 = (vertices[faces[:, k]] for k in range(3))
    return torch.cross(v1 - v0, v2 - v0, dim=-1)


def _vertex_normals(vertices: torch.Tensor, faces: torch.Tensor, face_normals: torch.Tensor) -> torch.Tensor:
    """(V, 3) unit normals, area-weighted from the given triangle normals (as ``vertex_normals``)."""
    normals = torch.zeros_like(vertices).index_add(0, faces.T.reshape(-1), face_normals.repeat(3, 1))
    return torch.nn.functional.normalize(normals, dim=-1, eps=1e-12)


def _vertex_colours(normals: torch.Tensor, rotations: torch.Tensor, colours: np.ndarray | None = None) -> torch.Tensor:
    """(B, V, 3) clay colour at (B, V, 3) unit vertex normals, lit by a key and a fill light fixed
    to the head, plus a specular highlight of the key light as seen by each camera; or the given
    colours, softly lit."""
    key = torch.as_tensor(_KEY / np.linalg.norm(_KEY), dtype=torch.float32)
    fill = torch.as_tensor(_FILL / np.linalg.norm(_FILL), dtype=torch.float32)
    if colours is not None:
        light = 0.62 + 0.30 * (normals @ key).clamp(min=0) + 0.12 * (normals @ fill).clamp(min=0)
        return torch.as_tensor(np.asarray(colours), dtype=torch.float32) * light[..., None]
    diffuse = 0.30 + 0.62 * (normals @ key).clamp(min=0) + 0.22 * (normals @ fill).clamp(min=0)  # (B, V)
    halfway = torch.nn.functional.normalize(key[None] + rotations[:, 2], dim=-1)  # (B, 3)
    specular = 0.12 * torch.einsum("bvc,bc->bv", normals, halfway).clamp(min=0) ** 24
    return torch.as_tensor(CLAY) * diffuse[..., None] + specular[..., None]
