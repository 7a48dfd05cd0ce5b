"""Face-region crop and face-aligned frame from the 7 NoW landmarks of the scan."""
from __future__ import annotations

import numpy as np

from ..errors import InputError

# NoW's crop (scan2mesh_computations.compute_mask): a ball around a point 30% of the way from the
# nose bottom (landmark 4) to the midpoint of the inner eye corners, radius 1.4 x mean(outer-eye distance,
# nose-to-bridge distance).
CROP_CENTRE_FRACTION = 0.3
CROP_RADIUS_FACTOR = 1.4
# Plausible adult outer-eye-corner distance in mm (population mean ~ 90 mm); outside this the
# scan is almost surely not in mm.
EYE_DISTANCE_RANGE_MM = (40.0, 200.0)


def now_crop(landmarks: np.ndarray) -> tuple[np.ndarray, float]:
    """(centre, radius) of the NoW face crop from the scan's 7 landmarks."""
    lmk = np.asarray(landmarks, dtype=np.float64)
    nose = lmk[4]
    bridge = (lmk[1] + lmk[2]) / 2
    centre = nose + CROP_CENTRE_FRACTION * (bridge - nose)
    radius = CROP_RADIUS_FACTOR * (np.linalg.norm(lmk[0] - lmk[3]) + np.linalg.norm(bridge - nose)) / 2
    return centre, float(radius)


def check_mm(landmarks: np.ndarray, side: str, scale_option: str, path: object = None) -> float:
    """Outer-eye distance in mm; a clear error when it says the file is not in millimetres."""
    lmk = np.asarray(landmarks)
    eye = float(np.linalg.norm(lmk[0] - lmk[3]))
    low, high = EYE_DISTANCE_RANGE_MM
    if not low <= eye <= high:
        hint = f"{scale_option} 1000 for metres, 10 for cm" if eye < low else f"{scale_option} 0.001 or check the file"
        raise InputError(f"{side} outer eye corners are {eye:.4g} units apart; shrn expects millimetres "
                         f"({low:.0f}-{high:.0f} mm) -- pass {hint}", path)
    return eye


def face_rotation(landmarks: np.ndarray) -> np.ndarray:
    """Rotation from the scan frame to a face frame: x to the subject's left, y up, z out of the face."""
    lmk = np.asarray(landmarks, dtype=np.float64)
    if len(lmk) != 7:
        return np.eye(3)
    x = lmk[3] - lmk[0]
    x /= np.linalg.norm(x)
    up = lmk[:4].mean(0) - lmk[5:7].mean(0)
    up -= x * (up @ x)
    norm = np.linalg.norm(up)
    if norm < 1e-9:
        return np.eye(3)
    up /= norm
    return np.stack([x, up, np.cross(x, up)])


def crop_mask(points: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, dict]:
    centre, radius = now_crop(landmarks)
    mask = np.linalg.norm(points - centre, axis=1) <= radius
    return mask, {"method": "now", "centre": centre.tolist(), "radius_mm": radius}


def faces_within(faces: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Triangles whose three vertices are kept, re-indexed to the kept vertices."""
    if len(faces) == 0:
        return np.zeros((0, 3), np.int64)
    new_index = np.full(len(keep), -1, np.int64)
    new_index[keep] = np.arange(int(keep.sum()))
    mapped = new_index[faces]
    return mapped[(mapped >= 0).all(axis=1)]
