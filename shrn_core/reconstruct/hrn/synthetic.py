"""Stand-in HRN assets with the official file names, fields and layouts, for tests and benchmarks.

The real BFM files cannot be redistributed or downloaded here. Two generators build arrays of the
same form: ``face_mesh_arrays`` (a small, face-shaped model from shrn's mediapipe mean face, with
its 68 landmark vertices) and ``grid_arrays`` (a face-sized ellipsoid cap of any vertex count, e.g.
BFM's 35709, for timing). ``write_assets`` lays them out as the HRN download does, together with
checkpoint files holding the weights of an ``HRNNetworks``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io
import torch

from ...face.landmark_sets import LANDMARKS_68
from ...face.topology import load_topology
from .assets import FILES
from .bfm import BFMArrays, standard_five_points
from .networks import HRNNetworks

SKIN_RGB = np.array([205.0, 150.0, 125.0])


def _point_buf(tri: np.ndarray, n_vert: int) -> np.ndarray:
    """(V, K) 0-based adjacent triangle ids, padded with len(tri) (BFM's "no face" entry)."""
    adjacent: list[list[int]] = [[] for _ in range(n_vert)]
    for f, corners in enumerate(tri):
        for v in corners:
            adjacent[v].append(f)
    width = max(8, max(len(a) for a in adjacent))
    buf = np.full((n_vert, width), len(tri), np.int64)
    for v, faces in enumerate(adjacent):
        buf[v, :len(faces)] = faces
    return buf


def _smooth_bases(vertices: np.ndarray, count: int, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    """(3V, count) low-frequency deformation fields (cosine bumps of the vertex positions)."""
    span = np.ptp(vertices, axis=0) + 1e-6
    unit = (vertices - vertices.min(0)) / span
    bases = np.empty((vertices.shape[0], 3, count), np.float32)
    for k in range(count):
        freq = rng.uniform(0.5, 2.0, size=3)
        phase = rng.uniform(0, 2 * np.pi, size=3)
        field = np.cos(np.pi * unit * freq + phase).prod(axis=1, keepdims=True)
        direction = rng.normal(size=3)
        bases[:, :, k] = field * direction * amplitude / np.sqrt(k + 1)
    return bases.reshape(-1, count)


def _albedo(tex_side: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    mean = np.tile(SKIN_RGB, (tex_side, tex_side, 1)).astype(np.float32)
    basis = rng.normal(scale=2.0, size=(tex_side * tex_side * 3, 80)).astype(np.float32)
    return mean, basis


def _assemble(mean: np.ndarray, tri: np.ndarray, uvs: np.ndarray, keypoints: np.ndarray, tex_side: int,
              rng: np.random.Generator) -> BFMArrays:
    mean = (mean - mean.mean(0, keepdims=True)).astype(np.float32)
    tex_mean, tex_basis = _albedo(tex_side, rng)
    return BFMArrays(
        mean_shape=mean, id_base=_smooth_bases(mean, 80, 0.01, rng), exp_base=_smooth_bases(mean, 64, 0.01, rng),
        tri=tri.astype(np.int64), point_buf=_point_buf(tri, len(mean)), keypoints=keypoints.astype(np.int64),
        tex_mean_uv=tex_mean.reshape(-1), tex_basis_uv=tex_basis, uvs=uvs.astype(np.float32),
        template_tri=tri.astype(np.int64), lm3d_5=standard_five_points(mean[keypoints]))


def face_mesh_arrays(tex_side: int = 64, seed: int = 0) -> BFMArrays:
    """A 468-vertex BFM stand-in: shrn's mediapipe mean face in decimetres (BFM's unit)."""
    topo = load_topology()
    return _assemble(topo.mean_shape[:468] / 100.0, topo.triangles, topo.uvs, LANDMARKS_68, tex_side,
                     np.random.default_rng(seed))


def grid_arrays(side: int = 189, tex_side: int = 512, seed: int = 0) -> BFMArrays:
    """A ``side`` x ``side`` vertex ellipsoid cap the size of a face (189^2 = 35721 ~ BFM's 35709
    vertices, 70688 triangles ~ its 70789), landmarks on the vertices nearest the mean face's."""
    u, v = np.meshgrid(np.linspace(0, 1, side), np.linspace(0, 1, side))
    x, y = (u - 0.5) * 1.7, (v - 0.5) * 2.2
    z = 0.7 * np.sqrt(np.clip(1 - (x / 1.0) ** 2 - (y / 1.3) ** 2, 0.05, None))
    mean = np.stack([x, y, z], -1).reshape(-1, 3)
    idx = np.arange(side * side).reshape(side, side)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
    tri = np.concatenate([np.stack([a, b, d], 1), np.stack([a, d, c], 1)])  # counter-clockwise from +z
    landmarks = load_topology().mean_shape[LANDMARKS_68, :2] / 100.0
    keypoints = np.argmin(((mean[None, :, :2] - landmarks[:, None]) ** 2).sum(-1), axis=1)
    uvs = np.stack([u.ravel(), v.ravel()], 1) * 0.9 + 0.05
    return _assemble(mean, tri, uvs, keypoints, tex_side, np.random.default_rng(seed))


def write_assets(folder: str | Path, arrays: BFMArrays, nets: HRNNetworks | None = None) -> Path:
    """Write ``arrays`` (and ``nets``' weights) under ``folder`` in the HRN download's layout."""
    folder = Path(folder)
    paths = {name: folder / rel for name, rel in FILES.items()}
    for path in paths.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    n_vert = arrays.mean_shape.shape[0]
    front = np.arange(1, n_vert + 1)[:, None]
    scipy.io.savemat(paths["bfm"], {
        "meanshape": arrays.mean_shape.reshape(1, -1), "idBase": arrays.id_base, "exBase": arrays.exp_base,
        "meantex": np.tile(SKIN_RGB, n_vert)[None].astype(np.float32),
        "texBase": np.zeros((3 * n_vert, 80), np.float32),
        "tri": arrays.tri + 1, "point_buf": arrays.point_buf + 1, "keypoints": arrays.keypoints[None] + 1,
        "frontmask2_idx": front, "tri_mask2": arrays.tri + 1, "skinmask": np.ones((1, n_vert)),
    })
    lm68 = np.zeros((68, 3), np.float32)
    lm68[:] = arrays.mean_shape[arrays.keypoints]
    scipy.io.savemat(paths["lm3d"], {"lm": lm68})
    side = int(round(np.sqrt(arrays.tex_mean_uv.size / 3)))
    np.save(paths["tex_mean"], arrays.tex_mean_uv.reshape(side, side, 3))
    np.save(paths["tex_basis"], arrays.tex_basis_uv.reshape(side, side, 3, 80))
    np.save(paths["uvs"], arrays.uvs)
    lines = [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in arrays.mean_shape]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in arrays.template_tri]
    paths["template"].write_text("\n".join(lines) + "\n")
    nets = nets if nets is not None else HRNNetworks()
    torch.save({"net_recon": nets.net_recon.state_dict(), "mid_net": nets.mid_net.state_dict(),
                "high_net": nets.high_net.state_dict(), "alpha": nets.alpha.clone(), "beta": nets.beta.clone()},
               paths["hrn"])
    torch.save({"generator": nets.de_retouch.state_dict()}, paths["de_retouching"])
    return folder
