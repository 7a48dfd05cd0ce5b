"""Evaluation outputs: ``<stem>.metrics.json``, ``<stem>.errors.npy``, ``metrics.csv``, heatmap PLY.

See docs/formats.md (section "eval") for the fields.
"""
from __future__ import annotations

import csv
import math
import io
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..errors import FormatError
from .arrays import load_npy
from .core import atomic_write, read_json, write_bytes, write_json

METRICS_KIND = "metrics"
CSV_COLUMNS = ("stem", "status", "protocol", "median_mm", "mean_mm", "std_mm", "rmse_mm", "p90_mm", "max_mm",
               "points", "scale", "overlap_fraction", "nose_mm", "mouth_mm", "forehead_mm", "cheek_mm", "pred", "gt",
               "message")


def write_metrics(path: str | Path, payload: dict[str, Any]) -> Path:
    return write_json(path, METRICS_KIND, payload)


def read_metrics(path: str | Path) -> dict[str, Any]:
    doc = read_json(path, METRICS_KIND, required=("protocol", "median_mm", "mean_mm", "std_mm"))
    if not isinstance(doc["protocol"], str):
        raise FormatError("field 'protocol' must be a string", path)
    for key in ("median_mm", "mean_mm", "std_mm"):
        value = doc[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value):
            raise FormatError(f"field {key!r} must be a finite number, got {str(value)[:40]!r}", path)
    return doc


def _finite(value: int | float) -> bool:
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an integer beyond the float range
        return False


def write_errors(path: str | Path, errors: np.ndarray) -> Path:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(errors, dtype=np.float32))
    return write_bytes(path, buffer.getvalue())


def read_errors(path: str | Path) -> np.ndarray:
    errors = load_npy(path)
    if errors.ndim != 1 or not np.issubdtype(errors.dtype, np.floating):
        raise FormatError(f"expected a 1-D float array of per-point errors, got {errors.dtype} {errors.shape}", path)
    return errors


def write_metrics_csv(path: str | Path, rows: Iterable[dict[str, Any]]) -> Path:
    with atomic_write(path, "w") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({key: _cell(row.get(key)) for key in CSV_COLUMNS})
    return Path(path)


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def write_heatmap_ply(path: str | Path, points: np.ndarray, colors: np.ndarray, errors: np.ndarray,
                      faces: np.ndarray | None = None) -> Path:
    """Binary PLY: vertices with red/green/blue (uchar) and ``error`` (float, mm); optional triangles."""
    points = np.asarray(points, dtype=np.float32)
    faces = np.zeros((0, 3), np.int32) if faces is None else np.asarray(faces, dtype=np.int32)
    vertex = np.zeros(len(points), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"),
                                          ("green", "u1"), ("blue", "u1"), ("error", "<f4")])
    vertex["x"], vertex["y"], vertex["z"] = points.T
    vertex["red"], vertex["green"], vertex["blue"] = np.asarray(colors, dtype=np.uint8)[:, :3].T
    vertex["error"] = np.asarray(errors, dtype=np.float32)
    header = ["ply", "format binary_little_endian 1.0", "comment shrn eval error heatmap (error in mm)",
              f"element vertex {len(points)}", "property float x", "property float y", "property float z",
              "property uchar red", "property uchar green", "property uchar blue", "property float error",
              f"element face {len(faces)}", "property list uchar int vertex_indices", "end_header"]
    face_rows = np.zeros(len(faces), dtype=[("n", "u1"), ("v", "<i4", (3,))])
    face_rows["n"] = 3
    face_rows["v"] = faces
    data = ("\n".join(header) + "\n").encode() + vertex.tobytes() + face_rows.tobytes()
    return write_bytes(path, data)
