"""Inpaint stage: replace occluded face pixels so reconstruction sees a whole face.

Backends (``INPAINTERS``): ``face`` (mirror across the face + Poisson blend, the default), ``telea`` and
``ns`` (OpenCV), ``repaint`` (RePaint on a local DDPM face model through diffusers).
"""
from . import face_fill, opencv_fill, repaint  # noqa: F401  (register the backends)
from .api import DEFAULT_BACKEND, InpaintReport, create_backend, inpaint, inpaint_with_report
from .base import INPAINTERS, FillResult, Inpainter

__all__ = ["DEFAULT_BACKEND", "INPAINTERS", "FillResult", "InpaintReport", "Inpainter", "create_backend", "inpaint",
           "inpaint_with_report"]
