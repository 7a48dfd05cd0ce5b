"""Reading and writing images: any size, grayscale, RGBA, 16-bit, EXIF-rotated JPEGs.

Pixel limit: a photo's size is read from its header before any pixel is decoded, and a photo above
``max_pixels()`` (default ``DEFAULT_MAX_PIXELS`` = 100 megapixels; ``--max-pixels`` on the command
line, ``set_max_pixels`` in Python) is refused with an ``InputError``, so a few-KB file that declares
60000x60000 pixels never reaches the decoder.
"""
from __future__ import annotations

import struct
import threading
import warnings
from pathlib import Path

import cv2
import numpy as np

from ..errors import FormatError, InputError
from .core import check_input_file, write_bytes

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
DEFAULT_MAX_PIXELS = 100_000_000
NOT_READABLE = "not a readable image (corrupt, truncated or unsupported format)"

_max_pixels = DEFAULT_MAX_PIXELS
_pil_lock = threading.Lock()  # guards the temporary change of PIL's own decompression-bomb limit


def set_max_pixels(limit: int | None) -> None:
    """Largest width x height any image reader accepts; ``None`` restores the default."""
    global _max_pixels
    if limit is None:
        _max_pixels = DEFAULT_MAX_PIXELS
        return
    try:
        value = int(limit)
    except (TypeError, ValueError, OverflowError):
        value = 0
    if value < 1 or value != limit:
        raise InputError(f"--max-pixels must be a positive whole number of pixels, got {limit!r}")
    _max_pixels = value


def max_pixels() -> int:
    return _max_pixels


def image_header(path: str | Path) -> tuple[int, int, int | None]:
    """(width, height, EXIF orientation or None) from the file's header, decoding no pixels.

    ``InputError`` when the header cannot be parsed (PIL for every format, a minimal TIFF reader
    for the float TIFFs PIL does not open)."""
    from PIL import Image

    path = Path(path)
    with _pil_lock, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PIL warns about odd tags on stderr; a bad header is reported below
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None  # shrn applies its own limit below, with its own message
        try:
            with Image.open(path) as img:
                width, height = img.size
                return int(width), int(height), _orientation_tag(img)
        except Exception:  # PIL raises many types (UnidentifiedImageError, SyntaxError, struct.error, ...)
            size = _tiff_size(path)
            if size is None:
                raise InputError(NOT_READABLE, path) from None
            return size[0], size[1], None
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _orientation_tag(img) -> int | None:
    # PIL's PNG getexif() decodes the whole image to look for an eXIf chunk after the pixels: only
    # ask when the chunk came before them (as writers put it), so reading a header never decodes.
    if img.format == "PNG" and "exif" not in img.info:
        return None
    try:
        orientation = img.getexif().get(0x0112)
    except Exception:  # an unusable EXIF block: the pixels are still fine
        return None
    return orientation if isinstance(orientation, int) else None


def check_pixel_limit(width: int, height: int, path: str | Path | None = None, limit: int | None = None) -> None:
    limit = _max_pixels if limit is None else limit
    if width < 1 or height < 1:
        raise InputError(f"image header declares {width}x{height} pixels", path)
    if width * height > limit:
        raise InputError(f"image is {width}x{height} ({width * height / 1e6:.1f} megapixels), above the limit of "
                         f"{limit / 1e6:g} megapixels; raise it with --max-pixels", path)


def read_image_raw(path: str | Path, max_pixels: int | None = None) -> np.ndarray:
    """Pixels as stored (uint8 or uint16; 1, 3 or 4 channels in RGB(A) order), EXIF orientation applied.

    The size is checked against ``max_pixels`` (default: ``max_pixels()``) before decoding."""
    path = check_input_file(path)
    width, height, orientation = image_header(path)
    check_pixel_limit(width, height, path, max_pixels)
    data = np.fromfile(path, dtype=np.uint8)
    try:
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION)
    except cv2.error:  # OpenCV's own size and sanity checks
        image = None
    if image is None or image.size == 0 or image.ndim not in (2, 3):
        raise InputError(NOT_READABLE, path)
    check_pixel_limit(image.shape[1], image.shape[0], path, max_pixels)  # a header PIL read differently
    if image.dtype not in (np.uint8, np.uint16):
        image = _to_uint16(image)
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    elif image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    elif image.ndim == 3:
        raise InputError(f"{image.shape[2]}-channel images are not supported (use gray, RGB or RGBA)", path)
    return _apply_orientation(image, orientation)


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


def _apply_orientation(image: np.ndarray, orientation: int | None) -> np.ndarray:
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


_TIFF_WIDTH, _TIFF_LENGTH = 256, 257


def _tiff_size(path: Path) -> tuple[int, int] | None:
    """Width and height from the first IFD of a classic TIFF, or None (not a TIFF, or no such tags)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
            if head[:4] not in (b"II*\0", b"MM\0*"):
                return None
            order = "<" if head[:2] == b"II" else ">"
            handle.seek(struct.unpack(order + "I", head[4:8])[0])
            (count,) = struct.unpack(order + "H", handle.read(2))
            entries = handle.read(12 * min(count, 4096))
    except (OSError, struct.error):
        return None
    size = {}
    for offset in range(0, len(entries) - 11, 12):
        tag, kind, _ = struct.unpack(order + "HHI", entries[offset:offset + 8])
        if tag in (_TIFF_WIDTH, _TIFF_LENGTH) and kind in (3, 4):
            fmt = order + ("H" if kind == 3 else "I")
            size[tag] = struct.unpack(fmt, entries[offset + 8:offset + 8 + struct.calcsize(fmt)])[0]
    if _TIFF_WIDTH in size and _TIFF_LENGTH in size:
        return int(size[_TIFF_WIDTH]), int(size[_TIFF_LENGTH])
    return None
