"""Painted appearance for banks without photos: skin textures in the canonical UV space and
backgrounds. numpy + torch only (runs wherever the generator runs); deterministic per generator."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .facemesh import LANDMARKS_68
from .texture_space import V_STRETCH, canonical_mesh

# sRGB skin tones from very light to very dark (roughly the Monk skin tone scale), 0..1
SKIN_TONES = np.array([
    [0.96, 0.87, 0.82], [0.93, 0.80, 0.72], [0.90, 0.74, 0.64], [0.84, 0.67, 0.55], [0.78, 0.60, 0.47],
    [0.68, 0.50, 0.37], [0.57, 0.40, 0.29], [0.45, 0.31, 0.22], [0.34, 0.23, 0.17], [0.24, 0.17, 0.13],
])
IRIS_COLOURS = np.array([[0.30, 0.18, 0.09], [0.18, 0.10, 0.05], [0.35, 0.45, 0.55], [0.30, 0.40, 0.25],
                         [0.45, 0.33, 0.18], [0.25, 0.30, 0.38]])
HAIR_COLOURS = np.array([[0.05, 0.04, 0.035], [0.12, 0.08, 0.05], [0.25, 0.16, 0.09], [0.45, 0.32, 0.18],
                         [0.70, 0.58, 0.38], [0.45, 0.20, 0.08], [0.55, 0.55, 0.55], [0.85, 0.85, 0.83]])
IRIS_RADIUS_MM = 5.9
MOUTH_OUTER = LANDMARKS_68[48:60]
MOUTH_INNER = LANDMARKS_68[60:68]


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of an (H, W) or (H, W, C) float array (reflect borders)."""
    if sigma <= 0:
        return image
    radius = max(1, int(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-x**2 / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    t = torch.as_tensor(np.ascontiguousarray(image), dtype=torch.float32)
    flat = t[None, None] if t.dim() == 2 else t.permute(2, 0, 1)[:, None]
    pad = min(radius, flat.shape[-1] - 1, flat.shape[-2] - 1)
    if pad < radius:  # reflect padding needs radius < size
        kernel = kernel[radius - pad: radius + pad + 1]
        kernel = kernel / kernel.sum()
    flat = F.conv2d(F.pad(flat, (pad, pad, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1))
    flat = F.conv2d(F.pad(flat, (0, 0, pad, pad), mode="reflect"), kernel.view(1, 1, -1, 1))
    out = flat[0, 0] if t.dim() == 2 else flat[:, 0].permute(1, 2, 0)
    return out.numpy()


def value_noise(rng: np.random.Generator, size: int, scales=(4, 8, 16, 32, 64), falloff: float = 0.6) -> np.ndarray:
    """(size, size) fractal noise, zero mean, about unit std."""
    total = np.zeros((size, size), np.float32)
    amplitude = 1.0
    for cells in scales:
        grid = torch.as_tensor(rng.standard_normal((1, 1, cells, cells)), dtype=torch.float32)
        total += amplitude * F.interpolate(grid, size=(size, size), mode="bicubic", align_corners=False)[0, 0].numpy()
        amplitude *= falloff
    return (total - total.mean()) / max(total.std(), 1e-6)


def _polygon_mask(points_uv: np.ndarray, size: int) -> np.ndarray:
    """(size, size) bool: texel centres inside the polygon (row = v * size)."""
    centres = (np.arange(size) + 0.5) / size
    u, v = np.meshgrid(centres, centres)
    inside = np.zeros((size, size), bool)
    a, b = points_uv, np.roll(points_uv, -1, axis=0)
    for (ax, ay), (bx, by) in zip(a, b):
        crosses = (ay > v) != (by > v)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = ax + (v - ay) * (bx - ax) / (by - ay)
        inside ^= crosses & (u < x_at)
    return inside


def _blob(size: int, centre_uv, radius_uv: float) -> np.ndarray:
    centres = (np.arange(size) + 0.5) / size
    u, v = np.meshgrid(centres, centres)
    return np.exp(-((u - centre_uv[0]) ** 2 + (v - centre_uv[1]) ** 2) / (2 * radius_uv**2)).astype(np.float32)


def uv_per_mm() -> float:
    mesh = canonical_mesh()
    span_uv = np.linalg.norm(mesh.uvs[263] - mesh.uvs[33])
    return float(span_uv / np.linalg.norm(mesh.vertices[263] - mesh.vertices[33]))


def random_skin_tone(rng: np.random.Generator) -> np.ndarray:
    position = rng.uniform(0, len(SKIN_TONES) - 1)
    low = int(np.floor(position))
    high = min(low + 1, len(SKIN_TONES) - 1)
    tone = SKIN_TONES[low] * (1 - (position - low)) + SKIN_TONES[high] * (position - low)
    return np.clip(tone * rng.uniform(0.94, 1.06, 3), 0, 1)


def procedural_skin(rng: np.random.Generator, size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """A painted face albedo in the canonical UV space: (texture uint8 (size, size, 3), skin (3,))."""
    mesh = canonical_mesh()
    uvs = mesh.uvs.astype(np.float64)
    skin = random_skin_tone(rng)
    texture = np.ones((size, size, 3), np.float32) * skin
    # slow variation and pores
    texture *= (1 + 0.05 * value_noise(rng, size, (3, 6)))[..., None]
    texture *= (1 + 0.025 * value_noise(rng, size, (64, 128), 0.8))[..., None]
    redness = np.array([1.0, 0.86, 0.86], np.float32)
    for vertex, strength in ((205, 0.5), (425, 0.5), (4, 0.45), (1, 0.3)):  # cheeks, nose tip
        weight = _blob(size, uvs[vertex], 0.06 if vertex in (205, 425) else 0.035) * strength * rng.uniform(0.3, 1.0)
        texture *= (1 - weight[..., None] * (1 - redness))
    for vertex in (145, 374):  # under-eye shadows
        texture *= (1 - 0.08 * _blob(size, uvs[vertex] - [0, 0.02], 0.03))[..., None]
    if rng.random() < 0.3:  # stubble
        beard = _polygon_mask(uvs[[172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288, 435, 411,
                                   322, 2, 92, 187, 215]], size)
        beard = blur(beard.astype(np.float32), 6) * rng.uniform(0.1, 0.3)
        speckle = np.clip(value_noise(rng, size, (256,), 1.0), 0, 1)
        texture *= (1 - beard * (0.5 + 0.5 * speckle))[..., None]
    # lips
    lip_colour = skin * np.array([0.92, 0.62, 0.62]) * rng.uniform(0.75, 1.0)
    lips = blur(_polygon_mask(uvs[MOUTH_OUTER], size).astype(np.float32), 1.2)
    texture = texture * (1 - lips[..., None]) + lip_colour * lips[..., None]
    inner = blur(_polygon_mask(uvs[mesh.holes[2]], size).astype(np.float32), 0.8)
    texture *= (1 - 0.6 * inner[..., None])
    # brows
    hair = HAIR_COLOURS[rng.integers(0, 4)] * rng.uniform(0.8, 1.2)
    for brow in (LANDMARKS_68[17:22], LANDMARKS_68[22:27]):
        centre = uvs[brow]
        stroke = np.zeros((size, size), np.float32)
        for start, end in zip(centre[:-1], centre[1:]):
            for t in np.linspace(0, 1, 12):
                point = start * (1 - t) + end * t
                stroke = np.maximum(stroke, _blob(size, point, 0.011 * rng.uniform(0.8, 1.3)))
        stroke = np.clip(stroke * 1.6, 0, 1) * (0.75 + 0.25 * (value_noise(rng, size, (96,), 1.0) > 0))
        texture = texture * (1 - 0.85 * stroke[..., None]) + hair * 0.85 * stroke[..., None]
    # eyes: sclera, iris, pupil, lid line
    radius = IRIS_RADIUS_MM * uv_per_mm()
    iris_colour = IRIS_COLOURS[rng.integers(0, len(IRIS_COLOURS))]
    gaze = rng.normal(0, 0.25 * radius, 2)
    for loop in mesh.holes[:2]:
        opening = _polygon_mask(uvs[loop], size)
        eye = np.ones((size, size, 3), np.float32) * np.array([0.85, 0.82, 0.78]) * rng.uniform(0.85, 1.0)
        centre = uvs[loop].mean(0) + gaze
        grid = (np.arange(size) + 0.5) / size
        uu, vv = np.meshgrid(grid, grid)
        distance = np.sqrt((uu - centre[0]) ** 2 + ((vv - centre[1]) / V_STRETCH) ** 2) / radius
        iris = np.clip((1.0 - distance) * 8, 0, 1)
        streaks = 1 + 0.25 * value_noise(rng, size, (48, 96), 0.8)
        eye = eye * (1 - iris[..., None]) + (iris_colour * streaks[..., None] * (0.6 + 0.4 * distance[..., None])) * iris[..., None]
        pupil = np.clip((0.38 - distance) * 20, 0, 1)
        eye = eye * (1 - pupil[..., None]) + 0.02 * pupil[..., None]
        soft = blur(opening.astype(np.float32), 0.7)
        texture = texture * (1 - soft[..., None]) + eye * soft[..., None]
        lid = blur(_polygon_mask(uvs[loop], size).astype(np.float32), 2.0) - soft
        texture *= (1 - 0.6 * np.clip(lid * 3, 0, 1))[..., None]
    return np.clip(texture * 255 + 0.5, 0, 255).astype(np.uint8), skin.astype(np.float32)


def procedural_backgrounds(rng: np.random.Generator, count: int, size: int = 192) -> list[np.ndarray]:
    """Painted backgrounds: wall-like gradients, out-of-focus blobs, shelves and window frames."""
    out = []
    grid = (np.arange(size) + 0.5) / size
    uu, vv = np.meshgrid(grid, grid)
    for _ in range(count):
        a, b = rng.uniform(0.1, 0.95, 3), rng.uniform(0.1, 0.95, 3)
        angle = rng.uniform(0, 2 * np.pi)
        ramp = (np.cos(angle) * (uu - 0.5) + np.sin(angle) * (vv - 0.5) + 0.5)[..., None]
        image = a * (1 - ramp) + b * ramp
        image *= (1 + 0.06 * value_noise(rng, size, (4, 8, 32), 0.7))[..., None]
        for _ in range(rng.integers(0, 5)):  # straight edges: door frames, shelves, windows
            colour = rng.uniform(0.05, 1.0, 3)
            x0, x1 = sorted(rng.uniform(0, 1, 2))
            y0, y1 = sorted(rng.uniform(0, 1, 2))
            box = (uu > x0) & (uu < x1) & (vv > y0) & (vv < y1)
            image[box] = image[box] * 0.3 + colour * 0.7
        for _ in range(rng.integers(0, 12)):  # bokeh
            colour = rng.uniform(0.3, 1.0, 3)
            blob = _blob(size, rng.uniform(0, 1, 2), rng.uniform(0.02, 0.1))
            image = image * (1 - 0.6 * blob[..., None]) + colour * 0.6 * blob[..., None]
        image = blur(image.astype(np.float32), rng.uniform(0.5, 4))
        out.append(np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8))
    return out
