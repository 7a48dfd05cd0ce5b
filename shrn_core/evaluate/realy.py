"""A REALY-style region-wise protocol (Chai et al. 2022; github.com/czh-98/REALY), re-implemented.

What follows REALY: a global similarity from landmarks; then, for each region (nose, mouth,
forehead, cheeks), a rigid ICP of the prediction onto that scan region, with the region's landmarks
as extra correspondences weighted like REALY's repeated keypoints (as much weight as all region
points together; a quarter for the cheeks); errors measured per region.

What differs, because REALY's inputs are not available for arbitrary scans:
- Regions are cut from the scan geometrically in a face frame built from its 7 NoW landmarks
  (see :func:`region_labels`), not taken from REALY's pre-segmented scan regions and 85 keypoints.
- "Bidirectional" error = the mean of (scan->prediction mean distance over the region's scan
  points) and (prediction->scan mean distance over points sampled on the aligned prediction that
  fall in the same region), not REALY's non-rigid-ICP correspondence search. Both are reported.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..geometry import DistanceStats, SurfaceIndex, icp_to_surface, point_index, umeyama
from .face_frame import face_rotation, faces_within
from .now import check_units, crop_scan, warn
from .pair import EvalPair
from .result import EvalResult, RegionResult

REGIONS = ("nose", "mouth", "forehead", "cheek")
REGION_LANDMARKS = {"nose": [1, 2, 4], "mouth": [5, 6], "forehead": [0, 1, 2, 3], "cheek": [0, 3, 4, 5, 6]}
LANDMARK_WEIGHT = {"nose": 1.0, "mouth": 1.0, "forehead": 1.0, "cheek": 0.25}
PRED_SAMPLES = 20000
MIN_REGION_POINTS = 20


def region_labels(points: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Region index (into REGIONS) of each point, -1 for none, from the scan's 7 NoW landmarks.

    In the face frame (origin at the nose bottom, landmark 4; x to the subject's left, y up;
    u = outer-eye distance, Ye = eye-corner height, Ym = mouth-corner height, both relative to the
    origin): nose: |x| <= 0.2u and 0.2 Ym <= y <= Ye; mouth: inside the ellipse of half-axes 0.42u x 0.22u
    around the mouth-corner midpoint, below the nose; forehead (with brows and eyes, as in REALY):
    y >= Ye - 0.12u and |x| <= 0.6u; cheek: 0.2u < |x| <= 0.65u and Ym - 0.1u <= y < Ye - 0.12u.
    Earlier regions win where they overlap.
    """
    lmk = np.asarray(landmarks, dtype=np.float64)
    rot = face_rotation(lmk)
    local = (np.asarray(points, dtype=np.float64) - lmk[4]) @ rot.T
    lmk_local = (lmk - lmk[4]) @ rot.T
    u = float(np.linalg.norm(lmk[3] - lmk[0]))
    x, y = local[:, 0], local[:, 1]
    eye_y = lmk_local[:4, 1].mean()
    mouth = lmk_local[5:7, :2].mean(axis=0)
    labels = np.full(len(points), -1, np.int64)
    nose = (np.abs(x) <= 0.2 * u) & (y >= 0.2 * mouth[1]) & (y <= eye_y)
    mouth_r = ((x - mouth[0]) / (0.42 * u)) ** 2 + ((y - mouth[1]) / (0.22 * u)) ** 2 <= 1
    forehead = (y >= eye_y - 0.12 * u) & (np.abs(x) <= 0.6 * u)
    cheek = (np.abs(x) > 0.2 * u) & (np.abs(x) <= 0.65 * u) & (y >= mouth[1] - 0.1 * u) & (y < eye_y - 0.12 * u)
    for index, mask in reversed(list(enumerate([nose, mouth_r & ~nose, forehead, cheek]))):
        labels[mask] = index
    return labels


def sample_surface(vertices: np.ndarray, faces: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """Area-weighted random points on a triangle surface (fixed seed: reproducible metrics)."""
    tri = vertices[faces]
    area = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(faces), size=count, p=area / area.sum())
    r1, r2 = rng.random(count), rng.random(count)
    flip = r1 + r2 > 1
    r1[flip], r2[flip] = 1 - r1[flip], 1 - r2[flip]
    t = tri[chosen]
    return t[:, 0] + (t[:, 1] - t[:, 0]) * r1[:, None] + (t[:, 2] - t[:, 0]) * r2[:, None]


def evaluate_realy(pair: EvalPair, metrical: bool = False, crop: bool = True, icp_iterations: int = 30,
                   icp_points: int = 20000) -> EvalResult:
    if len(pair.scan_landmarks) != 7:
        raise InputError(f"the realy protocol cuts regions from the 7 NoW landmarks; got {len(pair.scan_landmarks)}",
                         pair.scan_path)
    info: dict = {"warnings": [], "metrical": metrical}
    check_units(pair, metrical, info)
    points, faces = crop_scan(pair, crop, info)
    labels = region_labels(points, pair.scan_landmarks)
    global_tf = umeyama(pair.pred_landmarks, pair.scan_landmarks, with_scale=not metrical)
    surface = SurfaceIndex(pair.pred_vertices, pair.pred_faces)
    pred_samples = sample_surface(pair.pred_vertices, pair.pred_faces, PRED_SAMPLES)
    regions: dict[str, RegionResult] = {}
    errors = np.full(len(points), np.nan)
    counts = {}
    for index, name in enumerate(REGIONS):
        mask = labels == index
        counts[name] = int(mask.sum())
        if mask.sum() < MIN_REGION_POINTS:
            warn(info, f"region {name}: only {int(mask.sum())} scan points, not evaluated")
            continue
        region_pts = points[mask]
        ids = REGION_LANDMARKS[name]
        # REALY repeats the keypoints so they weigh as much as all region points together.
        weight = LANDMARK_WEIGHT[name] * len(region_pts)
        icp = icp_to_surface(region_pts, surface, init=global_tf, with_scale=False, method="point_to_point",
                             max_iterations=icp_iterations, max_points=icp_points,
                             extra_pairs=(pair.pred_landmarks[ids], pair.scan_landmarks[ids], weight))
        tf = icp.transform
        s2p = surface.query(tf.inverse().apply(region_pts)).distances * tf.scale
        errors[mask] = s2p
        aligned_samples = tf.apply(pred_samples)
        in_region = region_labels(aligned_samples, pair.scan_landmarks) == index
        if crop and info["crop"]["method"] == "now":
            centre, radius = np.array(info["crop"]["centre"]), info["crop"]["radius_mm"]
            in_region &= np.linalg.norm(aligned_samples - centre, axis=1) <= radius
        p2s = None
        if in_region.sum() >= MIN_REGION_POINTS:
            region_faces = faces_within(faces, mask)
            target = point_index(region_pts, region_faces)
            p2s = DistanceStats.from_distances(target.query(aligned_samples[in_region]).distances, tf)
        else:
            warn(info, f"region {name}: the aligned prediction does not cover it")
        regions[name] = RegionResult(DistanceStats.from_distances(s2p, tf), p2s, tf)
    if not regions:
        raise InputError("empty overlap: no face region has enough scan points", pair.scan_path)
    info["region_points"] = counts
    keep = ~np.isnan(errors)
    info["scan_points_evaluated"] = int(keep.sum())
    stats = DistanceStats.from_distances(errors[keep], global_tf)
    return EvalResult("realy", stats, points[keep], faces_within(faces, keep), global_tf,
                      global_tf.apply(pair.pred_vertices), pair.pred_faces, face_rotation(pair.scan_landmarks),
                      regions=regions, info=info)
