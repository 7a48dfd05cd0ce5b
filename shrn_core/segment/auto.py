"""The training-free ``auto`` backend: face geometry + hands + a per-image skin model + GrabCut.

See docs/segmentation.md for the method. Everything runs in a small working crop around the face
(the face's longer side resampled to ``work_size`` pixels) and is mapped back to the photo at the end.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..face.types import FaceAnalysis
from . import regions
from .skin import choose_seed_patches, colour_features, fit_gaussian, learn_skin_model
from .types import SegmentationResult


OVERHANG_MATCH = 2.0  # Mahalanobis distance to the occluder's colour within which the overhang grows
SURE_SKIN = 2.0  # skin-model distance of pixels used to fill the outside for GrabCut


@dataclass
class AutoOptions:
    work_size: int = 128  # face size (px) in the working crop
    skin_threshold: float = 4.0  # skin-model distance beyond which a pixel starts as "probably occluder"
    keep_threshold: float = 3.0  # an occluded blob needs half its pixels at least this far from skin
    seed_threshold: float = 1.5  # seed-patch pixels closer than this to the skin colour are fixed as face
    grabcut_iterations: int = 3
    feature_fill: float = 0.5  # a feature zone whose surrounding ring is this occluded counts as covered
    min_component: float = 0.004  # occluded blobs smaller than this share of the face region are dropped
    rim: float = 0.04  # width (x face size) of the outline band decided by its neighbours, not its colour
    overhang: float = 0.2  # follow an occluder this far (x face size) beyond the face region; 0 = never
    use_hands: bool = True


class AutoSegmenter:
    name = "auto"

    def __init__(self, **options):
        self.options = AutoOptions(**options)

    def __call__(self, rgb: np.ndarray, analysis: FaceAnalysis) -> SegmentationResult:
        opts = self.options
        height, width = rgb.shape[:2]
        landmarks = np.asarray(analysis.face.landmarks, np.float64)
        crop = _WorkCrop.around(landmarks, width, height, opts.work_size, margin=0.12 + opts.overhang)
        steps = self.work_steps(crop.extract(rgb), crop.to_work(landmarks),
                                [_hand_in(h, crop) for h in analysis.hands] if opts.use_hands else [])
        occluded = steps["final"]
        full_region = regions.face_region(landmarks, (height, width))
        probability = crop.to_image(occluded.astype(np.float32), width, height)
        if opts.overhang <= 0:
            probability *= full_region > 0
        mask = np.where(probability >= 0.5, 255, 0).astype(np.uint8)
        info = {"work_size": list(occluded.shape), "skin_seed_patches": steps["seed_patches"]}
        return SegmentationResult(mask=mask, face_region=full_region, probability=probability, backend=self.name,
                                  face_index=analysis.selected, info=info)

    def work_steps(self, work: np.ndarray, lm: np.ndarray, hands: list) -> dict:
        """The whole decision in the working crop; returns every intermediate map (for docs/debugging)."""
        opts = self.options
        shape = work.shape[:2]
        region = regions.face_region(lm, shape) > 0
        zones = {name: z > 0 for name, z in regions.feature_zones(lm, shape).items()}
        features = np.logical_or.reduce(list(zones.values()))
        hand_mask = regions.hands_mask(hands, shape) > 0 if hands else np.zeros(shape, bool)
        patches = regions.skin_patches(lm, shape)
        # The mesh outline is a few pixels off in places and takes in slivers of hair or background;
        # decide on an eroded core and carry occluders that reach the core's edge out to the outline.
        rim = max(int(round(opts.rim * np.ptp(lm[:468, :2], axis=0).max())), 1)
        core = cv2.erode(region.astype(np.uint8), _disc(rim)) > 0
        passable = core & ~features & ~hand_mask
        colour = colour_features(work)
        patch_masks = [(p > 0) & passable for p, _ in patches]
        seed_patches = choose_seed_patches(patch_masks, [w for _, w in patches], colour)
        seed_pixels = np.logical_or.reduce([patch_masks[i] for i in seed_patches]) if seed_patches else np.zeros(shape, bool)
        skin = learn_skin_model(colour, work, seed_pixels, passable, seed_patches)
        steps = {"work": work, "region": region, "features": features, "hands": hand_mask, "patches": patches,
                 "seed_patches": seed_patches}
        if skin is None:  # no visible skin patch in the crop: nothing to learn from
            steps["final"] = hand_mask & region
            return steps
        distance = skin.distance(colour)
        seeds = seed_pixels & (distance < opts.seed_threshold)
        occluded = _graph_cut(work, core, features, hand_mask, seeds, distance, opts)
        steps.update(skin_distance=distance, seeds=seeds, raw=occluded.copy())
        occluded = _resolve_features(occluded, zones, core, lm, opts.feature_fill)
        occluded |= (cv2.dilate(occluded.astype(np.uint8), _disc(rim + 1)) > 0) & region & ~core
        occluded |= hand_mask & region
        occluded = _drop_small(occluded, opts.min_component * region.sum())
        steps["cleaned"] = occluded.copy()
        if opts.overhang > 0:
            occluded = _follow_overhang(colour, distance, occluded, region, lm, opts)
        steps["final"] = occluded
        return steps


def _graph_cut(work, region, features, hands, seeds, distance, opts: AutoOptions) -> np.ndarray:
    """GrabCut with the visible face as foreground; returns the occluded pixels of the face region."""
    labels = np.full(region.shape, cv2.GC_FGD, np.uint8)
    labels[region] = np.where(distance[region] < opts.skin_threshold, cv2.GC_PR_FGD, cv2.GC_PR_BGD)
    labels[region & features] = cv2.GC_PR_FGD
    labels[region & seeds] = cv2.GC_FGD
    labels[hands] = cv2.GC_BGD
    if not (labels == cv2.GC_FGD).any() and not (labels == cv2.GC_PR_FGD).any():
        return region.copy()
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    bgr = cv2.cvtColor(work, cv2.COLOR_RGB2BGR)
    # Outside the face only a fixed label is needed. Filling it with skin pixels drawn at random from
    # the confidently skin-coloured part of the face, fixed as face, keeps background and hair out of
    # both colour models (as occluder colours they would claim skin-coloured walls) without
    # distorting the face model (a flat fill would collapse it onto one colour). Eyes, brows, lips
    # and nostrils get the same treatment: left in, their colours would teach the face model the
    # colour of whatever covers them. _resolve_features decides them afterwards.
    skin_pixels = bgr[region & ~features & (distance < SURE_SKIN)]
    if len(skin_pixels) == 0:
        return region & ~features & (distance >= opts.skin_threshold)
    fill = ~region | features
    draw = np.random.default_rng(0).integers(0, len(skin_pixels), int(fill.sum()))
    bgr[fill] = skin_pixels[draw]
    try:
        cv2.grabCut(bgr, labels, None, bgd, fgd, opts.grabcut_iterations, cv2.GC_INIT_WITH_MASK)
    except cv2.error:  # one class without samples (e.g. a face filling the whole crop): keep the initial labels
        pass
    background = (labels == cv2.GC_BGD) | (labels == cv2.GC_PR_BGD)
    return _keep_unlike_skin(background & region, distance, opts.keep_threshold)


def _keep_unlike_skin(occluded: np.ndarray, distance: np.ndarray, threshold: float) -> np.ndarray:
    """Drop blobs whose colour is mostly skin: GrabCut's occluder model can drift onto lit or
    shadowed skin, and a blob that the skin model itself accepts is not an occluder."""
    count, labels = cv2.connectedComponents(occluded.astype(np.uint8), connectivity=8)
    if count <= 1:
        return occluded
    unlike = (distance >= threshold).astype(np.float64)
    share = np.bincount(labels.ravel(), weights=unlike.ravel(), minlength=count)
    share /= np.maximum(np.bincount(labels.ravel(), minlength=count), 1)
    keep = share >= 0.5
    keep[0] = False
    return keep[labels]


def _resolve_features(occluded, zones, region, lm, fill: float) -> np.ndarray:
    """Eyes, brows, lips, nostrils are not skin-coloured: call them covered only when their
    surroundings are covered (glasses over the eyes, a mask over the lips), else visible."""
    result = occluded.copy()
    ring_width = max(int(round(0.12 * regions.inter_ocular(lm))), 2)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * ring_width + 1, 2 * ring_width + 1))
    for zone in zones.values():
        zone = zone & region
        if not zone.any():
            continue
        ring = (cv2.dilate(zone.astype(np.uint8), kernel) > 0) & ~zone & region
        covered = occluded[ring].mean() if ring.any() else 0.0
        result[zone] = covered >= fill
    return result


def _disc(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _drop_small(occluded: np.ndarray, min_area: float) -> np.ndarray:
    count, labels, stats, _ = cv2.connectedComponentsWithStats(occluded.astype(np.uint8), connectivity=8)
    keep = np.zeros(count, bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_area
    return keep[labels]


def _follow_overhang(colour, distance, occluded, region, lm, opts: AutoOptions) -> np.ndarray:
    """Extend occluders that cross the face outline outward (a mask below the chin, a gas mask's
    filters), through pixels that look like the occluder and not like skin."""
    size = float(np.ptp(lm[:468, :2], axis=0).max())
    band_width = max(int(round(opts.overhang * size)), 1)
    band = (cv2.dilate(region.astype(np.uint8), _disc(band_width)) > 0) & ~region
    touching = cv2.dilate(occluded.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    if not (band.any() and (band & touching).any() and occluded.sum() >= 20):
        return occluded
    mean, inv_cov = fit_gaussian(colour[occluded])
    diff = colour - mean.astype(np.float32)
    like_occluder = np.einsum("...i,ij,...j->...", diff, inv_cov.astype(np.float32), diff) < OVERHANG_MATCH ** 2
    candidates = band & like_occluder & (distance >= opts.skin_threshold)
    grown = candidates | occluded
    count, comp = cv2.connectedComponents(grown.astype(np.uint8), connectivity=8)
    linked = np.unique(comp[occluded])
    grown = np.isin(comp, linked[linked > 0])
    return cv2.morphologyEx(grown.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)).astype(bool) | occluded


def _hand_in(hand, crop: "_WorkCrop"):
    from ..face.types import Hand

    return Hand(landmarks=crop.to_work(np.asarray(hand.landmarks, np.float64)), handedness=hand.handedness,
                score=hand.score)


@dataclass
class _WorkCrop:
    """Axis-aligned crop of the photo around the face, resampled to the working resolution."""

    x0: int
    y0: int
    x1: int
    y1: int
    scale: float

    @classmethod
    def around(cls, landmarks, width, height, work_size, margin) -> "_WorkCrop":
        points = landmarks[:468, :2]
        lo, hi = points.min(axis=0), points.max(axis=0)
        size = float(max(hi - lo))
        pad = margin * size
        x0, y0 = max(int(np.floor(lo[0] - pad)), 0), max(int(np.floor(lo[1] - pad)), 0)
        x1, y1 = min(int(np.ceil(hi[0] + pad)), width), min(int(np.ceil(hi[1] + pad)), height)
        x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1)
        return cls(x0, y0, x1, y1, work_size / max(size, 1.0))

    def work_shape(self) -> tuple[int, int]:
        return (max(int(round((self.y1 - self.y0) * self.scale)), 1), max(int(round((self.x1 - self.x0) * self.scale)), 1))

    def extract(self, rgb: np.ndarray) -> np.ndarray:
        h, w = self.work_shape()
        part = rgb[self.y0:self.y1, self.x0:self.x1]
        interp = cv2.INTER_AREA if self.scale < 1 else cv2.INTER_LINEAR
        return cv2.resize(part, (w, h), interpolation=interp)

    def to_work(self, points: np.ndarray) -> np.ndarray:
        out = np.array(points, np.float64, copy=True)
        h, w = self.work_shape()
        sx, sy = w / (self.x1 - self.x0), h / (self.y1 - self.y0)
        out[:, 0] = (out[:, 0] - self.x0) * sx
        out[:, 1] = (out[:, 1] - self.y0) * sy
        return out

    def to_image(self, values: np.ndarray, width: int, height: int) -> np.ndarray:
        """A working-resolution float map resampled into a full-size map (zero outside the crop)."""
        full = np.zeros((height, width), np.float32)
        full[self.y0:self.y1, self.x0:self.x1] = cv2.resize(values, (self.x1 - self.x0, self.y1 - self.y0),
                                                            interpolation=cv2.INTER_LINEAR)
        return full
