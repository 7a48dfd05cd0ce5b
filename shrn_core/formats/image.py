"""Reading and writing images: any size, grayscale, RGBA, 16-bit, EXIF-rotated JPEGs."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import FormatError, InputError
from .core import check_input_file, write_bytes

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


def read_image_raw(path: str | Path) -> np.ndarray:
    """Pixels as stored (uint8 or uint16; 1, 3 or 4 channels in RGB(A) order), EXIF orientation applied."""
    path = check_input_file(path)
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None or image.size == 0:
        raise InputError("not a readable image (corrupt, truncated or unsupported format)", path)
    if image.dtype not in (np.uint8, np.uint16):
        image = _to_uint16(image)
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    elif image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if path.suffix.lower() == ".png" and b"eXIf" not in data.tobytes():
        return image  # no EXIF chunk: skip Pillow, which decodes a whole PNG to look for one
    return _apply_exif_orientation(image, path)


def to_rgb8(image: np.ndarray) -> np.ndarray:
    """Any raw image -> HxWx3 uint8 RGB (alpha composited on black is avoided: alpha is dropped)."""
    if image.dtype == np.uint16:
        image = (image.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.shape[2] == 4:
        image = image[:, :, :3]
    return np.ascontiguousarray(image)


def read_image(path: str | Path) -> np.ndarray:
    """HxWx3 uint8 RGB, the form every stage works in."""
    return to_rgb8(read_image_raw(path))


def read_gray(path: str | Path) -> np.ndarray:
    """Single-channel uint8 (first channel of colour files; alpha used where the colour is constant)."""
    raw = read_image_raw(path)
    if raw.dtype == np.uint16:
        raw = (raw.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    if raw.ndim == 2:
        return raw
    if raw.shape[2] == 4 and np.ptp(raw[:, :, :3]) == 0:
        return np.ascontiguousarray(raw[:, :, 3])
    return cv2.cvtColor(np.ascontiguousarray(raw[:, :, :3]), cv2.COLOR_RGB2GRAY)


def write_image(path: str | Path, image: np.ndarray) -> Path:
    """Write an RGB(A)/gray uint8 or uint16 array atomically; the format follows the extension."""
    path = Path(path)
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    elif array.ndim == 3 and array.shape[2] == 4:
        array = cv2.cvtColor(array, cv2.COLOR_RGBA2BGRA)
    ok, encoded = cv2.imencode(path.suffix or ".png", array)
    if not ok:
        raise FormatError(f"could not encode image as {path.suffix}", path)
    return write_bytes(path, encoded.tobytes())


def _to_uint16(image: np.ndarray) -> np.ndarray:
    image = image.astype(np.float64)
    finite = np.isfinite(image)
    image[~finite] = 0
    top = image.max() if image.size else 1.0
    scale = 65535.0 if top <= 1.0 else 65535.0 / max(top, 1e-9)
    return np.clip(image * scale, 0, 65535).astype(np.uint16)


def _apply_exif_orientation(image: np.ndarray, path: Path) -> np.ndarray:
    orientation = _exif_orientation(path)
    if orientation in (None, 1):
        return image
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: np.swapaxes(a, 0, 1),
        6: lambda a: np.swapaxes(a, 0, 1)[:, ::-1],
        7: lambda a: np.swapaxes(a, 0, 1)[::-1, ::-1],
        8: lambda a: np.swapaxes(a, 0, 1)[::-1],
    }
    op = ops.get(orientation)
    return np.ascontiguousarray(op(image)) if op else image


def _exif_orientation(path: Path) -> int | None:
    if path.suffix.lower() not in {".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".png"}:
        return None
    try:
        from PIL import Image

        with Image.open(path) as img:
            return img.getexif().get(0x0112)
    except Exception:  # a file PIL cannot parse simply has no usable EXIF
        return None
