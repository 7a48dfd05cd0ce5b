"""Face analysis: detection, 478 landmarks, hands, landmark subsets for alignment."""
from .analyze import analyze_image, load_models
from .reuse import face_json_path, load_or_analyze
from .landmark_sets import LANDMARKS_68, five_point
from .types import Face, FaceAnalysis, Hand

__all__ = ["analyze_image", "face_json_path", "load_or_analyze", "load_models", "Face", "FaceAnalysis", "Hand", "LANDMARKS_68", "five_point"]
