"""OccNet: the compact occlusion-segmentation network of the ``learned`` backend, in plain PyTorch.

A MobileNetV2-style encoder (inverted residual blocks down to 1/32 of the input, plus a global
context gate as in LR-ASPP) and a light feature-pyramid decoder that merges the 1/32, 1/16, 1/8 and
1/4 features and predicts one occluder logit per pixel at 1/4 resolution, upsampled bilinearly to
the input size. Trained from scratch (``shrn_core.segment.train``); nothing is downloaded and
torchvision is not needed.

``forward(x)``: ``x`` (B, 3, H, W) float, normalised RGB (see ``normalise``), H and W multiples of
32 -> (B, 1, H, W) float logits (sigmoid = occluder probability).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ARCHITECTURE = "occnet-v1"


@dataclass
class OccNetConfig:
    """Layer sizes. ``widths``: channels of the stem (1/2) and the 1/4, 1/8, 1/16, 1/32 stages;
    ``depths``: blocks per stage (same order); ``expansion``: inverted-residual expansion factor;
    ``decoder_width``: channels of the pyramid decoder."""

    widths: list[int] = field(default_factory=lambda: [16, 24, 48, 96, 192])
    depths: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 3])
    expansion: int = 4
    decoder_width: int = 48

    def to_dict(self) -> dict:
        return {"name": ARCHITECTURE, **asdict(self)}

    @classmethod
    def from_dict(cls, values: dict) -> "OccNetConfig":
        values = dict(values)
        name = values.pop("name", ARCHITECTURE)
        if name != ARCHITECTURE:
            raise ValueError(f"unknown architecture {name!r} (this version of shrn knows {ARCHITECTURE!r})")
        unknown = set(values) - {"widths", "depths", "expansion", "decoder_width"}
        if unknown:
            raise ValueError(f"unknown architecture field(s): {', '.join(sorted(unknown))}")
        config = cls(**values)
        if len(config.widths) != 5 or len(config.depths) != 5 or min(config.widths) < 1 or min(config.depths) < 1:
            raise ValueError("widths and depths need five positive entries (1/2, 1/4, 1/8, 1/16, 1/32)")
        return config


def _conv_bn(c_in: int, c_out: int, kernel: int = 1, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
                               nn.BatchNorm2d(c_out)]
    if act:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """1x1 expansion, 3x3 depthwise (with the stride), linear 1x1 projection; residual when shapes match."""

    def __init__(self, c_in: int, c_out: int, stride: int, expansion: int):
        super().__init__()
        hidden = c_in * expansion
        layers = [_conv_bn(c_in, hidden)] if expansion != 1 else []
        layers += [_conv_bn(hidden, hidden, 3, stride, groups=hidden), _conv_bn(hidden, c_out, act=False)]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.residual else self.block(x)


class _DepthwiseSeparable(nn.Sequential):
    def __init__(self, channels: int):
        super().__init__(_conv_bn(channels, channels, 3, groups=channels), _conv_bn(channels, channels))


class OccNet(nn.Module):
    def __init__(self, config: OccNetConfig | None = None):
        super().__init__()
        self.config = config or OccNetConfig()
        widths, depths, expansion = self.config.widths, self.config.depths, self.config.expansion
        stem = [_conv_bn(3, widths[0], 3, 2)]
        stem += [InvertedResidual(widths[0], widths[0], 1, 1) for _ in range(depths[0])]
        self.stem = nn.Sequential(*stem)
        self.stages = nn.ModuleList()
        for level in range(1, 5):
            blocks = [InvertedResidual(widths[level - 1], widths[level], 2, expansion)]
            blocks += [InvertedResidual(widths[level], widths[level], 1, expansion) for _ in range(depths[level] - 1)]
            self.stages.append(nn.Sequential(*blocks))
        width = self.config.decoder_width
        self.lateral = nn.ModuleList([_conv_bn(widths[level], width) for level in range(1, 5)])
        self.context = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(widths[4], width, 1), nn.Sigmoid())
        self.smooth = nn.ModuleList([_DepthwiseSeparable(width) for _ in range(3)])
        self.head = nn.Conv2d(width, 1, 1)
        nn.init.constant_(self.head.bias, -2.0)  # most pixels are face: start near p = 0.12

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        features = []
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        top = self.lateral[3](features[3]) * self.context(features[3])
        for level in (2, 1, 0):
            lateral = self.lateral[level](features[level])
            top = F.interpolate(top, size=lateral.shape[-2:], mode="bilinear", align_corners=False) + lateral
            top = self.smooth[level](top)
        logits = self.head(top)
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


MEAN = 0.5
STD = 0.25


def normalise(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB in [0, 1] -> the network's input scale."""
    return (images - MEAN) / STD


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ------------------------------------------------------------------------------------- model folders
MODEL_KIND = "occlusion_net"  # config.json's format is "shrn.occlusion_net"
MODEL_FORMAT = f"shrn.{MODEL_KIND}"
CHECKPOINT_FORMAT = "shrn.segnet_checkpoint"  # training checkpoints (also accepted as weights)
MODEL_SCHEMA_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "occlusion_net.pt"


def save_folder(folder, model: OccNet, config: dict) -> Path:
    """Write ``folder/config.json`` (``config`` + architecture + weights checksum) and the weights in
    float16 (``folder/occlusion_net.pt``, a plain state dict for ``torch.load(weights_only=True)``)."""
    import hashlib
    import io
    import json

    from ..formats.core import atomic_write

    folder = Path(folder)
    state = {k: (v.detach().to("cpu", torch.float16) if v.is_floating_point() else v.detach().cpu())
             for k, v in model.state_dict().items()}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getvalue()
    with atomic_write(folder / WEIGHTS_NAME, "wb") as handle:
        handle.write(data)
    document = {"format": MODEL_FORMAT, "schema_version": MODEL_SCHEMA_VERSION, **config,
                "architecture": model.config.to_dict(), "parameters": parameter_count(model),
                "weights": {"file": WEIGHTS_NAME, "dtype": "float16", "bytes": len(data),
                            "sha256": hashlib.sha256(data).hexdigest()}}
    with atomic_write(folder / CONFIG_NAME, "w") as handle:
        handle.write(json.dumps(document, indent=1) + "\n")
    return folder


def load_state(path) -> dict:
    """``torch.load(path, map_location="cpu", weights_only=True)``."""
    return torch.load(path, map_location="cpu", weights_only=True)


def build(architecture: dict, state: dict) -> OccNet:
    """An ``OccNet`` of ``architecture`` with ``state`` loaded (float32, eval mode); ``ValueError`` on a mismatch."""
    model = OccNet(OccNetConfig.from_dict(architecture))
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        parts = [f"{len(v)} {label}: {', '.join(v[:3])}{', ...' if len(v) > 3 else ''}"
                 for label, v in (("missing", missing), ("unexpected", unexpected), ("wrongly shaped", wrong)) if v]
        raise ValueError("weights do not match the architecture in config.json: " + "; ".join(parts))
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return model.eval()


def fuse_batchnorm(model: OccNet) -> OccNet:
    """Fold every BatchNorm into the convolution before it (inference only; same outputs, faster on CPUs)."""
    model.eval()
    for module in model.modules():
        if not isinstance(module, nn.Sequential):
            continue
        for i in range(len(module) - 1):
            conv, norm = module[i], module[i + 1]
            if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
                scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
                with torch.no_grad():
                    conv.weight.mul_(scale.reshape(-1, 1, 1, 1))
                    bias = conv.bias if conv.bias is not None else torch.zeros_like(norm.running_mean)
                    conv.bias = nn.Parameter((bias - norm.running_mean) * scale + norm.bias)
                module[i + 1] = nn.Identity()
    return model
