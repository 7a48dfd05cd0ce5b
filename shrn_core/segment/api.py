"""The segment stage's entry points: backend registry, ``segment`` on arrays, ``segment_file`` on files."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..face.types import FaceAnalysis
from ..registry import Registry
from .types import SegmentationResult

log = logging.getLogger("shrn.segment")

BACKENDS: Registry = Registry("segment")
# The backend of ``shrn segment`` and ``shrn run`` when none is named: the shipped network beats
# ``auto`` on every measure of docs/benchmarks.md (IoU 0.86 vs 0.54, fewer false positives, faster).
DEFAULT_BACKEND = "learned"


@BACKENDS.register("auto")
def _auto(device: str | None = None, **options):
    from .auto import AutoSegmenter

    return AutoSegmenter(**options)  # CPU only: small OpenCV/SciPy work, ``device`` does not apply


@BACKENDS.register("deeplabv3")
def _deeplab(device: str | None = "auto", **options):
    from .deeplab import DeepLabSegmenter

    return DeepLabSegmenter(device=device or "auto", **options)


@BACKENDS.register("learned")
def _learned(device: str | None = "auto", **options):
    from .learned import LearnedSegmenter

    return LearnedSegmenter(device=device or "auto", **options)


def create_backend(name: str = DEFAULT_BACKEND, device: str | None = None, **options):
    """A backend instance (load it once, call it on many images)."""
    try:
        return BACKENDS.create(name, device=device, **options)
    except TypeError as exc:  # an option the backend does not know
        raise InputError(f"bad option for segment backend {name!r}: {exc}") from None


def segment(image: str | Path | np.ndarray, face_analysis: FaceAnalysis | None = None, backend: Any = DEFAULT_BACKEND,
            face_index: int | None = None, **options) -> SegmentationResult:
    """Occlusion mask of one face in ``image`` (a path or an HxWx3 uint8 RGB array).

    ``face_analysis`` is computed when not given (FaceError when there is no face). ``backend`` is
    a name (``options`` go to its constructor) or an instance from ``create_backend``.
    """
    from ..formats.image import read_image

    rgb = read_image(image) if isinstance(image, (str, Path)) else _check_rgb(image)
    if face_analysis is None:
        from ..face import analyze_image

        face_analysis = analyze_image(rgb, face_index, image_path=str(image) if isinstance(image, (str, Path)) else None)
    elif face_index is not None:
        if not 0 <= face_index < len(face_analysis.faces):
            from ..errors import FaceError

            raise FaceError(f"face index {face_index} out of range: {len(face_analysis.faces)} face(s) found",
                            face_analysis.image_path)
        face_analysis.selected = face_index
    if (face_analysis.width, face_analysis.height) != (rgb.shape[1], rgb.shape[0]):
        raise InputError(f"face analysis describes a {face_analysis.width}x{face_analysis.height} image, "
                         f"not {rgb.shape[1]}x{rgb.shape[0]}", face_analysis.image_path)
    segmenter = create_backend(backend, **options) if isinstance(backend, str) else backend
    return segmenter(rgb, face_analysis)


def segment_file(path: str | Path, out_dir: str | Path | None = None, backend: Any = DEFAULT_BACKEND,
                 face_index: int | None = None, probability: bool = False, overwrite: bool = False,
                 **options) -> dict[str, Any]:
    """Segment one photo and write its masks (and its face JSON when analysis had to run).

    Returns ``{"outputs": {kind: path}, "skipped": bool, "info": {...}}``.
    """
    from ..face.reuse import face_json_path, load_or_analyze
    from ..formats.core import image_stem
    from ..formats.face import write_face_json
    from ..formats.image import read_image
    from ..formats.mask import segmentation_paths, write_segmentation

    path = Path(path)
    out_dir = Path(out_dir) if out_dir is not None else path.parent
    stem = image_stem(path)
    targets = segmentation_paths(out_dir, stem, probability)
    if not overwrite and all(p.is_file() for p in targets.values()):
        return {"outputs": targets, "skipped": True, "info": {}}
    rgb = read_image(path)
    analysis, computed = load_or_analyze(path, out_dir, face_index, width=rgb.shape[1], height=rgb.shape[0])
    result = segment(rgb, analysis, backend=backend, **options)
    outputs = dict(write_segmentation(out_dir, stem, result, probability))
    if computed:
        outputs["face"] = write_face_json(face_json_path(path, out_dir), analysis)
    info = {"backend": result.backend, "face_index": result.face_index,
            "occluded_fraction": round(result.occluded_fraction, 4), "face_reused": not computed}
    return {"outputs": outputs, "skipped": False, "info": info}


def _check_rgb(image: np.ndarray) -> np.ndarray:
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise InputError(f"expected an HxWx3 uint8 RGB image, got {array.dtype} {array.shape}")
    return array
