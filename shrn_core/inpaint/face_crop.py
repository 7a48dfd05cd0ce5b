"""Aligned square face crops (the CelebA-HQ / FFHQ framing) and pasting a crop back into the photo.

The crop rule is the one the CelebA-HQ and FFHQ datasets were made with (Karras et al.): a square
centred a little below the eyes (eye centre + 0.1 x eye-to-mouth vector), rotated with the eye line,
of half-side max(2 x eye distance, 1.8 x eye-to-mouth distance). A face model trained on those
datasets therefore sees faces framed as in its training data.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..face.types import Face


@dataclass
class FaceCrop:
    matrix: np.ndarray  # 2x3 affine, photo pixel centres (cv2 convention) -> crop pixel centres
    size: int

    @property
    def inverse(self) -> np.ndarray:
        return cv2.invertAffineTransform(self.matrix)

    @property
    def scale(self) -> float:
        return float(np.sqrt(abs(np.linalg.det(self.matrix[:, :2]))))


def aligned_crop(face: Face, size: int) -> FaceCrop:
    five = np.asarray(face.landmarks_5, np.float64)  # right eye, left eye, nose, right mouth, left mouth
    eye_left_img, eye_right_img = five[0], five[1]  # image-left / image-right in a frontal photo
    eye_avg = (eye_left_img + eye_right_img) / 2
    eye_to_eye = eye_right_img - eye_left_img
    mouth_avg = (five[3] + five[4]) / 2
    eye_to_mouth = mouth_avg - eye_avg
    x = eye_to_eye - np.array([-eye_to_mouth[1], eye_to_mouth[0]])  # eye line, averaged with the face's vertical
    x /= np.hypot(*x)
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.array([-x[1], x[0]])
    centre = eye_avg + eye_to_mouth * 0.1
    # photo corner coordinates of the crop's top-left, top-right and bottom-left corners
    corners = np.float32([centre - x - y, centre + x - y, centre - x + y]) - 0.5
    target = np.float32([[0, 0], [size, 0], [0, size]]) - 0.5
    return FaceCrop(cv2.getAffineTransform(corners, target), size)


def warp_to_crop(image: np.ndarray, crop: FaceCrop, interpolation: int = cv2.INTER_LINEAR,
                 border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
    """The crop of ``image``; a large face is first shrunk with area averaging to avoid aliasing."""
    matrix = crop.matrix.copy()
    scale = crop.scale
    if scale < 0.5 and interpolation != cv2.INTER_NEAREST:
        shrunk = cv2.resize(image, None, fx=scale * 2, fy=scale * 2, interpolation=cv2.INTER_AREA)
        factor_x = shrunk.shape[1] / image.shape[1]
        factor_y = shrunk.shape[0] / image.shape[0]
        # pixel centres: x_small = (x + 0.5) * f - 0.5
        to_small = np.array([[factor_x, 0, 0.5 * factor_x - 0.5], [0, factor_y, 0.5 * factor_y - 0.5], [0, 0, 1]])
        matrix = matrix @ np.linalg.inv(to_small)
        image = shrunk
    return cv2.warpAffine(image, matrix, (crop.size, crop.size), flags=interpolation, borderMode=border)


def inside_photo(shape: tuple[int, int], crop: FaceCrop) -> np.ndarray:
    """crop-sized bool: which crop pixels show the photo (False beyond its borders)."""
    ones = np.ones(shape[:2], np.float32)
    return cv2.warpAffine(ones, crop.matrix, (crop.size, crop.size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0) > 0.999


def paste_back(crop_image: np.ndarray, crop: FaceCrop, shape: tuple[int, int], feather: float) -> tuple[np.ndarray, np.ndarray]:
    """(photo-sized image, weight in [0, 1]): the crop warped back, weight fading to 0 at its edges.

    ``feather`` is the width of the fade in crop pixels.
    """
    height, width = shape[:2]
    inverse = crop.inverse
    image = cv2.warpAffine(crop_image, inverse, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    size = crop.size
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    edge = np.minimum.reduce([xx + 0.5, yy + 0.5, size - 0.5 - xx, size - 0.5 - yy])
    ramp = np.clip(edge / max(feather, 1e-6), 0, 1)
    weight = cv2.warpAffine(ramp, inverse, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                            borderValue=0)
    return image, np.clip(weight, 0, 1)
