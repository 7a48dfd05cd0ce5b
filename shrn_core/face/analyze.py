"""Face analysis on mediapipe's packaged models: detection, 478 landmarks, hands.

Detection runs on a downscaled copy; each detected face is cropped from the full-resolution image
and the face mesh runs on that crop, so faces of any size in images of any size get landmarks in
original pixels. When the detector finds nothing (tight crops such as 112x112 aligned faces), the
face mesh's own detector gets a padded copy of the whole image as a fallback.
"""
from __future__ import annotations

import contextlib
import logging
import os
import threading
from pathlib import Path

import cv2
import numpy as np

from ..errors import FaceError, InputError
from ..formats.image import read_image
from .types import Face, FaceAnalysis, Hand

log = logging.getLogger("shrn.face")

DETECTION_MAX_SIDE = 1024  # detector input is resized to 128/192 px anyway; this bounds conversion cost
MESH_CROP_SIZE = 384
CROP_SCALE = 1.9  # crop side relative to the detector box: room for forehead, chin and ears
MIN_DETECTION_SCORE = 0.5
HAND_MAX_SIDE = 640


@contextlib.contextmanager
def _quiet_native_logs():
    """mediapipe's C++ side prints to fd 2 when graphs start; keep stderr for shrn's own messages."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class _Models:
    """mediapipe solutions, created once per process (graph start-up costs ~100 ms)."""

    _lock = threading.Lock()
    _instance: "_Models | None" = None

    def __init__(self) -> None:
        os.environ.setdefault("GLOG_minloglevel", "2")
        with _quiet_native_logs():
            import mediapipe as mp
            from mediapipe.python.solutions import face_detection, face_mesh, hands

            self.version = mp.__version__
            self.detector = face_detection.FaceDetection(model_selection=1, min_detection_confidence=MIN_DETECTION_SCORE)
            self.mesh = face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True,
                                           min_detection_confidence=0.3)
            self.hands = hands.Hands(static_image_mode=True, max_num_hands=4, model_complexity=1,
                                     min_detection_confidence=0.5)

    @classmethod
    def get(cls) -> "_Models":
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def versions(self) -> dict:
        return {
            "mediapipe": self.version,
            "face_detection": "face_detection_full_range_sparse.tflite",
            "face_landmarks": "face_landmark_with_attention.tflite (478 points, refined iris)",
            "hand_landmarks": "palm_detection_full.tflite + hand_landmark_full.tflite",
        }


def _process(solution, rgb: np.ndarray):
    # The first calls of each graph print native warnings from worker threads.
    with _quiet_native_logs():
        return solution.process(rgb)


def load_models() -> None:
    """Start the models now (so later calls measure analysis time alone)."""
    _Models.get()


def analyze_image(image: str | Path | np.ndarray, face_index: int | None = None, *, hands: bool = True,
                  image_path: str | None = None) -> FaceAnalysis:
    """Detect faces (largest first), their 478 landmarks and any hands.

    ``face_index`` selects which face is ``analysis.face`` (0 = largest, the default).
    Raises ``FaceError`` when no face is found or ``face_index`` is out of range.
    """
    if isinstance(image, (str, Path)):
        image_path = str(image)
        rgb = read_image(image)
    else:
        rgb = _as_rgb8(image)
    label = image_path or "<array>"
    models = _Models.get()
    height, width = rgb.shape[:2]

    faces = _faces_from_detections(models, rgb)
    if not faces:
        faces = _faces_from_padded_mesh(models, rgb)
    if not faces:
        raise FaceError("no face found", label)
    faces.sort(key=lambda f: f.area, reverse=True)
    selected = 0 if face_index is None else face_index
    if not 0 <= selected < len(faces):
        raise FaceError(f"face index {selected} out of range: {len(faces)} face(s) found", label)
    if len(faces) > 1 and face_index is None:
        log.warning("%s: %d faces found, using the largest (choose another with --face N)", label, len(faces))

    found_hands = _hands(models, rgb) if hands else []
    return FaceAnalysis(image_path=label, width=width, height=height, faces=faces, hands=found_hands,
                        selected=selected, detectors=models.versions())


def _as_rgb8(image: np.ndarray) -> np.ndarray:
    array = np.asarray(image)
    if array.dtype == np.uint16:
        array = (array.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    if array.dtype != np.uint8:
        raise InputError(f"expected a uint8 or uint16 image array, got {array.dtype}")
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    elif array.ndim != 3 or array.shape[2] not in (3, 4):
        raise InputError(f"expected an HxW, HxWx3 or HxWx4 image array, got shape {array.shape}")
    return np.ascontiguousarray(array[:, :, :3])


def _downscale(rgb: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    height, width = rgb.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale < 1.0:
        rgb = cv2.resize(rgb, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA)
    return rgb, scale


def _faces_from_detections(models: _Models, rgb: np.ndarray) -> list[Face]:
    small, scale = _downscale(rgb, DETECTION_MAX_SIDE)
    result = _process(models.detector, small)
    faces: list[Face] = []
    height, width = rgb.shape[:2]
    for detection in result.detections or []:
        box = detection.location_data.relative_bounding_box
        x0, y0 = box.xmin * width, box.ymin * height
        x1, y1 = x0 + box.width * width, y0 + box.height * height
        bbox = np.array([x0, y0, x1, y1], np.float32)
        landmarks = _mesh_in_box(models, rgb, bbox)
        if landmarks is None or _overlaps_existing(landmarks, faces):
            continue
        faces.append(Face(bbox=_clip_box(bbox, width, height), score=float(detection.score[0]), landmarks=landmarks))
    return faces


def _mesh_in_box(models: _Models, rgb: np.ndarray, bbox: np.ndarray) -> np.ndarray | None:
    cx, cy = (bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2
    side = CROP_SCALE * max(bbox[2] - bbox[0], bbox[3] - bbox[1])
    x0, y0 = cx - side / 2, cy - side / 2
    scale = MESH_CROP_SIZE / side
    # Affine crop with replicated borders: faces at the image edge still get a full square crop.
    warp = np.array([[scale, 0, -x0 * scale], [0, scale, -y0 * scale]], np.float32)
    crop = cv2.warpAffine(rgb, warp, (MESH_CROP_SIZE, MESH_CROP_SIZE), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
    points = _run_mesh(models, crop)
    if points is None:
        return None
    points[:, :3] /= scale
    points[:, 0] += x0
    points[:, 1] += y0
    return points


def _run_mesh(models: _Models, rgb: np.ndarray) -> np.ndarray | None:
    result = _process(models.mesh, rgb)
    if not result.multi_face_landmarks:
        return None
    height, width = rgb.shape[:2]
    lms = result.multi_face_landmarks[0].landmark
    points = np.array([[p.x * width, p.y * height, p.z * width] for p in lms], np.float32)
    return points


def _faces_from_padded_mesh(models: _Models, rgb: np.ndarray) -> list[Face]:
    """Fallback for tight crops: pad so the face no longer fills the frame, upscale tiny images."""
    height, width = rgb.shape[:2]
    small, small_scale = _downscale(rgb, DETECTION_MAX_SIDE)
    points = _run_mesh(models, small)
    if points is not None:
        points[:, :3] /= small_scale
        return [_face_from_points(points, width, height)]
    # Pad the downscaled copy: padding the full photo would allocate (1.8 x its side)^2 pixels.
    pad = int(0.4 * max(small.shape[:2]))
    padded = cv2.copyMakeBorder(small, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    target = max(MESH_CROP_SIZE, min(max(padded.shape[:2]), 1024))
    scale = target / max(padded.shape[:2])
    resized = cv2.resize(padded, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA)
    points = _run_mesh(models, resized)
    if points is None:
        return []
    points[:, :3] /= scale
    points[:, :2] -= pad
    points[:, :3] /= small_scale
    return [_face_from_points(points, width, height)]


def _face_from_points(points: np.ndarray, width: int, height: int) -> Face:
    """A face found by the mesh's own detector: no detector score, box from the landmarks."""
    x0, y0 = points[:, 0].min(), points[:, 1].min()
    x1, y1 = points[:, 0].max(), points[:, 1].max()
    bbox = _clip_box(np.array([x0, y0, x1, y1], np.float32), width, height)
    return Face(bbox=bbox, score=0.0, landmarks=points)


def _overlaps_existing(landmarks: np.ndarray, faces: list[Face]) -> bool:
    """Two detector boxes on one face give the same mesh twice; keep the first."""
    centre = landmarks[:, :2].mean(axis=0)
    for face in faces:
        other = face.landmarks[:, :2]
        radius = 0.25 * np.ptp(other[:, 0])
        if np.linalg.norm(other.mean(axis=0) - centre) < radius:
            return True
    return False


def _clip_box(bbox: np.ndarray, width: int, height: int) -> np.ndarray:
    return np.array([max(bbox[0], 0), max(bbox[1], 0), min(bbox[2], width), min(bbox[3], height)], np.float32)


def _hands(models: _Models, rgb: np.ndarray) -> list[Hand]:
    small, scale = _downscale(rgb, HAND_MAX_SIDE)
    result = _process(models.hands, small)
    if not result.multi_hand_landmarks:
        return []
    height, width = small.shape[:2]
    found = []
    for landmarks, handedness in zip(result.multi_hand_landmarks, result.multi_handedness):
        points = np.array([[p.x * width, p.y * height, p.z * width] for p in landmarks.landmark], np.float32) / scale
        label = handedness.classification[0]
        found.append(Hand(landmarks=points, handedness=label.label, score=float(label.score)))
    return found
