"""Rigid / similarity ICP of a point set onto a fixed triangle surface.

The surface moves, the points stay, and the objective is the sum of squared *unsigned
point-to-surface* distances of the points -- the objective of the NoW benchmark's refinement step
(``ScanToMesh`` minimised with dogleg in the official code). Two solvers:

- ``"point_to_plane"`` (default): Gauss-Newton on that objective. Each point's residual is its
  distance to its closest surface point; the residual's direction is the unit vector from the
  surface point to the point (the face normal when the point lies on the surface), so points whose
  closest point is on an edge or corner are handled exactly, not as if the face plane extended.
  Converges in a handful of iterations from a landmark initialisation.
- ``"point_to_point"``: classic alternation (closest surface points, then Umeyama). Slower to
  converge but robust from a poor start.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from ..errors import InputError
from .proximity import PointIndex, SurfaceIndex
from .transforms import Similarity, umeyama

ICP_METHODS = ("point_to_plane", "point_to_point")


@dataclass
class IcpResult:
    transform: Similarity  # maps the surface's frame onto the points' frame
    iterations: int
    rms: float  # RMS point-to-surface distance at the end, in the points' units
    converged: bool


def icp_to_surface(points: np.ndarray, surface: SurfaceIndex | PointIndex, init: Similarity | None = None,
                   with_scale: bool = True, method: str = "point_to_plane", max_iterations: int = 30,
                   tolerance: float = 1e-6, max_points: int | None = 20000,
                   extra_pairs: tuple[np.ndarray, np.ndarray, float] | None = None, seed: int = 0) -> IcpResult:
    """Find ``T`` so that ``T(surface)`` fits ``points``; with ``with_scale=False`` the scale of
    ``init`` is kept and only rotation and translation are refined.

    ``init`` maps the surface frame to the points frame. ``max_points`` caps the random subset used
    during iterations (final distances are the caller's business and use all points).
    ``extra_pairs`` = (surface-frame points, points-frame points, total weight) adds fixed
    correspondences such as landmarks, as REALY's regional ICP does (point-to-point solver only).
    Stops when the relative decrease of the mean squared distance falls below ``tolerance``.
    """
    if method not in ICP_METHODS:
        raise InputError(f"unknown ICP method {method!r}; choose one of: {', '.join(ICP_METHODS)}")
    pts = np.asarray(points, dtype=np.float64)
    if max_points is not None and len(pts) > max_points:
        pts = pts[np.random.default_rng(seed).choice(len(pts), max_points, replace=False)]
    transform = init or Similarity()
    if method == "point_to_plane" and extra_pairs is None and isinstance(surface, SurfaceIndex):
        return _gauss_newton(pts, surface, transform, with_scale, max_iterations, tolerance)
    return _alternate(pts, surface, transform, with_scale, max_iterations, tolerance, extra_pairs)


def _residuals(pts: np.ndarray, surface, transform: Similarity):
    """Surface points mapped into the points' frame, and the distances to them."""
    points = transform.inverse().apply(pts)
    nearest = surface.query(points, exact=False) if isinstance(surface, SurfaceIndex) else surface.query(points)
    moved = transform.apply(nearest.points)
    return nearest, moved, np.linalg.norm(pts - moved, axis=1)


def _gauss_newton(pts, surface: SurfaceIndex, transform: Similarity, with_scale, max_iterations, tolerance):
    centre = pts.mean(axis=0)
    nearest, moved, dist = _residuals(pts, surface, transform)
    mse = float(np.mean(dist**2))
    converged = False
    iteration = 0
    for iteration in range(1, max_iterations + 1):
        # Direction in which moving the surface point changes the distance (unit, points' frame).
        direction = moved - pts
        tiny = dist < 1e-9
        direction[~tiny] /= dist[~tiny, None]
        if tiny.any():
            tri = surface.triangles[nearest.faces[tiny]]
            normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]) @ transform.rotation.T
            direction[tiny] = normal / np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-300)
        rel = moved - centre
        # Residual r = n.(y - q); d r / d(omega, tau, sigma) for y -> centre + (1+sigma) R(omega) rel + tau.
        jac = [np.cross(rel, direction), direction]
        if with_scale:
            jac.append(np.einsum("ij,ij->i", direction, rel)[:, None])
        jac = np.hstack(jac)
        res = dist
        step, *_ = np.linalg.lstsq(jac, -res, rcond=None)
        improved = False
        for _ in range(6):  # halve the step until the true objective decreases
            candidate = _update(transform, step, centre, with_scale)
            c_nearest, c_moved, c_dist = _residuals(pts, surface, candidate)
            c_mse = float(np.mean(c_dist**2))
            if c_mse <= mse:
                improved = True
                break
            step = step / 2
        if not improved:
            converged = True
            break
        decrease = mse - c_mse
        transform, nearest, moved, dist, mse = candidate, c_nearest, c_moved, c_dist, c_mse
        if decrease <= tolerance * max(mse, 1e-12):
            converged = True
            break
    return IcpResult(transform, iteration, float(np.sqrt(mse)), converged)


def _update(transform: Similarity, step: np.ndarray, centre: np.ndarray, with_scale: bool) -> Similarity:
    rot = Rotation.from_rotvec(step[:3]).as_matrix()
    scale = float(np.exp(step[6])) if with_scale else 1.0
    # delta(y) = centre + scale * rot (y - centre) + tau
    delta = Similarity(scale, rot, centre - scale * rot @ centre + step[3:6])
    return transform.then(delta)


def _alternate(pts, surface, transform: Similarity, with_scale, max_iterations, tolerance, extra_pairs):
    previous = np.inf
    converged = False
    mse = np.inf
    iteration = 0
    weights = np.ones(len(pts))
    target = pts
    if extra_pairs is not None:
        src_x, dst_x, total = extra_pairs
        target = np.vstack([pts, dst_x])
        weights = np.concatenate([weights, np.full(len(src_x), total / max(len(src_x), 1))])
    for iteration in range(1, max_iterations + 1):
        nearest, moved, dist = _residuals(pts, surface, transform)
        mse = float(np.mean(dist**2))
        if previous - mse <= tolerance * max(mse, 1e-12):
            converged = True
            break
        previous = mse
        source = nearest.points if extra_pairs is None else np.vstack([nearest.points, extra_pairs[0]])
        if with_scale:
            transform = umeyama(source, target, with_scale=True, weights=weights)
        else:  # rigid refinement keeps the initial scale
            rigid = umeyama(source * transform.scale, target, with_scale=False, weights=weights)
            transform = Similarity(transform.scale, rigid.rotation, rigid.translation)
    return IcpResult(transform, iteration, float(np.sqrt(max(mse, 0.0))), converged)
