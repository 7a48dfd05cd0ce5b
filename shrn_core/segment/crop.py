"""The aligned face crop of the ``learned`` backend, shared by inference and by the training pack.

A similarity transform maps the face's five landmarks onto the ArcFace five-point template scaled
to a ``size`` x ``size`` square that spans ``crop_scale`` times the ArcFace 112 px crop (so cheeks,
chin, forehead and a margin for occluders hanging past the outline are inside). Pixel centres are at
integer coordinates + 0.5 in both frames, as everywhere in shrn (OpenCV's warps put them on integers,
which the helpers below account for).
"""
from __future__ import annotations

import cv2
import numpy as np

DOWNSCALE_PREFILTER = 0.6  # below this crop/photo scale, the photo is area-averaged first (no aliasing)


def template(size: int, crop_scale: float) -> np.ndarray:
    """The five template points (x, y) in a ``size`` px crop."""
    from ..evaluate.occluders import ARCFACE_TEMPLATE_112

    return (ARCFACE_TEMPLATE_112 - 56.0) * (size / 112.0 / crop_scale) + size / 2.0


def crop_transform(landmarks_5: np.ndarray, size: int, crop_scale: float) -> np.ndarray:
    """2x3 affine from photo pixels to crop pixels (both with pixel centres at +0.5)."""
    from ..evaluate.occluders import similarity_transform

    return similarity_transform(np.asarray(landmarks_5, np.float64), template(size, crop_scale))


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N, 2+) points -> (N, 2) under a 2x3 affine."""
    points = np.asarray(points, np.float64)[:, :2]
    return points @ matrix[:, :2].T + matrix[:, 2]


def invert(matrix: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(np.asarray(matrix, np.float64))


def _opencv(matrix: np.ndarray) -> np.ndarray:
    """The same map for OpenCV's integer pixel centres: x_cv = x - 0.5 on both sides."""
    m = np.asarray(matrix, np.float64).copy()
    m[:, 2] += m[:, :2].sum(axis=1) * 0.5 - 0.5
    return m


def scale_of(matrix: np.ndarray) -> float:
    return float(np.sqrt(abs(np.linalg.det(np.asarray(matrix)[:, :2]))))


def aligned_crop(rgb: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """The ``size`` x ``size`` crop of ``rgb`` under ``matrix`` (photo -> crop), borders replicated.

    When the crop shrinks the face by more than ``DOWNSCALE_PREFILTER``, the needed part of the photo is
    first area-averaged to about the crop's resolution so fine texture does not alias.
    """
    matrix = np.asarray(matrix, np.float64)
    scale = scale_of(matrix)
    if scale < DOWNSCALE_PREFILTER:
        corners = apply(invert(matrix), np.array([[0, 0], [size, 0], [0, size], [size, size]], np.float64))
        height, width = rgb.shape[:2]
        x0, y0 = np.floor(corners.min(axis=0)).astype(int) - 2
        x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + 2
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            factor = 1.0 / scale
            part = rgb[y0:y1, x0:x1]
            small_w, small_h = max(int(round(part.shape[1] / factor)), 1), max(int(round(part.shape[0] / factor)), 1)
            small = cv2.resize(part, (small_w, small_h), interpolation=cv2.INTER_AREA)
            # photo -> small: shift by the cut, then scale by the actual resize factors.
            sx, sy = small_w / part.shape[1], small_h / part.shape[0]
            to_small = np.array([[sx, 0.0, -x0 * sx], [0.0, sy, -y0 * sy]])
            matrix = _compose(matrix, invert(to_small))
            rgb = small
    return cv2.warpAffine(rgb, _opencv(matrix), (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def paste_back(values: np.ndarray, matrix: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Warp a crop-frame float map into the photo (``shape`` = (height, width)); 0 outside the crop."""
    out = np.zeros(shape, np.float32)
    box, part = paste_back_box(values, matrix, shape)
    out[box] = part
    return out


def paste_back_box(values: np.ndarray, matrix: np.ndarray, shape: tuple[int, int]) -> tuple[tuple[slice, slice], np.ndarray]:
    """Like ``paste_back`` but only for the photo rectangle the crop covers: ``((rows, columns), values)``
    (everything outside is 0), so large photos cost no more than small ones."""
    height, width = shape
    size_y, size_x = values.shape[:2]
    corners = apply(invert(matrix), np.array([[0, 0], [size_x, 0], [0, size_y], [size_x, size_y]], np.float64))
    x0, y0 = np.maximum(np.floor(corners.min(axis=0)).astype(int) - 1, 0)
    x1, y1 = np.minimum(np.ceil(corners.max(axis=0)).astype(int) + 1, [width, height])
    x1, y1 = max(int(x1), int(x0)), max(int(y1), int(y0))
    box = (slice(int(y0), y1), slice(int(x0), x1))
    if x1 == x0 or y1 == y0:
        return box, np.zeros((y1 - y0, x1 - x0), np.float32)
    # crop -> sub-rectangle of the photo = shift o inverse(matrix)
    shifted = _compose(np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0]]), invert(matrix))
    part = cv2.warpAffine(np.ascontiguousarray(values, np.float32), _opencv(shifted), (x1 - int(x0), y1 - int(y0)),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    return box, part


FOREHEAD_TOP, CHIN = 10, 152  # mediapipe face-mesh ids


def grow_region(region: np.ndarray, landmarks: np.ndarray, margin: float) -> np.ndarray:
    """The face region (HxW, nonzero = face) grown by ``margin`` x the face height (forehead top to
    chin): where the network's answer counts (occluders hanging past the outline included)."""
    height = float(np.linalg.norm(np.asarray(landmarks)[CHIN, :2] - np.asarray(landmarks)[FOREHEAD_TOP, :2]))
    radius = int(round(margin * height))
    region = (np.asarray(region) > 0).astype(np.uint8)
    if radius < 1:
        return region.astype(bool)
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(region, disc) > 0


def _compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The 2x3 affine ``outer o inner``."""
    full = lambda m: np.vstack([np.asarray(m, np.float64), [0.0, 0.0, 1.0]])  # noqa: E731
    return (full(outer) @ full(inner))[:2]
