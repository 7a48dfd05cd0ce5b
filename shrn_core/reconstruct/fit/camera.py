"""The default pinhole camera and differentiable projection used by the fit.

Without EXIF calibration the focal length is unknown; shrn assumes a portrait lens:
``f = FOCAL_FACTOR * max(width, height)`` pixels (2.0 is a 72 mm lens on a 36 mm wide full-frame
sensor), principal point at the image centre, square pixels. Camera: x right, y up, looks down -z.
"""
from __future__ import annotations

import numpy as np
import torch

FOCAL_FACTOR = 2.0


def default_intrinsics(width: int, height: int, focal_px: float | None = None) -> np.ndarray:
    f = float(focal_px) if focal_px else FOCAL_FACTOR * max(width, height)
    return np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]], dtype=np.float32)


def axis_angle_to_matrix(rotvec: torch.Tensor) -> torch.Tensor:
    """(..., 3) rotation vectors -> (..., 3, 3) matrices (Rodrigues), smooth at zero."""
    theta2 = (rotvec * rotvec).sum(-1, keepdim=True).unsqueeze(-1)
    theta = torch.sqrt(theta2 + 1e-16)
    x, y, z = rotvec.unbind(-1)
    zero = torch.zeros_like(x)
    skew = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(*rotvec.shape[:-1], 3, 3)
    small = theta2 < 1e-8
    a = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / (theta2 + 1e-30))
    eye = torch.eye(3, dtype=rotvec.dtype, device=rotvec.device).expand_as(skew)
    return eye + a * skew + b * (skew @ skew)


def matrix_to_axis_angle(R: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.from_matrix(np.asarray(R, dtype=np.float64)).as_rotvec()


def project(points_cam: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """(..., V, 3) camera points -> (..., V, 2) pixels (u right, v down)."""
    depth = (-points_cam[..., 2:3]).clamp(min=1e-3)
    u = K[..., 0, 0, None] * points_cam[..., 0] / depth[..., 0] + K[..., 0, 2, None]
    v = K[..., 1, 1, None] * -points_cam[..., 1] / depth[..., 0] + K[..., 1, 2, None]
    return torch.stack([u, v], -1)
