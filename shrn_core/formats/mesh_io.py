"""Reading meshes and point clouds for evaluation: OBJ (own reader, keeps vertex order), PLY, STL.

Writing meshes belongs to ``formats.mesh``; this module only reads. Coordinates come back as
float64 multiplied by ``scale`` (e.g. 1000 for a file in metres), faces as (F, 3) int64
(polygons fan-triangulated; none for a point cloud).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FormatError, InputError
from .core import check_input_file

MESH_EXTENSIONS = {".obj", ".ply", ".stl"}
SHRN_TOPOLOGY_HEADER = "# shrn mesh topology="


@dataclass
class MeshData:
    vertices: np.ndarray  # (V, 3) float64
    faces: np.ndarray  # (F, 3) int64, empty for a point cloud
    path: str = ""
    topology: str | None = None  # e.g. "mediapipe468" from a shrn OBJ header

    @property
    def is_point_cloud(self) -> bool:
        return len(self.faces) == 0


def check_mesh_file(path: str | Path) -> Path:
    return check_input_file(path, "a mesh file", MESH_EXTENSIONS, "unsupported mesh format {suffix} (use .obj, .ply or .stl)")


def read_mesh(path: str | Path, scale: float = 1.0) -> MeshData:
    """Vertices (times ``scale``) and triangles of a mesh or point cloud file."""
    path = check_mesh_file(path)
    if not np.isfinite(scale) or scale <= 0:
        raise InputError(f"scale must be a positive number, got {scale}")
    if path.suffix.lower() == ".obj":
        vertices, faces, topology = _read_obj(path)
    else:
        vertices, faces = _read_with_trimesh(path)
        topology = None
    if len(vertices) == 0:
        raise FormatError("file holds no vertices", path)
    if len(faces) and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise FormatError(f"face indices out of range (file has {len(vertices)} vertices)", path)
    return MeshData(vertices * float(scale), faces, str(path), topology)


def _read_obj(path: Path) -> tuple[np.ndarray, np.ndarray, str | None]:
    try:
        text = path.read_text(errors="strict")
    except UnicodeDecodeError:
        raise InputError("not a text OBJ file (binary or wrong encoding)", path) from None
    lines = text.splitlines()
    topology = None
    if lines and lines[0].startswith(SHRN_TOPOLOGY_HEADER):
        topology = lines[0][len(SHRN_TOPOLOGY_HEADER):].split()[0] if lines[0][len(SHRN_TOPOLOGY_HEADER):].split() else None
    vertex_rows = [line.split()[1:4] for line in lines if line.startswith("v ")]
    try:
        vertices = np.array(vertex_rows, dtype=np.float64).reshape(-1, 3)
    except ValueError:
        raise FormatError("malformed vertex line ('v x y z' expected)", path) from None
    triangles: list[list[int]] = []
    n = len(vertices)
    try:
        for line in lines:
            if not line.startswith("f "):
                continue
            ids = [int(token.split("/")[0]) for token in line.split()[1:]]
            ids = [i - 1 if i > 0 else n + i for i in ids]  # OBJ is 1-based; negatives count back
            if len(ids) < 3:
                raise ValueError
            if any(abs(i) > 2 ** 62 for i in ids):  # would overflow int64: no mesh has that many vertices
                raise ValueError
            triangles.extend([ids[0], ids[j], ids[j + 1]] for j in range(1, len(ids) - 1))
    except ValueError:
        raise FormatError("malformed face line ('f i j k' expected)", path) from None
    faces = np.array(triangles, dtype=np.int64).reshape(-1, 3)
    return vertices, faces, topology


def _read_with_trimesh(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import trimesh

    try:
        loaded = trimesh.load(path, process=False, maintain_order=True)
    except Exception as exc:  # trimesh raises many types for corrupt files
        raise InputError(f"not a readable {path.suffix[1:].upper()} file ({exc.__class__.__name__})", path) from None
    if isinstance(loaded, trimesh.Scene):
        geometries = list(loaded.geometry.values())
        if len(geometries) != 1:
            raise FormatError(f"expected one mesh, the file holds {len(geometries)}", path)
        loaded = geometries[0]
    vertices = np.asarray(getattr(loaded, "vertices", np.zeros((0, 3))), dtype=np.float64).reshape(-1, 3)
    faces = np.asarray(getattr(loaded, "faces", np.zeros((0, 3))), dtype=np.int64).reshape(-1, 3)
    return vertices, faces


# ---------------------------------------------------------------- landmarks

LANDMARK_EXTENSIONS = (".txt", ".npy", ".json", ".pp")


@dataclass
class LandmarkSpec:
    """Landmarks from a file: either 3D points (mesh units, before scaling) or mesh vertex ids."""

    points: np.ndarray | None = None  # (N, 3) float64
    vertex_ids: np.ndarray | None = None  # (N,) int64
    path: str = ""

    def __len__(self) -> int:
        return len(self.points) if self.points is not None else len(self.vertex_ids)


def read_landmarks(path: str | Path) -> LandmarkSpec:
    """``.txt`` (one point per line, x y z; or one vertex id per line), ``.npy`` ((N, 3), (1, N, 3)
    or (N,) integers), ``.json`` (a list, or an object with ``"landmarks"`` or ``"vertex_ids"``),
    ``.pp`` (MeshLab picked points, as the NoW scans ship)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("landmark file not found", path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            from .arrays import load_npy

            data = load_npy(path, error=InputError)
        elif suffix == ".json":
            from .core import parse_json_file

            doc = parse_json_file(path, error=InputError)
            if isinstance(doc, dict) and "vertex_ids" in doc:
                return _as_spec(np.asarray(doc["vertex_ids"]), path, force_ids=True)
            data = np.asarray(doc["landmarks"] if isinstance(doc, dict) else doc)
        elif suffix == ".pp":
            data = _read_picked_points(path)
        elif suffix == ".txt":
            rows = [line.replace(",", " ").split() for line in path.read_text().splitlines() if line.strip()
                    and not line.lstrip().startswith("#")]
            data = np.array(rows, dtype=np.float64) if rows else np.zeros((0, 3))
            if data.ndim == 2 and data.shape[1] == 1 and np.all(data == np.round(data)):
                return _as_spec(data[:, 0].astype(np.int64), path, force_ids=True)
        else:
            raise InputError(f"unsupported landmark format {suffix!r} (use .txt, .npy, .json or .pp)", path)
        return _as_spec(np.asarray(data), path)
    except InputError:
        raise
    except Exception as exc:  # ragged lists, strings, XML errors, ...: all mean an unusable file
        raise InputError(f"not a readable landmark file ({exc.__class__.__name__})", path) from None


def _as_spec(data: np.ndarray, path: Path, force_ids: bool = False) -> LandmarkSpec:
    if data.ndim == 3 and data.shape[0] == 1:
        data = data[0]
    if data.dtype.kind not in "iuf":
        raise InputError(f"landmarks must be numbers, got {data.dtype}", path)
    if force_ids or (data.ndim == 1 and np.issubdtype(data.dtype, np.integer)):
        ids = np.asarray(data).reshape(-1)
        if not np.isfinite(ids).all() or not np.all(ids == np.round(ids)) or ids.min(initial=0) < 0 \
                or ids.max(initial=0) >= 2 ** 62:
            raise InputError("vertex ids must be non-negative integers", path)
        return LandmarkSpec(vertex_ids=ids.astype(np.int64), path=str(path))
    if data.ndim != 2 or data.shape[1] != 3:
        raise InputError(f"landmarks must be (N, 3) points or N vertex ids, got shape {tuple(data.shape)}", path)
    points = data.astype(np.float64)
    if not np.isfinite(points).all():
        raise InputError("landmarks contain NaN or inf", path)
    return LandmarkSpec(points=points, path=str(path))


def _read_picked_points(path: Path) -> np.ndarray:
    import xml.etree.ElementTree as ET

    root = ET.parse(path).getroot()
    points = [[float(p.get(axis)) for axis in ("x", "y", "z")] for p in root.iter("point")]
    return np.array(points, dtype=np.float64).reshape(-1, 3)
