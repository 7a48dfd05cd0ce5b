"""Align a photo to HRN's input crops from shrn's 5-point landmarks.

As in HRN (after Deep3DFaceRecon): a scaled-orthographic least-squares fit of the BFM's standard
5 landmarks to the detected ones gives a translation ``t`` and scale ``s``; the photo is resized
by ``102 / s`` (x ``size / 224`` for larger crops) and cropped to ``size`` around ``t``. The same
resize-and-crop is applied to the occlusion mask so the crops line up pixel for pixel.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from ...errors import FaceError
from .bfm import CROP

RESCALE = 102.0


@dataclass
class Crop:
    """Original photo pixel p (continuous, y down) -> crop pixel ``p * scale - offset``."""

    size: int
    scale: np.ndarray  # (2,) x and y factors of the resize
    offset: np.ndarray  # (2,) left, top of the crop in the resized photo
    resized: tuple[int, int]  # (width, height) of the resized photo

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        return np.asarray(points, np.float64)[..., :2] * self.scale - self.offset

    def to_photo(self, points: np.ndarray) -> np.ndarray:
        return (np.asarray(points, np.float64)[..., :2] + self.offset) / self.scale

    def affine_to_crop(self) -> np.ndarray:
        """2x3 matrix mapping photo pixels to crop pixels (for cv2.warpAffine)."""
        return np.array([[self.scale[0], 0, -self.offset[0]], [0, self.scale[1], -self.offset[1]]])


def fit_scaled_orthographic(points_2d: np.ndarray, points_3d: np.ndarray) -> tuple[np.ndarray, float]:
    """Least squares ``p2 = s * R[:2] @ p3 + t`` (R unconstrained, s the mean row norm) -> (t, s).

    ``points_2d`` are y-up image coordinates (5, 2), ``points_3d`` (5, 3)."""
    n = len(points_2d)
    A = np.zeros((2 * n, 8))
    A[0::2, 0:3] = points_3d
    A[0::2, 3] = 1
    A[1::2, 4:7] = points_3d
    A[1::2, 7] = 1
    k = np.linalg.lstsq(A, points_2d.reshape(-1), rcond=None)[0]
    s = (np.linalg.norm(k[0:3]) + np.linalg.norm(k[4:7])) / 2
    return np.array([k[3], k[7]]), float(s)


def plan_crop(width: int, height: int, five_points: np.ndarray, lm3d_5: np.ndarray, size: int = CROP) -> Crop:
    """The resize-and-crop HRN applies for a crop of ``size`` pixels."""
    five = np.asarray(five_points, np.float64).copy()
    if five.shape != (5, 2) or not np.isfinite(five).all():
        raise FaceError("the face needs 5 finite alignment landmarks")
    five[:, 1] = height - 1 - five[:, 1]
    t, s = fit_scaled_orthographic(five, np.asarray(lm3d_5, np.float64))
    if not np.isfinite(s) or s <= 1e-8:
        raise FaceError("degenerate face landmarks (cannot estimate the face scale)")
    scale = RESCALE * (size / CROP) / s
    w, h = int(width * scale), int(height * scale)
    if w < 1 or h < 1 or w > 40000 or h > 40000:
        raise FaceError(f"implausible face size for alignment (resize factor {scale:.3g})")
    left = int(w / 2 - size / 2 + (t[0] - width / 2) * scale)
    top = int(h / 2 - size / 2 + (height / 2 - t[1]) * scale)
    return Crop(size=size, scale=np.array([w / width, h / height]), offset=np.array([left, top], np.float64), resized=(w, h))


def apply_crop(image: np.ndarray, crop: Crop) -> np.ndarray:
    """Resize (bicubic) and crop an HxW(xC) uint8 array; outside the photo is zero.

    Shrinking goes through PIL's antialiased resize of the whole photo, as HRN does; enlarging (a
    small face) warps only the crop, so a large photo is never blown up in memory."""
    if crop.scale.max() > 1.0:
        matrix = crop.affine_to_crop()
        matrix[:, 2] += 0.5 * crop.scale - 0.5  # continuous -> pixel-index coordinates
        return cv2.warpAffine(np.ascontiguousarray(image), matrix, (crop.size, crop.size), flags=cv2.INTER_CUBIC,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    pil = Image.fromarray(np.ascontiguousarray(image))
    pil = pil.resize(crop.resized, resample=Image.BICUBIC)
    left, top = (int(v) for v in crop.offset)
    return np.array(pil.crop((left, top, left + crop.size, top + crop.size)))
