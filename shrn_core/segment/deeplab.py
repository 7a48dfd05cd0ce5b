"""The ``deeplabv3`` backend: a torchvision DeepLabV3 occlusion model loaded from a user checkpoint.

SegmentationHRN segments occlusions with torchvision's DeepLabV3 (ResNet-101), ImageNet
normalisation and an argmax over classes. shrn builds the same torchvision architectures
(``deeplabv3_resnet50``, ``deeplabv3_resnet101``, ``deeplabv3_mobilenet_v3_large``) without
downloading anything, reads the architecture and number of classes from the checkpoint's own
tensors, and runs the model on an aligned face crop whose probabilities are warped back to the photo.

Class convention (documented in docs/segmentation.md): with one output channel the occlusion
probability is its sigmoid; with several, it is the softmax mass of ``occluder_classes``
(default ``(1,)``: class 0 = not occluded, class 1 = occluder, as in a two-class occlusion model).
"""
from __future__ import annotations

import re
from collections import OrderedDict
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np

from ..errors import InputError, NumericalError, WeightsError
from ..evaluate.occluders import ARCFACE_TEMPLATE_112, similarity_transform
from ..face.types import FaceAnalysis
from . import regions
from .types import SegmentationResult

ARCHITECTURES = ("deeplabv3_resnet50", "deeplabv3_resnet101", "deeplabv3_mobilenet_v3_large")
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "net")


def load_state_dict(path: str | Path) -> "OrderedDict[str, object]":
    """Tensors of a checkpoint: a plain state dict or one wrapped in ``state_dict``/``model``/...,
    with any ``module.`` (DataParallel) or ``model.`` prefixes removed."""
    from ..formats.checkpoint import load_checkpoint

    path = Path(path)
    if not path.is_file():
        raise WeightsError("weights file not found (pass a DeepLabV3 checkpoint with --weights FILE)", path)
    checkpoint = load_checkpoint(path, "checkpoint")
    state = checkpoint
    for _ in range(2):  # at most two levels of wrapping, e.g. {"model": {"state_dict": ...}}
        if isinstance(state, dict):
            inner = next((state[k] for k in WRAPPER_KEYS if isinstance(state.get(k), dict)), None)
            if inner is not None and not _is_tensor_dict(state):
                state = inner
    if not isinstance(state, dict) or not _is_tensor_dict(state):
        raise WeightsError("checkpoint holds no state dict of tensors (expected a DeepLabV3 state dict, "
                           f"optionally under one of {', '.join(WRAPPER_KEYS)})", path)
    cleaned = OrderedDict()
    for key, value in state.items():
        if not hasattr(value, "shape"):
            continue
        for prefix in ("module.", "model."):
            if key.startswith(prefix):
                key = key[len(prefix):]
        cleaned[key] = value
    return cleaned


def _is_tensor_dict(value: dict) -> bool:
    return bool(value) and sum(hasattr(v, "shape") for v in value.values()) >= max(1, len(value) // 2)


def infer_architecture(state: dict) -> str:
    """Which torchvision DeepLabV3 a state dict belongs to, from its backbone's parameter names."""
    if any(k.startswith("backbone.layer") for k in state):
        blocks = {int(m.group(1)) for k in state if (m := re.match(r"backbone\.layer3\.(\d+)\.", k))}
        return "deeplabv3_resnet101" if blocks and max(blocks) + 1 > 6 else "deeplabv3_resnet50"
    if any(re.match(r"backbone\.\d+\.", k) for k in state):
        return "deeplabv3_mobilenet_v3_large"
    raise WeightsError("cannot tell the architecture: no 'backbone.layer*' (ResNet) or 'backbone.<n>.' (MobileNetV3) "
                       "parameters; is this a torchvision DeepLabV3 checkpoint?")


def infer_num_classes(state: dict) -> int:
    weight = state.get("classifier.4.weight")
    if weight is None:
        raise WeightsError("checkpoint has no 'classifier.4.weight' (the DeepLabV3 head's last layer), so the number "
                           "of classes is unknown")
    if getattr(weight, "ndim", 0) != 4 or not 1 <= int(weight.shape[0]) <= 1000:
        raise WeightsError(f"'classifier.4.weight' has shape {tuple(getattr(weight, 'shape', ()))}, expected a 1x1 "
                           "convolution (classes, 256, 1, 1)")
    return int(weight.shape[0])


def build_model(state: dict, architecture: str | None = None, num_classes: int | None = None):
    """The torchvision model with ``state`` loaded; mismatches raise WeightsError listing them."""
    import torchvision.models.segmentation as seg

    architecture = architecture or infer_architecture(state)
    if architecture not in ARCHITECTURES:
        raise InputError(f"unknown DeepLabV3 architecture {architecture!r}; choose one of {', '.join(ARCHITECTURES)}")
    classes = infer_num_classes(state) if num_classes is None else int(num_classes)
    aux = any(k.startswith("aux_classifier.") for k in state)
    model = getattr(seg, architecture)(weights=None, weights_backbone=None, num_classes=classes, aux_loss=aux)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
             if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or unexpected or wrong:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch (checkpoint vs model)", wrong)):
            if items:
                parts.append(f"{len(items)} {label}: {', '.join(items[:4])}{', ...' if len(items) > 4 else ''}")
        raise WeightsError(f"checkpoint does not match {architecture} with {classes} classes: " + "; ".join(parts))
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, ValueError) as exc:  # e.g. a tensor of a dtype that cannot be copied
        raise WeightsError(f"checkpoint tensors cannot be loaded into {architecture}: "
                           f"{str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__}") from None
    return model.eval()


class DeepLabSegmenter:
    name = "deeplabv3"

    def __init__(self, weights: str | Path | None = None, device: str = "auto", architecture: str | None = None,
                 num_classes: int | None = None, occluder_classes: Iterable[int] = (1,), input_size: int = 512,
                 crop_scale: float = 1.6):
        from ..device import resolve_device

        if weights is None:
            raise WeightsError("the deeplabv3 backend needs a checkpoint: pass --weights FILE (no weights are downloaded)")
        self.device = resolve_device(device)
        state = load_state_dict(weights)
        try:
            self.model = build_model(state, architecture, num_classes).to(self.device)
            self.architecture = architecture or infer_architecture(state)
            self.num_classes = infer_num_classes(state) if num_classes is None else int(num_classes)
        except WeightsError as err:  # name the file in every message about its contents
            if err.path is None:
                raise WeightsError(str(err), weights) from None
            raise
        self.occluder_classes = [int(c) for c in occluder_classes]
        bad = [c for c in self.occluder_classes if not 0 <= c < max(self.num_classes, 2)]
        if bad or not self.occluder_classes:
            raise InputError(f"occluder class(es) {bad or '[]'} out of range for a model with {self.num_classes} classes")
        if input_size < 32:
            raise InputError(f"input_size must be at least 32, got {input_size}")
        self.input_size = int(input_size)
        self.crop_scale = float(crop_scale)

    def crop_transform(self, analysis: FaceAnalysis) -> np.ndarray:
        """2x3 affine from the photo to the model's square input (the face centred, ``crop_scale`` x
        the ArcFace crop)."""
        size = self.input_size
        template = (ARCFACE_TEMPLATE_112 - 56.0) * (size / 112.0 / self.crop_scale) + size / 2.0
        return similarity_transform(analysis.face.landmarks_5, template)

    def probability_in_crop(self, crop_rgb: np.ndarray) -> np.ndarray:
        import torch

        tensor = (crop_rgb.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
        batch = torch.from_numpy(np.ascontiguousarray(tensor.transpose(2, 0, 1)))[None].to(self.device)
        with torch.inference_mode():
            logits = self.model(batch)["out"][0].float()
        if self.num_classes == 1:
            prob = torch.sigmoid(logits[0])
        else:
            prob = torch.softmax(logits, dim=0)[self.occluder_classes].sum(dim=0)
        prob = prob.cpu().numpy()
        if not np.isfinite(prob).all():
            raise NumericalError("the DeepLabV3 model produced NaN/inf (corrupt weights?)")
        return prob

    def __call__(self, rgb: np.ndarray, analysis: FaceAnalysis) -> SegmentationResult:
        height, width = rgb.shape[:2]
        matrix = self.crop_transform(analysis)
        size = self.input_size
        crop = cv2.warpAffine(rgb, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        prob_crop = self.probability_in_crop(crop).astype(np.float32)
        probability = cv2.warpAffine(prob_crop, matrix, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                     borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
        probability = np.clip(probability, 0.0, 1.0)
        mask = np.where(probability >= 0.5, 255, 0).astype(np.uint8)
        face_region = regions.face_region(np.asarray(analysis.face.landmarks, np.float64), (height, width))
        info = {"architecture": self.architecture, "num_classes": self.num_classes,
                "occluder_classes": self.occluder_classes, "input_size": size}
        return SegmentationResult(mask=mask, face_region=face_region, probability=probability, backend=self.name,
                                  face_index=analysis.selected, info=info)
