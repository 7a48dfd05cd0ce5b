"""shrn's face model: a linear morphable model of the face area derived from ICT-FaceKit (MIT).

``load_face_model()`` -> ``FaceModel``; ``model.vertices(identity, expression)`` -> (B, V, 3) mm.
See ``derive.py`` for how the packaged files are made and docs/formats.md for their layout.
"""
from .model import FACE_OVAL, MODEL_DIR, REGION_NAMES, FaceModel, coefficients_from_params, load_face_model

__all__ = ["FACE_OVAL", "MODEL_DIR", "REGION_NAMES", "FaceModel", "coefficients_from_params", "load_face_model"]
