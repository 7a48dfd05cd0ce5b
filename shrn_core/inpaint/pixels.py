"""Between stored pixels (8/16-bit, gray/RGB/RGBA) and the float RGB every backend works in.

Backends see HxWx3 float32 RGB in [0, 1]. ``compose`` writes their result back into a copy of the
stored pixels, touching only masked pixels, so everything outside the mask is bit-identical to the
input whatever its depth or channel count; alpha is never changed.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError, NumericalError


def max_value(raw: np.ndarray) -> int:
    if raw.dtype == np.uint8:
        return 255
    if raw.dtype == np.uint16:
        return 65535
    raise InputError(f"unsupported image type {raw.dtype} (expected 8- or 16-bit pixels)")


def check_image(raw: np.ndarray) -> np.ndarray:
    raw = np.asarray(raw)
    max_value(raw)
    if raw.ndim == 3 and raw.shape[2] == 1:
        raw = raw[:, :, 0]
    if raw.ndim not in (2, 3) or (raw.ndim == 3 and raw.shape[2] not in (3, 4)) or min(raw.shape[:2]) < 1:
        raise InputError(f"unsupported image shape {raw.shape} (expected HxW, HxWx3 or HxWx4)")
    return raw


def to_working_rgb(raw: np.ndarray) -> np.ndarray:
    """HxWx3 float32 in [0, 1] (gray replicated, alpha dropped)."""
    rgb = raw.astype(np.float32) / max_value(raw)
    if rgb.ndim == 2:
        return np.repeat(rgb[:, :, None], 3, axis=2)
    return np.ascontiguousarray(rgb[:, :, :3])


def compose(raw: np.ndarray, filled_rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A copy of ``raw`` whose masked pixels (colour channels only) come from ``filled_rgb``."""
    filled = np.asarray(filled_rgb, np.float32)[mask]
    if not np.all(np.isfinite(filled)):
        raise NumericalError("inpainting produced NaN or infinite pixel values")
    top = max_value(raw)
    values = np.clip(np.rint(filled * top), 0, top).astype(raw.dtype)
    out = raw.copy()
    if raw.ndim == 2:
        out[mask] = np.clip(np.rint(filled.mean(axis=1) * top), 0, top).astype(raw.dtype)
    else:
        out[mask, :3] = values
    return out
