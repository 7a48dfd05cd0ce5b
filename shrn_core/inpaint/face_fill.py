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
from .symmetry import MirrorMapper

log = logging.getLogger("shrn.inpaint")

GAIN_SIGMA = 0.12  # of the face width
GAIN_RANGE = (0.5, 2.0)
GAIN_WORK_SIZE = 96  # the gain is smooth: estimate it with the face about this many pixels wide
SOURCE_MARGIN = 2  # px: mirrored samples keep this far from occluded pixels (bilinear footprint, soft edges)
WHOLE_FACE_COVERAGE = 0.9
RING_FRACTION = 0.006  # of the face width: pixels this close outside the mask are not trusted as boundary


class FaceSymmetryInpainter(Inpainter):
    name = "face"
    needs_face = True

    def __init__(self, tolerance: float = 1e-3, ring: float | None = None, face_barrier: bool = True,
                 mirror: bool = True):
        """``ring``: px outside the mask not trusted as boundary (default 0.6% of the face width);
        ``face_barrier``: keep background colours from diffusing into the face; ``mirror=False``
        skips the mirroring (diffusion only, for ablations)."""
        self.mirror = bool(mirror)
        self.tolerance = float(tolerance)
        self.ring = ring
        self.face_barrier = bool(face_barrier)

    def fill(self, rgb: np.ndarray, mask: np.ndarray, face: Face | None, bit_depth: int) -> FillResult:
        warnings: list[str] = []
        if face is None:
            warnings.append("no face landmarks: filled by diffusion only")
            filled = poisson_fill(rgb, mask, tolerance=self.tolerance)
            return FillResult(filled, {"method": "diffusion", "mirror_fraction": 0.0}, warnings)

        landmarks = np.asarray(face.landmarks)
        hull = face_hull(landmarks, mask.shape)
        coverage = float((mask & hull).sum() / max(hull.sum(), 1))
        if coverage >= WHOLE_FACE_COVERAGE:
            warnings.append(f"mask covers {coverage:.0%} of the face: little to mirror, mostly a diffusion guess")
        face_width = float(np.ptp(landmarks[:468, 0]) or 1.0)
        ring = self.ring if self.ring is not None else RING_FRACTION * face_width
        hole = _dilate(mask, ring) if ring >= 1 else mask  # the ring just outside the mask is not trusted
        occluded = _dilate(hole, SOURCE_MARGIN)
        seam = _dilate(hole, 1)  # guidance is needed across the seam too
        ys, xs = np.nonzero(seam.any(axis=1))[0], np.nonzero(seam.any(axis=0))[0]
        box = (slice(ys[0], ys[-1] + 1), slice(xs[0], xs[-1] + 1))
        origin = np.array([box[1].start, box[0].start])

        mapper = MirrorMapper(landmarks, mask.shape)
        py, px = np.nonzero(seam[box])
        sx, sy = mapper.sources(py + origin[1], px + origin[0], occluded)
        box_shape = seam[box].shape
        map_x = np.full(box_shape, -1, np.float32)
        map_y = np.full(box_shape, -1, np.float32)
        defined = np.zeros(box_shape, bool)
        found = np.isfinite(sx) & self.mirror
        map_x[py[found], px[found]] = sx[found]
        map_y[py[found], px[found]] = sy[found]
        defined[py[found], px[found]] = True
        mirrored = cv2.remap(rgb, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        gain = illumination_gain(rgb, hull & ~occluded, mapper, face_width, box)
        guide = mirrored * gain

        local = np.ascontiguousarray(rgb[box])
        local_hole = hole[box]
        start = _initial_guess(local, local_hole, guide, defined)
        filled_box = poisson_fill(local, local_hole, guide, defined, initial=start, tolerance=self.tolerance,
                                  regions=hull[box] if self.face_barrier else None)
        filled = rgb.copy()
        filled[box] = filled_box
        masked = int(mask.sum())
        mirror_fraction = float((defined & mask[box]).sum() / max(masked, 1))
        info = {"method": "mirror+poisson" if self.mirror else "diffusion", "mirror_fraction": round(mirror_fraction, 4),
                "face_coverage": round(coverage, 4), "ring_px": round(float(ring), 2)}
        return FillResult(filled, info, warnings)


def illumination_gain(rgb: np.ndarray, pairs_allowed: np.ndarray, mapper: MirrorMapper, face_width: float,
                      box: tuple[slice, slice]) -> np.ndarray:
    """Gain (box-sized, HxWx3) so that ``gain * mirrored`` matches the local brightness and colour there.

    Estimated on a coarse grid of face pixels (the gain is smooth): for every grid pixel whose mirror
    is visible too, the Gaussian-weighted sums of its colour and of its mirror's colour are compared.
    """
    stride = max(1, int(round(face_width / GAIN_WORK_SIZE)))
    height, width = rgb.shape[:2]
    gy, gx = np.arange(0, height, stride), np.arange(0, width, stride)
    grid_y, grid_x = np.meshgrid(gy, gx, indexing="ij")
    allowed = pairs_allowed[grid_y, grid_x]
    sx, sy = mapper.sources(grid_y[allowed], grid_x[allowed], ~pairs_allowed)
    pairs = np.zeros(grid_y.shape, bool)
    pairs[allowed] = np.isfinite(sx)
    box_h, box_w = box[0].stop - box[0].start, box[1].stop - box[1].start
    if pairs.sum() < 8:
        return np.ones((box_h, box_w, 3), np.float32)
    map_x = np.full(grid_y.shape, -1, np.float32)
    map_y = np.full(grid_y.shape, -1, np.float32)
    map_x[allowed], map_y[allowed] = np.nan_to_num(sx, nan=-1), np.nan_to_num(sy, nan=-1)
    other = cv2.remap(rgb, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    own = rgb[grid_y, grid_x]
    weight = pairs.astype(np.float32)[:, :, None]
    sigma = GAIN_SIGMA * face_width / stride
    own_sum = cv2.GaussianBlur(own * weight, (0, 0), sigma)
    other_sum = cv2.GaussianBlur(other * weight, (0, 0), sigma)
    support = cv2.GaussianBlur(weight[:, :, 0], (0, 0), sigma)
    overall = (own[pairs].mean(axis=0) + 1e-4) / (other[pairs].mean(axis=0) + 1e-4)
    # where few pairs are near, the ratio of two tiny sums is noise: pull it towards the face-wide ratio
    confidence = np.clip(support / (support.max() * 0.05 + 1e-9), 0, 1)[:, :, None]
    gain = confidence * (own_sum + 1e-4) / (other_sum + 1e-4) + (1 - confidence) * overall
    gain = np.clip(gain, *GAIN_RANGE).astype(np.float32)
    # grid cell (i, j) sits at pixel (i * stride, j * stride)
    yy, xx = np.mgrid[box[0], box[1]].astype(np.float32) / stride
    return cv2.remap(gain, xx, yy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _dilate(mask: np.ndarray, radius: float) -> np.ndarray:
    size = 2 * int(round(radius)) + 1
    return cv2.dilate(mask.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))) > 0


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
