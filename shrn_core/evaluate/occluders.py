"""Synthetic occlusion: paste real occluders (face masks, glasses) onto unoccluded face photos.

The occluders come from the 12 labelled WebFace-OCC crops in ``shared/data/occluded_webfaceocc``:
each is a 112x112 ArcFace-aligned face wearing a mask or glasses, with a ground-truth mask. The
occluder is the crop's pixels weighted by that mask (a soft alpha). Because every crop is aligned to
the standard ArcFace five-point template, an occluder can be moved onto any other face by the
similarity transform that takes the template to that face's five landmarks: a face mask then lands
on nose, mouth and chin, glasses on the eyes. A random scale, rotation and shift around the anchor
(eye centre for glasses, nose/mouth centre for masks) varies the placement; everything is
deterministic given the ``numpy.random.Generator``.

The returned mask is exact: 255 wherever the pasted occluder's alpha is >= 0.5, whether or not that
pixel belongs to the face (a mask's lower edge may hang below the chin). It is NOT restricted to
the face region; metrics that want "occluded face pixels" only should intersect it with a face
region themselves (``restrict_to_region``).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import cv2
import numpy as np

from ..errors import FaceError, InputError
from ..face.types import Face, FaceAnalysis
from ..formats.image import read_image, read_image_raw

log = logging.getLogger("shrn.evaluate.occluders")

# ArcFace's canonical five points in a 112x112 aligned crop: image-left eye, image-right eye,
# nose tip, image-left mouth corner, image-right mouth corner (the order of Face.landmarks_5).
ARCFACE_TEMPLATE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)

MASK_KINDS = ("surgical", "N95", "KN95", "cloth", "gas")
GLASSES_KINDS = ("glass", "glasses", "sunglasses")

# Random placement ranges (uniform): relative scale, rotation in degrees, shift as a fraction of
# the inter-ocular distance.
SCALE_RANGE = (0.92, 1.12)
ROTATION_RANGE_DEG = (-12.0, 12.0)
SHIFT_FRACTION = 0.06


@dataclass
class Occluder:
    """One labelled occluder in its 112x112 aligned-face frame."""

    name: str  # file stem, e.g. "0_surgical"
    kind: str  # "mask" (any face-mask type) or "glasses"
    subtype: str  # the type from the file name: surgical, N95, KN95, cloth, gas, glass
    rgb: np.ndarray  # (H, W, 3) uint8: the whole occluded crop
    alpha: np.ndarray  # (H, W) float32 in [0, 1]: the ground-truth mask resized to the crop
    image_path: Path
    mask_path: Path

    @property
    def gt_mask(self) -> np.ndarray:
        """The ground truth as a 0/255 uint8 mask (alpha thresholded at 128/255)."""
        return np.where(self.alpha * 255.0 >= 128.0, 255, 0).astype(np.uint8)


@dataclass
class SyntheticSample:
    """One clean photo with one pasted occluder."""

    photo: Path
    occluder: str  # Occluder.name
    kind: str  # Occluder.kind
    image: np.ndarray  # (H, W, 3) uint8, the occluded photo
    mask: np.ndarray  # (H, W) uint8 0/255, exact pasted occluder area (not restricted to the face)
    analysis: FaceAnalysis  # face analysis of the clean photo (landmarks stay valid: only pixels changed)


def occluder_kind(name: str) -> tuple[str, str]:
    """``"3_cloth"`` -> ``("mask", "cloth")``; ``"7_glass"`` -> ``("glasses", "glass")``."""
    subtype = name.split("_", 1)[1] if "_" in name else name
    lowered = subtype.lower()
    if lowered in GLASSES_KINDS:
        return "glasses", subtype
    if lowered in {k.lower() for k in MASK_KINDS} or "mask" in lowered:
        return "mask", subtype
    raise InputError(f"cannot tell the occluder type from the file name {name!r} (expected N_<type>.jpg)")


def load_ground_truth_mask(mask_path: str | Path, size: tuple[int, int]) -> np.ndarray:
    """A WebFace-OCC ground-truth mask as float32 alpha in [0, 1] at ``size`` = (width, height).

    The files are RGBA with the mask in the colour channels (white = occluder); the alpha channel is
    (almost) opaque, so colour and alpha are multiplied, i.e. composited on black.
    """
    raw = read_image_raw(mask_path)
    if raw.dtype == np.uint16:
        raw = (raw.astype(np.float32) / 257.0).astype(np.uint8)
    if raw.ndim == 2:
        value = raw.astype(np.float32) / 255.0
    else:
        value = raw[:, :, :3].astype(np.float32).mean(axis=2) / 255.0
        if raw.shape[2] == 4:
            value *= raw[:, :, 3].astype(np.float32) / 255.0
    return np.clip(cv2.resize(value, size, interpolation=cv2.INTER_AREA), 0.0, 1.0).astype(np.float32)


def load_occluders(data_dir: str | Path) -> list[Occluder]:
    """The labelled WebFace-OCC occluders (``images/N_type.jpg`` + ``masks/N.png``), sorted by name.

    ``data_dir`` is the ``occluded_webfaceocc`` folder or the shared data folder that holds it.
    """
    data_dir = Path(data_dir)
    if (data_dir / "occluded_webfaceocc").is_dir():
        data_dir = data_dir / "occluded_webfaceocc"
    images_dir, masks_dir = data_dir / "images", data_dir / "masks"
    if not images_dir.is_dir() or not masks_dir.is_dir():
        raise InputError("expected 'images/' and 'masks/' folders of the WebFace-OCC set", data_dir)
    occluders = []
    for image_path in sorted(images_dir.glob("*.jpg"), key=lambda p: _numeric_key(p.stem)):
        number = image_path.stem.split("_", 1)[0]
        mask_path = masks_dir / f"{number}.png"
        if not mask_path.is_file():
            raise InputError(f"no ground-truth mask {mask_path.name} for {image_path.name}", masks_dir)
        rgb = read_image(image_path)
        alpha = load_ground_truth_mask(mask_path, (rgb.shape[1], rgb.shape[0]))
        kind, subtype = occluder_kind(image_path.stem)
        occluders.append(Occluder(image_path.stem, kind, subtype, rgb, alpha, image_path, mask_path))
    if not occluders:
        raise InputError("no occluder images (N_type.jpg) found", images_dir)
    return occluders


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares 2x3 similarity (rotation, uniform scale, shift) mapping ``src`` points to ``dst``."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    # Unknowns a, b, tx, ty of [[a, -b, tx], [b, a, ty]].
    rows = np.zeros((2 * len(src), 4))
    rows[0::2] = np.column_stack([src[:, 0], -src[:, 1], np.ones(len(src)), np.zeros(len(src))])
    rows[1::2] = np.column_stack([src[:, 1], src[:, 0], np.zeros(len(src)), np.ones(len(src))])
    (a, b, tx, ty), *_ = np.linalg.lstsq(rows, dst.reshape(-1), rcond=None)
    return np.array([[a, -b, tx], [b, a, ty]])


def placement_transform(face: Face, occluder: Occluder, rng: np.random.Generator | None) -> np.ndarray:
    """2x3 affine from the occluder's crop to the target image, with random jitter around the anchor."""
    crop_h, crop_w = occluder.alpha.shape
    template = ARCFACE_TEMPLATE_112 * np.array([crop_w / 112.0, crop_h / 112.0])
    target = np.asarray(face.landmarks_5, np.float64)
    base = similarity_transform(template, target)
    if rng is None:
        return base
    anchor = target[:2].mean(axis=0) if occluder.kind == "glasses" else target[2:].mean(axis=0)
    eye_distance = float(np.linalg.norm(target[1] - target[0]))
    scale = rng.uniform(*SCALE_RANGE)
    angle = rng.uniform(*ROTATION_RANGE_DEG)
    shift = rng.normal(0.0, SHIFT_FRACTION, size=2) * eye_distance
    jitter = cv2.getRotationMatrix2D((float(anchor[0]), float(anchor[1])), angle, scale)
    jitter[:, 2] += shift
    return _compose(jitter, base)


def paste_occluder(
    image_rgb: np.ndarray, face: Face, occluder: Occluder, rng: np.random.Generator | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Paste ``occluder`` onto ``face`` in ``image_rgb``.

    Returns ``(occluded_rgb, mask)``: the composited HxWx3 uint8 image and the exact HxW uint8 mask
    (255 where the warped occluder alpha is >= 0.5, else 0). The mask is not restricted to the face
    region. ``rng=None`` places the occluder without jitter.
    """
    image = np.asarray(image_rgb)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InputError(f"paste_occluder expects an HxWx3 uint8 RGB image, got {image.dtype} {image.shape}")
    height, width = image.shape[:2]
    matrix = placement_transform(face, occluder, rng)
    size = (width, height)
    alpha = cv2.warpAffine(occluder.alpha, matrix, size, flags=cv2.INTER_LINEAR, borderValue=0.0)
    colour = cv2.warpAffine(occluder.rgb, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    alpha = np.clip(alpha, 0.0, 1.0)[:, :, None]
    blended = image.astype(np.float32) * (1.0 - alpha) + colour.astype(np.float32) * alpha
    occluded = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
    mask = np.where(alpha[:, :, 0] >= 0.5, 255, 0).astype(np.uint8)
    return occluded, mask


def restrict_to_region(mask: np.ndarray, region: np.ndarray) -> np.ndarray:
    """``mask`` AND ``region`` (both HxW, nonzero = set) as 0/255 uint8."""
    return np.where((mask > 0) & (region > 0), 255, 0).astype(np.uint8)


def make_synthetic_set(
    photos: Iterable[str | Path],
    occluders: Sequence[Occluder],
    seed: int = 0,
    per_photo: int = 1,
    analyze: Callable[[Path], FaceAnalysis] | None = None,
) -> Iterator[SyntheticSample]:
    """Yield occluded versions of ``photos``: ``per_photo`` samples each, occluders taken in turn.

    Occluder ``(i * per_photo + k) % len(occluders)`` goes on photo ``i`` (so every occluder is used
    evenly) with a generator seeded by ``(seed, i, k)``: the set is the same on every run. Photos in
    which no face is found are skipped with a log message. ``analyze`` defaults to
    ``shrn_core.face.analyze_image``.
    """
    if not occluders:
        raise InputError("make_synthetic_set needs at least one occluder")
    if analyze is None:
        from ..face import analyze_image as analyze
    for index, photo in enumerate(photos):
        photo = Path(photo)
        try:
            analysis = analyze(photo)
        except FaceError as err:
            log.info("skipping %s: %s", photo, err)
            continue
        image = read_image(photo)
        for k in range(per_photo):
            occluder = occluders[(index * per_photo + k) % len(occluders)]
            rng = np.random.default_rng([seed, index, k])
            occluded, mask = paste_occluder(image, analysis.face, occluder, rng)
            yield SyntheticSample(photo, occluder.name, occluder.kind, occluded, mask, analysis)


def _compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The 2x3 affine ``outer o inner``."""
    full = lambda m: np.vstack([m, [0.0, 0.0, 1.0]])  # noqa: E731
    return (full(outer) @ full(inner))[:2]


def _numeric_key(stem: str) -> tuple[int, str]:
    head = stem.split("_", 1)[0]
    return (int(head), stem) if head.isdigit() else (1 << 30, stem)
