"""A thin adapter over the packed ICT-FaceKit file (``ict_face_model.npz``; see its README).

Kept deliberately small -- ``vertices(identity, expression)``, ``triangles``, ``uvs``,
``landmarks68`` and the linear arrays behind them -- so that it can be swapped for
``shrn_core.facemodel`` (the packaged ICT model) without touching the generator.
ICT is in centimetres; everything here is converted to millimetres.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FormatError, WeightsError

CM_TO_MM = 10.0
REQUIRED_KEYS = ("neutral", "quads", "uv", "quad_uv", "identity", "expression", "expression_names", "landmarks68",
                 "face_vertex_count")


@dataclass(frozen=True)
class IctFaceModel:
    mean: np.ndarray  # (V, 3) float32 mm (face area, head and neck)
    identity_basis: np.ndarray  # (100, V, 3) float32 mm at one standard deviation
    expression_basis: np.ndarray  # (53, V, 3) float32 mm at weight 1
    expression_names: tuple[str, ...]
    triangles: np.ndarray  # (F, 3) int64, each quad split in two
    uvs: np.ndarray  # (V, 2) float32: ICT's own UV of each vertex (first quad corner that uses it)
    landmarks68: np.ndarray  # (68,) int64 iBUG-68 vertices
    face_vertex_count: int  # vertices 0..n-1 are the face area (forehead to chin, ears included)
    narrow_face_vertex_count: int  # vertices 0..n-1 are the narrow face (no ears, no neck): shrn's "face surface"

    @classmethod
    def load(cls, path: str | Path) -> "IctFaceModel":
        return _load(str(Path(path).resolve()))

    def vertices(self, identity: np.ndarray, expression: np.ndarray) -> np.ndarray:
        """(V, 3) float32 mm; identity (<= 100,) in standard deviations, expression (<= 53,) weights."""
        identity = np.pad(np.asarray(identity, np.float64), (0, self.identity_basis.shape[0] - len(identity)))
        expression = np.pad(np.asarray(expression, np.float64), (0, self.expression_basis.shape[0] - len(expression)))
        return (self.mean + np.tensordot(identity, self.identity_basis, 1)
                + np.tensordot(expression, self.expression_basis, 1)).astype(np.float32)


@functools.lru_cache(maxsize=2)
def _load(path: str) -> IctFaceModel:
    file = Path(path)
    if file.is_dir():
        file = file / "ict_face_model.npz"
    if not file.is_file():
        raise WeightsError("ICT-FaceKit model not found (pass --ict FILE, the packed ict_face_model.npz)", file)
    try:
        with np.load(file, allow_pickle=False) as data:
            missing = [key for key in REQUIRED_KEYS if key not in data.files]
            if missing:
                raise FormatError(f"ICT model file lacks {', '.join(missing)}", file)
            arrays = {key: data[key] for key in REQUIRED_KEYS + ("narrow_face_vertex_count",) if key in data.files}
    except (OSError, ValueError) as exc:
        raise FormatError(f"not a readable .npz ({exc.__class__.__name__})", file) from None
    quads = arrays["quads"].astype(np.int64)
    triangles = np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])
    uvs = np.zeros((len(arrays["neutral"]), 2), np.float32)
    uvs[quads.reshape(-1)[::-1]] = arrays["uv"][arrays["quad_uv"].reshape(-1)[::-1]]  # first corner wins
    return IctFaceModel(
        mean=arrays["neutral"].astype(np.float32) * CM_TO_MM,
        identity_basis=arrays["identity"].astype(np.float32) * CM_TO_MM,
        expression_basis=arrays["expression"].astype(np.float32) * CM_TO_MM,
        expression_names=tuple(str(n) for n in arrays["expression_names"]),
        triangles=triangles, uvs=uvs, landmarks68=arrays["landmarks68"].astype(np.int64),
        face_vertex_count=int(arrays["face_vertex_count"]),
        narrow_face_vertex_count=int(arrays.get("narrow_face_vertex_count", arrays["face_vertex_count"])))
