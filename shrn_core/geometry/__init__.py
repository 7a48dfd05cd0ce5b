"""Mesh geometry shared by stages: similarity fits, ICP, exact point-to-surface distances, checks.

The one-call API for "mean surface distance after alignment" is :func:`surface_distance`.
"""
from .distance import ALIGN_MODES, DistanceStats, point_index, surface_distance
from .icp import IcpResult, icp_to_surface
from .proximity import Nearest, PointIndex, SurfaceIndex, closest_points_on_triangles, nearest_on_surface
from .transforms import Similarity, umeyama
from .validate import as_arrays, validate_mesh

__all__ = [
    "ALIGN_MODES", "DistanceStats", "IcpResult", "Nearest", "PointIndex", "Similarity", "SurfaceIndex",
    "as_arrays", "closest_points_on_triangles", "icp_to_surface", "nearest_on_surface", "point_index",
    "surface_distance", "umeyama", "validate_mesh",
]
