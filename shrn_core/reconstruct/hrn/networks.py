"""The four HRN networks, laid out so the official checkpoints load with ``strict=True``.

* ``CoefficientRegressor`` (``net_recon``): ResNet-50 without its classifier, then seven 1x1
  convolutions giving the 257 BFM coefficients (id 80, exp 64, tex 80, angle 3, SH 27, xy 2, z 1).
* ``ResnetTranslator`` (``mid_net`` 6->3 deformation map, ``high_net`` 9->1 displacement map): the
  pix2pix "resnet_9blocks" generator with parameter-free instance norm and (inactive at
  inference) dropout in each residual block; module indices match the original ``nn.Sequential``.
* ``DeRetouchUNet`` (``de-retouching.pth`` ``generator``): a 4-level U-Net predicting a sigmoid
  blend layer, with four deep-supervision heads that inference does not use but the file holds.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import InputError

COEFF_LAYOUT = (("id", 80), ("exp", 64), ("tex", 80), ("angle", 3), ("gamma", 27), ("trans_xy", 2), ("trans_z", 1))
N_COEFFS = sum(n for _, n in COEFF_LAYOUT)  # 257


def _resnet50_without_classifier() -> nn.Module:
    """torchvision's ResNet-50 (stride on the 3x3 convolution, as HRN's copy) minus ``fc``."""
    try:
        from torchvision.models.resnet import Bottleneck, ResNet
    except ImportError:
        raise InputError("the hrn backend needs torchvision: pip install 'shrn[hrn]' (torchvision>=0.17)") from None
    backbone = ResNet(Bottleneck, [3, 4, 6, 3])
    del backbone.fc  # not in the checkpoint: HRN regresses with 1x1 convolutions instead
    return backbone


class CoefficientRegressor(nn.Module):
    """224x224 RGB in [0, 1] -> (B, 257) BFM coefficients."""

    def __init__(self):
        super().__init__()
        self.backbone = _resnet50_without_classifier()
        self.final_layers = nn.ModuleList(nn.Conv2d(2048, n, kernel_size=1, bias=True) for _, n in COEFF_LAYOUT)
        for head in self.final_layers:  # as HRN: untrained, it predicts the mean face, frontal, centred
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        b = self.backbone
        x = b.maxpool(b.relu(b.bn1(b.conv1(image))))
        features = b.avgpool(b.layer4(b.layer3(b.layer2(b.layer1(x)))))  # (B, 2048, 1, 1)
        return torch.cat([head(features) for head in self.final_layers], dim=1).flatten(1)


def _residual_block(dim: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=True), nn.InstanceNorm2d(dim), nn.ReLU(True),
        nn.Dropout(0.5),
        nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=True), nn.InstanceNorm2d(dim),
    )


class _Residual(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.conv_block = _residual_block(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetTranslator(nn.Module):
    """Image-to-image translator: 7x7 stem, two stride-2 downsamplings, 9 residual blocks, two
    transposed-convolution upsamplings, 7x7 head with tanh. Output in [-1, 1]."""

    def __init__(self, in_channels: int, out_channels: int, width: int = 64, n_blocks: int = 9):
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, width, 7, bias=True),
                                   nn.InstanceNorm2d(width), nn.ReLU(True)]
        for i in range(2):
            c = width * 2 ** i
            layers += [nn.Conv2d(c, 2 * c, 3, stride=2, padding=1, bias=True), nn.InstanceNorm2d(2 * c), nn.ReLU(True)]
        layers += [_Residual(width * 4) for _ in range(n_blocks)]
        for i in range(2):
            c = width * 2 ** (2 - i)
            layers += [nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1, bias=True),
                       nn.InstanceNorm2d(c // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class _DoubleConv(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(True),
            nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class _Inlet(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = _DoubleConv(cin, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class _Down(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.mpconv = nn.Sequential(nn.MaxPool2d(2), _DoubleConv(cin, cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mpconv(x)


class _Up(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = _DoubleConv(cin, cout)

    def forward(self, low: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        low = F.interpolate(low, scale_factor=2, mode="bilinear", align_corners=True)
        dy, dx = skip.shape[2] - low.shape[2], skip.shape[3] - low.shape[3]
        low = F.pad(low, (dx // 2, dx - dx // 2, dy // 2, dy - dy // 2))
        return self.conv(torch.cat([skip, low], dim=1))


class _Head(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class DeRetouchUNet(nn.Module):
    """RGB texture in [-1, 1] -> per-texel blend layer in [0, 1] (same size)."""

    def __init__(self, in_channels: int = 3, out_channels: int = 3):
        super().__init__()
        self.inc = _Inlet(in_channels, 64)
        self.down1, self.down2, self.down3, self.down4 = _Down(64, 128), _Down(128, 256), _Down(256, 512), _Down(512, 512)
        self.up1, self.up2, self.up3, self.up4 = _Up(1024, 256), _Up(512, 128), _Up(256, 64), _Up(128, 64)
        self.outc = _Head(64, out_channels)
        # deep-supervision heads of training; kept so the checkpoint loads strictly
        self.dsoutc4, self.dsoutc3 = _Head(256, out_channels), _Head(128, out_channels)
        self.dsoutc2, self.dsoutc1 = _Head(64, out_channels), _Head(64, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x4 = self.down3(x3)
        x = self.up1(self.down4(x4), x4)
        x = self.up4(self.up3(self.up2(x, x3), x2), x1)
        return torch.sigmoid(self.outc(x))


class HRNNetworks(nn.Module):
    """Everything ``hrn_v1.1/epoch_10.pth`` and ``de-retouching.pth`` hold, as one module.

    ``alpha``/``beta`` are the two scalars that scale the deformation and displacement outputs.
    """

    def __init__(self):
        super().__init__()
        self.net_recon = CoefficientRegressor()
        self.mid_net = ResnetTranslator(6, 3)
        self.high_net = ResnetTranslator(9, 1)
        self.de_retouch = DeRetouchUNet(3, 3)
        self.register_buffer("alpha", torch.full((1,), 0.01))
        self.register_buffer("beta", torch.full((1,), 0.01))

    def checkpoint_modules(self) -> dict[str, dict[str, nn.Module | str]]:
        """file name -> entry name in that file -> the module (or buffer name) it fills."""
        return {
            "hrn_v1.1/epoch_10.pth": {"net_recon": self.net_recon, "mid_net": self.mid_net,
                                      "high_net": self.high_net, "alpha": "alpha", "beta": "beta"},
            "de-retouching.pth": {"generator": self.de_retouch},
        }
