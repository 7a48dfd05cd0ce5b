"""``<stem>.face.json``: the face analysis of one photo (format ``shrn.face``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import FormatError
from ..face.landmark_sets import LANDMARKS_68
from ..face.types import Face, FaceAnalysis, Hand
from .core import read_json, write_json

KIND = "face"


def face_to_dict(analysis: FaceAnalysis) -> dict:
    return {
        "image": {"path": analysis.image_path, "width": analysis.width, "height": analysis.height},
        "selected_face": analysis.selected,
        "faces": [
            {
                "bbox": _round(face.bbox, 2),
                "score": round(face.score, 4),
                "landmarks_478": _round(face.landmarks, 2),
                "landmarks_68": _round(face.landmarks_68, 2),
                "landmarks_5": _round(face.landmarks_5, 2),
            }
            for face in analysis.faces
        ],
        "hands": [
            {"handedness": hand.handedness, "score": round(hand.score, 4), "landmarks_21": _round(hand.landmarks, 2)}
            for hand in analysis.hands
        ],
        "landmarks_68_indices": LANDMARKS_68.tolist(),
        "detectors": analysis.detectors,
    }


def write_face_json(path: str | Path, analysis: FaceAnalysis) -> Path:
    return write_json(path, KIND, face_to_dict(analysis))


def read_face_json(path: str | Path) -> FaceAnalysis:
    """Read and validate a face JSON; raises ``FormatError`` naming the first problem."""
    doc = read_json(path, KIND, required=("image", "faces", "selected_face"))
    try:
        image = doc["image"]
        faces = [
            Face(bbox=_array(f["bbox"], (4,)), score=float(f["score"]), landmarks=_array(f["landmarks_478"], (478, 3)))
            for f in doc["faces"]
        ]
        hands = [
            Hand(landmarks=_array(h["landmarks_21"], (21, 3)), handedness=str(h["handedness"]), score=float(h["score"]))
            for h in doc.get("hands", [])
        ]
        selected = _integer(doc["selected_face"])
        analysis = FaceAnalysis(image_path=str(image["path"]), width=_integer(image["width"]), height=_integer(image["height"]),
                                faces=faces, hands=hands, selected=selected, detectors=dict(doc.get("detectors", {})))
    except (KeyError, TypeError, ValueError) as exc:
        raise FormatError(f"malformed face file ({exc.__class__.__name__}: {exc})", path) from None
    if not faces:
        raise FormatError("face file lists no face", path)
    if not 0 <= selected < len(faces):
        raise FormatError(f"selected_face {selected} out of range (0..{len(faces) - 1})", path)
    _check_plausible(analysis, path)
    return analysis


MAX_SIDE = 10 ** 6  # pixels; far above the pixel limit's widest photo


def _check_plausible(analysis: FaceAnalysis, path) -> None:
    """Coordinates must lie near the photo they describe (within one photo size of its border), so a
    damaged file cannot send later stages into huge allocations or loops."""
    width, height = analysis.width, analysis.height
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        raise FormatError(f"image size {width}x{height} is not a photo size", path)
    low = np.array([-width, -height], np.float32)
    high = np.array([2 * width, 2 * height], np.float32)
    depth = 10.0 * max(width, height)
    points = [("face", f.landmarks) for f in analysis.faces] + [("hand", h.landmarks) for h in analysis.hands]
    points += [("face box", f.bbox.reshape(2, 2)) for f in analysis.faces]
    for label, array in points:
        xy = array[:, :2]
        if (xy < low).any() or (xy > high).any() or (array.shape[1] > 2 and (np.abs(array[:, 2]) > depth).any()):
            raise FormatError(f"{label} coordinates lie far outside the {width}x{height} photo", path)
    for item in [*analysis.faces, *analysis.hands]:
        if not 0.0 <= item.score <= 1.0:
            raise FormatError(f"score {item.score} outside 0..1", path)


def _integer(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {value!r:.40}")
    return value


def _round(array: np.ndarray, digits: int) -> list:
    return np.round(np.asarray(array, dtype=np.float64), digits).tolist()


def _array(values, shape: tuple[int, ...]) -> np.ndarray:
    array = np.asarray(values, dtype=np.float32)
    if array.shape != shape:
        raise ValueError(f"expected shape {shape}, got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError("non-finite values")
    return array
