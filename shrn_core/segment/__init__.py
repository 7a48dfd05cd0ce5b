"""Segment stage: which face pixels are covered by something that is not face.

``segment(image, face_analysis=None, backend="auto", **options) -> SegmentationResult`` is the Python
API; ``segment_file`` adds the file handling of ``shrn segment`` (reusing ``<stem>.face.json``).
Backends: ``auto`` (training-free, the default), ``learned`` (shrn's own network; ``weights=DIR`` for a
retrained one) and ``deeplabv3`` (a user checkpoint, ``weights=FILE``).
"""
from .api import BACKENDS, DEFAULT_BACKEND, create_backend, segment, segment_file
from .types import SegmentationResult

__all__ = ["BACKENDS", "DEFAULT_BACKEND", "SegmentationResult", "create_backend", "segment", "segment_file"]
