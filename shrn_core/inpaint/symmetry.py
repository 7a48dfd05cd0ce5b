"""Where each pixel's mirror image lies across the face's symmetry plane.

Inside the face mesh the map is piecewise affine: a pixel in the image of mesh triangle
``(a, b, c)`` keeps its barycentric coordinates and moves to the triangle of the mirrored vertices
``(m[a], m[b], m[c])``, where ``m`` is the left/right vertex pairing of mediapipe's face mesh
(``shrn_core.face.topology``, derived from the mesh's symmetric mean shape). Because the warp follows
the landmarks, it is right for turned heads, open mouths and asymmetric expressions alike, which a
single reflection line is not. Outside the mesh (forehead above it, ears, neck) the map is one
affine transform fitted to all vertex pairs, used only in a band around the face and only when the
head is turned little enough for that fit to be good.

A mirrored position counts as a usable source only when the other side is actually seen there:
inside the image, not occluded, and (for mesh pixels) showing the mirrored triangle or one of its
neighbours rather than, say, the nose that hides the far cheek of a turned head.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..face.topology import NUM_MESH_POINTS, load_topology

SUBPIXEL_BITS = 4
OUTSIDE_BAND = 0.25  # of the face width: how far beyond the mesh the global symmetry is used
MAX_GLOBAL_RESIDUAL = 0.04  # of the face width: worse fits (turned heads) skip the global map


@dataclass
class MirrorMap:
    source_x: np.ndarray  # HxW float32, cv2 pixel coordinates (pixel centres at integers); NaN = none
    source_y: np.ndarray
    triangle_ids: np.ndarray  # HxW int32: visible front-facing mesh triangle, -1 = none

    @property
    def defined(self) -> np.ndarray:
        return np.isfinite(self.source_x)


def mesh_points(landmarks: np.ndarray) -> np.ndarray:
    """The 468 mesh points in cv2 pixel coordinates (pixel centre = integer), as float64 (x, y, z)."""
    points = np.asarray(landmarks, np.float64)[:NUM_MESH_POINTS].copy()
    points[:, :2] -= 0.5
    return points


def front_facing(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Triangles whose image-space winding says they face the camera.

    The topology's triangles wind counter-clockwise seen from the front in a y-up frame, which is
    clockwise (negative signed area) in image coordinates with y down.
    """
    a, b, c = (points[triangles[:, k], :2] for k in range(3))
    cross = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    return cross < 0


def rasterize_triangle_ids(points: np.ndarray, triangles: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """HxW int32 id of the visible front-facing triangle at each pixel (-1 where none); far ones drawn first."""
    ids = np.full(shape[:2], -1, np.int32)
    visible = np.flatnonzero(front_facing(points, triangles))
    depth = points[triangles[visible], 2].mean(axis=1)
    order = visible[np.argsort(-depth)]  # mediapipe z: smaller is closer, so draw large z first
    scale = 1 << SUBPIXEL_BITS
    corners = np.rint(points[:, :2] * scale).astype(np.int32)
    for tri in order:
        cv2.fillConvexPoly(ids, corners[triangles[tri]], int(tri), lineType=cv2.LINE_8, shift=SUBPIXEL_BITS)
    return ids


def triangle_affines(points: np.ndarray, triangles: np.ndarray, mirror: np.ndarray) -> np.ndarray:
    """(F, 2, 3) affine maps from each image triangle to the image of its mirrored vertices."""
    src = np.concatenate([points[triangles, :2], np.ones((len(triangles), 3, 1))], axis=2)  # (F, 3, 3) rows [x y 1]
    dst = points[mirror[triangles], :2]  # (F, 3, 2)
    affines = np.full((len(triangles), 2, 3), np.nan)
    ok = np.abs(np.linalg.det(src)) > 1e-6
    # src @ A^T = dst  ->  A^T = src^-1 @ dst
    affines[ok] = np.transpose(np.linalg.solve(src[ok], dst[ok]), (0, 2, 1))
    return affines


def global_symmetry(points: np.ndarray, mirror: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares 2x3 affine taking each mesh point to its mirror partner, and its RMS residual."""
    src = np.column_stack([points[:, :2], np.ones(len(points))])
    dst = points[mirror, :2]
    solution, *_ = np.linalg.lstsq(src, dst, rcond=None)
    residual = float(np.sqrt(np.mean(np.sum((src @ solution - dst) ** 2, axis=1))))
    return solution.T, residual


class MirrorMapper:
    """Mirror sources of arbitrary pixels of one photo (the mesh raster and fits are computed once)."""

    def __init__(self, landmarks: np.ndarray, shape: tuple[int, int]):
        topo = load_topology()
        self.triangles, self.mirror = topo.triangles, topo.mirror
        self.shape = shape[:2]
        points = mesh_points(landmarks)
        self.ids = rasterize_triangle_ids(points, self.triangles, shape)
        self.face_width = float(np.ptp(points[:, 0]) or 1.0)
        self.affines = triangle_affines(points, self.triangles, self.mirror)
        symmetry, residual = global_symmetry(points, self.mirror)
        self.symmetry = symmetry if residual <= MAX_GLOBAL_RESIDUAL * self.face_width else None
        self._distance = None

    def sources(self, ys: np.ndarray, xs: np.ndarray, occluded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Source (x, y) of each pixel (cv2 coordinates), NaN where its mirror is not visible."""
        height, width = self.shape
        tri = self.ids[ys, xs]
        sx = np.full(len(ys), np.nan)
        sy = np.full(len(ys), np.nan)
        on_mesh = tri >= 0
        a = self.affines[tri[on_mesh]]
        px, py = xs[on_mesh].astype(np.float64), ys[on_mesh].astype(np.float64)
        sx[on_mesh] = a[:, 0, 0] * px + a[:, 0, 1] * py + a[:, 0, 2]
        sy[on_mesh] = a[:, 1, 0] * px + a[:, 1, 1] * py + a[:, 1, 2]
        if self.symmetry is not None:
            off = ~on_mesh
            off[off] = self._near_mesh(ys[off], xs[off])
            m = self.symmetry
            sx[off] = m[0, 0] * xs[off] + m[0, 1] * ys[off] + m[0, 2]
            sy[off] = m[1, 0] * xs[off] + m[1, 1] * ys[off] + m[1, 2]

        usable = np.isfinite(sx) & (sx >= 0) & (sx <= width - 1) & (sy >= 0) & (sy <= height - 1)
        ix = np.clip(np.rint(np.nan_to_num(sx)), 0, width - 1).astype(np.int64)
        iy = np.clip(np.rint(np.nan_to_num(sy)), 0, height - 1).astype(np.int64)
        usable &= ~occluded[iy, ix]
        # self-occlusion: a mesh pixel's source must show the mirrored triangle or a neighbour of it
        seen = self.ids[iy, ix]
        mesh_usable = usable & on_mesh
        wanted = self.mirror[self.triangles[tri[mesh_usable]]]  # (n, 3)
        shown = self.triangles[np.maximum(seen[mesh_usable], 0)]  # (n, 3)
        shares = (wanted[:, :, None] == shown[:, None, :]).any(axis=(1, 2)) & (seen[mesh_usable] >= 0)
        usable[np.flatnonzero(mesh_usable)[~shares]] = False
        # an off-mesh pixel must map off the mesh too (else the global fit is sending it onto the face)
        usable[~on_mesh] &= seen[~on_mesh] < 0
        sx[~usable] = np.nan
        sy[~usable] = np.nan
        return sx, sy

    def _near_mesh(self, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        if self._distance is None:  # at quarter resolution: the band is tens of pixels wide
            off_mesh = (self.ids[::4, ::4] < 0).astype(np.uint8)
            self._distance = cv2.distanceTransform(off_mesh, cv2.DIST_L2, 3) * 4
        return self._distance[ys // 4, xs // 4] <= OUTSIDE_BAND * self.face_width


def mirror_map(landmarks: np.ndarray, shape: tuple[int, int], region: np.ndarray, occluded: np.ndarray) -> MirrorMap:
    """Mirror sources for the pixels of ``region`` whose mirrored position is visible (not ``occluded``)."""
    mapper = MirrorMapper(landmarks, shape)
    ys, xs = np.nonzero(region)
    sx, sy = mapper.sources(ys, xs, occluded)
    source_x = np.full(shape[:2], np.nan, np.float32)
    source_y = np.full(shape[:2], np.nan, np.float32)
    source_x[ys, xs] = sx
    source_y[ys, xs] = sy
    return MirrorMap(source_x, source_y, mapper.ids)
