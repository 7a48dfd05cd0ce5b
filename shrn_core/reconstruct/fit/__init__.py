"""The embedded ``fit`` backend (no downloaded weights): see ``backend.py`` and docs/formats.md."""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
import torch

from ...device import resolve_device
from ...errors import InputError
from ..types import Reconstruction
from .backend import FitInput, FitOptions, reconstruct_views

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
        options = dict(options or {})
        n = len(images)
        masks = list(masks) if masks is not None else [None] * n
        paths = list(options.get("image_paths") or [""] * n)
        if faces is None or len(faces) != n:
            raise InputError("the fit backend needs the face landmarks of every image")
        if n > 1 and not options.get("multi_view"):
            raise InputError(f"{n} images given without multi-view; reconstruct them one at a time")
        inputs = [FitInput(np.asarray(img), np.asarray(getattr(face, "face", face).landmarks, dtype=np.float32),
                           path, mask) for img, face, mask, path in zip(images, faces, masks, paths)]
        with torch.inference_mode(False):
            return reconstruct_views(inputs, options.get("levels", "fine"), self.device, self.options,
                                     options.get("progress"))


__all__ = ["FitBackend", "FitOptions", "FitInput", "reconstruct_views"]
