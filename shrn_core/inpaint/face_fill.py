"""The ``face`` backend: fill occluded face pixels from their mirror image across the face.

1. **Mirror sources** (``symmetry.mirror_map``): every masked pixel whose mirrored position on the
   other half of the face is visible gets that position as its source.
2. **Illumination matching**: the two halves of a face are rarely lit alike, so the mirrored
   pixels are multiplied by a smooth per-channel gain, the ratio of local averages of each pixel
   and its mirror over pixel pairs where both are visible (a wide Gaussian, so the gain reaching
   into the hole comes from the pairs around it).
3. **Gradient-domain blend** (``poisson``): one Poisson solve over all masked pixels takes the
   gradients of the gain-matched mirror image where it is defined and zero gradients elsewhere,
   with the visible pixels around the hole as boundary values. Mirrored texture therefore meets
   its surroundings without a seam, and pixels whose mirror is hidden too (or that lie off the
   face) receive a harmonic, i.e. diffusion, fill.
"""
from __future__ import annotations

import logging

import cv2
import numpy as np

from ..face.types import Face
from .base import INPAINTERS, FillResult, Inpainter
from .masks import face_hull
from .poisson import poisson_fill
from .symmetry import mirror_map

log = logging.getLogger("shrn.inpaint")

GAIN_SIGMA = 0.12  # of the face width
GAIN_RANGE = (0.5, 2.0)
GAIN_WORK_SIZE = 96  # the gain is smooth: estimate it with the face about this many pixels wide
SOURCE_MARGIN = 2  # px: mirrored samples keep this far from occluded pixels (bilinear footprint, soft edges)
WHOLE_FACE_COVERAGE = 0.9


class FaceSymmetryInpainter(Inpainter):
    name = "face"
    needs_face = True

    def __init__(self, tolerance: float = 1e-3):
        self.tolerance = float(tolerance)

    def fill(self, rgb: np.ndarray, mask: np.ndarray, face: Face | None, bit_depth: int) -> FillResult:
        warnings: list[str] = []
        if face is None:
            warnings.append("no face landmarks: filled by diffusion only")
            filled = poisson_fill(rgb, mask, tolerance=self.tolerance)
            return FillResult(filled, {"method": "diffusion", "mirror_fraction": 0.0}, warnings)

        hull = face_hull(face.landmarks, mask.shape)
        coverage = float((mask & hull).sum() / max(hull.sum(), 1))
        if coverage >= WHOLE_FACE_COVERAGE:
            warnings.append(f"mask covers {coverage:.0%} of the face: little to mirror, mostly a diffusion guess")

        occluded = cv2.dilate(mask.astype(np.uint8), np.ones((2 * SOURCE_MARGIN + 1,) * 2, np.uint8)) > 0
        # sources are needed in the hole and one pixel around it (guidance across the seam), and
        # across the whole face for the illumination statistics
        ring = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        mirror = mirror_map(face.landmarks, mask.shape, hull | ring, occluded)
        defined = mirror.defined
        mirrored = cv2.remap(rgb, np.nan_to_num(mirror.source_x, nan=-1), np.nan_to_num(mirror.source_y, nan=-1),
                             cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        gain = illumination_gain(rgb, mirrored, defined & ~occluded, face)
        guide = mirrored * gain
        guide_valid = defined

        initial = np.where(defined[:, :, None], guide, 0).astype(np.float32)
        filled = poisson_fill(rgb, mask, guide, guide_valid, initial=_initial_guess(rgb, mask, initial, defined),
                              tolerance=self.tolerance)
        masked = int(mask.sum())
        mirror_fraction = float((defined & mask).sum() / max(masked, 1))
        info = {"method": "mirror+poisson", "mirror_fraction": round(mirror_fraction, 4),
                "face_coverage": round(coverage, 4)}
        return FillResult(filled, info, warnings)


def illumination_gain(rgb: np.ndarray, mirrored: np.ndarray, pairs: np.ndarray, face: Face) -> np.ndarray:
    """HxWx3 gain so that ``gain * mirrored`` matches the local brightness and colour of each side."""
    points = np.asarray(face.landmarks)[:468, :2]
    face_width = float(np.ptp(points[:, 0]) or 1.0)
    factor = min(1.0, GAIN_WORK_SIZE / face_width)
    size = (max(1, round(rgb.shape[1] * factor)), max(1, round(rgb.shape[0] * factor)))
    weight = pairs.astype(np.float32)[:, :, None]
    own = cv2.resize(rgb * weight, size, interpolation=cv2.INTER_AREA)
    other = cv2.resize(mirrored * weight, size, interpolation=cv2.INTER_AREA)
    sigma = GAIN_SIGMA * face_width * factor
    own = cv2.GaussianBlur(own, (0, 0), sigma)
    other = cv2.GaussianBlur(other, (0, 0), sigma)
    if not pairs.any():
        return np.ones_like(rgb)
    overall = (rgb[pairs].mean(axis=0) + 1e-4) / (mirrored[pairs].mean(axis=0) + 1e-4)
    # where few pairs are near, the ratio of two tiny sums is noise: pull it towards the face-wide ratio
    support = cv2.GaussianBlur(cv2.resize(weight[:, :, 0], size, interpolation=cv2.INTER_AREA), (0, 0), sigma)
    confidence = np.clip(support / (support.max() * 0.05 + 1e-9), 0, 1)[:, :, None]
    local = (own + 1e-4) / (other + 1e-4)
    gain = confidence * local + (1 - confidence) * overall
    gain = np.clip(gain, *GAIN_RANGE).astype(np.float32)
    return cv2.resize(gain, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)


def _initial_guess(rgb: np.ndarray, mask: np.ndarray, guide: np.ndarray, defined: np.ndarray) -> np.ndarray:
    """A start for the solver: the guide where defined, else a blurred fill of the known pixels."""
    known = ~mask
    start = np.where(known[:, :, None], rgb, 0).astype(np.float32)
    weight = known.astype(np.float32)
    level_img, level_w = start, weight
    # push-pull: average down until every pixel has support, then pull back up
    pyramid = []
    while level_w.min() <= 0 and min(level_w.shape) > 2:
        pyramid.append((level_img, level_w))
        level_img = cv2.resize(level_img * level_w[:, :, None], None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
        level_w = cv2.resize(level_w, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
        level_img = level_img / np.maximum(level_w, 1e-6)[:, :, None]
        level_w = (level_w > 1e-6).astype(np.float32)
    estimate = level_img
    for img, w in reversed(pyramid):
        up = cv2.resize(estimate, (w.shape[1], w.shape[0]), interpolation=cv2.INTER_LINEAR)
        estimate = np.where(w[:, :, None] > 0, img, up)
    hole = mask & defined
    estimate[hole] = guide[hole]
    return estimate


@INPAINTERS.register("face")
def _face(**options) -> Inpainter:
    return FaceSymmetryInpainter(**options)
