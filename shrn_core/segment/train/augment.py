"""Geometric sampling of face crops from the pack and photometric augmentation, batched in torch.

Photometric steps (``photometric``) act on (n, 3, S, S) RGB in [0, 1]: colour jitter (brightness,
contrast, saturation, hue, white balance), gamma, grayscale, low resolution (down- and up-sampling),
Gaussian blur, sensor noise and JPEG compression (8x8 DCT quantisation with the standard tables, chroma
subsampled), each applied to a random share of the batch. ``tight_crop`` imitates photos that end
close to the face (as 112 px aligned crops do): outside a box the border pixels are replicated.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .textures import Random, on_device, rgb_to_gray


@dataclass
class Geometry:
    """Random similarity from the network crop to the pack crop: zoom (face bigger when > 1), rotation
    (radians, normal), shift (fraction of the crop, normal), horizontal flip probability."""

    zoom: tuple[float, float] = (0.85, 1.2)
    rotation_std: float = 0.17
    rotation_max: float = 0.45
    shift_std: float = 0.035
    flip: float = 0.5


class FaceBank:
    """The pack on the training device: images, face regions, loss regions and landmarks."""

    def __init__(self, pack, device, region_margin: float):
        import numpy as np

        from ..crop import grow_region

        self.device = torch.device(device)
        self.size = pack.size
        self.net_size = int(pack.meta["net_size"])
        self.images = torch.from_numpy(np.ascontiguousarray(pack.images.transpose(0, 3, 1, 2))).to(self.device)
        valid = np.stack([grow_region(r, lm, region_margin) for r, lm in zip(pack.regions, pack.landmarks)])
        masks = np.stack([pack.regions, valid], 1).astype(np.uint8)
        self.masks = torch.from_numpy(masks).to(self.device)
        self.landmarks = torch.from_numpy(pack.landmarks).to(self.device)

    def __len__(self) -> int:
        return self.images.shape[0]

    def sample(self, rng: Random, n: int, geometry: Geometry, index: torch.Tensor | None = None):
        """``n`` random faces as network crops: images (n, 3, S, S) float, region and loss-region
        (n, 1, S, S) float 0/1, landmarks (n, 478, 2) in crop pixels."""
        S, P = self.net_size, self.size
        if index is None:
            index = rng.integers((n,), len(self))
        zoom = rng.log_uniform((n,), *geometry.zoom)
        angle = rng.normal((n,), 0.0, geometry.rotation_std).clamp(-geometry.rotation_max, geometry.rotation_max)
        shift = rng.normal((n, 2), 0.0, geometry.shift_std) * S
        flip = torch.where(rng.chance((n,), geometry.flip), -1.0, 1.0)
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        # A (2x2) maps crop offsets from the crop centre to pack offsets from the pack centre.
        A = torch.stack([torch.stack([cos * flip, -sin], -1), torch.stack([sin * flip, cos], -1)], 1)
        theta = torch.cat([A * (S / P), (2.0 * shift / P)[..., None]], -1)
        grid = F.affine_grid(theta, (n, 3, S, S), align_corners=False)
        images = F.grid_sample(self.images[index].float() / 255.0, grid, mode="bilinear", padding_mode="border",
                               align_corners=False)
        masks = F.grid_sample(self.masks[index].float(), grid, mode="bilinear", padding_mode="zeros",
                              align_corners=False) >= 0.5
        pack_points = self.landmarks[index] - P / 2.0 - shift[:, None]
        points = torch.linalg.solve(A, pack_points.transpose(1, 2)).transpose(1, 2) + S / 2.0
        return images, masks[:, :1].float(), masks[:, 1:].float(), points


def _per_sample(x: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    return values.reshape(-1, *([1] * (x.dim() - 1)))


def colour_jitter(rng: Random, images: torch.Tensor, p: float = 0.8) -> torch.Tensor:
    n = images.shape[0]
    on = rng.chance((n,), p).float()
    brightness = 1.0 + on * rng.uniform((n,), -0.35, 0.35)
    contrast = 1.0 + on * rng.uniform((n,), -0.4, 0.4)
    saturation = 1.0 + on * rng.uniform((n,), -0.6, 0.5)
    balance = 1.0 + on[:, None] * rng.normal((n, 3), 0.0, 0.06)
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    out = (images - mean) * _per_sample(images, contrast) + mean
    out = out * _per_sample(out, brightness) * balance[:, :, None, None]
    gray = rgb_to_gray(out)
    out = gray + (out - gray) * _per_sample(out, saturation)
    # Hue: rotate chroma around the gray axis.
    hue = on * rng.normal((n,), 0.0, 0.05) * 2 * math.pi
    out = _rotate_hue(out, hue)
    return out.clamp(0.0, 1.0)


def _rotate_hue(images: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    c, s = torch.cos(angle), torch.sin(angle)
    k = 1.0 / 3.0
    root = math.sqrt(k)
    # Rodrigues rotation about (1, 1, 1)/sqrt(3).
    m = torch.stack([
        torch.stack([c + (1 - c) * k, (1 - c) * k - root * s, (1 - c) * k + root * s], -1),
        torch.stack([(1 - c) * k + root * s, c + (1 - c) * k, (1 - c) * k - root * s], -1),
        torch.stack([(1 - c) * k - root * s, (1 - c) * k + root * s, c + (1 - c) * k], -1),
    ], 1)
    return torch.einsum("nij,njhw->nihw", m, images)


def gamma(rng: Random, images: torch.Tensor, p: float = 0.5) -> torch.Tensor:
    n = images.shape[0]
    g = torch.where(rng.chance((n,), p), rng.log_uniform((n,), 0.6, 1.6), torch.ones(n, device=images.device))
    return images.clamp_min(1e-4) ** _per_sample(images, g)


def grayscale(rng: Random, images: torch.Tensor, p: float = 0.15) -> torch.Tensor:
    on = _per_sample(images, rng.chance((images.shape[0],), p).float())
    return images * (1 - on) + rgb_to_gray(images).expand_as(images) * on


def low_resolution(rng: Random, images: torch.Tensor, p: float = 0.35, levels=(0.3, 0.42, 0.55, 0.75)) -> torch.Tensor:
    n, size = images.shape[0], images.shape[-1]
    level = rng.integers((n,), len(levels))
    on = rng.chance((n,), p)
    out = images.clone()
    for i, factor in enumerate(levels):
        pick = on & (level == i)
        if pick.any():
            small = max(int(round(size * factor)), 8)
            down = F.interpolate(images[pick], size=(small, small), mode="bilinear", antialias=True, align_corners=False)
            out[pick] = F.interpolate(down, size=(size, size), mode="bilinear", align_corners=False)
    return out


def gaussian_blur(rng: Random, images: torch.Tensor, p: float = 0.3, sigma=(0.4, 1.8)) -> torch.Tensor:
    n, c, h, w = images.shape
    sig = torch.where(rng.chance((n,), p), rng.uniform((n,), *sigma), torch.full((n,), 1e-3, device=images.device))
    radius = int(math.ceil(3 * sigma[1]))
    x = torch.arange(-radius, radius + 1, device=images.device, dtype=images.dtype)
    kernel = torch.exp(-(x[None] ** 2) / (2 * sig[:, None] ** 2))
    kernel = (kernel / kernel.sum(1, keepdim=True)).repeat_interleave(c, 0)  # (n*c, k)
    flat = images.reshape(1, n * c, h, w)
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="replicate"), kernel[:, None, None, :], groups=n * c)
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode="replicate"), kernel[:, None, :, None], groups=n * c)
    return flat.reshape(n, c, h, w)


def sensor_noise(rng: Random, images: torch.Tensor, p: float = 0.35, std=(0.005, 0.045)) -> torch.Tensor:
    n = images.shape[0]
    level = torch.where(rng.chance((n,), p), rng.uniform((n,), *std), torch.zeros(n, device=images.device))
    luminance_only = rng.chance((n,), 0.5).float()[:, None, None, None]
    colour_noise = rng.normal(images.shape)
    gray_noise = rng.normal((n, 1, *images.shape[-2:])).expand_as(images)
    noise = colour_noise * (1 - luminance_only) + gray_noise * luminance_only
    return (images + noise * _per_sample(images, level)).clamp(0.0, 1.0)


# JPEG (ITU T.81 Annex K) quantisation tables.
_LUMA_Q = [[16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55], [14, 13, 16, 24, 40, 57, 69, 56],
           [14, 17, 22, 29, 51, 87, 80, 62], [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
           [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99]]
_CHROMA_Q = [[17, 18, 24, 47, 99, 99, 99, 99], [18, 21, 26, 66, 99, 99, 99, 99], [24, 26, 56, 99, 99, 99, 99, 99],
             [47, 66, 99, 99, 99, 99, 99, 99]] + [[99] * 8] * 4
_DCT = [[math.cos((2 * x + 1) * k * math.pi / 16) * math.sqrt((1 if k else 0.5) * 2 / 8) for x in range(8)]
        for k in range(8)]


def jpeg(rng: Random, images: torch.Tensor, p: float = 0.35, quality=(15, 90)) -> torch.Tensor:
    """JPEG-like compression of a share of the batch (side a multiple of 16)."""
    n, _, h, w = images.shape
    on = rng.chance((n,), p)
    if not on.any() or h % 16 or w % 16:
        return images
    x = images[on] * 255.0
    m = x.shape[0]
    q = rng.uniform((m,), *quality)
    scale = torch.where(q < 50, 5000.0 / q, 200.0 - 2.0 * q)[:, None, None]
    luma_q = ((on_device(_LUMA_Q, x.device) * scale + 50) / 100).floor().clamp(1, 255)
    chroma_q = ((on_device(_CHROMA_Q, x.device) * scale + 50) / 100).floor().clamp(1, 255)
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b
    cb, cr = (F.avg_pool2d(c[:, None], 2)[:, 0] for c in (cb, cr))
    dct = on_device(_DCT, x.device)
    y = _quantise(y - 128.0, dct, luma_q) + 128.0
    cb, cr = (F.interpolate(_quantise(c, dct, chroma_q)[:, None], scale_factor=2, mode="bilinear",
                            align_corners=False)[:, 0] for c in (cb, cr))
    out = torch.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], 1) / 255.0
    result = images.clone()
    result[on] = out.clamp(0.0, 1.0)
    return result


def _quantise(channel: torch.Tensor, dct: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    m, h, w = channel.shape
    blocks = channel.reshape(m, h // 8, 8, w // 8, 8).permute(0, 1, 3, 2, 4)
    coeff = dct @ blocks @ dct.T
    table = table[:, None, None]
    coeff = torch.round(coeff / table) * table
    return (dct.T @ coeff @ dct).permute(0, 1, 3, 2, 4).reshape(m, h, w)


def photometric(rng: Random, images: torch.Tensor) -> torch.Tensor:
    images = colour_jitter(rng, images)
    images = gamma(rng, images)
    images = grayscale(rng, images)
    images = low_resolution(rng, images)
    images = gaussian_blur(rng, images)
    images = sensor_noise(rng, images)
    return jpeg(rng, images)


def tight_crop(rng: Random, tensors: list[torch.Tensor], crop_scale: float, p: float = 0.25):
    """For a share of the batch, replicate the border of a box about the size of a 112 px ArcFace crop
    (the input's end) outward; returns the tensors and a (n, 1, S, S) mask of the kept box."""
    n, size = tensors[0].shape[0], tensors[0].shape[-1]
    device = tensors[0].device
    on = rng.chance((n,), p)
    half = size / (2 * crop_scale) * rng.uniform((n,), 0.9, 1.15)
    centre = size / 2 + rng.normal((n, 2), 0.0, 0.03 * size)
    lo = torch.where(on[:, None], centre - half[:, None], torch.full_like(centre, -1e4))
    hi = torch.where(on[:, None], centre + half[:, None], torch.full_like(centre, 1e4))
    coords = torch.arange(size, device=device, dtype=torch.float32) + 0.5
    x = torch.minimum(torch.maximum(coords[None], lo[:, :1]), hi[:, :1])  # (n, S)
    y = torch.minimum(torch.maximum(coords[None], lo[:, 1:]), hi[:, 1:])
    ix = (x - 0.5).round().long().clamp(0, size - 1)
    iy = (y - 0.5).round().long().clamp(0, size - 1)
    out = []
    for t in tensors:
        rows = torch.gather(t, 2, iy[:, None, :, None].expand(-1, t.shape[1], -1, size))
        out.append(torch.gather(rows, 3, ix[:, None, None, :].expand(-1, t.shape[1], size, -1)))
    inside_x = (coords[None] >= lo[:, :1]) & (coords[None] <= hi[:, :1])
    inside_y = (coords[None] >= lo[:, 1:]) & (coords[None] <= hi[:, 1:])
    keep = (inside_y[:, :, None] & inside_x[:, None, :]).float()[:, None]
    return out, keep
