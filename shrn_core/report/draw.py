"""Small raster helpers for the summary sheet: square crops, mask tints, placeholders and text.

Text is drawn with Pillow's built-in scalable font (no font files, nothing downloaded).
"""
from __future__ import annotations

import functools
from typing import Optional

import cv2
import numpy as np

Box = tuple[int, int, int]  # (x0, y0, side) of a square in photo pixels; may reach outside the photo

INK = (28, 28, 30)
MUTED = (95, 98, 105)
WARN = (176, 96, 0)
ERROR = (190, 30, 30)
OK = (30, 130, 60)
PANEL_BG = (236, 236, 236)


def square_box(x0: float, y0: float, x1: float, y1: float, scale: float) -> Box:
    """The square of side ``scale`` x the larger side of the rectangle, centred on it."""
    side = max(int(round(max(x1 - x0, y1 - y0) * scale)), 2)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return int(round(cx - side / 2)), int(round(cy - side / 2)), side


def crop(image: np.ndarray, box: Box, size: int, fill=PANEL_BG, smooth: bool = True) -> np.ndarray:
    """``box`` of ``image`` (HxW or HxWx3) resampled to ``size`` x ``size``; outside the image is ``fill``."""
    x0, y0, side = box
    h, w = image.shape[:2]
    xs, ys = max(x0, 0), max(y0, 0)
    xe, ye = min(x0 + side, w), min(y0 + side, h)
    if xe <= xs or ye <= ys:
        return np.full((size, size) + image.shape[2:], fill if image.ndim == 3 else 0, image.dtype)
    part = image[ys:ye, xs:xe]
    if (xs, ys, xe, ye) != (x0, y0, x0 + side, y0 + side):
        value = fill if image.ndim == 3 else 0
        part = cv2.copyMakeBorder(np.ascontiguousarray(part), ys - y0, y0 + side - ye, xs - x0, x0 + side - xe,
                                  cv2.BORDER_CONSTANT, value=value)
    part = np.ascontiguousarray(part)
    if not smooth:
        return cv2.resize(part, (size, size), interpolation=cv2.INTER_NEAREST)
    factor = side // size
    if factor >= 2:  # box-filter by a whole factor first: OpenCV's fast path, 5x quicker than INTER_AREA
        whole = side - side % factor  # drops < factor pixels at the far edges
        part = cv2.resize(np.ascontiguousarray(part[:whole, :whole]), (whole // factor, whole // factor),
                          interpolation=cv2.INTER_AREA)
    return cv2.resize(part, (size, size), interpolation=cv2.INTER_LINEAR)


def letterbox(image: np.ndarray, width: int, height: int, fill=PANEL_BG) -> np.ndarray:
    """``image`` scaled to fit ``width`` x ``height``, centred on ``fill``."""
    h, w = image.shape[:2]
    scale = min(width / w, height / h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    out = np.empty((height, width, 3), np.uint8)
    out[:] = fill
    y, x = (height - nh) // 2, (width - nw) // 2
    out[y:y + nh, x:x + nw] = resized
    return out


def tint(image: np.ndarray, alpha: np.ndarray, colour=(230, 30, 40), strength: float = 0.6) -> np.ndarray:
    """``image`` with ``colour`` laid over it where ``alpha`` (HxW, 0..255) is set."""
    a = (alpha.astype(np.float32) / 255 * strength)[..., None]
    return (image * (1 - a) + np.asarray(colour, np.float32) * a + 0.5).astype(np.uint8)


def outline(image: np.ndarray, region: np.ndarray, colour=(255, 210, 0), thickness: int = 2) -> np.ndarray:
    """Draw the border of the ``region`` (HxW, set > 127) on a copy of ``image``."""
    contours, _ = cv2.findContours((region > 127).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    out = image.copy()
    cv2.drawContours(out, contours, -1, colour, thickness, lineType=cv2.LINE_AA)
    return out


def placeholder(size: int, text: str) -> np.ndarray:
    panel = np.empty((size, size, 3), np.uint8)
    panel[:] = PANEL_BG
    return draw_text(panel, [(text, MUTED)], (size // 2, size // 2), font_size=max(14, size // 22), anchor="mm")


@functools.lru_cache(maxsize=8)
def font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1 with FreeType: scalable
    except (TypeError, OSError, ImportError):
        return ImageFont.load_default()


def text_width(text: str, size: int) -> int:
    left, _, right, _ = font(size).getbbox(text)
    return int(right - left)


def fit_text(text: str, size: int, width: int) -> str:
    """``text`` cut with an ellipsis to at most ``width`` pixels."""
    if text_width(text, size) <= width:
        return text
    low, high = 0, len(text)
    while low < high:  # longest prefix that fits with the ellipsis
        mid = (low + high + 1) // 2
        if text_width(text[:mid] + "…", size) <= width:
            low = mid
        else:
            high = mid - 1
    return text[:low] + "…"


def draw_text(image: np.ndarray, runs: list[tuple[str, tuple]], xy: tuple[int, int], font_size: int,
              anchor: str = "la", bold: bool = False, max_width: Optional[int] = None) -> np.ndarray:
    """Draw ``runs`` of (text, colour) one after another on one line starting at ``xy``; returns the
    image (drawn in place when it is C-contiguous uint8). ``anchor`` as Pillow's (``la`` left-top
    of the ascender, ``mm`` middle)."""
    from PIL import Image, ImageDraw

    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    face = font(font_size)
    x, y = xy
    if anchor == "mm":  # centre the whole line
        total = sum(text_width(t, font_size) for t, _ in runs)
        x, anchor = x - total // 2, "lm"
    end = x + max_width if max_width else None
    for text, colour in runs:
        if end is not None:
            text = fit_text(text, font_size, max(end - x, 0))
        if not text:
            break
        draw.text((x, y), text, fill=tuple(colour), font=face, anchor=anchor, stroke_width=1 if bold else 0,
                  stroke_fill=tuple(colour) if bold else None)
        x += text_width(text, font_size)
    image[...] = np.asarray(canvas)
    return image


def label(panel: np.ndarray, text: str, font_size: int = 17) -> np.ndarray:
    """A caption in the top-left corner of a panel, white on a darkened band."""
    pad = 6
    width = min(text_width(text, font_size) + 2 * pad, panel.shape[1])
    height = font_size + 2 * pad
    panel[:height, :width] = (panel[:height, :width] * 0.35).astype(np.uint8)
    return draw_text(panel, [(text, (255, 255, 255))], (pad, pad - 1), font_size, max_width=panel.shape[1] - 2 * pad)
