"""Inpainting one photo file: find its mask and face analysis, fill, write ``<stem>.inpainted.png``."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import FaceError, InputError
from ..formats.core import image_stem, output_path
from ..formats.image import read_image_raw, write_image
from .api import InpaintReport, create_backend, inpaint_with_report
from .base import Inpainter
from .masks import read_mask_file

log = logging.getLogger("shrn.inpaint")


@dataclass
class FileResult:
    output: Path
    mask: Path
    report: InpaintReport
    face_source: str  # "reused <path>", "analysed", "none" or "not needed"

    def summary(self) -> dict[str, Any]:
        return {"mask": str(self.mask), "face": self.face_source, **self.report.summary()}


def inpainted_path(image_path: str | Path, out_dir: str | Path) -> Path:
    return output_path(out_dir, image_stem(image_path), "inpainted", "png")


def find_mask(image_path: str | Path, mask: str | Path | None, out_dir: str | Path | None) -> Path:
    """The mask for ``image_path``: ``mask`` (a file, or a folder holding ``<stem>.mask.png``), else
    ``<stem>.mask.png`` in the output folder or beside the image."""
    image_path = Path(image_path)
    stem = image_stem(image_path)
    if mask is not None:
        mask = Path(mask)
        candidate = output_path(mask, stem, "mask", "png") if mask.is_dir() else mask
        if not candidate.is_file():
            raise InputError("mask file not found", candidate)
        return candidate
    candidates = [output_path(image_path.parent, stem, "mask", "png")]
    if out_dir is not None:
        candidates.insert(0, output_path(out_dir, stem, "mask", "png"))
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise InputError(f"no mask: {candidates[-1].name} not found beside the image (run 'shrn segment' or pass --mask)",
                     image_path)


def inpaint_file(image_path: str | Path, out_dir: str | Path, mask: str | Path | None = None,
                 backend: str | Inpainter = "face", resize_mask: bool = False, face_index: int | None = None,
                 **options) -> FileResult:
    image_path = Path(image_path)
    raw = read_image_raw(image_path)
    mask_path = find_mask(image_path, mask, out_dir)
    mask_pixels = read_mask_file(mask_path)
    engine = create_backend(backend, **options) if isinstance(backend, str) else backend

    analysis, face_source = None, "not needed"
    if engine.needs_face and mask_pixels.any():
        from ..face import load_or_analyze

        try:
            analysis, fresh = load_or_analyze(image_path, out_dir, face_index, width=raw.shape[1], height=raw.shape[0])
            face_source = "analysed" if fresh else "reused"
        except FaceError:
            if getattr(engine, "requires_face", False):
                raise
            log.warning("%s: no face found: %s falls back to diffusion filling", image_path, engine.name)
            face_source = "none"
    try:
        report = inpaint_with_report(raw, mask_pixels, analysis.face if analysis else None, engine,
                                     resize_mask=resize_mask, analyse_if_missing=False)
    except InputError as err:
        if err.path is None and "mask" in str(err):
            raise InputError(str(err), mask_path) from None
        raise
    target = inpainted_path(image_path, out_dir)
    write_image(target, report.image)
    return FileResult(target, mask_path, report, face_source)
