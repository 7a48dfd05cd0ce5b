"""The packaged face model (derived from ICT-FaceKit, see ``derive.py``) and its small torch API.

A face is ``neutral + identity_basis.T @ identity + expression_basis.T @ expression`` (mm, head frame:
x to the subject's left, y up, z out of the face), ``identity ~ N(0, 1)`` per component and
``expression`` ARKit-style blendshape weights in [0, 1].
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import FormatError, WeightsError
from ..formats.core import parse_json_file

MODEL_DIR = Path(__file__).resolve().parents[1] / "data" / "face_model"
MODEL_FORMAT = "shrn.face_model"
MODEL_SCHEMA = 1
REGION_NAMES = ("other", "forehead", "eyes", "nose", "cheeks", "mouth", "chin", "ears")
# mediapipe's face-oval ring (FACEMESH_FACE_OVAL), clockwise in the image from the forehead top
FACE_OVAL = (10, 109, 67, 103, 54, 21, 162, 127, 234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152,
             377, 400, 378, 379, 365, 397, 288, 361, 323, 454, 356, 389, 251, 284, 332, 297, 338)
_REQUIRED = ("neutral", "identity_basis", "expression_basis", "expression_names", "triangles", "uvs", "mirror",
             "landmarks68", "now7", "jaw_contour", "mediapipe_triangles", "mediapipe_barycentric", "oval_contour",
             "regions")


@dataclass(frozen=True, eq=False)
class FaceModel:
    """Arrays of the model (numpy) plus cached torch copies per device/dtype."""

    name: str
    neutral: np.ndarray  # (V, 3) float32 mm
    identity_basis: np.ndarray  # (K, V, 3) float32 mm at one standard deviation
    expression_basis: np.ndarray  # (E, V, 3) float32 mm at weight 1
    expression_names: tuple[str, ...]
    triangles: np.ndarray  # (F, 3) int64, counter-clockwise seen from outside
    uvs: np.ndarray  # (V, 2) float32, u right, v up
    mirror: np.ndarray  # (V,) int64 left/right counterpart
    landmarks68: np.ndarray  # (68,) int64 iBUG-68 vertices (jaw 0-16 as seen frontally)
    now7: np.ndarray  # (7,) int64 NoW landmark vertices (evaluate.landmarks order)
    jaw_contour: np.ndarray  # (17, C) int64 candidate vertices per jaw landmark, -1 padded
    mediapipe_triangles: np.ndarray  # (478,) int64 triangle holding each mediapipe point
    mediapipe_barycentric: np.ndarray  # (478, 3) float32 weights in that triangle
    oval_contour: np.ndarray  # (36, C) int64 candidates per FACE_OVAL point, -1 padded
    regions: np.ndarray  # (V,) uint8 index into REGION_NAMES
    config: dict = field(default_factory=dict)
    _torch: dict = field(default_factory=dict, repr=False)

    @property
    def num_vertices(self) -> int:
        return len(self.neutral)

    @property
    def num_identity(self) -> int:
        return len(self.identity_basis)

    @property
    def num_expression(self) -> int:
        return len(self.expression_basis)

    def region(self, name: str) -> np.ndarray:
        """(V,) bool: the vertices of a named region (REGION_NAMES)."""
        if name not in REGION_NAMES:
            raise KeyError(f"unknown region {name!r}; choose one of {', '.join(REGION_NAMES)}")
        return self.regions == REGION_NAMES.index(name)

    def tensors(self, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
        """neutral (V, 3), identity (K, V*3), expression (E, V*3) on a device (cached)."""
        key = (str(torch.device(device)), dtype)
        if key not in self._torch:
            self._torch[key] = {
                "neutral": torch.as_tensor(self.neutral, dtype=dtype, device=device),
                "identity": torch.as_tensor(self.identity_basis.reshape(self.num_identity, -1), dtype=dtype, device=device),
                "expression": torch.as_tensor(self.expression_basis.reshape(self.num_expression, -1), dtype=dtype, device=device),
            }
        return self._torch[key]

    def vertices(self, identity: torch.Tensor, expression: torch.Tensor | None = None) -> torch.Tensor:
        """(B, K') identity (K' <= K leading components) and (B, E) expression -> (B, V, 3) mm.

        Differentiable; the device and dtype follow ``identity``.
        """
        identity = _check_batch("identity", identity, self.num_identity)
        t = self.tensors(identity.device, identity.dtype)
        offsets = identity @ t["identity"][: identity.shape[1]]
        if expression is not None:
            expression = _check_batch("expression", expression, self.num_expression, exact=True)
            if expression.shape[0] != identity.shape[0]:
                raise ValueError(f"identity batch {identity.shape[0]} != expression batch {expression.shape[0]}")
            offsets = offsets + expression @ t["expression"]
        return t["neutral"] + offsets.view(identity.shape[0], -1, 3)

    def mediapipe_points(self, vertices: torch.Tensor) -> torch.Tensor:
        """(B, V, 3) model vertices -> (B, 478, 3) mediapipe's face-mesh points on that surface."""
        corners = torch.as_tensor(self.triangles[self.mediapipe_triangles], device=vertices.device)  # (478, 3)
        weights = torch.as_tensor(self.mediapipe_barycentric, dtype=vertices.dtype, device=vertices.device)
        return (vertices[:, corners] * weights[None, :, :, None]).sum(2)


def _check_batch(name: str, value: torch.Tensor, size: int, exact: bool = False) -> torch.Tensor:
    if not isinstance(value, torch.Tensor) or value.ndim != 2 or value.shape[1] > size or (exact and value.shape[1] != size):
        want = f"(B, {size})" if exact else f"(B, <= {size})"
        got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ValueError(f"{name} must be a {want} tensor, got {got}")
    return value


def load_face_model(path: str | Path | None = None) -> FaceModel:
    """The face model folder (``config.json`` + ``model.npz`` + ``LICENSE``); WeightsError if broken.
    Without ``path``: ``$SHRN_FACE_MODEL`` if set (a model rebuilt with ``derive.py``), else the
    packaged one."""
    if path is None:
        path = os.environ.get("SHRN_FACE_MODEL") or MODEL_DIR
    return _load_face_model(Path(path).resolve())


@functools.lru_cache(maxsize=4)
def _load_face_model(folder: Path) -> FaceModel:
    config_path, model_path = folder / "config.json", folder / "model.npz"
    for needed in (config_path, model_path):
        if not needed.is_file():
            raise WeightsError("face model file missing (rebuild with python -m shrn_core.facemodel.derive)", needed)
    config = parse_json_file(config_path, error=WeightsError)
    if not isinstance(config, dict) or config.get("format") != MODEL_FORMAT or config.get("schema_version") != MODEL_SCHEMA:
        raise WeightsError(f"not a {MODEL_FORMAT} v{MODEL_SCHEMA} config", config_path)
    try:
        with np.load(model_path, allow_pickle=False) as data:
            missing = [k for k in _REQUIRED if k not in data.files]
            if missing:
                raise WeightsError(f"face model lacks {', '.join(missing)}", model_path)
            arrays = {k: data[k] for k in _REQUIRED}
    except WeightsError:
        raise
    except Exception as exc:  # zip/npy corruption surfaces as many exception types
        raise WeightsError(f"face model file is corrupt ({exc.__class__.__name__})", model_path) from None
    try:
        model = FaceModel(
            name=str(config.get("name", "unknown")),
            neutral=arrays["neutral"].astype(np.float32),
            identity_basis=arrays["identity_basis"].astype(np.float32),
            expression_basis=arrays["expression_basis"].astype(np.float32),
            expression_names=tuple(str(n) for n in arrays["expression_names"]),
            triangles=arrays["triangles"].astype(np.int64),
            uvs=arrays["uvs"].astype(np.float32),
            mirror=arrays["mirror"].astype(np.int64),
            landmarks68=arrays["landmarks68"].astype(np.int64),
            now7=arrays["now7"].astype(np.int64),
            jaw_contour=arrays["jaw_contour"].astype(np.int64),
            mediapipe_triangles=arrays["mediapipe_triangles"].astype(np.int64),
            mediapipe_barycentric=arrays["mediapipe_barycentric"].astype(np.float32),
            oval_contour=arrays["oval_contour"].astype(np.int64),
            regions=arrays["regions"].astype(np.uint8),
            config=config,
        )
    except (ValueError, TypeError) as exc:  # an array of the wrong dtype (strings, objects) or shape
        raise WeightsError(f"face model file holds a malformed array ({exc.__class__.__name__})", model_path) from None
    _validate(model, model_path)
    return model


def _validate(model: FaceModel, path: Path) -> None:
    V = model.num_vertices
    try:
        checks = [
            (model.neutral.ndim == 2 and model.neutral.shape[1] == 3, "neutral must be (V, 3)"),
            (model.identity_basis.shape[1:] == (V, 3), "identity_basis must be (K, V, 3)"),
            (model.expression_basis.shape[1:] == (V, 3), "expression_basis must be (E, V, 3)"),
            (len(model.expression_names) == model.num_expression, "one name per expression"),
            (model.triangles.ndim == 2 and model.triangles.shape[1] == 3 and model.triangles.min() >= 0
             and model.triangles.max() < V, "triangles must index the vertices"),
            (model.uvs.shape == (V, 2) and model.mirror.shape == (V,) and model.regions.shape == (V,), "per-vertex arrays"),
            (model.mediapipe_triangles.shape == (478,) and model.mediapipe_barycentric.shape == (478, 3), "mediapipe embedding"),
            (model.mediapipe_triangles.max() < len(model.triangles), "mediapipe embedding triangle ids"),
            (max(model.landmarks68.max(), model.now7.max(), model.jaw_contour.max(), model.oval_contour.max(),
                 model.mirror.max()) < V, "vertex ids out of range"),
            (all(np.isfinite(a).all() for a in (model.neutral, model.identity_basis, model.expression_basis, model.uvs,
                                                model.mediapipe_barycentric)), "NaN/inf in the model"),
        ]
    except (ValueError, IndexError, TypeError):  # empty or oddly shaped arrays break the checks themselves
        raise WeightsError("face model is inconsistent: malformed arrays", path) from None
    for ok, what in checks:
        if not ok:
            raise WeightsError(f"face model is inconsistent: {what}", path)


def coefficients_from_params(params: dict, model: FaceModel, path: str | Path | None = None
                             ) -> tuple[np.ndarray, np.ndarray | None]:
    """(identity (K,), expression (N, E) or None) of a ``params.npz`` (as ``read_params`` returns it),
    checked against ``model``: coefficients fitted with another face model (or version) are refused by
    name with a ``FormatError``, as are wrong sizes."""
    if "identity" not in params or "model" not in params:
        raise FormatError("params file holds no face-model coefficients (written by a backend without the face model)", path)
    name = str(params["model"])
    if name != model.name:
        raise FormatError(f"coefficients belong to face model {name!r}, not to the loaded {model.name!r}", path)
    identity = np.asarray(params["identity"])
    if identity.ndim != 1 or identity.dtype.kind != "f" or len(identity) > model.num_identity or not np.isfinite(identity).all():
        raise FormatError(f"identity must be up to {model.num_identity} finite numbers, got {identity.dtype} "
                          f"{identity.shape}", path)
    expression = params.get("expression")
    if expression is not None:
        names = tuple(str(n) for n in np.asarray(params.get("expression_names", [])).ravel())
        expression = np.asarray(expression)
        if names != model.expression_names:
            raise FormatError(f"expression names differ from face model {model.name!r}'s", path)
        if (expression.ndim != 2 or expression.shape[1] != model.num_expression or expression.dtype.kind != "f"
                or not np.isfinite(expression).all()):
            raise FormatError(f"expression must be (views, {model.num_expression}) finite numbers, got "
                              f"{expression.dtype} {expression.shape}", path)
    return identity.astype(np.float32), None if expression is None else expression.astype(np.float32)
