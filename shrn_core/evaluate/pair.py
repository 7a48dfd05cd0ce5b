"""Loading one prediction / scan pair with landmarks, in millimetres, validated."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..formats.mesh_io import read_mesh
from ..geometry import validate_mesh
from .landmarks import resolve_landmarks


@dataclass
class EvalPair:
    pred_vertices: np.ndarray  # (V, 3) mm
    pred_faces: np.ndarray  # (F, 3)
    pred_landmarks: np.ndarray  # (N, 3) mm, prediction frame
    scan_vertices: np.ndarray  # (S, 3) mm
    scan_faces: np.ndarray  # (T, 3), empty for a point cloud
    scan_landmarks: np.ndarray  # (N, 3) mm, scan frame
    pred_path: str = ""
    scan_path: str = ""


def load_pair(pred_path: str | Path, scan_path: str | Path, pred_landmarks: str | Path | None = "auto",
              scan_landmarks: str | Path | None = "auto", pred_scale: float = 1.0, scan_scale: float = 1.0) -> EvalPair:
    pred = read_mesh(pred_path, pred_scale)
    scan = read_mesh(scan_path, scan_scale)
    pred_v, pred_f = validate_mesh(pred.vertices, pred.faces, pred.path, require_faces=True)
    scan_v, scan_f = validate_mesh(scan.vertices, scan.faces, scan.path, require_faces=False)
    pred_lmk = resolve_landmarks(pred, pred_landmarks, pred_scale, "pred")
    scan_lmk = resolve_landmarks(scan, scan_landmarks, scan_scale, "gt")
    if len(pred_lmk) != len(scan_lmk):
        raise InputError(f"landmark counts differ: prediction has {len(pred_lmk)}, scan has {len(scan_lmk)}", pred_path)
    return EvalPair(pred_v, pred_f, pred_lmk, scan_v, scan_f, scan_lmk, str(pred_path), str(scan_path))
