"""Dataclasses that carry face analysis between stages."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .landmark_sets import LANDMARKS_68, five_point


@dataclass
class Hand:
    """21 hand landmarks: x, y in pixels of the original image, z relative depth (same scale as x)."""

    landmarks: np.ndarray  # (21, 3) float32
    handedness: str  # "Left" / "Right" as mediapipe labels it (mirror-image convention)
    score: float


@dataclass
class Face:
    """One detected face.

    ``landmarks`` are mediapipe's 478 face-mesh points (468 mesh + 10 iris): x, y in pixels of the
    original image (origin at the top-left corner of the top-left pixel, x right, y down), z the
    relative depth in the same pixel scale, smaller = closer to the camera, 0 near the face centre.
    """

    bbox: np.ndarray  # (4,) x0, y0, x1, y1 in pixels
    score: float
    landmarks: np.ndarray  # (478, 3) float32

    @property
    def landmarks_68(self) -> np.ndarray:
        return self.landmarks[LANDMARKS_68, :2]

    @property
    def landmarks_5(self) -> np.ndarray:
        return five_point(self.landmarks)

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.bbox
        return float(max(x1 - x0, 0) * max(y1 - y0, 0))


@dataclass
class FaceAnalysis:
    """Everything the face stage found in one image."""

    image_path: str
    width: int
    height: int
    faces: list[Face]
    hands: list[Hand] = field(default_factory=list)
    selected: int = 0
    detectors: dict = field(default_factory=dict)

    @property
    def face(self) -> Face:
        """The selected face (the largest unless ``--face N`` chose another)."""
        return self.faces[self.selected]
