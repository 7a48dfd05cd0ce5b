"""The ``face`` backend: fill occluded face pixels from their mirror image across the face.

1. **Mirror sources** (``symmetry.MirrorMapper``): every masked pixel whose mirrored position on
   the other half of the face is visible gets that position as its source.
2. **Illumination matching** (``GainField``): the two halves of a face are rarely lit alike, so the
   mirrored pixels are multiplied by a smooth per-channel gain, the ratio of local averages of
   pixels and their mirrors where both are visible.
3. **Mirror check** (``mirror_is_better``): the mirror must predict the visible band around the
   hole about as well as a smooth surface does, else the hole gets diffusion only.
4. **Gradient-domain blend** (``poisson``): one Poisson solve over the hole takes the gradients of
   the gain-matched mirror image where it is defined and zero gradients elsewhere, with the visible
   pixels around the hole as boundary values. Mirrored texture meets its surroundings without a
   seam; pixels whose mirror is hidden too get a harmonic (diffusion) fill. A thin ring just outside
   the mask is solved for as well rather than trusted as boundary, and edges across the face
   outline are nearly cut, so background colours do not diffuse into the face.

See docs/inpainting.md.
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
VALIDATION_BAND = 0.08  # of the face width: the visible band around the hole used to check the mirror
VALIDATION_WORK_SIZE = 128
SMOOTH_SIGMA = 0.03  # of the face width: the low-pass a diffusion fill is compared as
MIN_VALIDATION_PAIRS = 30
MIRROR_TOLERANCE = 2.0  # mirror refused only when clearly worse than a smooth surface
RING_FRACTION = 0.006  # of the face width: pixels this close outside the mask are not trusted as boundary
MIN_RING_PX = 1.0


class FaceSymmetryInpainter(Inpainter):
    name = "face"
    needs_face = True

    def __init__(self, tolerance: float = 1e-3, ring: float | None = None, face_barrier: bool = True,
                 mirror: bool = True, validate: bool = True):
        """``ring``: px outside the mask not trusted as boundary (default 0.6% of the face width);
        ``face_barrier``: keep background colours from diffusing into the face; ``mirror=False``
        skips the mirroring (diffusion only, for ablations); ``validate=False`` mirrors even where the
        mirror predicts the visible surroundings worse than a smooth surface."""
        self.mirror = bool(mirror)
        self.validate = bool(validate)
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
        ring = self.ring if self.ring is not None else max(MIN_RING_PX, RING_FRACTION * face_width)
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
        gain = GainField(rgb, hull & ~occluded, mapper, face_width)
        validation: dict = {}
        if self.mirror and self.validate and defined.any():
            use_mirror, validation = mirror_is_better(rgb, hole, occluded, hull, mapper, gain, face_width)
            validation["mirror_rejected"] = not use_mirror
            if not use_mirror:
                defined[:] = False
        yy, xx = np.mgrid[box[0], box[1]]
        guide = mirrored * gain.at(yy, xx)

        local = np.ascontiguousarray(rgb[box])
        local_hole = hole[box]
        start = _initial_guess(local, local_hole, guide, defined)
        filled_box = poisson_fill(local, local_hole, guide, defined, initial=start, tolerance=self.tolerance,
                                  regions=hull[box] if self.face_barrier else None)
        filled = rgb.copy()
        filled[box] = filled_box
        masked = int(mask.sum())
        mirror_fraction = float((defined & mask[box]).sum() / max(masked, 1))
        info = {"method": "mirror+poisson" if defined.any() else "diffusion", "mirror_fraction": round(mirror_fraction, 4),
                "face_coverage": round(coverage, 4), "ring_px": round(float(ring), 2), **validation}
        return FillResult(filled, info, warnings)


class GainField:
    """A smooth per-channel gain so that ``gain * mirrored`` matches the local brightness and colour.

    Estimated on a coarse grid of face pixels (the gain is smooth): for every grid pixel whose mirror
    is visible too, the Gaussian-weighted sums of its colour and of its mirror's colour are compared.
    """

    def __init__(self, rgb: np.ndarray, pairs_allowed: np.ndarray, mapper: MirrorMapper, face_width: float):
        self.stride = stride = max(1, int(round(face_width / GAIN_WORK_SIZE)))
        height, width = rgb.shape[:2]
        grid_y, grid_x = np.meshgrid(np.arange(0, height, stride), np.arange(0, width, stride), indexing="ij")
        allowed = pairs_allowed[grid_y, grid_x]
        sx, sy = mapper.sources(grid_y[allowed], grid_x[allowed], ~pairs_allowed)
        pairs = np.zeros(grid_y.shape, bool)
        pairs[allowed] = np.isfinite(sx)
        self.pairs = int(pairs.sum())
        if self.pairs < 8:
            self.grid = np.ones(grid_y.shape + (3,), np.float32)
            return
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
        # where few pairs are near, the ratio of two tiny sums is noise: lean towards the face-wide ratio
        confidence = np.clip(support / (support.max() * 0.05 + 1e-9), 0, 1)[:, :, None]
        gain = confidence * (own_sum + 1e-4) / (other_sum + 1e-4) + (1 - confidence) * overall
        self.grid = np.clip(gain, *GAIN_RANGE).astype(np.float32)

    def at(self, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        """Gain at pixels (any array shape); grid cell (i, j) sits at pixel (i * stride, j * stride)."""
        shape = np.shape(xs)
        as_map = lambda v: (np.asarray(v, np.float32) / self.stride).reshape(shape if len(shape) == 2 else (-1, 1))  # noqa: E731
        values = cv2.remap(self.grid, as_map(xs), as_map(ys), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return values.reshape(shape + (3,))


def mirror_is_better(rgb: np.ndarray, hole: np.ndarray, occluded: np.ndarray, hull: np.ndarray,
                     mapper: MirrorMapper, gain: GainField, face_width: float) -> tuple[bool, dict]:
    """Does the gain-matched mirror predict the visible face around the hole better than a smooth surface?

    On a band of visible face pixels around the hole, the mean absolute error of the mirror
    prediction is compared with that of a low-pass version of the image (what a diffusion fill can
    reach at best). Misplaced landmarks (a hidden smile read as a closed mouth) and asymmetric faces
    fail this test, and the hole then gets diffusion only.
    """
    stride = max(1, int(round(face_width / VALIDATION_WORK_SIZE)))
    coarse = np.s_[::stride, ::stride]
    band = _dilate(hole[coarse], VALIDATION_BAND * face_width / stride) & ~occluded[coarse] & hull[coarse]
    ys, xs = np.nonzero(band)
    ys, xs = ys * stride, xs * stride
    sx, sy = mapper.sources(ys, xs, occluded)
    ok = np.isfinite(sx)
    if ok.sum() < MIN_VALIDATION_PAIRS:
        return True, {"validation_pairs": int(ok.sum())}
    ys, xs, sx, sy = ys[ok], xs[ok], sx[ok], sy[ok]
    mirrored = cv2.remap(rgb, sx.astype(np.float32).reshape(-1, 1), sy.astype(np.float32).reshape(-1, 1),
                         cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).reshape(-1, 3)
    predicted = mirrored * gain.at(ys, xs)
    actual = rgb[ys, xs]
    # low-pass by normalised convolution over visible pixels, at reduced resolution
    factor = min(1.0, VALIDATION_WORK_SIZE / face_width)
    size = (max(1, round(rgb.shape[1] * factor)), max(1, round(rgb.shape[0] * factor)))
    visible = (~occluded).astype(np.float32)
    sigma = SMOOTH_SIGMA * face_width * factor
    num = cv2.GaussianBlur(cv2.resize(rgb * visible[:, :, None], size, interpolation=cv2.INTER_AREA), (0, 0), sigma)
    den = cv2.GaussianBlur(cv2.resize(visible, size, interpolation=cv2.INTER_AREA), (0, 0), sigma)
    smooth_img = num / np.maximum(den, 1e-6)[:, :, None]
    smooth = cv2.remap(smooth_img, ((xs + 0.5) * factor - 0.5).astype(np.float32).reshape(-1, 1),
                       ((ys + 0.5) * factor - 0.5).astype(np.float32).reshape(-1, 1), cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE).reshape(-1, 3)
    mirror_error = float(np.abs(predicted - actual).mean())
    smooth_error = float(np.abs(smooth - actual).mean())
    stats = {"validation_pairs": int(len(ys)), "mirror_error": round(mirror_error * 255, 2),
             "smooth_error": round(smooth_error * 255, 2)}
    return mirror_error < MIRROR_TOLERANCE * smooth_error, stats


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
