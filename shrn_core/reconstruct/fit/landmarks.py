"""Coarse level: camera, head pose and a smooth shape fitted to the face-analysis landmarks.

The shape is the topology's mean shape plus a per-vertex offset kept smooth (graph Laplacian),
small and nearly left/right symmetric; it is shared by all views of a subject, each view having its
own rotation and translation. Its scale comes from the mean shape (interpupillary distance 63 mm):
the distance between the eye centres is held to the mean shape's, which also removes the
scale/distance valley of a perspective fit. The data terms are the reprojection of the 468 mesh
landmarks through the pinhole camera and mediapipe's relative depth; each point's squared residual
goes through a Cauchy loss (scale 1 mm), so landmarks an occluder displaced by several millimetres
count much less while clean landmarks fit as before. Landmarks inside the occlusion mask also count
less (mediapipe guesses them), so the prior and symmetry complete them.
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

RIGHT_EYE = (33, 133, 159, 145)  # corners and lid centres of the subject's right eye
LEFT_EYE = (362, 263, 386, 374)


@dataclass
class LandmarkFitOptions:
    iterations: int = 60  # L-BFGS iterations (optimizer="lbfgs")
    depth_weight: float = 1.0  # mediapipe depth as much as the 2D positions (tuned on consistency: 0.5 -> 1.0 was 2 % better)
    smooth_weight: float = 5.0
    offset_weight: float = 0.005
    symmetry_weight: float = 0.5
    occluded_landmark_weight: float = 0.2
    optimizer: str = "adam"  # "adam" (batch-invariant) or "lbfgs"
    adam_iterations: int = 200
    lr: float = 0.02
    robust_scale_mm: float = 1.0  # Cauchy loss scale on the landmark residuals (0 = plain least squares)
    scale_weight: float = 10.0  # holds the eye-centre distance to the mean shape's (the IPD prior sets the scale)


@dataclass
class ViewObservation:
    landmarks: np.ndarray  # (478, 3) pixels: x, y, relative depth z (smaller = closer)
    K: np.ndarray  # (3, 3)
    width: int
    height: int
    occluded: np.ndarray  # (478,) bool: landmark inside the occlusion mask


@dataclass
class CoarseFit:
    vertices: np.ndarray  # (S, 468, 3) mm, head frame, one shape per subject
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
                  options: LandmarkFitOptions | None = None, subject_of_view: list[int] | None = None,
                  device: torch.device | str = "cpu") -> CoarseFit:
    """Fit all views at once; views with the same ``subject_of_view`` entry share one shape (default:
    all views show one subject). The loss is a sum of per-subject terms, so subjects do not interact."""
    options = options or LandmarkFitOptions()
    subject_of_view = list(subject_of_view) if subject_of_view is not None else [0] * len(views)
    subjects = max(subject_of_view) + 1
    subject = torch.as_tensor(subject_of_view, device=device)
    views_per_subject = torch.bincount(subject, minlength=subjects).to(torch.float64)
    dtype = torch.float64
    mean = torch.as_tensor(topo.mean_shape[:NUM_MESH_POINTS], dtype=dtype, device=device)
    laplacian = uniform_laplacian(NUM_MESH_POINTS, topo.triangles).to(device=device, dtype=dtype)
    mirror = torch.as_tensor(topo.mirror, device=device)
    flip = torch.tensor([-1.0, 1.0, 1.0], dtype=dtype, device=device)

    poses = [initial_pose(v, topo.mean_shape) for v in views]
    rotvec = torch.tensor(np.stack([matrix_to_axis_angle(R) for R, _ in poses]), dtype=dtype, device=device, requires_grad=True)
    # well-scaled unknowns for L-BFGS: translation as (x / d, y / d, log d) around the initial
    # distance d0, offsets in centimetres
    t0 = np.stack([t for _, t in poses])
    d0 = torch.tensor(-t0[:, 2], dtype=dtype, device=device)
    trans_param = torch.tensor(np.stack([t0[:, 0] / -t0[:, 2], t0[:, 1] / -t0[:, 2], np.zeros(len(t0))], 1),
                               dtype=dtype, device=device, requires_grad=True)
    offset_cm = torch.zeros(subjects, NUM_MESH_POINTS, 3, dtype=dtype, device=device, requires_grad=True)

    def translation():
        d = d0 * torch.exp(trans_param[:, 2])
        return torch.stack([trans_param[:, 0] * d, trans_param[:, 1] * d, -d], 1)

    Ks = torch.tensor(np.stack([v.K for v in views]), dtype=dtype, device=device)
    target = torch.tensor(np.stack([v.landmarks[:NUM_MESH_POINTS] for v in views]), dtype=dtype, device=device)
    weights = torch.tensor(np.stack([np.where(v.occluded[:NUM_MESH_POINTS], options.occluded_landmark_weight, 1.0)
                                     for v in views]), dtype=dtype, device=device)
    px_per_mm = torch.tensor([v.K[0, 0] / -t[2] for v, (_, t) in zip(views, poses)], dtype=dtype, device=device)

    mean_eye_distance = (mean[list(RIGHT_EYE)].mean(0) - mean[list(LEFT_EYE)].mean(0)).norm()

    def residuals():
        offset = 10 * offset_cm
        trans = translation()
        shape = mean + offset  # (S, 468, 3)
        R = axis_angle_to_matrix(rotvec)
        cam = torch.einsum("nvi,nji->nvj", shape[subject], R) + trans[:, None, :]
        uv = project(cam, Ks)
        err2d = ((uv - target[..., :2]) ** 2).sum(-1) / px_per_mm[:, None] ** 2  # mm^2
        depth_model = cam[..., 2] - cam[..., 2].mean(1, keepdim=True)
        depth_mp = -(target[..., 2] - target[..., 2].mean(1, keepdim=True)) / px_per_mm[:, None]
        err_depth = (depth_model - depth_mp) ** 2
        residual = err2d + options.depth_weight * err_depth
        if options.robust_scale_mm > 0:
            c2 = options.robust_scale_mm ** 2
            residual = c2 * torch.log1p(residual / c2)
        per_view = (residual * weights).sum(1) / weights.sum(1)
        data = (per_view / views_per_subject[subject]).sum()
        smooth = (torch.einsum("uv,svc->suc", laplacian, offset) ** 2).sum(-1).mean(-1)
        size = (offset ** 2).sum(-1).mean(-1)
        symmetry = ((offset - offset[:, mirror] * flip) ** 2).sum(-1).mean(-1)
        eyes = torch.stack([shape[:, list(RIGHT_EYE)].mean(1), shape[:, list(LEFT_EYE)].mean(1)], 1)
        eye_distance = (eyes[:, 0] - eyes[:, 1]).norm(dim=-1)
        scale = (eye_distance - mean_eye_distance) ** 2
        prior = options.scale_weight * scale + options.smooth_weight * smooth + options.offset_weight * size + options.symmetry_weight * symmetry
        return data + prior.sum(), uv

    params = [rotvec, trans_param, offset_cm]
    if options.optimizer == "lbfgs":
        optimizer = torch.optim.LBFGS(params, lr=1.0, max_iter=options.iterations, line_search_fn="strong_wolfe",
                                      tolerance_grad=1e-9, tolerance_change=1e-12)

        def closure():
            optimizer.zero_grad()
            loss, _ = residuals()
            loss.backward()
            return loss

        optimizer.step(closure)
    else:
        # Adam updates each unknown from its own gradient only, so the faces of a batch (whose
        # losses add up) are fitted exactly as they would be one by one.
        optimizer = torch.optim.Adam([{"params": [rotvec], "lr": options.lr * 0.5},
                                      {"params": [trans_param], "lr": options.lr * 0.2},
                                      {"params": [offset_cm], "lr": options.lr}])
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, options.adam_iterations, eta_min=options.lr * 0.02)
        for _ in range(options.adam_iterations):
            optimizer.zero_grad()
            loss, _ = residuals()
            loss.backward()
            optimizer.step()
            schedule.step()
    with torch.no_grad():
        loss, uv = residuals()
    if not torch.isfinite(loss):
        raise NumericalError("landmark fit diverged (NaN/inf loss)")
    rms = torch.sqrt(((uv - target[..., :2]) ** 2).sum(-1).mean(1)).cpu().numpy()
    log.debug("coarse fit: loss %.3f mm^2, reprojection RMS %s px", float(loss), np.round(rms, 2))
    return CoarseFit(
        vertices=(mean + 10 * offset_cm).detach().cpu().numpy().astype(np.float32),
        rotations=axis_angle_to_matrix(rotvec).detach().cpu().numpy().astype(np.float32),
        translations=translation().detach().cpu().numpy().astype(np.float32),
        reprojection_px=rms,
    )
