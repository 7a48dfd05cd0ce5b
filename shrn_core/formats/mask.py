"""Occlusion masks: ``<stem>.mask.png``, ``<stem>.face_region.png``, ``<stem>.mask_prob.png``.

All three are single-channel 8-bit PNGs of the photo's size. ``mask`` and ``face_region`` are binary
(255 = set, 0 = not set); ``mask_prob`` stores the occlusion probability scaled to 0..255.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import FormatError, InputError
from .core import output_path
from .image import read_image_raw, write_image

if TYPE_CHECKING:
    from ..segment.types import SegmentationResult

MASK_KINDS = ("mask", "face_region", "mask_prob")


def segmentation_paths(out_dir: str | Path, stem: str, probability: bool = False) -> dict[str, Path]:
    kinds = MASK_KINDS if probability else MASK_KINDS[:2]
    return {kind: output_path(out_dir, stem, kind, "png") for kind in kinds}


def validate_mask(mask: np.ndarray, shape: tuple[int, int] | None = None, binary: bool = True,
                  source: str | Path | None = None) -> np.ndarray:
    """Check an HxW uint8 mask (values 0/255 when ``binary``; size ``shape`` = (height, width) when given)."""
    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.dtype != np.uint8:
        raise FormatError(f"a mask must be HxW uint8, got {mask.dtype} {mask.shape}", source)
    if shape is not None and mask.shape != tuple(shape):
        raise FormatError(f"mask is {mask.shape[1]}x{mask.shape[0]} but the photo is {shape[1]}x{shape[0]}", source)
    if binary:
        stray = np.unique(mask[(mask != 0) & (mask != 255)])
        if stray.size:
            raise FormatError(f"mask must hold only 0 and 255, found {stray.size} other value(s), e.g. {int(stray[0])}",
                              source)
    return mask


def read_mask(path: str | Path, shape: tuple[int, int] | None = None) -> np.ndarray:
    """A mask file as HxW uint8.

    Accepts shrn's own masks and user masks alike: grayscale, or the first channel of a colour image
    (the alpha channel when the colour is constant), 16-bit scaled to 8-bit. Values are returned as
    stored; consumers threshold at 128. ``shape`` = (height, width) checks the size.
    """
    raw = read_image_raw(path)
    if raw.dtype == np.uint16:
        raw = (raw.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    if raw.ndim == 3:
        if raw.shape[2] == 4 and np.ptp(raw[:, :, :3]) == 0:
            raw = raw[:, :, 3]
        else:
            raw = raw[:, :, 0]
    mask = np.ascontiguousarray(raw)
    if shape is not None and mask.shape != tuple(shape):
        raise InputError(f"mask is {mask.shape[1]}x{mask.shape[0]} but the photo is {shape[1]}x{shape[0]}", path)
    return mask


def write_mask(path: str | Path, mask: np.ndarray, binary: bool = True) -> Path:
    """Write a validated HxW uint8 mask atomically as PNG."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise InputError("masks are written as PNG (lossless); use a .png file name", path)
    validate_mask(mask, binary=binary, source=path)
    return write_image(path, mask)


def probability_to_uint8(probability: np.ndarray) -> np.ndarray:
    probability = np.asarray(probability, np.float32)
    if not np.isfinite(probability).all():
        from ..errors import NumericalError

        raise NumericalError("occlusion probability map holds NaN or inf")
    return np.clip(np.round(probability * 255.0), 0, 255).astype(np.uint8)


def write_segmentation(out_dir: str | Path, stem: str, result: "SegmentationResult",
                       probability: bool = False) -> dict[str, Path]:
    """Write ``<stem>.mask.png``, ``<stem>.face_region.png`` (and ``<stem>.mask_prob.png``); returns the paths.

    All arrays are validated before the first file is written, so a bad result writes nothing; the
    mask is written last, so a run killed midway never leaves a mask without its companions.
    """
    paths = segmentation_paths(out_dir, stem, probability)
    height, width = result.mask.shape[:2]
    validate_mask(result.mask, (height, width))
    validate_mask(result.face_region, (height, width))
    prob = probability_to_uint8(result.probability) if probability else None
    if prob is not None:
        validate_mask(prob, (height, width), binary=False)
    write_mask(paths["face_region"], result.face_region)
    if prob is not None:
        write_mask(paths["mask_prob"], prob, binary=False)
    write_mask(paths["mask"], result.mask)  # last: a present mask means the whole set was written
    return paths


def read_segmentation(out_dir: str | Path, stem: str, shape: tuple[int, int] | None = None) -> dict[str, np.ndarray]:
    """Read back ``mask``, ``face_region`` and, when present, ``mask_prob`` (as float32 in [0, 1])."""
    paths = segmentation_paths(out_dir, stem, probability=True)
    result = {}
    for kind in ("mask", "face_region"):
        array = read_mask(paths[kind], shape)
        result[kind] = validate_mask(array, array.shape, source=paths[kind])
    if paths["mask_prob"].is_file():
        result["mask_prob"] = read_mask(paths["mask_prob"], shape).astype(np.float32) / 255.0
    return result
