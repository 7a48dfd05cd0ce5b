"""Per-photo inputs of the HRN backend: validation, face mask, aligned crops, and the way back
from crop space to the photo (camera intrinsics, overlays)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import cv2
import numpy as np
import torch

from ...errors import FaceError, InputError
from ...face.types import Face, FaceAnalysis
from ...formats.image import read_image
from .bfm import CENTER, CROP, FOCAL, standard_five_points
from .preprocess import Crop, apply_crop, plan_crop


@dataclass
class PreparedView:
    image_path: str
    photo: np.ndarray  # HxWx3 uint8
    occlusion: np.ndarray  # HxW uint8, 255 = occluded (zeros when no mask was given)
    landmarks_68: np.ndarray  # (68, 2) photo pixels
    crop: Crop  # 224 network crop
    crop_hd: Crop  # texture crop
    image: torch.Tensor  # (3, 224, 224) in [0, 1]
    image_hd: torch.Tensor  # (3, S, S)
    face_mask: torch.Tensor  # (1, 224, 224) 1 = visible face
    landmarks_crop: torch.Tensor  # (68, 2) in the 224 crop


def _as_face(face: Face | FaceAnalysis | None, index: int) -> Face:
    if isinstance(face, FaceAnalysis):
        if not face.faces:
            raise FaceError("no face found", face.image_path)
        return face.face
    if isinstance(face, Face):
        return face
    raise FaceError(f"view {index}: the hrn backend needs the face analysis (landmarks) of each photo")


def _as_photo(image, index: int) -> tuple[np.ndarray, str]:
    if isinstance(image, (str, Path)):
        return read_image(image), str(image)
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise InputError(f"view {index}: expected an HxWx3 uint8 RGB image, got {array.dtype} {array.shape}")
    return array, f"<view {index}>"


def _as_occlusion(mask, shape: tuple[int, int], index: int, path: str) -> np.ndarray:
    if mask is None:
        return np.zeros(shape, np.uint8)
    array = np.asarray(mask)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.shape != shape:
        raise InputError(f"occlusion mask is {array.shape[1]}x{array.shape[0]} but the photo is "
                         f"{shape[1]}x{shape[0]} (view {index})", path)
    if array.dtype != np.uint8:
        if not np.isfinite(array).all():
            raise InputError(f"occlusion mask has NaN or infinite values (view {index})", path)
        array = np.clip(array * (255.0 if array.max() <= 1 else 1.0), 0, 255).astype(np.uint8)
    return array


def face_region(face: Face, shape: tuple[int, int]) -> np.ndarray:
    """HxW uint8 (255 inside) convex hull of the face-mesh landmarks: the skin region HRN's own
    face segmentation provided."""
    region = np.zeros(shape, np.uint8)
    hull = cv2.convexHull(np.round(face.landmarks[:, :2] * 16).astype(np.int32))
    cv2.fillConvexPoly(region, hull, 255, lineType=cv2.LINE_AA, shift=4)
    return region


def prepare_view(image, mask, face, lm3d_5: np.ndarray, hd_size: int, index: int = 0,
                 image_path: Optional[str] = None) -> PreparedView:
    photo, path = _as_photo(image, index)
    path = image_path or path
    face = _as_face(face, index)
    if not np.isfinite(face.landmarks).all():
        raise FaceError(f"face landmarks contain NaN (view {index})", path)
    height, width = photo.shape[:2]
    occlusion = _as_occlusion(mask, (height, width), index, path)
    visible = np.where(occlusion >= 128, 0, face_region(face, (height, width))).astype(np.uint8)  # >= 128: occluded
    # HRN defines both its detected and its standard 5 points from 68 landmarks (eye centres =
    # mean of the eye corners); doing the same keeps gaze (iris position) out of the alignment
    five = standard_five_points(face.landmarks_68)
    crop = plan_crop(width, height, five, lm3d_5, CROP)
    crop_hd = plan_crop(width, height, five, lm3d_5, hd_size)

    def tensor(array: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(array)).float() / 255.0
        return t.permute(2, 0, 1) if t.dim() == 3 else t[None]

    lm68 = face.landmarks_68.astype(np.float64)
    return PreparedView(
        image_path=path, photo=photo, occlusion=occlusion, landmarks_68=lm68.astype(np.float32),
        crop=crop, crop_hd=crop_hd, image=tensor(apply_crop(photo, crop)), image_hd=tensor(apply_crop(photo, crop_hd)),
        face_mask=tensor(apply_crop(visible, crop)),
        landmarks_crop=torch.from_numpy(crop.to_crop(lm68)).float())


def intrinsics(crop: Crop) -> np.ndarray:
    """K of the photo for HRN's crop camera (focal 1015 px and centre 112 in the 224 crop)."""
    sx, sy = crop.scale
    return np.array([[FOCAL / sx, 0, (CENTER + crop.offset[0]) / sx],
                     [0, FOCAL / sy, (CENTER + crop.offset[1]) / sy],
                     [0, 0, 1]], np.float32)


def paste_render(photo: np.ndarray, crop: Crop, render: np.ndarray, coverage: np.ndarray) -> np.ndarray:
    """Composite a crop-space render (SxSx3 float [0, 1]) with its coverage (SxS) over the photo."""
    height, width = photo.shape[:2]
    # cv2 addresses pixel centres by integer index: shift the continuous map by half a pixel
    forward = crop.affine_to_crop()
    forward[:, 2] += 0.5 * crop.scale - 0.5
    inverse = cv2.invertAffineTransform(forward)
    flags = cv2.INTER_LINEAR
    color = cv2.warpAffine(render.astype(np.float32), inverse, (width, height), flags=flags)
    alpha = cv2.warpAffine(coverage.astype(np.float32), inverse, (width, height), flags=flags)[..., None]
    out = photo.astype(np.float32) * (1 - alpha) + np.clip(color, 0, 1) * 255.0 * alpha
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
