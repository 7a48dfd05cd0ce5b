"""What a segmentation backend returns."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class SegmentationResult:
    """Occlusion mask of one face, all arrays at the input image's size.

    ``mask``: uint8, 255 = occluded (a non-face object covers the face there), 0 = everything else.
    ``face_region``: uint8, 255 = the face the mask is relative to (visible skin and occluded parts).
    ``probability``: float32 in [0, 1], the backend's soft occlusion map (``mask`` is its >= 0.5 set).
    """

    mask: np.ndarray
    face_region: np.ndarray
    probability: np.ndarray
    backend: str
    face_index: int = 0
    info: dict = field(default_factory=dict)

    @property
    def occluded_fraction(self) -> float:
        """Share of the face region marked occluded."""
        region = self.face_region > 0
        return float((self.mask[region] > 0).mean()) if region.any() else 0.0
