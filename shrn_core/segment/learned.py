"""The ``learned`` backend: shrn's own occlusion network (``OccNet``) on an aligned face crop.

The face is aligned by a similarity from its five landmarks to the ArcFace template (``crop``), the
network gives the occluder probability over the crop, which is kept inside the face region grown by
``region_margin`` x the face height (occluders hanging past the outline count; the background does
not) and warped back to the photo. The model is a folder (``config.json`` + ``occlusion_net.pt``):
the one shipped in ``shrn_core/data/occlusion_net`` by default, or ``weights=`` a retrained folder,
its ``config.json``, or a training ``checkpoint.pt`` (``python -m shrn_core.segment.train``).
``use_hands=True`` adds the hands that the face stage found (drawn from their 21 landmarks) to the
network's answer.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import InputError, NumericalError, WeightsError
from ..face.landmark_sets import five_point
from ..face.types import FaceAnalysis
from . import crop, regions
from .types import SegmentationResult

SHIPPED_MODEL = Path(__file__).resolve().parents[1] / "data" / "occlusion_net"


@dataclass
class ModelSpec:
    """What the network expects and how its answer is read (from ``config.json``)."""

    size: int
    crop_scale: float
    threshold: float
    region_margin: float
    source: str


def resolve_model_files(weights: str | Path | None) -> tuple[dict, dict, str]:
    """(config, state dict, description) for ``weights`` (None = the shipped model)."""
    from .occnet import CHECKPOINT_FORMAT, CONFIG_NAME, WEIGHTS_NAME, load_state

    path = Path(weights) if weights is not None else SHIPPED_MODEL
    if weights is None and not (path / CONFIG_NAME).is_file():
        raise WeightsError("no trained occlusion network is installed with this copy of shrn "
                           f"({path} is missing); pass --weights DIR (a model folder from python -m "
                           "shrn_core.segment.train) or use --backend auto")
    if path.is_dir() or path.name == CONFIG_NAME:
        folder = path if path.is_dir() else path.parent
        config_path = folder / CONFIG_NAME
        if not config_path.is_file():
            raise WeightsError(f"not an occlusion-network folder: no {CONFIG_NAME}", folder)
        config = _read_config(config_path)
        entry = config.get("weights")
        name = entry.get("file", WEIGHTS_NAME) if isinstance(entry, dict) else WEIGHTS_NAME
        if not isinstance(name, str) or not name or Path(name).name != name:
            raise WeightsError("config.json's weights.file must be a file name in the model folder", config_path)
        weights_path = folder / name
        return config, _load(weights_path, load_state), str(folder)
    if not path.is_file():
        raise WeightsError("weights not found (pass a model folder, its config.json or a training checkpoint.pt)", path)
    state = _load(path, load_state)
    if isinstance(state, dict) and state.get("format") == CHECKPOINT_FORMAT:
        config = {"architecture": state["architecture"], "input": state["input"], "output": state["output"]}
        return config, state["model"], str(path)
    beside = path.parent / CONFIG_NAME
    if beside.is_file():
        return _read_config(beside), state, str(path)
    raise WeightsError(f"a bare weights file needs its {CONFIG_NAME} beside it (or pass the model folder)", path)


def _read_config(path: Path) -> dict:
    from ..errors import FormatError
    from ..formats.core import read_json
    from .occnet import MODEL_KIND

    try:
        return read_json(path, MODEL_KIND, required=("architecture", "input"))
    except (FormatError, InputError) as exc:
        raise WeightsError(f"unreadable model config: {exc}", path) from None


def _load(path: Path, load_state):
    if not path.is_file():
        raise WeightsError("weights file not found", path)
    try:
        return load_state(path)
    except Exception as exc:  # torch raises many types for corrupt or unsafe files; all mean "not loadable"
        lines = [line for line in str(exc).splitlines() if line.strip()]
        detail = next((line for line in lines if "Unsupported global" in line), lines[0] if lines else type(exc).__name__)
        raise WeightsError(f"cannot load weights (weights_only=True): {detail.strip()[:200]}", path) from None


class LearnedSegmenter:
    name = "learned"

    def __init__(self, weights: str | Path | None = None, device: str = "auto", threshold: float | None = None,
                 region_margin: float | None = None, batch_size: int = 32, use_hands: bool = False):
        import torch

        from ..device import resolve_device
        from .occnet import build, fuse_batchnorm

        self.device = resolve_device(device)
        config, state, source = resolve_model_files(weights)
        # a malformed config or state dict surfaces as many exception types; all mean "not this model"
        try:
            model = build(config["architecture"], state)
        except (ValueError, KeyError, TypeError, AttributeError, RuntimeError) as exc:
            raise WeightsError(f"weights do not fit the configured network ({exc.__class__.__name__}: "
                               f"{str(exc).splitlines()[0][:160] if str(exc) else ''})", source) from None
        self.model = fuse_batchnorm(model).to(self.device).to(memory_format=torch.channels_last)
        try:
            inputs, outputs = config["input"], config.get("output", {})
            self.spec = ModelSpec(size=int(inputs["size"]), crop_scale=float(inputs["crop_scale"]),
                                  threshold=float(outputs.get("threshold", 0.5) if threshold is None else threshold),
                                  region_margin=float(outputs.get("region_margin", 0.2) if region_margin is None else region_margin),
                                  source=source)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise WeightsError(f"model config has a malformed input/output section ({exc.__class__.__name__})", source) from None
        if not (32 <= self.spec.size <= 2048 and 0.5 <= self.spec.crop_scale <= 4.0):
            raise WeightsError(f"model config's input size {self.spec.size} or crop_scale {self.spec.crop_scale} "
                               "is out of range (32-2048 px, 0.5-4)", source)
        if not 0.0 < self.spec.threshold < 1.0:
            raise InputError(f"threshold must be between 0 and 1, got {self.spec.threshold}")
        if self.spec.region_margin < 0:
            raise InputError(f"region_margin must be >= 0, got {self.spec.region_margin}")
        self.batch_size = max(int(batch_size), 1)
        self.use_hands = bool(use_hands)

    # ------------------------------------------------------------------------------ network
    def probability_crops(self, crops: np.ndarray) -> np.ndarray:
        """(n, S, S, 3) uint8 aligned crops -> (n, S, S) float32 occluder probabilities."""
        import torch

        from .occnet import normalise

        crops = np.asarray(crops)
        if crops.ndim != 4 or crops.shape[1:] != (self.spec.size, self.spec.size, 3) or crops.dtype != np.uint8:
            raise InputError(f"expected (n, {self.spec.size}, {self.spec.size}, 3) uint8 crops, got {crops.dtype} {crops.shape}")
        out = []
        with torch.inference_mode():
            for start in range(0, len(crops), self.batch_size):
                part = torch.from_numpy(crops[start:start + self.batch_size]).to(self.device)
                images = normalise(part.permute(0, 3, 1, 2).float() / 255.0).contiguous(memory_format=torch.channels_last)
                with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
                    logits = self.model(images)
                out.append(torch.sigmoid(logits.float())[:, 0].cpu().numpy())
        probability = np.concatenate(out) if out else np.zeros((0, self.spec.size, self.spec.size), np.float32)
        if not np.isfinite(probability).all():
            raise NumericalError("the occlusion network produced NaN/inf (corrupt weights?)")
        return probability.astype(np.float32)

    # ------------------------------------------------------------------------------- photos
    def crop_transform(self, analysis: FaceAnalysis) -> np.ndarray:
        return crop.crop_transform(five_point(_as_stored(analysis.face.landmarks)), self.spec.size, self.spec.crop_scale)

    def __call__(self, rgb: np.ndarray, analysis: FaceAnalysis) -> SegmentationResult:
        return self.segment_batch([rgb], [analysis])[0]

    def segment_batch(self, images: Sequence[np.ndarray], analyses: Sequence[FaceAnalysis]) -> list[SegmentationResult]:
        """Several photos at once (one network call per ``batch_size`` faces)."""
        if len(images) != len(analyses):
            raise InputError(f"{len(images)} images but {len(analyses)} face analyses")
        size = self.spec.size
        matrices = [self.crop_transform(a) for a in analyses]
        crops = np.stack([crop.aligned_crop(rgb, m, size) for rgb, m in zip(images, matrices)]) if images else \
            np.zeros((0, size, size, 3), np.uint8)
        probabilities = self.probability_crops(crops)
        return [self._result(rgb, analysis, matrix, prob)
                for rgb, analysis, matrix, prob in zip(images, analyses, matrices, probabilities)]

    def _result(self, rgb, analysis: FaceAnalysis, matrix: np.ndarray, prob_crop: np.ndarray) -> SegmentationResult:
        height, width = rgb.shape[:2]
        size = self.spec.size
        landmarks = _as_stored(analysis.face.landmarks).astype(np.float64)
        crop_landmarks = crop.apply(matrix, landmarks)
        region_crop = regions.face_region(crop_landmarks, (size, size))
        counted = crop.grow_region(region_crop, crop_landmarks, self.spec.region_margin)
        if self.use_hands and analysis.hands:
            # Optional cue: hands found by the face stage (palm + fingers drawn from their landmarks).
            hands = regions.hands_mask(analysis.hands, (size, size), lambda p: crop.apply(matrix, p)) > 0
            prob_crop = np.maximum(prob_crop, hands.astype(np.float32))
        box, part = crop.paste_back_box(prob_crop * counted, matrix, (height, width))
        probability = np.zeros((height, width), np.float32)
        probability[box] = np.clip(part, 0.0, 1.0)
        mask = np.zeros((height, width), np.uint8)
        mask[box] = np.where(probability[box] >= self.spec.threshold, 255, 0)
        face_region = regions.face_region(landmarks, (height, width))
        info = {"model": self.spec.source, "input_size": size, "crop_scale": self.spec.crop_scale,
                "threshold": self.spec.threshold, "hands": self.use_hands}
        return SegmentationResult(mask=mask, face_region=face_region, probability=probability, backend=self.name,
                                  face_index=analysis.selected, info=info)


def _as_stored(landmarks: np.ndarray) -> np.ndarray:
    """The 478 landmarks as face.json stores and reads them back (0.01 px, float32), so a fresh
    analysis and a reused face.json give the same crop and the same mask."""
    return np.round(np.asarray(landmarks, np.float64), 2).astype(np.float32)
