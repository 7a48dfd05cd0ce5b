"""Ground-truth shape models behind one small interface: the Surrey Face Model and ICT-FaceKit.

A model is linear: ``vertices(identity, expression) = mean + identity . identity_basis +
expression . expression_basis`` in millimetres, in the head frame shrn uses everywhere (x to the
subject's left, y up, z towards the viewer). ``identity`` coefficients are in standard deviations
(~N(0, 1)); ``expression`` weights are blendshape weights (0 = neutral).

* Surrey Face Model (``load_sfm``): read with eos-py from the folder of ``sfm_shape_3448.bin`` and
  ``expression_blendshapes_3448.bin``, or from an ``.npz`` written by ``export_sfm_arrays`` (for
  machines without eos-py). Non-commercial: never shipped, only read from where the user keeps it.
* ICT-FaceKit (``load_ict``): ``ict_adapter.IctFaceModel`` reads the packed ``ict_face_model.npz``.
"""
from __future__ import annotations

import functools
import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import FormatError, InputError, WeightsError

MODELS = ("sfm", "ict")
SFM_FILES = ("sfm_shape_3448.bin", "expression_blendshapes_3448.bin", "ibug_to_sfm.txt")
SFM_ARRAYS_FORMAT = "shrn.sfm_arrays"
# iBUG-68 (0-based) points of the NoW landmarks, in NoW's order: right eye outer, right eye inner,
# left eye inner, left eye outer, nose bottom (subnasale), right mouth corner, left mouth corner
# (subject's right/left; iBUG numbers the subject's right side first).
NOW7_FROM_IBUG68 = np.array([36, 39, 42, 45, 33, 48, 54], dtype=np.int64)


@dataclass(frozen=True)
class ShapeModel:
    """A linear face model; arrays in mm, head frame. See the module docstring."""

    name: str  # "sfm" or "ict"
    mean: np.ndarray  # (V, 3) float32
    identity_basis: np.ndarray  # (K, V, 3) float32: one standard deviation of each component
    expression_basis: np.ndarray  # (E, V, 3) float32: each blendshape at weight 1
    expression_names: tuple[str, ...]
    triangles: np.ndarray  # (F, 3) int64, counter-clockwise seen from outside
    landmarks68: np.ndarray  # (68,) int64 vertex of each iBUG-68 point, -1 where the model has none
    surface_vertex_count: int  # vertices 0..n-1 (and the triangles among them) are the ground-truth face surface
    face_area_vertex_count: int = 0  # vertices 0..n-1 are the face area incl. ears (0: the surface count)

    @property
    def num_vertices(self) -> int:
        return self.mean.shape[0]

    @property
    def num_identity(self) -> int:
        return self.identity_basis.shape[0]

    @property
    def num_expression(self) -> int:
        return self.expression_basis.shape[0]

    @property
    def now7(self) -> np.ndarray:
        """(7,) vertex ids of the NoW landmarks (``shrn_core.evaluate.landmarks`` order)."""
        return self.landmarks68[NOW7_FROM_IBUG68]

    def vertices(self, identity: np.ndarray, expression: np.ndarray) -> np.ndarray:
        """(V, 3) float32 mm for identity (K,) and expression (E,) coefficients (shorter = zero-padded)."""
        identity = self._coefficients(identity, self.num_identity, "identity")
        expression = self._coefficients(expression, self.num_expression, "expression")
        out = self.mean.astype(np.float64)
        out = out + np.tensordot(identity, self.identity_basis, axes=1) + np.tensordot(expression, self.expression_basis, axes=1)
        return out.astype(np.float32)

    def vertices_torch(self, identity: torch.Tensor, expression: torch.Tensor) -> torch.Tensor:
        """Batched: identity (B, K), expression (B, E) float32 on one device -> (B, V, 3)."""
        mean, ids, exps = self.torch_arrays(identity.device)
        return (mean + torch.einsum("bk,kv->bv", identity, ids) + torch.einsum("be,ev->bv", expression, exps)).view(
            identity.shape[0], -1, 3)

    def torch_arrays(self, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return _torch_arrays(self, str(device))

    def surface(self, vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The ground-truth surface part of full-model ``vertices``: (vertices, triangles)."""
        n = self.surface_vertex_count
        keep = (self.triangles < n).all(axis=1)
        return np.asarray(vertices)[:n], self.triangles[keep]

    def _coefficients(self, values, size: int, what: str) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        if values.size > size:
            raise InputError(f"{self.name} model has {size} {what} coefficients, got {values.size}")
        return np.pad(values, (0, size - values.size))

    def __hash__(self) -> int:  # arrays are not hashable; a model is identified by its name and size
        return hash((self.name, self.num_vertices, self.num_identity, self.num_expression))


@functools.lru_cache(maxsize=4)
def _torch_arrays(model: ShapeModel, device: str):
    to = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32, device=device)  # noqa: E731
    return (to(model.mean.reshape(-1)), to(model.identity_basis.reshape(model.num_identity, -1)),
            to(model.expression_basis.reshape(model.num_expression, -1)))


# ------------------------------------------------------------------ Surrey Face Model


def load_sfm(path: str | Path) -> ShapeModel:
    """The Surrey Face Model from its eos folder (needs eos-py) or from ``export_sfm_arrays``'s npz."""
    path = Path(path)
    if path.suffix == ".npz":
        return _load_sfm_npz(path)
    return _load_sfm_folder(str(path.resolve()))


@functools.lru_cache(maxsize=2)
def _load_sfm_folder(folder: str) -> ShapeModel:
    path = Path(folder)
    if not path.is_dir():
        raise WeightsError("Surrey Face Model folder not found (pass --sfm DIR holding sfm_shape_3448.bin, or an "
                           "arrays .npz from --export-sfm)", path)
    missing = [name for name in SFM_FILES if not (path / name).is_file()]
    if missing:
        raise WeightsError(f"Surrey Face Model folder lacks {', '.join(missing)}", path)
    try:
        import eos  # noqa: PLC0415 - optional, benchmark-only dependency
    except ImportError:
        raise WeightsError("reading the Surrey Face Model needs eos-py (pip install 'shrn[synth]'), or pass an arrays "
                           ".npz written by 'shrn synth --export-sfm' on a machine that has it", path) from None
    shape = eos.morphablemodel.load_model(str(path / SFM_FILES[0])).get_shape_model()
    mean = np.asarray(shape.get_mean(), np.float32).reshape(-1, 3)
    basis = np.asarray(shape.get_rescaled_pca_basis(), np.float32)  # (3V, K): one sd per column
    blendshapes = eos.morphablemodel.load_blendshapes(str(path / SFM_FILES[1]))
    expression = np.stack([np.asarray(b.deformation, np.float32).reshape(-1, 3) for b in blendshapes])
    return ShapeModel(
        name="sfm", mean=mean, identity_basis=np.ascontiguousarray(basis.T.reshape(-1, mean.shape[0], 3)),
        expression_basis=expression, expression_names=tuple(b.name for b in blendshapes),
        triangles=np.asarray(shape.get_triangle_list(), np.int64),
        landmarks68=read_ibug_mapping(path / SFM_FILES[2]), surface_vertex_count=mean.shape[0])


def read_ibug_mapping(path: str | Path) -> np.ndarray:
    """``ibug_to_sfm.txt`` ('N = vertex' lines, iBUG numbered from 1) -> (68,) vertex ids, -1 if unmapped."""
    ids = np.full(68, -1, dtype=np.int64)
    for line in Path(path).read_text().splitlines():
        match = re.match(r"\s*(\d+)\s*=\s*(\d+)", line)
        if match and 1 <= int(match.group(1)) <= 68:
            ids[int(match.group(1)) - 1] = int(match.group(2))
    if (ids[NOW7_FROM_IBUG68] < 0).any():
        raise FormatError("the iBUG mapping lacks a NoW landmark (eye corners, subnasale, mouth corners)", path)
    return ids


def export_sfm_arrays(sfm_dir: str | Path, out_path: str | Path) -> Path:
    """Write the Surrey model's arrays to one ``.npz`` that ``load_sfm`` reads without eos-py.

    The file is derived from the non-commercial model: keep it beside your copy of the model, never
    in a package."""
    from ..formats.core import write_bytes  # noqa: PLC0415

    model = _load_sfm_folder(str(Path(sfm_dir).resolve()))
    buffer = io.BytesIO()
    np.savez_compressed(buffer, format=np.array(SFM_ARRAYS_FORMAT), schema_version=np.array(1), mean=model.mean,
                        identity_basis=model.identity_basis, expression_basis=model.expression_basis,
                        expression_names=np.array(model.expression_names), triangles=model.triangles,
                        landmarks68=model.landmarks68)
    return write_bytes(out_path, buffer.getvalue())


@functools.lru_cache(maxsize=2)
def _load_sfm_npz(path: Path) -> ShapeModel:
    if not path.is_file():
        raise WeightsError("Surrey Face Model arrays file not found", path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError) as exc:
        raise FormatError(f"not a readable .npz ({exc.__class__.__name__})", path) from None
    if str(arrays.get("format", "")) != SFM_ARRAYS_FORMAT or int(arrays.get("schema_version", -1)) != 1:
        raise FormatError(f"not a Surrey model arrays file (expected format {SFM_ARRAYS_FORMAT!r}, schema_version 1)", path)
    mean = arrays["mean"].astype(np.float32)
    return ShapeModel("sfm", mean, arrays["identity_basis"].astype(np.float32), arrays["expression_basis"].astype(np.float32),
                      tuple(str(n) for n in arrays["expression_names"]), arrays["triangles"].astype(np.int64),
                      arrays["landmarks68"].astype(np.int64), mean.shape[0])


# ------------------------------------------------------------------ ICT-FaceKit


def load_ict(path: str | Path) -> ShapeModel:
    """ICT-FaceKit through the adapter (``ict_adapter``), as a ``ShapeModel``."""
    from .ict_adapter import IctFaceModel  # noqa: PLC0415

    ict = IctFaceModel.load(path)
    return ShapeModel("ict", ict.mean, ict.identity_basis, ict.expression_basis, ict.expression_names, ict.triangles,
                      ict.landmarks68, ict.narrow_face_vertex_count, ict.face_vertex_count)


def load_model(name: str, path: str | Path) -> ShapeModel:
    if name == "sfm":
        return load_sfm(path)
    if name == "ict":
        return load_ict(path)
    raise InputError(f"unknown face model {name!r}; choose one of: {', '.join(MODELS)}")
