"""The BFM face model as HRN uses it: coefficient layout, shape and albedo bases, camera, SH
lighting, and the fixed UV layout (position/normal maps, texture sampling from the photo).

Units and frames follow HRN: head-frame vertices in decimetres (BFM09 / 1e5, recentred on the
mean shape); the posed head is ``shape @ R + t``; the camera sits at z = 10 looking down -z, so a
posed point (x, y, z) has depth ``10 - z`` and projects to the 224-pixel aligned crop at
``(112 + 1015 x / depth, 112 - 1015 y / depth)`` (continuous pixel coordinates, y down).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io
import torch
import torch.nn.functional as F
from torch import nn

from ...errors import FormatError, WeightsError
from .assets import AssetPaths
from .uv import UVLayout

FOCAL = 1015.0
CENTER = 112.0
CAMERA_DISTANCE = 10.0
CROP = 224
Z_NEAR, Z_FAR = 5.0, 15.0
UV_SIZE = 256
DECIMETRE_TO_MM = 100.0
INIT_LIGHT = (0.8, 0, 0, 0, 0, 0, 0, 0, 0)  # ambient term added to every SH channel

COEFF_SLICES = {"id": (0, 80), "exp": (80, 144), "tex": (144, 224), "angle": (224, 227),
                "gamma": (227, 254), "trans": (254, 257)}
BFM_FIELDS = ("meanshape", "idBase", "exBase", "tri", "point_buf", "keypoints")

# Lambertian SH factors (a_l * c_l) for bands 0..2, as in Deep3DFaceRecon / HRN
_A = (np.pi, 2 * np.pi / np.sqrt(3.0), 2 * np.pi / np.sqrt(8.0))
_C = (1 / np.sqrt(4 * np.pi), np.sqrt(3.0) / np.sqrt(4 * np.pi), 3 * np.sqrt(5.0) / np.sqrt(12 * np.pi))


def split_coeffs(coeffs: torch.Tensor) -> dict[str, torch.Tensor]:
    """(B, 257) -> id 80, exp 64, tex 80, angle 3 (radians), gamma 27 (SH, 3 x 9), trans 3."""
    return {name: coeffs[:, a:b] for name, (a, b) in COEFF_SLICES.items()}


def merge_coeffs(parts: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([parts[name] for name in COEFF_SLICES], dim=1)


def rotation_matrix(angles: torch.Tensor) -> torch.Tensor:
    """(B, 3) Euler angles -> (B, 3, 3) ``M`` with posed = points @ M, i.e. M = (Rz Ry Rx)^T."""
    x, y, z = angles.unbind(1)
    one, zero = torch.ones_like(x), torch.zeros_like(x)
    rx = torch.stack([one, zero, zero, zero, x.cos(), -x.sin(), zero, x.sin(), x.cos()], 1).view(-1, 3, 3)
    ry = torch.stack([y.cos(), zero, y.sin(), zero, one, zero, -y.sin(), zero, y.cos()], 1).view(-1, 3, 3)
    rz = torch.stack([z.cos(), -z.sin(), zero, z.sin(), z.cos(), zero, zero, zero, one], 1).view(-1, 3, 3)
    return (rz @ ry @ rx).transpose(1, 2)


def project(points_posed: torch.Tensor, size: float = CROP) -> torch.Tensor:
    """Posed points -> continuous pixel coordinates (x right, y down) in a ``size`` crop."""
    depth = CAMERA_DISTANCE - points_posed[..., 2]
    scale = size / CROP
    x = (CENTER + FOCAL * points_posed[..., 0] / depth) * scale
    y = (CENTER - FOCAL * points_posed[..., 1] / depth) * scale
    return torch.stack([x, y], dim=-1)


def sh_shading(normals: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """(B, ..., 3) unit normals, (B, 27) SH coefficients -> (B, ..., 3) RGB irradiance."""
    batch = gamma.shape[0]
    light = gamma.reshape(batch, 3, 9) + gamma.new_tensor(INIT_LIGHT)
    nx, ny, nz = normals[..., 0:1], normals[..., 1:2], normals[..., 2:3]
    a, c = _A, _C
    basis = torch.cat([
        torch.full_like(nx, a[0] * c[0]),
        -a[1] * c[1] * ny, a[1] * c[1] * nz, -a[1] * c[1] * nx,
        a[2] * c[2] * nx * ny, -a[2] * c[2] * ny * nz,
        0.5 * a[2] * c[2] / np.sqrt(3.0) * (3 * nz ** 2 - 1),
        -a[2] * c[2] * nx * nz, 0.5 * a[2] * c[2] * (nx ** 2 - ny ** 2),
    ], dim=-1)  # (B, ..., 9)
    flat = basis.reshape(batch, -1, 9)
    return (flat @ light.transpose(1, 2)).reshape(*normals.shape[:-1], 3)


@dataclass
class BFMArrays:
    """The arrays HRN reads from its asset files (numpy, before moving to a device)."""

    mean_shape: np.ndarray  # (V, 3) recentred, dm
    id_base: np.ndarray  # (3V, 80)
    exp_base: np.ndarray  # (3V, 64)
    tri: np.ndarray  # (F, 3) 0-based
    point_buf: np.ndarray  # (V, K) 0-based face ids, F = padding
    keypoints: np.ndarray  # (68,) 0-based vertex ids
    tex_mean_uv: np.ndarray  # (T*T*3,) 0..255
    tex_basis_uv: np.ndarray  # (T*T*3, 80)
    uvs: np.ndarray  # (V, 2) u right, v up
    template_tri: np.ndarray  # (F', 3) 0-based, triangles of the UV layout
    lm3d_5: np.ndarray  # (5, 3) standard landmarks for alignment


def _bad(path: Path, message: str) -> WeightsError:
    return WeightsError(f"not a valid HRN asset: {message}", path)


def _load_mat(path: Path, fields: tuple[str, ...]) -> dict:
    try:
        data = scipy.io.loadmat(str(path))
    except Exception as exc:  # scipy raises many types for corrupt files
        raise _bad(path, f"cannot read .mat ({exc.__class__.__name__})") from None
    missing = [f for f in fields if f not in data]
    if missing:
        raise _bad(path, f"field(s) {', '.join(missing)} missing")
    return data


def _load_npy(path: Path) -> np.ndarray:
    from ...formats.arrays import load_npy

    try:
        array = load_npy(path, max_bytes=2 ** 31)  # the official albedo basis alone is 240 MB
    except FormatError as err:
        raise _bad(path, f"cannot read .npy ({str(err).removeprefix(f'{path}: ')})") from None
    if array.dtype.kind not in "iuf" or not np.isfinite(array).all():
        raise _bad(path, f"expected finite numbers, got {array.dtype}")
    return array


def _obj_faces(path: Path) -> np.ndarray:
    faces = []
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("f "):
                    face = [int(item.split("/")[0]) for item in line.split()[1:4]]
                    if len(face) != 3 or max(map(abs, face)) > 2 ** 31:
                        raise ValueError("a face needs three vertex ids")
                    faces.append(face)
    except (OSError, ValueError) as exc:
        raise _bad(path, f"cannot parse OBJ faces ({exc.__class__.__name__})") from None
    if not faces:
        raise _bad(path, "no faces")
    return np.asarray(faces, dtype=np.int64) - 1


def load_bfm_arrays(paths: AssetPaths) -> BFMArrays:
    model = _load_mat(paths.bfm, BFM_FIELDS)
    mean = np.asarray(model["meanshape"], np.float32).reshape(-1, 3)
    n_vert = mean.shape[0]
    id_base = np.asarray(model["idBase"], np.float32)
    exp_base = np.asarray(model["exBase"], np.float32)
    if id_base.shape != (3 * n_vert, 80) or exp_base.shape != (3 * n_vert, 64):
        raise _bad(paths.bfm, f"idBase {id_base.shape} / exBase {exp_base.shape} do not fit {n_vert} vertices "
                              f"(expected ({3 * n_vert}, 80) / ({3 * n_vert}, 64))")
    tri = np.asarray(model["tri"], np.int64) - 1
    point_buf = np.asarray(model["point_buf"], np.int64) - 1
    keypoints = np.asarray(model["keypoints"], np.int64).reshape(-1) - 1
    if tri.ndim != 2 or tri.shape[1] != 3 or tri.min() < 0 or tri.max() >= n_vert:
        raise _bad(paths.bfm, "tri is not an (F, 3) array of 1-based vertex ids")
    if point_buf.shape[0] != n_vert or point_buf.min() < 0 or point_buf.max() > len(tri):
        raise _bad(paths.bfm, "point_buf does not match the vertices and triangles")
    if keypoints.shape != (68,) or keypoints.min() < 0 or keypoints.max() >= n_vert:
        raise _bad(paths.bfm, "keypoints is not 68 vertex ids")
    mean = mean - mean.mean(axis=0, keepdims=True)  # HRN's recentring

    tex_mean = _load_npy(paths.tex_mean).astype(np.float32).reshape(-1)
    tex_basis = _load_npy(paths.tex_basis).astype(np.float32).reshape(-1, 80)
    side = int(round(np.sqrt(tex_mean.size / 3)))
    if side * side * 3 != tex_mean.size or tex_basis.shape[0] != tex_mean.size:
        raise _bad(paths.tex_basis, f"albedo basis {tex_basis.shape} and mean ({tex_mean.size},) are not "
                                    "square RGB maps of one size")
    uvs = _load_npy(paths.uvs).astype(np.float32)
    if uvs.shape != (n_vert, 2):
        raise _bad(paths.uvs, f"shape {uvs.shape}, expected ({n_vert}, 2) to match the BFM")
    template_tri = _obj_faces(paths.template)
    if template_tri.min() < 0 or template_tri.max() >= n_vert:
        raise _bad(paths.template, f"faces reference vertices outside the BFM's {n_vert}")

    lm = _load_mat(paths.lm3d, ("lm",))["lm"].astype(np.float32)
    if lm.shape != (68, 3):
        raise _bad(paths.lm3d, f"lm has shape {lm.shape}, expected (68, 3)")
    return BFMArrays(mean, id_base, exp_base, tri, point_buf, keypoints, tex_mean, tex_basis, uvs,
                     template_tri, standard_five_points(lm))


def standard_five_points(lm68: np.ndarray) -> np.ndarray:
    """HRN's 5 alignment points from 68 landmarks (2D or 3D): eye centres (mean of the corners),
    nose tip, mouth corners; subject's right eye first, as shrn's ``five_point``."""
    right_eye = lm68[[36, 39]].mean(0)
    left_eye = lm68[[42, 45]].mean(0)
    return np.stack([right_eye, left_eye, lm68[30], lm68[48], lm68[54]]).astype(np.float32)


class BFMModel(nn.Module):
    """Differentiable BFM as HRN uses it; all tensors are buffers so ``.to(device)`` moves them."""

    def __init__(self, arrays: BFMArrays, uv_size: int = UV_SIZE):
        super().__init__()
        t = torch.from_numpy
        self.register_buffer("mean_shape", t(arrays.mean_shape.reshape(-1)))
        self.register_buffer("id_base", t(arrays.id_base))
        self.register_buffer("exp_base", t(arrays.exp_base))
        self.register_buffer("tri", t(arrays.tri))
        self.register_buffer("point_buf", t(arrays.point_buf))
        self.register_buffer("keypoints", t(arrays.keypoints))
        self.register_buffer("tex_mean_uv", t(arrays.tex_mean_uv))
        self.register_buffer("tex_basis_uv", t(arrays.tex_basis_uv))
        self.register_buffer("uvs", t(arrays.uvs))
        self.tex_side = int(round(np.sqrt(arrays.tex_mean_uv.size / 3)))
        self.lm3d_5 = arrays.lm3d_5
        self.uv = UVLayout(arrays.uvs, arrays.template_tri, uv_size)

    @property
    def n_vertices(self) -> int:
        return self.mean_shape.shape[0] // 3

    def shape(self, id_coeff: torch.Tensor, exp_coeff: torch.Tensor) -> torch.Tensor:
        """Head-frame vertices (B, V, 3)."""
        flat = id_coeff @ self.id_base.T + exp_coeff @ self.exp_base.T + self.mean_shape
        return flat.view(id_coeff.shape[0], -1, 3)

    def albedo_map(self, tex_coeff: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) albedo in [0, 1] from the UV albedo basis, resized to the UV size."""
        flat = (tex_coeff @ self.tex_basis_uv.T + self.tex_mean_uv) / 255.0
        side = self.tex_side
        image = flat.view(-1, side, side, 3).permute(0, 3, 1, 2)
        return F.interpolate(image, size=(self.uv.size, self.uv.size), mode="bilinear")

    def vertex_normals(self, vertices: torch.Tensor) -> torch.Tensor:
        v1, v2, v3 = (vertices[:, self.tri[:, i]] for i in range(3))
        face_normals = F.normalize(torch.cross(v1 - v2, v2 - v3, dim=-1), dim=-1)
        face_normals = torch.cat([face_normals, face_normals.new_zeros(face_normals.shape[0], 1, 3)], dim=1)
        return F.normalize(face_normals[:, self.point_buf].sum(dim=2), dim=-1)

    def landmarks(self, points_2d: torch.Tensor) -> torch.Tensor:
        return points_2d[:, self.keypoints]

    def add_deformation(self, shape: torch.Tensor, deformation: torch.Tensor) -> torch.Tensor:
        """Add the per-vertex offsets read from a (B, 3, h, w) UV deformation map.

        The four taps and weights follow HRN's ``add_nonlinear_offset`` (texel edges, not centres,
        serve as sample positions), which the mid-level network was trained with.
        """
        h, w = deformation.shape[2:]
        coords = self.uvs * self.uvs.new_tensor([w, h])
        base = coords.floor()
        frac = coords - base
        col, row = base[:, 0].long(), base[:, 1].long()
        fu, fv = frac[:, :1], frac[:, 1:]
        top, bottom = (h - 1 - row).clamp(0, h - 1), (h - row).clamp(0, h - 1)
        left, right = col.clamp(0, w - 1), (col + 1).clamp(0, w - 1)
        d = deformation.permute(0, 2, 3, 1)
        offset = (d[:, top, left] * (1 - fu) * fv + d[:, bottom, left] * (1 - fu) * (1 - fv)
                  + d[:, top, right] * fu * fv + d[:, bottom, right] * fu * (1 - fv))
        return shape + offset

    def texture_from_image(self, posed: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """Unwrap a photo crop (B, C, H, W) into UV space (B, C, S, S) by projecting the UV position
        map of the posed mesh; the tap weights reproduce HRN's ``get_texture_map``."""
        batch, _, h, w = image.shape
        camera = torch.cat([posed[..., :2], CAMERA_DISTANCE - posed[..., 2:]], dim=-1)
        pos = self.uv.to_uv(camera).flatten(2).transpose(1, 2)  # (B, S*S, 3), zeros off the layout
        # off-layout texels give 0/0 = NaN and then, as in HRN, the bottom-left pixel
        x = (FOCAL * pos[..., 0] / pos[..., 2] + CENTER) * (w / CROP)
        y = (FOCAL * pos[..., 1] / pos[..., 2] + CENTER) * (h / CROP)
        x = torch.nan_to_num(x, nan=0.0)
        y = h - 1 - torch.nan_to_num(y, nan=0.0)
        x0, y0 = x.floor(), y.floor()
        fx, fy = (x - x0).unsqueeze(-1), (y - y0).unsqueeze(-1)
        x0, y0 = x0.long(), y0.long()
        pixels = image.permute(0, 2, 3, 1)
        b = torch.arange(batch, device=image.device)[:, None].expand_as(x0)

        def tap(yy, xx):
            return pixels[b, yy.clamp(0, h - 1), xx.clamp(0, w - 1)]

        tex = (tap(y0, x0) * (1 - fx) * fy + tap(y0 + 1, x0) * (1 - fx) * (1 - fy)
               + tap(y0, x0 + 1) * fx * fy + tap(y0 + 1, x0 + 1) * fx * (1 - fy))
        size = self.uv.size
        return tex.view(batch, size, size, -1).permute(0, 3, 1, 2)
