"""The NoW 7-landmark convention and where each side's landmarks come from.

Order (subject's right/left): 0 right eye outer corner, 1 right eye inner corner, 2 left eye inner
corner, 3 left eye outer corner, 4 nose bottom (subnasale: where the columella meets the upper lip,
not the tip -- see the official landmarks_7_annotated.png and "nose-bottom" in its crop code), 5 right
mouth corner, 6 left mouth corner.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from ..formats.mesh_io import LANDMARK_EXTENSIONS, LandmarkSpec, MeshData, read_landmarks

NOW7_NAMES = ("right_eye_outer", "right_eye_inner", "left_eye_inner", "left_eye_outer", "nose_bottom",
              "mouth_right", "mouth_left")
# mediapipe face-mesh vertices of the NoW landmarks; shrn meshes keep mediapipe's 468 points first.
# Vertex 2 is mediapipe's nose bottom (subnasale); vertex 1 would be the nose tip, 15 mm further out.
NOW7_MEDIAPIPE = np.array([33, 133, 362, 263, 2, 61, 291], dtype=np.int64)
TOPOLOGY_LANDMARKS = {"mediapipe468": NOW7_MEDIAPIPE}


def topology_landmarks(topology: str | None) -> np.ndarray | None:
    """NoW-7 vertex ids of a known shrn vertex layout: mediapipe's, or the packaged face model's."""
    if topology in TOPOLOGY_LANDMARKS:
        return TOPOLOGY_LANDMARKS[topology]
    from ..facemodel import load_face_model

    model = load_face_model()
    return model.now7 if topology == model.name else None

# Sidecar names tried for "auto", in order: shrn's own, then the NoW convention (<stem>.npy/.txt).
_SIDECAR_KINDS = ("landmarks", "lmk", "")


def find_sidecar(mesh_path: str | Path, folder: str | Path | None = None) -> Path | None:
    """A landmark file for ``mesh_path``: ``<stem>.landmarks.<ext>``, ``<stem>.lmk.<ext>`` or
    ``<stem>.<ext>`` (ext in .txt, .npy, .json, .pp), in ``folder`` or beside the mesh."""
    mesh_path = Path(mesh_path)
    where = Path(folder) if folder is not None else mesh_path.parent
    stem = mesh_path.stem
    for kind in _SIDECAR_KINDS:
        for ext in LANDMARK_EXTENSIONS:
            candidate = where / (f"{stem}.{kind}{ext}" if kind else f"{stem}{ext}")
            if candidate.is_file():
                return candidate
    return None


def resolve_landmarks(mesh: MeshData, source: str | Path | None, scale: float, side: str) -> np.ndarray:
    """(N, 3) landmark points in the (scaled) frame of ``mesh``.

    ``source``: a landmark file; a folder holding a sidecar for this mesh; ``"auto"``/``None``
    (known topology -> its vertices, else a sidecar beside the mesh).
    """
    spec: LandmarkSpec | None = None
    if source is None or str(source) == "auto":
        known = topology_landmarks(mesh.topology)
        if known is not None:
            spec = LandmarkSpec(vertex_ids=known, path=f"topology {mesh.topology}")
        else:
            found = find_sidecar(mesh.path)
            if found is None:
                raise InputError(
                    f"missing {side} landmarks: no {Path(mesh.path).stem}.txt/.npy/.json/.pp beside the mesh and the "
                    f"mesh is not a shrn mesh with known topology (pass --{side}-landmarks FILE)", mesh.path)
            spec = read_landmarks(found)
    elif Path(source).is_dir():
        found = find_sidecar(mesh.path, source)
        if found is None:
            raise InputError(f"missing {side} landmarks: no file for stem {Path(mesh.path).stem!r} in this folder", source)
        spec = read_landmarks(found)
    else:
        spec = read_landmarks(source)
    if spec.vertex_ids is not None:
        ids = spec.vertex_ids
        if len(ids) and ids.max() >= len(mesh.vertices):
            raise InputError(f"{side} landmark vertex id {int(ids.max())} is out of range "
                             f"(mesh has {len(mesh.vertices)} vertices)", spec.path)
        points = mesh.vertices[ids]  # already scaled
    else:
        points = spec.points * float(scale)
    if len(points) < 3:
        raise InputError(f"{side} landmarks: {len(points)} given, alignment needs at least 3", spec.path)
    return points
