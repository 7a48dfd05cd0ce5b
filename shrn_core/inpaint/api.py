"""The inpaint stage's Python API: stored pixels + mask (+ face) in, stored pixels out."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import FaceError, InputError
from ..face.types import Face, FaceAnalysis
from ..formats.image import to_rgb8
from .base import INPAINTERS, Inpainter
from .masks import as_bool_mask
from .pixels import check_image, compose, max_value, to_working_rgb

log = logging.getLogger("shrn.inpaint")

DEFAULT_BACKEND = "face"


@dataclass
class InpaintReport:
    image: np.ndarray  # same dtype and channels as the input
    backend: str
    masked_pixels: int
    seconds: float
    info: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"backend": self.backend, "masked_pixels": self.masked_pixels, "seconds": round(self.seconds, 3),
                **self.info, "warnings": self.warnings}


def create_backend(backend: str, **options) -> Inpainter:
    try:
        return INPAINTERS.create(backend, **options)
    except TypeError as exc:
        raise InputError(f"inpaint backend {backend!r} does not accept these options: {exc}") from None


def inpaint(image: np.ndarray, mask: np.ndarray, face_analysis: FaceAnalysis | Face | None = None,
            backend: str | Inpainter = DEFAULT_BACKEND, **options) -> np.ndarray:
    """``image`` with its masked pixels replaced; every other pixel is returned bit-identical.

    ``image``: stored pixels (uint8 or uint16; HxW, HxWx3 RGB or HxWx4 RGBA). ``mask``: HxW, nonzero
    (>= 128 for uint8) = occluded. ``face_analysis``: landmarks for the face-aware backends; analysed
    from the image when needed and not given. ``options`` go to the backend (``radius`` for
    telea/ns; ``weights``, ``steps``, ``jump_length``, ``jump_n_sample``, ``device``, ``seed`` for
    repaint) plus ``resize_mask``.
    """
    return inpaint_with_report(image, mask, face_analysis, backend, **options).image


def inpaint_with_report(image: np.ndarray, mask: np.ndarray, face_analysis: FaceAnalysis | Face | None = None,
                        backend: str | Inpainter = DEFAULT_BACKEND, *, resize_mask: bool = False,
                        analyse_if_missing: bool = True, **options) -> InpaintReport:
    raw = check_image(image)
    occluded = as_bool_mask(mask, raw.shape, resize=resize_mask)
    engine = create_backend(backend, **options) if isinstance(backend, str) else backend
    masked = int(occluded.sum())
    start = time.perf_counter()
    if masked == 0:
        message = "mask is empty: the output is a copy of the input"
        log.info(message)
        return InpaintReport(raw.copy(), engine.name, 0, 0.0, {"method": "copy"}, [message])
    if masked == occluded.size and not engine.generative:
        raise InputError(f"the mask covers the whole image: {engine.name} has no known pixel to fill from "
                         "(use --backend repaint)")
    face = _select_face(raw, face_analysis, engine) if face_analysis is not None or analyse_if_missing else None
    result = engine.fill(to_working_rgb(raw), occluded, face, 8 if max_value(raw) == 255 else 16)
    out = compose(raw, result.rgb, occluded)
    for message in result.warnings:
        log.warning(message)
    return InpaintReport(out, engine.name, masked, time.perf_counter() - start, result.info, list(result.warnings))


def _select_face(raw: np.ndarray, face_analysis: FaceAnalysis | Face | None, engine: Inpainter) -> Face | None:
    if isinstance(face_analysis, Face):
        return face_analysis
    if isinstance(face_analysis, FaceAnalysis):
        return face_analysis.face
    if face_analysis is not None:
        raise InputError(f"face_analysis must be a FaceAnalysis or Face, got {type(face_analysis).__name__}")
    if not engine.needs_face:
        return None
    from ..face import analyze_image

    try:
        return analyze_image(to_rgb8(raw), hands=False).face
    except FaceError:
        if getattr(engine, "requires_face", False):
            raise
        log.warning("no face found: %s falls back to diffusion filling", engine.name)
        return None
