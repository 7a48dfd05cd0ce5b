"""Summary statistics of point-to-surface distances, and one call for "how far apart are two meshes"."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError, NumericalError
from .icp import icp_to_surface
from .proximity import PointIndex, SurfaceIndex
from .transforms import Similarity, umeyama
from .validate import as_arrays, validate_mesh

ALIGN_MODES = ("none", "rigid", "similarity")


@dataclass
class DistanceStats:
    """Distances in the units of the reference (``mesh_b`` / the scan)."""

    median: float
    mean: float
    std: float
    rmse: float
    p90: float
    max: float
    count: int
    distances: np.ndarray = field(repr=False)
    transform: Similarity = field(default_factory=Similarity, repr=False)

    @classmethod
    def from_distances(cls, distances: np.ndarray, transform: Similarity | None = None) -> "DistanceStats":
        d = np.asarray(distances, dtype=np.float64)
        if d.size == 0:
            raise InputError("no points to measure (empty overlap)")
        if not np.isfinite(d).all():
            raise NumericalError("distance computation produced NaN or inf")
        return cls(float(np.median(d)), float(d.mean()), float(d.std()), float(np.sqrt((d**2).mean())),
                   float(np.percentile(d, 90)), float(d.max()), int(d.size), d, transform or Similarity())

    def summary(self) -> dict:
        return {"median": self.median, "mean": self.mean, "std": self.std, "rmse": self.rmse,
                "p90": self.p90, "max": self.max, "count": self.count}


def surface_distance(mesh_a, mesh_b, align: str = "rigid", landmarks_a: np.ndarray | None = None,
                     landmarks_b: np.ndarray | None = None, max_iterations: int = 50,
                     symmetric: bool = False) -> DistanceStats:
    """Distances from the vertices of ``mesh_a`` to the triangle surface of ``mesh_b`` after aligning.

    ``mesh_a``/``mesh_b``: ``(vertices, faces)`` tuples or objects with ``.vertices``/``.faces``
    (``shrn_core.reconstruct.types.Mesh``, ``trimesh.Trimesh``); ``mesh_a`` may be a point cloud
    (no faces). ``align``: ``"none"`` (as given), ``"rigid"`` (rotation + translation) or
    ``"similarity"`` (+ uniform scale). The alignment starts from a landmark fit when
    ``landmarks_a``/``landmarks_b`` ((N, 3), N >= 3, corresponding) are given, else from both the
    identity and a centroid match (the better end result wins), and is refined by ICP of ``a``'s
    vertices onto ``b``'s surface (see ``geometry.icp``). ``symmetric=True``
    adds the distances from ``b``'s vertices to the aligned ``a`` surface (both must have faces).
    The returned ``transform`` maps ``a`` onto ``b``; distances are in ``b``'s units.
    """
    if align not in ALIGN_MODES:
        raise InputError(f"unknown align mode {align!r}; choose one of: {', '.join(ALIGN_MODES)}")
    va, fa = validate_mesh(*as_arrays(mesh_a), name="mesh_a", require_faces=symmetric)
    vb, fb = validate_mesh(*as_arrays(mesh_b), name="mesh_b", require_faces=True)
    surface = SurfaceIndex(vb, fb)
    transform = Similarity()
    if align != "none":
        with_scale = align == "similarity"
        if landmarks_a is not None and landmarks_b is not None:
            starts = [umeyama(landmarks_a, landmarks_b, with_scale=with_scale)]
        else:  # as given, or centroids matched: keep whichever ICP ends closer
            starts = [Similarity(), Similarity(translation=vb.mean(axis=0) - va.mean(axis=0))]
        # icp_to_surface moves the surface onto the points, so fit b onto a and invert.
        results = [icp_to_surface(va, surface, init=start.inverse(), with_scale=with_scale,
                                  max_iterations=max_iterations) for start in starts]
        transform = min(results, key=lambda r: r.rms).transform.inverse()
    aligned = transform.apply(va)
    distances = surface.query(aligned).distances
    if symmetric:
        back = SurfaceIndex(aligned, fa).query(vb).distances
        distances = np.concatenate([distances, back])
    return DistanceStats.from_distances(distances, transform)


def point_index(vertices: np.ndarray, faces: np.ndarray) -> SurfaceIndex | PointIndex:
    """A surface index when there are faces, else a nearest-point index for a point cloud."""
    return SurfaceIndex(vertices, faces) if len(faces) else PointIndex(vertices)
