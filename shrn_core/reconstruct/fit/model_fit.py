"""Coarse level: the face model (identity, expression), head pose and translation fitted to the
face-analysis landmarks by Levenberg-Marquardt (batched over faces, a few iterations).

Unknowns, per subject: identity coefficients ``a`` (prior N(0, 1)); per view: expression weights
``e`` in [0, 1] (small L2 and L1 priors: few blendshapes active), a rotation vector and a translation
(``x / d, y / d, log d`` around the initial distance ``d``). The focal length stays at the camera's
default (landmarks alone cannot separate it from the distance).

Residuals, in millimetres at the face (pixel errors divided by the view's pixels per mm):

* the 468 mediapipe mesh points, embedded in the model surface (``FaceModel.mediapipe_points``),
  reprojected through the pinhole camera; points inside the occlusion mask count less;
* mediapipe's face-oval points lie on the face's outline in the photo, which is the model's
  silhouette, not a fixed vertex: each is matched to the candidate vertex (``FaceModel.oval_contour``)
  that lies furthest outwards in the image under the current pose (re-chosen every iteration);
* mediapipe's relative depth (weighted ``depth_weight``, off by default);
* mesh points on surface that turns away from the camera (the far cheek, the nose's far side at a
  yaw) are hidden in the photo and only guessed by mediapipe: their weight ramps down with the
  cosine between the fitted surface's normal and the view ray (re-computed every iteration);
* robustness: iteratively reweighted least squares with a Cauchy loss (scale ``robust_scale_mm``),
  so landmarks an occluder displaced by several millimetres count much less.

Each iteration forms the Jacobian with ``torch.func.jacfwd`` on the small landmark set (not the
whole mesh), solves the damped normal equations per subject and projects the expression weights back
into [0, 1].
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from ...errors import NumericalError
from ...face.topology import NUM_MESH_POINTS
from ...facemodel import FACE_OVAL, FaceModel
from ...geometry.transforms import umeyama
from .camera import axis_angle_to_matrix, matrix_to_axis_angle
from .mesh_ops import vertex_normals
from .photometric import batched_faces

log = logging.getLogger("shrn.reconstruct")

_OVAL = np.array(FACE_OVAL, dtype=np.int64)
_FIXED_POINTS = np.setdiff1d(np.arange(NUM_MESH_POINTS), _OVAL)


@dataclass
class ViewObservation:
    """One photo's landmarks as the fit sees them."""

    landmarks: np.ndarray  # (478, 3) pixels: x, y, relative depth z (smaller = closer), from face analysis
    K: np.ndarray  # (3, 3) intrinsics
    width: int
    height: int
    occluded: np.ndarray  # (478,) bool: landmark inside the occlusion mask


@dataclass
class ModelFitOptions:
    iterations: int = 8  # Levenberg-Marquardt iterations
    identity_components: int = 100  # leading identity components fitted (<= the model's)
    landmark_sigma_mm: float = 5.0  # landmark noise (correlated errors: larger than a point's own); data = sum((r / sigma)^2)
    # prior weight on ||a||^2 (a ~ N(0, 1)); 3 rather than 1: the same accuracy on clean faces and
    # about half the change of the neutral face across expressions (seed-1 dev sets, docs/benchmarks.md)
    identity_weight: float = 3.0
    # weak expression priors (were L2 1, L1 2): expressions outside the model's blendshapes (the Surrey
    # faces' surprise, disgust) then stay in the expression instead of leaking into the identity; the
    # neutral face moves ~0.27 instead of ~0.6 mm across expressions for ~+0.5-1% clean error (seed-1/2 dev sets)
    expression_l2: float = 0.3
    expression_l1: float = 0.1
    depth_weight: float = 0.0  # mediapipe's relative depth is a learned guess: off, it fits better (seed-1/2 dev sets)
    oval_weight: float = 1.0
    occluded_weight: float = 0.2
    robust_scale_mm: float = 1.5
    # mesh points whose surface turns away from the camera (cosine of normal and view ray below
    # ``facing_low``) are hidden: mediapipe guesses them, so they count little; full weight above ``facing_high``
    facing_low: float = 0.0
    facing_high: float = 0.3
    hidden_weight: float = 0.05
    damping: float = 1e-3


@dataclass
class ModelFit:
    identity: np.ndarray  # (S, K) per subject
    expression: np.ndarray  # (N, E) per view, in [0, 1]
    rotations: np.ndarray  # (N, 3, 3) head -> camera
    translations: np.ndarray  # (N, 3) mm
    vertices: np.ndarray  # (S, V, 3) mm, head frame: identity + the subject's mean expression
    neutral: np.ndarray  # (S, V, 3) mm: identity only
    reprojection_px: np.ndarray  # (N,) RMS of the fixed mesh points' reprojection
    landmarks_68: np.ndarray  # (N, 68, 2) pixels: the fitted model's iBUG points, jaw on the silhouette


def _project(cam: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """(..., P, 3) camera points, K broadcastable to (..., 1, 3, 3) -> (..., P, 2) pixels."""
    depth = (-cam[..., 2]).clamp(min=1e-3)
    return torch.stack([K[..., 0, 0] * cam[..., 0] / depth + K[..., 0, 2],
                        K[..., 1, 1] * -cam[..., 1] / depth + K[..., 1, 2]], -1)


def silhouette_choice(candidates: np.ndarray, points_cam: torch.Tensor, K: torch.Tensor, R: torch.Tensor,
                      side: np.ndarray) -> torch.Tensor:
    """(B, A) chosen vertex per contour anchor: the candidate furthest outwards in the image.

    ``candidates`` (A, C) vertex ids (-1 padded), ``points_cam`` (B, V, 3) camera-frame vertices,
    ``K`` (B, 3, 3), ``R`` (B, 3, 3), ``side`` (A,) -1 for the subject's right, +1 left, 0 fixed.
    Outwards = along the image direction of the head's x axis times the anchor's side.
    """
    cand = torch.as_tensor(np.maximum(candidates, 0), device=points_cam.device)  # (A, C)
    valid = torch.as_tensor(candidates >= 0, device=points_cam.device)
    uv = _project(points_cam, K[:, None])  # (B, V, 2)
    uv_c = uv[:, cand]  # (B, A, C, 2)
    x_axis = R[:, :, 0]  # head x in the camera frame
    direction = torch.stack([x_axis[:, 0], -x_axis[:, 1]], -1)  # image u right, v down
    direction = direction / direction.norm(dim=-1, keepdim=True).clamp(min=1e-9)
    score = (uv_c * direction[:, None, None, :]).sum(-1) * torch.as_tensor(side, dtype=uv.dtype, device=uv.device)[None, :, None]
    score = torch.where(valid[None], score, torch.full_like(score, -torch.inf))
    fixed = torch.as_tensor(side == 0, device=uv.device)
    pick = torch.where(fixed[None], torch.zeros_like(score[..., 0], dtype=torch.long), score.argmax(-1))
    return cand[torch.arange(cand.shape[0], device=cand.device)[None], pick]


def _anchor_sides(model: FaceModel, candidates: np.ndarray) -> np.ndarray:
    anchors = model.neutral[candidates[:, 0]]
    fixed = (candidates >= 0).sum(1) <= 1
    return np.where(fixed, 0, np.sign(anchors[:, 0])).astype(np.float64)


def model_landmarks_68(model: FaceModel, vertices: torch.Tensor, K: torch.Tensor, R: torch.Tensor,
                       t: torch.Tensor) -> torch.Tensor:
    """(B, 68, 2) pixels of the model's iBUG points for (B, V, 3) head-frame vertices; the jaw points
    0-16 are taken on the silhouette (``FaceModel.jaw_contour``), like the annotated outline."""
    cam = torch.einsum("bvi,bji->bvj", vertices, R) + t[:, None]
    jaw = silhouette_choice(model.jaw_contour, cam, K, R, _anchor_sides(model, model.jaw_contour))  # (B, 17)
    ids = torch.as_tensor(model.landmarks68, device=vertices.device).expand(vertices.shape[0], -1).clone()
    ids[:, :17] = jaw
    points = torch.gather(cam, 1, ids[..., None].expand(-1, -1, 3))
    return _project(points, K[:, None])


def initial_pose(view: ViewObservation, shape_points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weak-perspective similarity of the model's mediapipe points to mediapipe's 3D landmarks, as a
    perspective pose (scale s px/mm sets the distance f / s)."""
    K = view.K
    pts = view.landmarks[:NUM_MESH_POINTS].astype(np.float64)
    target = np.stack([pts[:, 0] - K[0, 2], -(pts[:, 1] - K[1, 2]), -pts[:, 2]], 1)
    sim = umeyama(shape_points[:NUM_MESH_POINTS], target)
    distance = K[0, 0] / sim.scale
    t = np.array([sim.translation[0] / sim.scale, sim.translation[1] / sim.scale, -distance])
    return sim.rotation, t


def fit_model(views: list[ViewObservation], model: FaceModel, options: ModelFitOptions | None = None,
              subject_of_view: list[int] | None = None) -> ModelFit:
    """Fit all views at once (CPU, float64); views sharing a ``subject_of_view`` entry share identity."""
    options = options or ModelFitOptions()
    subject_of_view = list(subject_of_view) if subject_of_view is not None else [0] * len(views)
    subjects = max(subject_of_view) + 1
    groups: dict[int, list[int]] = {}
    for s in range(subjects):
        groups.setdefault(subject_of_view.count(s), []).append(s)
    K_id = min(options.identity_components, model.num_identity)
    E = model.num_expression
    results = {}
    for n_views, subject_ids in groups.items():
        view_ids = [[i for i, s in enumerate(subject_of_view) if s == k] for k in subject_ids]
        results.update(_fit_group(views, view_ids, subject_ids, model, options, K_id, E))
    order = range(subjects)
    identity = np.stack([results[s]["identity"] for s in order])
    per_view = {}
    for s in order:
        for i, item in results[s]["views"].items():
            per_view[i] = item
    idx = range(len(views))
    fit = ModelFit(
        identity=identity,
        expression=np.stack([per_view[i]["expression"] for i in idx]),
        rotations=np.stack([per_view[i]["R"] for i in idx]).astype(np.float32),
        translations=np.stack([per_view[i]["t"] for i in idx]).astype(np.float32),
        vertices=np.zeros(0), neutral=np.zeros(0),
        reprojection_px=np.array([per_view[i]["rms"] for i in idx]),
        landmarks_68=np.zeros(0),
    )
    with torch.no_grad():
        a = torch.as_tensor(identity, dtype=torch.float64)
        mean_expr = torch.as_tensor(np.stack([fit.expression[[i for i in idx if subject_of_view[i] == s]].mean(0)
                                              for s in order]), dtype=torch.float64)
        fit.neutral = model.vertices(a).numpy().astype(np.float32)
        fit.vertices = model.vertices(a, mean_expr).numpy().astype(np.float32)
        per_view_vertices = model.vertices(a[subject_of_view], torch.as_tensor(fit.expression, dtype=torch.float64))
        fit.landmarks_68 = model_landmarks_68(
            model, per_view_vertices, torch.as_tensor(np.stack([v.K for v in views]), dtype=torch.float64),
            torch.as_tensor(fit.rotations, dtype=torch.float64), torch.as_tensor(fit.translations, dtype=torch.float64),
        ).numpy().astype(np.float32)
    if not (np.isfinite(fit.vertices).all() and np.isfinite(fit.landmarks_68).all()):
        raise NumericalError("face model fit diverged (NaN/inf)")
    return fit


def _skew(v: torch.Tensor) -> torch.Tensor:
    """(..., 3) -> (..., 3, 3) cross-product matrices."""
    x, y, z = v.unbind(-1)
    zero = torch.zeros_like(x)
    return torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).view(*v.shape, 3)


class _Group:
    """The batched least-squares problem of S subjects with n views each (float64, CPU).

    State: identity a (S, K), expression e (S, n, E), rotations R (S, n, 3, 3) (updated by left
    increments exp([d]x) R), translation parameters tau (S, n, 3) = (x / d, y / d, log(d / d0)).
    """

    def __init__(self, views, view_ids, model: FaceModel, options: ModelFitOptions, K_id: int):
        dtype = torch.float64
        self.model, self.options, self.K_id = model, options, K_id
        flat = [i for ids in view_ids for i in ids]
        S, n = len(view_ids), len(view_ids[0])
        self.S, self.n, self.E = S, n, model.num_expression
        t = model.tensors("cpu", dtype)
        self.neutral_v = t["neutral"]
        self.id_v = t["identity"][:K_id].view(K_id, -1, 3).permute(1, 2, 0)  # (V, 3, K)
        self.ex_v = t["expression"].view(self.E, -1, 3).permute(1, 2, 0)  # (V, 3, E)
        corners = torch.as_tensor(model.triangles[model.mediapipe_triangles[_FIXED_POINTS]])  # (Pf, 3)
        bary = torch.as_tensor(model.mediapipe_barycentric[_FIXED_POINTS], dtype=dtype)[..., None, None]
        self.fixed_X0 = (self.neutral_v[corners] * bary[..., 0]).sum(1)  # (Pf, 3)
        self.fixed_A = (self.id_v[corners] * bary).sum(1)  # (Pf, 3, K)
        self.fixed_B = (self.ex_v[corners] * bary).sum(1)  # (Pf, 3, E)
        self.fixed_corners, self.fixed_bary = corners, bary[..., 0, 0]
        self.triangles = torch.as_tensor(model.triangles)
        self.Ks = torch.as_tensor(np.stack([views[i].K for i in flat]), dtype=dtype).view(S, n, 3, 3)
        lm = torch.as_tensor(np.stack([views[i].landmarks[:NUM_MESH_POINTS] for i in flat]), dtype=dtype).view(S, n, -1, 3)
        occluded = torch.as_tensor(np.stack([views[i].occluded[:NUM_MESH_POINTS] for i in flat])).view(S, n, -1)
        order = np.concatenate([_FIXED_POINTS, _OVAL])
        self.target = lm[:, :, order]  # (S, n, P, 3): fixed points, then the oval
        self.num_fixed = len(_FIXED_POINTS)
        self.base_w = torch.where(occluded[:, :, order], options.occluded_weight, 1.0).to(dtype)
        self.base_w[:, :, self.num_fixed:] *= options.oval_weight
        self.robust_w = torch.ones_like(self.base_w)
        self.facing_w = torch.ones_like(self.base_w)
        self.oval_sides = _anchor_sides(model, model.oval_contour)
        mean_mp = model.mediapipe_points(t["neutral"][None]).numpy()[0]
        poses = [initial_pose(views[i], mean_mp) for i in flat]
        t0 = np.stack([tr for _, tr in poses])
        self.d0 = torch.as_tensor(-t0[:, 2], dtype=dtype).view(S, n)
        self.ppm = torch.as_tensor([views[i].K[0, 0] / -tr[2] for i, (_, tr) in zip(flat, poses)], dtype=dtype).view(S, n)
        self.a = torch.zeros(S, K_id, dtype=dtype)
        self.e = torch.zeros(S, n, self.E, dtype=dtype)
        self.R = torch.as_tensor(np.stack([R for R, _ in poses]), dtype=dtype).view(S, n, 3, 3)
        self.tau = torch.zeros(S, n, 3, dtype=dtype)
        self.tau[..., :2] = torch.as_tensor(t0[:, :2] / -t0[:, 2:3], dtype=dtype).view(S, n, 2)
        # mediapipe's relative depth in pixels (larger = closer); in mm it scales with the distance
        depth_px = -self.target[..., 2]
        self.depth_px = depth_px - depth_px[..., :self.num_fixed].mean(-1, keepdim=True)

    # -- geometry
    def translation(self, tau):
        d = self.d0 * torch.exp(tau[..., 2])
        return torch.stack([tau[..., 0] * d, tau[..., 1] * d, -d], -1), d

    def whole_mesh(self, a, e):
        """(S, n, V, 3) head-frame vertices."""
        return (self.neutral_v + torch.einsum("vck,sk->svc", self.id_v, a)[:, None]
                + torch.einsum("vce,sne->snvc", self.ex_v, e))

    def choose_oval(self):
        """Silhouette vertex for each oval point, under the current state: (S, n, O); also
        updates the fixed points' facing weights from the same posed mesh."""
        cam = torch.einsum("snvi,snji->snvj", self.whole_mesh(self.a, self.e), self.R) + self.translation(self.tau)[0][:, :, None]
        S, n = self.S, self.n
        ids = silhouette_choice(self.model.oval_contour, cam.reshape(S * n, -1, 3), self.Ks.reshape(-1, 3, 3),
                                self.R.reshape(-1, 3, 3), self.oval_sides)
        self.facing_w[..., :self.num_fixed] = self.facing_weights(cam)
        return ids.view(S, n, -1)

    def facing_weights(self, cam: torch.Tensor) -> torch.Tensor:
        """(S, n, Pf) weights of the fixed mesh points from how squarely the camera sees the surface there."""
        o = self.options
        meshes, num_vertices = cam.shape[0] * cam.shape[1], cam.shape[2]
        normals = vertex_normals(cam.reshape(-1, 3), batched_faces(self.triangles, meshes, num_vertices)).view_as(cam)
        at_points = (normals[..., self.fixed_corners, :] * self.fixed_bary[..., None]).sum(-2)  # (S, n, Pf, 3)
        points = (cam[..., self.fixed_corners, :] * self.fixed_bary[..., None]).sum(-2)
        cosine = (torch.nn.functional.normalize(at_points, dim=-1, eps=1e-12)
                  * torch.nn.functional.normalize(-points, dim=-1, eps=1e-12)).sum(-1)
        ramp = (cosine - o.facing_low) / max(o.facing_high - o.facing_low, 1e-6)
        return ramp.clamp(o.hidden_weight, 1.0)

    def set_points(self, oval_ids):
        """Bases (X0, A, B) of all residual points for the chosen oval vertices."""
        S, n = self.S, self.n
        self.X0 = torch.cat([self.fixed_X0.expand(S, n, -1, -1), self.neutral_v[oval_ids]], 2)
        self.A = torch.cat([self.fixed_A.expand(S, n, -1, -1, -1), self.id_v[oval_ids]], 2)
        self.B = torch.cat([self.fixed_B.expand(S, n, -1, -1, -1), self.ex_v[oval_ids]], 2)

    def residuals(self, a, e, R, tau, with_jacobian: bool):
        o = self.options
        X = self.X0 + torch.einsum("snpck,sk->snpc", self.A, a) + torch.einsum("snpce,sne->snpc", self.B, e)
        RX = torch.einsum("snij,snpj->snpi", R, X)
        T, d = self.translation(tau)
        c = RX + T[:, :, None]
        w = (-c[..., 2]).clamp(min=1e-3)
        f = self.Ks[..., 0, 0][..., None]
        uv = torch.stack([f * c[..., 0] / w + self.Ks[..., 0, 2][..., None],
                          -f * c[..., 1] / w + self.Ks[..., 1, 2][..., None]], -1)
        sw = torch.sqrt(self.base_w * self.robust_w * self.facing_w) / o.landmark_sigma_mm  # (S, n, P)
        scale = (sw / self.ppm[..., None])[..., None]
        r2d = (uv - self.target[..., :2]) * scale  # (S, n, P, 2)
        nf = self.num_fixed
        depth = c[..., :nf, 2] - c[..., :nf, 2].mean(-1, keepdim=True)
        dsw = sw[..., :nf] * np.sqrt(o.depth_weight)
        depth_mp = self.depth_px[..., :nf] * (d / self.Ks[..., 0, 0])[..., None]  # mm at the current distance
        rdepth = (depth - depth_mp) * dsw
        r = torch.cat([r2d.reshape(self.S, -1), rdepth.reshape(self.S, -1)], 1)
        cost = (r ** 2).sum(1) + o.identity_weight * (a ** 2).sum(1) + o.expression_l2 * (e ** 2).sum((1, 2)) \
            + o.expression_l1 * e.sum((1, 2))
        if not with_jacobian:
            return cost, r, uv
        # d(uv)/dc: (S, n, P, 2, 3)
        zero = torch.zeros_like(w)
        duv = torch.stack([torch.stack([f / w, zero, f * c[..., 0] / w ** 2], -1),
                           torch.stack([zero, -f / w, -f * c[..., 1] / w ** 2], -1)], -2)
        dc_a = torch.einsum("snij,snpjk->snpik", R, self.A)  # (S, n, P, 3, K)
        dc_e = torch.einsum("snij,snpjk->snpik", R, self.B)  # (S, n, P, 3, E)
        dc_rot = -_skew(RX)  # left increment exp([d]x) R
        dT = torch.zeros(self.S, self.n, 3, 3, dtype=c.dtype)  # dT / dtau, columns tau0, tau1, tau2
        dT[..., 0, 0] = d
        dT[..., 1, 1] = d
        dT[..., :, 2] = T
        dc_view = torch.cat([dc_e, dc_rot, dT[:, :, None].expand(-1, -1, c.shape[2], -1, -1)], -1)  # (S, n, P, 3, E+6)
        J2_a = torch.einsum("snpij,snpjk->snpik", duv, dc_a) * scale[..., None]
        J2_v = torch.einsum("snpij,snpjk->snpik", duv, dc_view) * scale[..., None]
        Jd_a = (dc_a[..., :nf, 2, :] - dc_a[..., :nf, 2, :].mean(2, keepdim=True)) * dsw[..., None]
        Jd_v = (dc_view[..., :nf, 2, :] - dc_view[..., :nf, 2, :].mean(2, keepdim=True)) * dsw[..., None]
        Jd_v[..., -1] = Jd_v[..., -1] - depth_mp * dsw  # the mm scale of mediapipe's depth follows log d
        return cost, r, uv, (J2_a, J2_v, Jd_a, Jd_v)

    def normal_equations(self, r, blocks):
        """H (S, P, P) and g (S, P) of the Gauss-Newton step (priors included), P = K + n (E + 6)."""
        J2_a, J2_v, Jd_a, Jd_v = blocks
        S, n, K, Q = self.S, self.n, self.K_id, self.E + 6
        P = K + n * Q
        rows2 = J2_a.shape[2] * 2
        J = torch.zeros(S, n * (rows2 + Jd_a.shape[2]), P, dtype=r.dtype)
        for j in range(n):
            # residual layout: all views' 2D rows first, then all views' depth rows
            r0 = j * rows2
            J[:, r0:r0 + rows2, :K] = J2_a[:, j].reshape(S, rows2, K)
            J[:, r0:r0 + rows2, K + j * Q:K + (j + 1) * Q] = J2_v[:, j].reshape(S, rows2, Q)
            d0 = n * rows2 + j * Jd_a.shape[2]
            J[:, d0:d0 + Jd_a.shape[2], :K] = Jd_a[:, j]
            J[:, d0:d0 + Jd_a.shape[2], K + j * Q:K + (j + 1) * Q] = Jd_v[:, j]
        H = J.transpose(1, 2) @ J
        g = (J.transpose(1, 2) @ r[..., None])[..., 0]
        o = self.options
        prior = torch.zeros(P, dtype=r.dtype)
        prior[:K] = o.identity_weight
        e_cols = torch.cat([torch.arange(K + j * Q, K + j * Q + self.E) for j in range(n)])
        prior[e_cols] = o.expression_l2
        H = H + torch.diag(prior)
        g = g + prior * self.packed() + 0.5 * o.expression_l1 * torch.isin(torch.arange(P), e_cols).to(r.dtype)
        return H, g

    def packed(self):
        S, n = self.S, self.n
        view = torch.cat([self.e, torch.zeros(S, n, 6, dtype=self.e.dtype)], -1)
        return torch.cat([self.a, view.reshape(S, -1)], 1)

    def apply(self, step):
        """The state after a step (S, P), expression projected into [0, 1]."""
        K, E, Q = self.K_id, self.E, self.E + 6
        v = step[:, K:].view(self.S, self.n, Q)
        a = self.a + step[:, :K]
        e = (self.e + v[..., :E]).clamp(0, 1)
        R = axis_angle_to_matrix(v[..., E:E + 3]) @ self.R
        tau = self.tau + v[..., E + 3:]
        return a, e, R, tau

    def update_robust_weights(self, uv):
        scale = self.options.robust_scale_mm
        if scale <= 0:
            return
        err2 = ((uv - self.target[..., :2]) ** 2).sum(-1) / self.ppm[..., None] ** 2
        self.robust_w = 1 / (1 + err2 / scale ** 2)


def _fit_group(views, view_ids: list[list[int]], subject_ids: list[int], model: FaceModel, options: ModelFitOptions,
               K_id: int, E: int) -> dict:
    problem = _Group(views, view_ids, model, options, K_id)
    lam = torch.full((problem.S,), options.damping, dtype=torch.float64)
    for _ in range(options.iterations):
        problem.set_points(problem.choose_oval())
        problem.update_robust_weights(problem.residuals(problem.a, problem.e, problem.R, problem.tau, False)[2])
        cost, r, uv, blocks = problem.residuals(problem.a, problem.e, problem.R, problem.tau, True)
        H, g = problem.normal_equations(r, blocks)
        diag = torch.diagonal(H, dim1=1, dim2=2)
        # each subject takes at most one accepted step per iteration, whatever the others do (so a
        # batch fits every face exactly as it would be fitted alone)
        done = torch.zeros(problem.S, dtype=torch.bool)
        for _attempt in range(8):
            step = torch.linalg.solve(H + torch.diag_embed(lam[:, None] * diag + 1e-9), -g[..., None])[..., 0]
            a, e, R, tau = problem.apply(step)
            new_cost = problem.residuals(a, e, R, tau, False)[0]
            better = (new_cost < cost) & ~done
            keep = better.view(-1, 1)
            problem.a = torch.where(keep, a, problem.a)
            problem.e = torch.where(keep[..., None], e, problem.e)
            problem.R = torch.where(keep[..., None, None], R, problem.R)
            problem.tau = torch.where(keep[..., None], tau, problem.tau)
            lam = torch.where(done, lam, torch.where(better, lam * 0.3, lam * 10)).clamp(1e-9, 1e9)
            done |= better
            if bool(done.all()):
                break
    if not (torch.isfinite(problem.a).all() and torch.isfinite(problem.tau).all()):
        raise NumericalError("face model fit diverged (NaN/inf)")
    uv = problem.residuals(problem.a, problem.e, problem.R, problem.tau, False)[2]
    nf = problem.num_fixed
    rms = torch.sqrt(((uv[..., :nf, :] - problem.target[..., :nf, :2]) ** 2).sum(-1).mean(-1))  # (S, n)
    T = problem.translation(problem.tau)[0]
    out = {}
    for k, s in enumerate(subject_ids):
        out[s] = {"identity": problem.a[k].numpy().copy(), "views": {
            view_ids[k][j]: {"expression": problem.e[k, j].numpy().copy(), "R": problem.R[k, j].numpy().copy(),
                             "t": T[k, j].numpy().copy(), "rms": float(rms[k, j])} for j in range(problem.n)}}
    return out
