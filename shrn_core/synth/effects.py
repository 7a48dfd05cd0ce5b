"""Camera effects applied to rendered batches: blur, sensor noise, 8-bit quantisation, JPEG.

Noise comes from a per-sample ``torch.Generator`` seeded with (seed, index), drawn on the CPU, so a
sample's pixels do not depend on the device or on which other samples share its batch. The clean
and occluded twins get the same noise. JPEG: Pillow on the CPU, torchvision's encoder for CUDA tensors.
"""
from __future__ import annotations

import io

import numpy as np
import torch
import torch.nn.functional as F


def blur(images: torch.Tensor, sigmas: list[float]) -> torch.Tensor:
    """(B, H, W, 3) images, one Gaussian sigma (pixels) per image."""
    if not any(s > 0.05 for s in sigmas):
        return images
    radius = max(1, int(np.ceil(3 * max(sigmas))))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32, device=images.device)
    kernels = []
    for sigma in sigmas:
        k = torch.exp(-x**2 / (2 * max(sigma, 1e-3) ** 2)) if sigma > 0.05 else (x == 0).float()
        kernels.append(k / k.sum())
    kernels = torch.stack(kernels).repeat_interleave(3, 0)  # (B * 3, K)
    batch, height, width, _ = images.shape
    flat = images.permute(0, 3, 1, 2).reshape(1, batch * 3, height, width)
    flat = F.pad(flat, (radius, radius, radius, radius), mode="replicate")
    flat = F.conv2d(flat, kernels[:, None, None, :], groups=batch * 3)
    flat = F.conv2d(flat, kernels[:, None, :, None], groups=batch * 3)
    return flat.view(batch, 3, height, width).permute(0, 2, 3, 1)


def sensor_noise(shape: tuple[int, int], sigma: float, seed: int, index: int) -> torch.Tensor:
    """(H, W, 3) zero-mean unit noise for one sample (scaled by the caller), CPU."""
    generator = torch.Generator().manual_seed(int(np.random.SeedSequence([int(seed), int(index), 99]).generate_state(1)[0]))
    return torch.randn((*shape, 3), generator=generator)


def add_noise(images: torch.Tensor, sigmas: list[float], noises: list[torch.Tensor]) -> torch.Tensor:
    """Read noise plus shot noise: sigma * sqrt(0.3 + 0.7 * value) per pixel."""
    out = []
    for image, sigma, noise in zip(images, sigmas, noises):
        if sigma <= 0:
            out.append(image)
            continue
        out.append(image + sigma * torch.sqrt(0.3 + 0.7 * image.clamp(0, 1)) * noise.to(image.device))
    return torch.stack(out)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    return (images.clamp(0, 1) * 255 + 0.5).to(torch.uint8)


def jpeg_round_trip(image: torch.Tensor, quality: int) -> torch.Tensor:
    """(H, W, 3) uint8 -> the same after JPEG encoding at ``quality`` (0: unchanged)."""
    if quality <= 0:
        return image
    if image.is_cuda:
        try:  # GPU JPEG (torchvision >= 0.19); Pillow on the CPU otherwise
            from torchvision.io import decode_jpeg, encode_jpeg  # noqa: PLC0415

            encoded = encode_jpeg(image.permute(2, 0, 1).contiguous(), quality=int(quality))
            return decode_jpeg(encoded, device=image.device).permute(1, 2, 0)
        except (ImportError, RuntimeError, TypeError):
            pass
    from PIL import Image  # noqa: PLC0415

    buffer = io.BytesIO()
    Image.fromarray(image.cpu().numpy()).save(buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return torch.from_numpy(np.array(decoded.convert("RGB"))).to(image.device)
