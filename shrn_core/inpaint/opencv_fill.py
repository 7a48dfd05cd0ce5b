"""OpenCV's classic inpainting baselines: Telea's fast marching and Navier-Stokes (Bertalmio et al.)."""
from __future__ import annotations

import cv2
import numpy as np

from ..face.types import Face
from .base import INPAINTERS, FillResult, Inpainter

DEFAULT_RADIUS = 3.0


class OpenCVInpainter(Inpainter):
    def __init__(self, flag: int, name: str, radius: float = DEFAULT_RADIUS):
        self.flag = flag
        self.name = name
        self.radius = float(radius)

    def fill(self, rgb: np.ndarray, mask: np.ndarray, face: Face | None, bit_depth: int) -> FillResult:
        mask8 = mask.astype(np.uint8) * 255
        if bit_depth == 8:
            # 8-bit input: exact integers, the 3-channel path OpenCV users know
            src = np.rint(rgb * 255).astype(np.uint8)
            out = cv2.inpaint(src, mask8, self.radius, self.flag).astype(np.float32) / 255
        else:
            # OpenCV inpaints deeper images one channel at a time (float32 single-channel input)
            out = np.stack([cv2.inpaint(np.ascontiguousarray(rgb[:, :, c]), mask8, self.radius, self.flag)
                            for c in range(3)], axis=2)
        return FillResult(out, {"method": self.name, "radius": self.radius})


@INPAINTERS.register("telea")
def _telea(**options) -> Inpainter:
    return OpenCVInpainter(cv2.INPAINT_TELEA, "telea", **options)


@INPAINTERS.register("ns")
def _navier_stokes(**options) -> Inpainter:
    return OpenCVInpainter(cv2.INPAINT_NS, "ns", **options)
