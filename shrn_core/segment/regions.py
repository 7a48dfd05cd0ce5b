"""Face geometry as pixel masks: the face region, facial-feature zones, skin sample patches, hands.

All functions take landmark coordinates already mapped into the frame being rasterised (x, y in
pixels of that frame) and return uint8 masks (nonzero = set) of the given ``(height, width)``.
"""
from __future__ import annotations

import numpy as np
import cv2

from ..face.topology import load_topology
from ..face.types import Hand

# Closed landmark loops of mediapipe's face mesh (from its FACEMESH_* edge lists, chained).
FACE_OVAL = [10, 109, 67, 103, 54, 21, 162, 127, 234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378,
             379, 365, 397, 288, 361, 323, 454, 356, 389, 251, 284, 332, 297, 338]
LEFT_EYE = [249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466, 263]
RIGHT_EYE = [7, 33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163]
LEFT_BROW = [276, 282, 283, 285, 293, 295, 296, 300, 334, 336]
RIGHT_BROW = [46, 52, 53, 55, 63, 65, 66, 70, 105, 107]
OUTER_LIPS = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185]
NOSTRILS = [64, 98, 97, 2, 326, 327, 294, 278, 48, 219, 439, 240, 460, 99, 328]

# Features are not skin-coloured in a clean face; they count as occluded only when surrounded by an
# occluder (see auto.py). Each entry: landmark ids and how far (fraction of the inter-ocular
# distance) the zone is grown to take in lashes, eye shadow and lip edges.
FEATURE_ZONES = {
    "right_eye": (RIGHT_EYE, 0.07),
    "left_eye": (LEFT_EYE, 0.07),
    "right_brow": (RIGHT_BROW, 0.06),
    "left_brow": (LEFT_BROW, 0.06),
    "lips": (OUTER_LIPS, 0.05),
    "nostrils": (NOSTRILS, 0.03),
}

# Skin sample patches: (mesh vertex at the centre, prior reliability). Forehead and upper cheeks are
# the places least often covered (masks cover the lower face, glasses the eyes).
SKIN_PATCHES = [
    (151, 1.0), (108, 0.9), (337, 0.9),  # forehead centre, right, left
    (9, 0.8),  # glabella
    (50, 0.5), (280, 0.5),  # upper cheeks
    (117, 0.5), (346, 0.5),  # cheekbones below the eyes
    (6, 0.5),  # nose bridge
    (207, 0.25), (427, 0.25),  # lower cheeks
    (199, 0.2),  # chin
]
PATCH_RADIUS = 0.09  # fraction of the inter-ocular distance

# Hand skeleton (mediapipe's 21 points): bones drawn as thick lines, palm as a polygon.
HAND_BONES = [(0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10), (10, 11), (11, 12),
              (9, 13), (13, 14), (14, 15), (15, 16), (13, 17), (0, 17), (17, 18), (18, 19), (19, 20)]
PALM = [0, 1, 2, 5, 9, 13, 17]
FINGER_WIDTH = 0.3  # finger thickness relative to the palm width (index to little-finger knuckle)

_SUBPIXEL_BITS = 3
_SUBPIXEL = float(1 << _SUBPIXEL_BITS)


def _fixed(points: np.ndarray) -> np.ndarray:
    """Fixed-point coordinates for OpenCV drawing, whose pixel centres sit on integers (ours at +0.5)."""
    return np.round((np.asarray(points, np.float64)[..., :2] - 0.5) * _SUBPIXEL).astype(np.int32)


def inter_ocular(landmarks: np.ndarray) -> float:
    eyes = np.asarray(landmarks)[[468, 473], :2] if len(landmarks) >= 478 else np.asarray(landmarks)[[33, 263], :2]
    return float(max(np.linalg.norm(eyes[1] - eyes[0]), 1.0))


def face_region(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The face as the union of the face-mesh triangles, holes (eyes, mouth) filled."""
    triangles = load_topology().triangles
    points = np.asarray(landmarks, np.float64)[:, :2]
    region = np.zeros(shape, np.uint8)
    # Rasterised in the face's bounding box only (an integer shift changes no pixel): large photos
    # cost no more than small ones.
    x0, y0 = np.maximum(np.floor(points.min(axis=0)).astype(int) - 2, 0)
    x1, y1 = np.minimum(np.ceil(points.max(axis=0)).astype(int) + 2, [shape[1], shape[0]])
    if x1 <= x0 or y1 <= y0:
        return region
    box = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(box, list(_fixed((points - [x0, y0])[triangles])), 255, lineType=cv2.LINE_8, shift=_SUBPIXEL_BITS)
    contours, _ = cv2.findContours(box, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(box, contours, -1, 255, thickness=cv2.FILLED)
    region[y0:y1, x0:x1] = box
    return region


def feature_zones(landmarks: np.ndarray, shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """Masks of eyes, brows, lips and nostrils (convex hull of their landmarks, slightly grown)."""
    scale = inter_ocular(landmarks)
    zones = {}
    for name, (ids, grow) in FEATURE_ZONES.items():
        zone = np.zeros(shape, np.uint8)
        hull = cv2.convexHull(np.asarray(landmarks)[ids, :2].astype(np.float32))
        cv2.fillPoly(zone, [_fixed(hull.reshape(-1, 2))], 255, shift=_SUBPIXEL_BITS)
        radius = max(int(round(grow * scale)), 1)
        zones[name] = cv2.dilate(zone, _disc(radius))
    return zones


def skin_patches(landmarks: np.ndarray, shape: tuple[int, int]) -> list[tuple[np.ndarray, float]]:
    """Small discs on forehead, cheeks, nose bridge and chin with their prior reliability."""
    radius = max(PATCH_RADIUS * inter_ocular(landmarks), 1.5)
    patches = []
    for vertex, weight in SKIN_PATCHES:
        patch = np.zeros(shape, np.uint8)
        centre = _fixed(np.asarray(landmarks)[vertex])
        cv2.circle(patch, (int(centre[0]), int(centre[1])), int(round(radius * _SUBPIXEL)), 255, -1,
                   shift=_SUBPIXEL_BITS)
        patches.append((patch, weight))
    return patches


def hands_mask(hands: list[Hand], shape: tuple[int, int], to_frame=lambda p: p) -> np.ndarray:
    """Pixels covered by the detected hands: palm polygon plus fingers as thick lines.

    ``to_frame`` maps (N, 2) image-pixel points into the frame being rasterised.
    """
    mask = np.zeros(shape, np.uint8)
    for hand in hands:
        points = to_frame(np.asarray(hand.landmarks, np.float64)[:, :2])
        palm_width = float(np.linalg.norm(points[5] - points[17]))
        thickness = max(int(round(FINGER_WIDTH * palm_width)), 2)
        fixed = _fixed(points)
        cv2.fillPoly(mask, [cv2.convexHull(fixed[PALM])], 255, shift=_SUBPIXEL_BITS)
        for a, b in HAND_BONES:
            cv2.line(mask, tuple(int(v) for v in fixed[a]), tuple(int(v) for v in fixed[b]), 255, thickness,
                     lineType=cv2.LINE_8, shift=_SUBPIXEL_BITS)
        for tip in (4, 8, 12, 16, 20):
            cv2.circle(mask, tuple(int(v) for v in fixed[tip]), int(thickness * _SUBPIXEL) // 2, 255, -1,
                       shift=_SUBPIXEL_BITS)
    return mask


def _disc(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
