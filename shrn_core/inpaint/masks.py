"""Occlusion masks as the inpaint stage reads them: which pixels to replace.

A mask is the segment stage's ``<stem>.mask.png`` (8-bit, 255 = occluded) or any image of the
photo's size; values >= 128 count as occluded, so soft or anti-aliased masks work too.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError

THRESHOLD = 128


def read_mask_file(path: str | Path) -> np.ndarray:
    """The mask as HxW uint8 (first channel of colour files); corrupt or missing files raise InputError."""
    try:
        from ..formats.mask import read_mask  # the segment stage's validating reader, when present
    except ImportError:
        from ..formats.image import read_gray as read_mask
    return np.asarray(read_mask(path))


def as_bool_mask(mask: np.ndarray, image_shape: tuple[int, ...], resize: bool = False,
                 source: str | Path | None = None) -> np.ndarray:
    """HxW bool, True = replace. A size mismatch is an error unless ``resize``."""
    mask = np.asarray(mask)
    if mask.ndim == 3:
        mask = mask[:, :, 0] if mask.shape[2] in (1, 3) else mask[:, :, -1]
    if mask.ndim != 2:
        raise InputError(f"mask must be a single-channel image, got shape {mask.shape}", source)
    if mask.dtype == bool:
        mask = mask.astype(np.uint8) * 255
    elif mask.dtype == np.uint16:
        mask = (mask // 257).astype(np.uint8)
    elif mask.dtype != np.uint8:
        values = mask.astype(np.float64)
        if not np.all(np.isfinite(values)):
            raise InputError("mask holds NaN or infinite values", source)
        mask = np.clip(values * (255.0 if values.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    height, width = image_shape[:2]
    if mask.shape != (height, width):
        if not resize:
            raise InputError(
                f"mask is {mask.shape[1]}x{mask.shape[0]} but the image is {width}x{height} "
                "(pass --resize-mask to scale it)", source)
        mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_LINEAR)
    return mask >= THRESHOLD


def face_hull(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """HxW bool: the convex hull of the 468 face-mesh points."""
    hull = cv2.convexHull(np.asarray(landmarks)[:468, :2].astype(np.float32)).astype(np.int32)
    region = np.zeros(shape[:2], np.uint8)
    cv2.fillConvexPoly(region, hull, 1)
    return region.astype(bool)
