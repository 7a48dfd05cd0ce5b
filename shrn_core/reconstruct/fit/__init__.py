"""The embedded ``fit`` backend (no downloaded weights): see ``backend.py`` and docs/formats.md."""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
import torch

from ...device import resolve_device
from ...errors import InputError
from ..types import Reconstruction
from .backend import FitInput, FitOptions, reconstruct_batch, reconstruct_views

IGNORED_OPTIONS = ("assets", "weights", "render_backend")


class FitBackend:
    """``FitBackend(device, **FitOptions fields).reconstruct(images, masks, faces, options)``."""

    name = "fit"

    def __init__(self, device: Any = "auto", **options):
        for key in IGNORED_OPTIONS:
            if options.pop(key, None) is not None:
                raise InputError(f"--{key.replace('_', '-')} is not used by the fit backend (it needs no weights)")
        self.device = resolve_device(device)
        self.options = FitOptions.from_options(options)

    def reconstruct(self, images: Sequence[np.ndarray], masks: Optional[Sequence] = None,
                    faces: Optional[Sequence] = None, options: Optional[dict] = None) -> Reconstruction:
        """One face: from one photo, or from several views of one person with ``multi_view``."""
        options = dict(options or {})
        if len(images) > 1 and not options.get("multi_view"):
            raise InputError(f"{len(images)} images given without multi-view; reconstruct them one at a time")
        inputs = self._inputs(images, masks, faces, options)
        with torch.inference_mode(False):
            return reconstruct_views(inputs, options.get("levels", "fine"), self.device, self.options,
                                     options.get("progress"))

    def reconstruct_batch(self, images: Sequence[np.ndarray], masks: Optional[Sequence] = None,
                          faces: Optional[Sequence] = None, options: Optional[dict] = None) -> list[Reconstruction]:
        """Independent faces of several photos, fitted together in batched tensors."""
        options = dict(options or {})
        inputs = self._inputs(images, masks, faces, options)
        with torch.inference_mode(False):
            return reconstruct_batch(inputs, options.get("levels", "fine"), self.device, self.options,
                                     options.get("progress"))

    @staticmethod
    def _inputs(images, masks, faces, options) -> list[FitInput]:
        n = len(images)
        masks = list(masks) if masks is not None else [None] * n
        paths = list(options.get("image_paths") or [""] * n)
        if faces is None or len(faces) != n or len(masks) != n or len(paths) != n:
            raise InputError("the fit backend needs one face analysis (and mask entry) per image")
        return [FitInput(np.asarray(img), np.asarray(getattr(face, "face", face).landmarks, dtype=np.float32), path, mask)
                for img, face, mask, path in zip(images, faces, masks, paths)]


__all__ = ["FitBackend", "FitOptions", "FitInput", "reconstruct_views", "reconstruct_batch"]
