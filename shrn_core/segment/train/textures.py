"""Colours, noise, patterns and photo patches for procedural occluders (batched torch, any device).

All images are (n, 3, H, W) float RGB in [0, 1]; colours are (n, 3). Randomness comes from a
``Random`` (a seeded ``torch.Generator`` on the working device), so a batch is reproducible per seed.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


_CONSTANTS: dict = {}


def on_device(values, device, dtype=torch.float32) -> torch.Tensor:
    """A constant tensor of (nested) Python numbers on ``device``, created once: on a GPU a fresh
    ``torch.tensor(..., device=cuda)`` is a blocking host-to-device copy, which the data generator
    would otherwise make thousands of times per batch."""
    key = (repr(values), str(device), dtype)
    tensor = _CONSTANTS.get(key)
    if tensor is None:
        tensor = _CONSTANTS[key] = torch.tensor(values, dtype=dtype, device=device)
    return tensor


class Random:
    """Seeded draws on one device. Shapes are tuples; ``lo``/``hi`` may be tensors that broadcast."""

    def __init__(self, seed: int, device):
        self.device = torch.device(device)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(int(seed))

    def uniform(self, shape, lo=0.0, hi=1.0) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(shape, generator=self.generator, device=self.device)

    def normal(self, shape, mean=0.0, std=1.0) -> torch.Tensor:
        return mean + std * torch.randn(shape, generator=self.generator, device=self.device)

    def chance(self, shape, p) -> torch.Tensor:
        return torch.rand(shape, generator=self.generator, device=self.device) < p

    def integers(self, shape, high: int, low: int = 0) -> torch.Tensor:
        return torch.randint(low, high, shape, generator=self.generator, device=self.device)

    def choice(self, n: int, probabilities) -> torch.Tensor:
        """``n`` indices drawn from a categorical distribution."""
        p = on_device(list(probabilities), self.device)
        return torch.multinomial(p / p.sum(), n, replacement=True, generator=self.generator)

    def log_uniform(self, shape, lo: float, hi: float) -> torch.Tensor:
        return torch.exp(self.uniform(shape, math.log(lo), math.log(hi)))

    def sign(self, shape) -> torch.Tensor:
        return torch.where(self.chance(shape, 0.5), 1.0, -1.0)


def hsv_to_rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """h in [0, 1) (wraps), s, v in [0, 1]; any equal shapes -> shape + (3,)."""
    h = (h % 1.0) * 6.0
    k = torch.stack([(5.0 + h) % 6.0, (3.0 + h) % 6.0, (1.0 + h) % 6.0], dim=-1)
    return v[..., None] - v[..., None] * s[..., None] * torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0)


def rgb_to_gray(images: torch.Tensor) -> torch.Tensor:
    weights = on_device([0.299, 0.587, 0.114], images.device, images.dtype)
    return (images * weights.view(1, 3, 1, 1)).sum(dim=1, keepdim=True)


# Colour families for occluders: (weight, sampler). Skin tones come from the face itself or a range.
def palette(rng: Random, n: int, skin: torch.Tensor | None = None, families=None) -> torch.Tensor:
    """``n`` colours from a mix of families: black, white, grey, saturated, pastel, dark, generic skin
    tones and (when ``skin`` (n, 3) is given) the face's own skin colour, jittered."""
    names = ["black", "white", "grey", "saturated", "pastel", "dark", "skin_tone", "own_skin"]
    weights = dict(zip(names, [1.0, 1.0, 0.8, 1.6, 1.0, 0.8, 1.2, 1.0]))
    if families is not None:
        weights = {k: (families.get(k, 0.0)) for k in names}
    if skin is None:
        weights["own_skin"] = 0.0
    family = rng.choice(n, [weights[k] for k in names])
    h, s, v = rng.uniform((n,)), rng.uniform((n,)), rng.uniform((n,))
    table = torch.stack([
        torch.stack([h, s * 0.15, 0.02 + v * 0.13], -1),  # black
        torch.stack([h, s * 0.12, 0.80 + v * 0.20], -1),  # white
        torch.stack([h, s * 0.10, 0.25 + v * 0.50], -1),  # grey
        torch.stack([h, 0.45 + s * 0.55, 0.30 + v * 0.70], -1),  # saturated
        torch.stack([h, 0.10 + s * 0.30, 0.70 + v * 0.30], -1),  # pastel
        torch.stack([h, 0.20 + s * 0.60, 0.10 + v * 0.25], -1),  # dark
        torch.stack([0.01 + h * 0.09, 0.20 + s * 0.45, 0.20 + v * 0.75], -1),  # skin tones
        torch.stack([h, s, v], -1),  # placeholder for own skin
    ], dim=1)
    hsv = table[torch.arange(n, device=rng.device), family]
    colours = hsv_to_rgb(hsv[:, 0], hsv[:, 1], hsv[:, 2])
    if skin is not None:
        own = (skin * rng.uniform((n, 1), 0.85, 1.15) * rng.uniform((n, 3), 0.95, 1.05)).clamp(0, 1)
        colours = torch.where((family == names.index("own_skin"))[:, None], own, colours)
    return colours


def noise(rng: Random, n: int, size: int, cells: int, channels: int = 1, octaves: int = 3) -> torch.Tensor:
    """Smooth fractal noise (n, channels, size, size), roughly zero-mean, unit-ish amplitude."""
    total = torch.zeros((n, channels, size, size), device=rng.device)
    amplitude, weight = 1.0, 0.0
    for octave in range(octaves):
        res = max(int(cells * 2 ** octave), 2)
        total += amplitude * F.interpolate(rng.normal((n, channels, res, res)), size=(size, size), mode="bilinear",
                                           align_corners=False)
        weight += amplitude
        amplitude *= 0.5
    return total / weight


def streaks(rng: Random, n: int, size: int, angle: torch.Tensor, across: int = 48, along: int = 3) -> torch.Tensor:
    """Noise stretched along ``angle`` (n,) radians: hair, wood, brushed metal, fabric weave. (n, 1, S, S)."""
    base = rng.normal((n, 1, along, across))
    base = F.interpolate(base, size=(size * 2, size * 2), mode="bilinear", align_corners=False)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack([torch.stack([cos, -sin, torch.zeros_like(cos)], -1),
                         torch.stack([sin, cos, torch.zeros_like(cos)], -1)], dim=1) * 0.7
    grid = F.affine_grid(theta, (n, 1, size, size), align_corners=False)
    return F.grid_sample(base, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def pattern(rng: Random, n: int, X: torch.Tensor, Y: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Two-colour mixing weights in [0, 1] (n, 1, H, W): stripes, checks, dots, waves or blotches."""
    kind = rng.integers((n,), 5)
    angle = rng.uniform((n,), 0, math.pi)[:, None, None]
    period = (scale * rng.uniform((n,), 0.04, 0.25))[:, None, None].clamp_min(2.0)
    u = (torch.cos(angle) * X + torch.sin(angle) * Y) / period
    v = (-torch.sin(angle) * X + torch.cos(angle) * Y) / period
    duty = rng.uniform((n,), 0.2, 0.7)[:, None, None]
    stripes = ((u % 1.0) < duty).float()
    checks = (((u.floor() + v.floor()) % 2.0) < 1.0).float()
    dots = ((((u % 1.0) - 0.5) ** 2 + ((v % 1.0) - 0.5) ** 2) < (duty * 0.5) ** 2).float()
    waves = 0.5 + 0.5 * torch.sin(2 * math.pi * (u + 0.3 * torch.sin(2 * math.pi * v * 0.5)))
    size = X.shape[-1]
    blotches = (noise(rng, n, size, 6)[:, 0] > rng.uniform((n, 1, 1), -0.4, 0.4)).float()
    stack = torch.stack([stripes, checks, dots, waves, blotches], dim=1)
    return stack[torch.arange(n, device=rng.device), kind][:, None]


def photo_patches(rng: Random, bank: torch.Tensor, n: int, size: int, zoom=(0.3, 1.6),
                  centre_spread: float = 0.7) -> torch.Tensor:
    """Random rotated, scaled windows of random bank images (bank: (N, 3, P, P) uint8) -> (n, 3, S, S)."""
    index = rng.integers((n,), bank.shape[0])
    angle = rng.uniform((n,), -math.pi, math.pi)
    scale = rng.log_uniform((n,), *zoom)
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    shift = rng.uniform((n, 2), -centre_spread, centre_spread)
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], -1), torch.stack([sin, cos, shift[:, 1]], -1)], dim=1)
    grid = F.affine_grid(theta, (n, 3, size, size), align_corners=False)
    source = bank[index].float() / 255.0
    return F.grid_sample(source, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def shade_linear(rng: Random, colours: torch.Tensor, X: torch.Tensor, Y: torch.Tensor, strength=(0.0, 0.5)) -> torch.Tensor:
    """Multiply (n, 3, H, W) by a random linear light ramp across the image (flat objects under a lamp)."""
    n, size = colours.shape[0], X.shape[-1]
    angle = rng.uniform((n,), 0, 2 * math.pi)[:, None, None]
    amount = rng.uniform((n,), *strength)[:, None, None]
    ramp = (torch.cos(angle) * (X - size / 2) + torch.sin(angle) * (Y - size / 2)) / size
    return colours * (1.0 + amount * ramp * 2.0)[:, None]


def texture(rng: Random, n: int, X: torch.Tensor, Y: torch.Tensor, bank: torch.Tensor | None,
            skin: torch.Tensor | None = None, weights=(1.0, 1.0, 1.0), families=None) -> torch.Tensor:
    """Occluder surface colour (n, 3, H, W): plain colour, two-colour pattern or a photo patch
    (weights in that order), each with fabric-like noise and a light ramp."""
    size = X.shape[-1]
    kind = rng.choice(n, weights if bank is not None else weights[:2])
    first, second = palette(rng, n, skin, families), palette(rng, n, skin, families)
    out = first[:, :, None, None].expand(n, 3, size, size).clone()
    is_pattern = kind == 1
    if is_pattern.any():
        m = int(is_pattern.sum())
        mix = pattern(rng, m, X, Y, torch.full((m,), float(size), device=rng.device))
        out[is_pattern] = first[is_pattern, :, None, None] * (1 - mix) + second[is_pattern, :, None, None] * mix
    is_photo = kind == 2
    if is_photo.any():
        m = int(is_photo.sum())
        patch = photo_patches(rng, bank, m, size)
        # Sometimes keep the photo's colours, sometimes tint them towards a palette colour.
        tint = rng.uniform((m, 1, 1, 1), 0.0, 0.8) * rng.chance((m, 1, 1, 1), 0.5)
        gray = rgb_to_gray(patch)
        out[is_photo] = patch * (1 - tint) + tint * gray * first[is_photo, :, None, None] * 1.6
    grain = rng.uniform((n, 1, 1, 1), 0.0, 0.08) * noise(rng, n, size, cells=size // 3, octaves=1)
    out = out * (1.0 + grain)
    return shade_linear(rng, out, X, Y).clamp(0.0, 1.0)
