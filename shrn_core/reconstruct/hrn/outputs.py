"""HRN tensors -> shrn's ``Reconstruction`` (meshes in mm, head frame; cameras of the photos)."""
from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import cKDTree

from ...errors import NumericalError
from ...face.landmark_sets import LANDMARKS_68
from ..types import Camera, Mesh, ViewResult
from .bfm import CAMERA_DISTANCE, DECIMETRE_TO_MM, INIT_LIGHT
from .model import GRAY_ALBEDO, HRNModel, HRNState
from .views import PreparedView, intrinsics, paste_render


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().cpu().numpy()


def check_finite(state: HRNState, what: str) -> None:
    for name in ("deformation", "displacement", "albedo"):
        value = getattr(state, name)
        if value is not None and not torch.isfinite(value).all():
            raise NumericalError(f"{what}: the HRN {name} map contains NaN or infinite values")
    if not torch.isfinite(state.shape_mid if state.shape_mid is not None else state.shape_coarse).all():
        raise NumericalError(f"{what}: the HRN mesh contains NaN or infinite values")


def parametric_mesh(model: HRNModel, vertices: torch.Tensor) -> Mesh:
    return Mesh(vertices=(_np(vertices) * DECIMETRE_TO_MM).astype(np.float32), faces=_np(model.bfm.tri).astype(np.int64),
                uvs=_np(model.bfm.uvs).astype(np.float32))


def dense_mesh(model: HRNModel, shape_mid: torch.Tensor, displacement: torch.Tensor) -> Mesh:
    """The fine level: one vertex per covered texel of the UV layout, moved along the mid-level
    normal by the displacement map (HRN's ``get_dense_mesh``, in the head frame)."""
    uv = model.bfm.uv
    normals = uv.to_uv(model.bfm.vertex_normals(shape_mid[None]))[0]
    positions = uv.to_uv(shape_mid[None])[0]
    dense = (positions + displacement * normals).flatten(1).T  # (S*S, 3)
    covered = uv.covered.reshape(-1)
    tri = uv.grid_tri
    keep_faces = covered[tri].all(1)
    new_index = torch.cumsum(covered.long(), 0) - 1
    faces = new_index[tri[keep_faces]]
    return Mesh(vertices=(_np(dense[covered]) * DECIMETRE_TO_MM).astype(np.float32), faces=_np(faces).astype(np.int64),
                uvs=_np(uv.texel_uvs()[covered]).astype(np.float32))


def camera_for(view: PreparedView, rotation: torch.Tensor, trans: torch.Tensor) -> Camera:
    """HRN poses points as ``shape @ M + trans`` with the camera at z = 10 dm: in shrn's camera
    frame (camera at the origin) that is R = M^T and t = (trans - (0, 0, 10)) in mm."""
    R = _np(rotation).T.astype(np.float32)
    t = ((_np(trans) - np.array([0, 0, CAMERA_DISTANCE])) * DECIMETRE_TO_MM).astype(np.float32)
    height, width = view.photo.shape[:2]
    return Camera(K=intrinsics(view.crop), R=R, t=t, width=width, height=height)


def sh_lighting(gamma: torch.Tensor) -> np.ndarray:
    """(9, 3) RGB coefficients of HRN's SH basis (ambient 0.8 included)."""
    return (_np(gamma).reshape(3, 9) + np.asarray(INIT_LIGHT)).T.astype(np.float32)


def landmark_vertex_ids(model: HRNModel, final_level: str) -> np.ndarray:
    """Vertex of the final level's mesh for each of mediapipe's 478 landmarks where the BFM has one
    (its 68 keypoints), else -1. On the dense fine mesh: the vertex of the texel nearest in UV."""
    key = f"landmark_ids_{final_level}"
    if key not in model.cache:
        model.cache[key] = _landmark_vertex_ids(model, final_level)
    return model.cache[key].copy()


def _landmark_vertex_ids(model: HRNModel, final_level: str) -> np.ndarray:
    keypoints = _np(model.bfm.keypoints).astype(np.int64)
    if final_level == "fine":
        uv = model.bfm.uv
        covered = _np(uv.covered.reshape(-1)).astype(bool)
        centres = _np(uv.texel_uvs())[covered]
        _, keypoints = cKDTree(centres).query(_np(model.bfm.uvs)[keypoints])
    ids = np.full(478, -1, np.int64)
    ids[LANDMARKS_68] = keypoints
    return ids


MIN_SHADING = 0.05
GRAZING = (0.15, 0.4)  # normal . view direction: no photo texture below the first, full above the second


@torch.no_grad()
def photo_albedo(model: HRNModel, state: HRNState, i: int, image_hd: torch.Tensor):
    """View ``i``'s photo unwrapped on its mid-level mesh and divided by the fitted SH shading
    (3, S, S), with its visibility (1, S, S: visible-face texels, fading to 0 where the surface
    turns away from the camera) and a fusion weight that prefers views seeing a texel squarely."""
    sub = _select(state, i)
    normals = model.normal_maps(sub, sub.shape_mid, sub.displacement)
    shading = model.shade(sub, normals, torch.ones_like(sub.albedo))
    texture = model.bfm.texture_from_image(sub.posed(sub.shape_mid), image_hd[i:i + 1])
    albedo = (texture / shading.clamp(min=MIN_SHADING)).clamp(0, 1)
    facing = model.bfm.uv.to_uv(model.bfm.vertex_normals(sub.shape_mid) @ sub.rotation)[:, 2:3].clamp(0, 1)
    visibility = sub.valid_mask * ((facing - GRAZING[0]) / (GRAZING[1] - GRAZING[0])).clamp(0, 1) * model.bfm.uv.covered
    return albedo[0], visibility[0], (visibility * facing)[0]


def fill_albedo(albedo: torch.Tensor, fallback: torch.Tensor, weight: torch.Tensor) -> np.ndarray:
    """(3, S, S) maps -> SxSx3 uint8: the photo-derived albedo where visible, the parametric one
    where occluded or unseen."""
    mixed = albedo * weight + fallback * (1 - weight)
    return np.clip(_np(mixed).transpose(1, 2, 0) * 255 + 0.5, 0, 255).astype(np.uint8)


@torch.no_grad()
def view_result(model: HRNModel, state: HRNState, index: int, view: PreparedView, with_renders: bool = True) -> ViewResult:
    """Camera, lighting and (optionally) textured and shaded renders pasted over the photo."""
    sub = _select(state, index)
    result = ViewResult(image_path=view.image_path, camera=camera_for(view, sub.rotation[0], sub.coeffs["trans"][0]),
                        sh_lighting=sh_lighting(sub.coeffs["gamma"][0]), landmarks_2d=view.landmarks_68,
                        mask=view.occlusion)
    if with_renders:
        normals = model.normal_maps(sub, sub.shape_mid, sub.displacement)
        colour = model.shade(sub, normals, sub.albedo)
        gray = model.shade(sub, normals, torch.full_like(sub.albedo, GRAY_ALBEDO))
        gray = gray * (0.6 / gray.mean(dim=(2, 3), keepdim=True).clamp(min=1e-6))  # HRN's recolouring
        mask, image = model.render(sub, sub.shape_mid, torch.cat([colour, gray], 1), view.crop_hd.size)
        coverage = _np(mask[0, 0])
        pictures = _np(image[0]).transpose(1, 2, 0)
        result.overlay = paste_render(view.photo, view.crop_hd, pictures[..., :3], coverage)
        result.shading = paste_render(view.photo, view.crop_hd, pictures[..., 3:], coverage)
    return result


def _select(state: HRNState, i: int) -> HRNState:
    pick = lambda t: None if t is None else t[i:i + 1]  # noqa: E731
    return HRNState(coeffs={k: v[i:i + 1] for k, v in state.coeffs.items()}, rotation=pick(state.rotation),
                    shape_coarse=pick(state.shape_coarse), position_map=pick(state.position_map),
                    texture_map=pick(state.texture_map), albedo_3dmm=pick(state.albedo_3dmm), albedo=pick(state.albedo),
                    valid_mask=pick(state.valid_mask), deformation=pick(state.deformation),
                    displacement=pick(state.displacement), shape_mid=pick(state.shape_mid))
