"""Coarse level: camera, head pose and a smooth shape fitted to the face-analysis landmarks.

The shape is the topology's mean shape plus a per-vertex offset kept smooth (graph Laplacian),
small and nearly left/right symmetric; it is shared by all views, each view having its own rotation
and translation. The data terms are the reprojection of the 468 mesh landmarks through the pinhole
camera and mediapipe's relative depth (weaker: it is itself an estimate). Landmarks that fall inside
the occlusion mask count less (mediapipe guesses them), so the prior and symmetry complete them.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from ...errors import NumericalError
from ...face.topology import NUM_MESH_POINTS, FaceTopology
from ...geometry.transforms import umeyama
from .camera import axis_angle_to_matrix, matrix_to_axis_angle, project
from .mesh_ops import uniform_laplacian

log = logging.getLogger("shrn.reconstruct")


@dataclass
class LandmarkFitOptions:
    iterations: int = 60
    depth_weight: float = 0.5
    smooth_weight: float = 5.0
    offset_weight: float = 0.005
    symmetry_weight: float = 0.5
    occluded_landmark_weight: float = 0.2


@dataclass
class ViewObservation:
    landmarks: np.ndarray  # (478, 3) pixels: x, y, relative depth z (smaller = closer)
    K: np.ndarray  # (3, 3)
    width: int
    height: int
    occluded: np.ndarray  # (478,) bool: landmark inside the occlusion mask


@dataclass
class CoarseFit:
    vertices: np.ndarray  # (468, 3) mm, head frame
    rotations: np.ndarray  # (N, 3, 3)
    translations: np.ndarray  # (N, 3) mm
    reprojection_px: np.ndarray  # (N,) RMS landmark error per view


def initial_pose(view: ViewObservation, shape: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weak-perspective Umeyama fit of the shape to mediapipe's 3D landmarks, turned into a
    perspective pose: scale s (px / mm) sets the distance f / s."""
    K = view.K
    pts = view.landmarks[:NUM_MESH_POINTS].astype(np.float64)
    target = np.stack([pts[:, 0] - K[0, 2], -(pts[:, 1] - K[1, 2]), -pts[:, 2]], 1)
    sim = umeyama(shape[:NUM_MESH_POINTS], target)
    distance = K[0, 0] / sim.scale
    centre_px = sim.translation
    t = np.array([centre_px[0] / sim.scale, centre_px[1] / sim.scale, -distance])
    return sim.rotation, t


def fit_landmarks(views: list[ViewObservation], topo: FaceTopology,
                  options: LandmarkFitOptions | None = None) -> CoarseFit:
    options = options or LandmarkFitOptions()
    dtype = torch.float64
    mean = torch.as_tensor(topo.mean_shape[:NUM_MESH_POINTS], dtype=dtype)
    laplacian = uniform_laplacian(NUM_MESH_POINTS, topo.triangles).to(dtype)
    mirror = torch.as_tensor(topo.mirror)
    flip = torch.tensor([-1.0, 1.0, 1.0], dtype=dtype)

    poses = [initial_pose(v, topo.mean_shape) for v in views]
    rotvec = torch.tensor(np.stack([matrix_to_axis_angle(R) for R, _ in poses]), dtype=dtype, requires_grad=True)
    trans = torch.tensor(np.stack([t for _, t in poses]), dtype=dtype, requires_grad=True)
    offset = torch.zeros(NUM_MESH_POINTS, 3, dtype=dtype, requires_grad=True)

    Ks = torch.tensor(np.stack([v.K for v in views]), dtype=dtype)
    target = torch.tensor(np.stack([v.landmarks[:NUM_MESH_POINTS] for v in views]), dtype=dtype)
    weights = torch.tensor(np.stack([np.where(v.occluded[:NUM_MESH_POINTS], options.occluded_landmark_weight, 1.0)
                                     for v in views]), dtype=dtype)
    px_per_mm = torch.tensor([v.K[0, 0] / -t[2] for v, (_, t) in zip(views, poses)], dtype=dtype)

    def residuals():
        shape = mean + offset
        R = axis_angle_to_matrix(rotvec)
        cam = torch.einsum("vi,nji->nvj", shape, R) + trans[:, None, :]
        uv = project(cam, Ks)
        err2d = ((uv - target[..., :2]) ** 2).sum(-1) / px_per_mm[:, None] ** 2  # mm^2
        depth_model = cam[..., 2] - cam[..., 2].mean(1, keepdim=True)
        depth_mp = -(target[..., 2] - target[..., 2].mean(1, keepdim=True)) / px_per_mm[:, None]
        err_depth = (depth_model - depth_mp) ** 2
        data = ((err2d + options.depth_weight * err_depth) * weights).sum() / weights.sum()
        smooth = ((laplacian @ offset) ** 2).sum(1).mean()
        size = (offset ** 2).sum(1).mean()
        symmetry = ((offset - offset[mirror] * flip) ** 2).sum(1).mean()
        prior = options.smooth_weight * smooth + options.offset_weight * size + options.symmetry_weight * symmetry
        return data + prior, uv

    optimizer = torch.optim.LBFGS([rotvec, trans, offset], lr=1.0, max_iter=options.iterations,
                                  line_search_fn="strong_wolfe", tolerance_grad=1e-9, tolerance_change=1e-12)

    def closure():
        optimizer.zero_grad()
        loss, _ = residuals()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        loss, uv = residuals()
    if not torch.isfinite(loss):
        raise NumericalError("landmark fit diverged (NaN/inf loss)")
    rms = torch.sqrt(((uv - target[..., :2]) ** 2).sum(-1).mean(1)).numpy()
    log.debug("coarse fit: loss %.3f mm^2, reprojection RMS %s px", float(loss), np.round(rms, 2))
    return CoarseFit(
        vertices=(mean + offset).detach().numpy().astype(np.float32),
        rotations=axis_angle_to_matrix(rotvec).detach().numpy().astype(np.float32),
        translations=trans.detach().numpy().astype(np.float32),
        reprojection_px=rms,
    )
