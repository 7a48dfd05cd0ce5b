"""Subsets of mediapipe's 478 face-mesh points used for 3DMM alignment.

``LANDMARKS_68[i]`` is the mesh vertex closest in meaning to point ``i`` of the iBUG/dlib 68-point
scheme (0-16 jaw from the subject's right to left, 17-26 brows, 27-35 nose, 36-47 eyes, 48-67 mouth).
The face-mesh jaw line is denser and placed slightly differently from the 68-point annotation, so
points 0-16 are approximate; the inner points match closely.

The 5-point set is (subject's right eye centre, left eye centre, nose tip, right mouth corner,
left mouth corner), i.e. in a frontal photo: image-left eye, image-right eye, nose, image-left
mouth corner, image-right mouth corner -- the order Deep3DFaceRecon/HRN use for alignment.
"""
from __future__ import annotations

import numpy as np

LANDMARKS_68 = np.array([
    # jaw 0-16
    127, 234, 93, 132, 58, 172, 136, 150, 152, 379, 365, 397, 288, 361, 323, 454, 356,
    # right brow 17-21, left brow 22-26
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300,
    # nose bridge 27-30, nostrils 31-35
    168, 197, 5, 4, 98, 97, 2, 326, 327,
    # right eye 36-41
    33, 160, 158, 133, 153, 144,
    # left eye 42-47
    362, 385, 387, 263, 373, 380,
    # outer lip 48-59
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,
    # inner lip 60-67
    78, 82, 13, 312, 308, 317, 14, 87,
], dtype=np.int64)

RIGHT_IRIS = 468  # subject's right eye (image left in a frontal photo), 468..472
LEFT_IRIS = 473  # subject's left eye, 473..477
NOSE_TIP = 4
MOUTH_RIGHT = 61
MOUTH_LEFT = 291
RIGHT_EYE_CORNERS = (33, 133)
LEFT_EYE_CORNERS = (362, 263)

assert LANDMARKS_68.shape == (68,)


def five_point(landmarks: np.ndarray) -> np.ndarray:
    """(5, 2) alignment points from (478, >=2) landmarks (eye centres from the iris when present)."""
    pts = np.asarray(landmarks)[:, :2]
    if len(pts) >= 478:
        right_eye, left_eye = pts[RIGHT_IRIS], pts[LEFT_IRIS]
    else:
        right_eye = pts[list(RIGHT_EYE_CORNERS)].mean(axis=0)
        left_eye = pts[list(LEFT_EYE_CORNERS)].mean(axis=0)
    return np.stack([right_eye, left_eye, pts[NOSE_TIP], pts[MOUTH_RIGHT], pts[MOUTH_LEFT]]).astype(np.float32)
