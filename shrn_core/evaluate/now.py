"""The NoW protocol (Sanyal et al. 2019; github.com/soubhiksanyal/now_evaluation), re-implemented.

Steps, as in the official ``scan2mesh_computations.compute_errors``:
1. crop the scan to a ball around the face (``face_frame.now_crop``) -- needs the 7 NoW landmarks;
2. similarity from the prediction's landmarks to the scan's (Umeyama; NoW uses an equivalent
   Procrustes); rigid only in metrical mode;
3. refine by minimising the squared unsigned distances from the cropped scan points to the
   prediction's surface over scale, rotation and translation (``geometry.icp_to_surface``);
4. error of each cropped scan point = distance to the closest point on the aligned prediction's
   triangles; report median, mean and std.
"""
from __future__ import annotations

import logging

import numpy as np

from ..errors import InputError
from ..geometry import DistanceStats, SurfaceIndex, icp_to_surface, umeyama
from .face_frame import check_mm, crop_mask, face_rotation, faces_within
from .pair import EvalPair
from .result import EvalResult

log = logging.getLogger("shrn.evaluate")

MIN_SCAN_POINTS = 10
OVERLAP_MM = 10.0  # a scan point "overlaps" the prediction when within this distance after alignment
NO_OVERLAP_MM = 20.0


def crop_scan(pair: EvalPair, crop: bool, info: dict) -> tuple[np.ndarray, np.ndarray]:
    """Scan points (and triangles among them) inside the NoW face crop; the whole scan when not cropping."""
    info["scan_points_total"] = len(pair.scan_vertices)
    if crop and len(pair.scan_landmarks) == 7:
        mask, info["crop"] = crop_mask(pair.scan_vertices, pair.scan_landmarks)
        points, faces = pair.scan_vertices[mask], faces_within(pair.scan_faces, mask)
    else:
        if crop:
            warn(info, f"no face crop: the NoW crop needs the 7 NoW landmarks, got {len(pair.scan_landmarks)}")
        info["crop"] = {"method": "none"}
        points, faces = pair.scan_vertices, pair.scan_faces
    if len(points) < MIN_SCAN_POINTS:
        where = f" (centre {np.round(info['crop']['centre'], 1).tolist()}, radius {info['crop']['radius_mm']:.1f} mm)" \
            if info["crop"]["method"] == "now" else ""
        raise InputError(f"empty overlap: {len(points)} scan points inside the face crop{where}; are the scan "
                         "landmarks on this scan and in the same units?", pair.scan_path)
    info["scan_points_evaluated"] = len(points)
    return points, faces


def check_units(pair: EvalPair, metrical: bool, info: dict) -> None:
    if len(pair.scan_landmarks) == 7:
        info["scan_outer_eye_mm"] = check_mm(pair.scan_landmarks, "scan", "--gt-scale", pair.scan_path)
        if metrical:
            info["pred_outer_eye_mm"] = check_mm(pair.pred_landmarks, "prediction", "--pred-scale", pair.pred_path)


def evaluate_now(pair: EvalPair, metrical: bool = False, crop: bool = True, icp_iterations: int = 30,
                 icp_points: int = 20000) -> EvalResult:
    info: dict = {"warnings": [], "metrical": metrical}
    check_units(pair, metrical, info)
    points, faces = crop_scan(pair, crop, info)
    with_scale = not metrical
    init = umeyama(pair.pred_landmarks, pair.scan_landmarks, with_scale=with_scale)
    info["landmark_rms_mm_initial"] = _landmark_rms(init, pair)
    surface = SurfaceIndex(pair.pred_vertices, pair.pred_faces)
    if icp_iterations > 0:
        icp = icp_to_surface(points, surface, init=init, with_scale=with_scale, max_iterations=icp_iterations,
                             max_points=icp_points)
        transform = icp.transform
        info["icp"] = {"iterations": icp.iterations, "converged": icp.converged, "rms_mm": icp.rms}
    else:
        transform = init
    distances = surface.query(transform.inverse().apply(points)).distances * transform.scale
    check_overlap(distances, info, pair.scan_path)
    info["scale"] = transform.scale
    info["landmark_rms_mm"] = _landmark_rms(transform, pair)
    return EvalResult("now", DistanceStats.from_distances(distances, transform), points, faces, transform,
                      transform.apply(pair.pred_vertices), pair.pred_faces, face_rotation(pair.scan_landmarks),
                      info=info)


def check_overlap(distances: np.ndarray, info: dict, path: str) -> None:
    if not np.any(distances <= NO_OVERLAP_MM):
        raise InputError(f"empty overlap after alignment: no scan point within {NO_OVERLAP_MM:.0f} mm of the "
                         f"prediction (closest {distances.min():.1f} mm); check the landmarks of both sides", path)
    info["overlap_fraction"] = float(np.mean(distances <= OVERLAP_MM))
    if info["overlap_fraction"] < 0.5:
        warn(info, f"only {100 * info['overlap_fraction']:.0f}% of scan points are within {OVERLAP_MM:.0f} mm "
                   "of the prediction; is the alignment right?")


def warn(info: dict, message: str) -> None:
    """Record a warning in the metrics and log it (the CLI shows it on stderr)."""
    info.setdefault("warnings", []).append(message)
    log.warning(message)


def _landmark_rms(transform, pair: EvalPair) -> float:
    diff = transform.apply(pair.pred_landmarks) - pair.scan_landmarks
    return float(np.sqrt((diff**2).sum(axis=1).mean()))
