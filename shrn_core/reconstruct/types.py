"""Dataclasses every reconstruction backend returns (``fit``, ``hrn``), so outputs, ``eval`` and
``run`` treat them alike. Geometry is in camera coordinates (x right, y up, z towards the viewer),
millimetres."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

LEVELS = ("coarse", "mid", "fine")


@dataclass
class Mesh:
    """A triangle mesh with optional per-vertex UVs (u right, v up, in [0, 1]) and colours."""

    vertices: np.ndarray  # (V, 3) float32, mm
    faces: np.ndarray  # (F, 3) int64
    uvs: Optional[np.ndarray] = None  # (V, 2) float32
    colors: Optional[np.ndarray] = None  # (V, 3) uint8
    topology: Optional[str] = None  # vertex layout id written in OBJ headers (e.g. the face model's name)


@dataclass
class Camera:
    """Pinhole camera. ``K`` maps camera coordinates to pixels of the original photo:
    a camera point (x, y, z) (z < 0 in front) projects to u = fx * x / -z + cx, v = fy * -y / -z + cy."""

    K: np.ndarray  # (3, 3) float32
    R: np.ndarray  # (3, 3) float32, world (head) -> camera rotation
    t: np.ndarray  # (3,) float32, mm
    width: int
    height: int


@dataclass
class ViewResult:
    """Per-photo part of a reconstruction (one per view in multi-view)."""

    image_path: str
    camera: Camera
    sh_lighting: np.ndarray  # (9, 3) float32 spherical-harmonics coefficients (RGB)
    landmarks_2d: np.ndarray  # (N, 2) detected landmarks used for fitting, pixels
    overlay: Optional[np.ndarray] = None  # HxWx3 uint8: textured render over the photo
    shading: Optional[np.ndarray] = None  # HxWx3 uint8: shaded geometry render over the photo
    mask: Optional[np.ndarray] = None  # HxW uint8 occlusion mask used (255 = ignored)
    landmarks_68: Optional[np.ndarray] = None  # (68, 2) pixels: the fitted model's iBUG points (jaw on the silhouette)
    expression: Optional[np.ndarray] = None  # (E,) the face model's expression weights in this view


@dataclass
class ModelParameters:
    """The face-model coefficients of a reconstruction (``fit`` backend)."""

    model: str  # face model id (``FaceModel.name``)
    identity: np.ndarray  # (K,) float32, N(0, 1) units
    expression_names: tuple[str, ...]  # names of ViewResult.expression's entries


@dataclass
class Reconstruction:
    """A textured face: meshes per level (world = head frame, mm), a UV albedo, per-view cameras."""

    levels: dict[str, Mesh]  # keys from LEVELS that were computed, in order
    albedo: np.ndarray  # (Ht, Wt, 3) uint8 UV texture, occluded texels filled
    views: list[ViewResult]
    backend: str
    landmark_vertex_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # vertex of each of the 478 landmarks
    displacement: Optional[np.ndarray] = None  # (Ht, Wt) float32 mm, fine level
    info: dict = field(default_factory=dict)  # timings, losses, warnings
    neutral: Optional[Mesh] = None  # the final level with a neutral expression (identity only), same topology
    model: Optional[ModelParameters] = None

    @property
    def final(self) -> Mesh:
        return self.levels[[k for k in LEVELS if k in self.levels][-1]]
