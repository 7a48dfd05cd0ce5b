"""Reuse ``<stem>.face.json`` written by an earlier stage, or analyse the photo afresh."""
from __future__ import annotations

import logging
from pathlib import Path

from ..errors import FaceError, FormatError
from ..formats.core import image_stem, output_path
from .analyze import analyze_image
from .types import FaceAnalysis

log = logging.getLogger("shrn.face")


def face_json_path(image_path: str | Path, out_dir: str | Path | None = None) -> Path:
    image_path = Path(image_path)
    return output_path(out_dir if out_dir is not None else image_path.parent, image_stem(image_path), "face", "json")


def load_or_analyze(image_path: str | Path, out_dir: str | Path | None = None, face_index: int | None = None,
                    *, width: int | None = None, height: int | None = None) -> tuple[FaceAnalysis, bool]:
    """The face analysis of ``image_path`` and whether it was computed now (False = reused).

    A face JSON beside the outputs (or beside the image) is reused when it is valid, describes an
    image of the same size, and holds the requested face; otherwise the photo is analysed again.
    """
    from ..formats.face import read_face_json  # formats.face imports face.types: keep import order acyclic

    candidates = [face_json_path(image_path, out_dir), face_json_path(image_path)]
    for candidate in dict.fromkeys(candidates):
        if not candidate.is_file():
            continue
        try:
            analysis = read_face_json(candidate)
        except FormatError as err:
            log.warning("ignoring %s", err)
            continue
        if width is not None and (analysis.width, analysis.height) != (width, height):
            log.warning("%s: describes a %dx%d image, not %dx%d; analysing again", candidate, analysis.width,
                        analysis.height, width, height)
            continue
        if face_index is not None:
            if face_index >= len(analysis.faces):
                raise FaceError(f"face index {face_index} out of range: {len(analysis.faces)} face(s) found", image_path)
            analysis.selected = face_index
        log.debug("reusing %s", candidate)
        return analysis, False
    return analyze_image(image_path, face_index), True
