"""Synthetic scenes shared by the render benchmarks: a perspective view of a bumpy icosphere."""
from __future__ import annotations

import math

import numpy as np
import torch
import trimesh

from shrn_core.render import world_to_clip


def sphere_scene(subdivisions: int, resolution: int, batch: int = 1, device="cpu", seed: int = 0):
    """An icosphere of radius 90 mm (20 * 4**subdivisions triangles) with a smooth bump field, seen
    from 400 mm by a camera whose image it fills to about 60%; each batch item turns it a little.
    Returns (pos (B, V, 4) clip space, tri (F, 3) int32, colours (B, V, 3))."""
    mesh = trimesh.creation.icosphere(subdivisions=subdivisions, radius=1.0)
    vertices = np.asarray(mesh.vertices, np.float64)
    bumps = 1 + 0.08 * np.sin(5 * vertices[:, 0]) * np.cos(4 * vertices[:, 1]) * np.sin(3 * vertices[:, 2] + 1)
    vertices = vertices * bumps[:, None] * 90.0
    focal = resolution * 1.3
    K = np.array([[focal, 0, resolution / 2], [0, focal, resolution / 2], [0, 0, 1]], np.float32)
    rng = np.random.default_rng(seed)
    points, colours = [], []
    for b in range(batch):
        angle = 0.3 * b
        R = np.array([[math.cos(angle), 0, math.sin(angle)], [0, 1, 0], [-math.sin(angle), 0, math.cos(angle)]])
        points.append(vertices @ R.T + np.array([0, 0, -400.0]))
        colours.append(rng.random((len(vertices), 3)))
    points = torch.tensor(np.stack(points), dtype=torch.float32, device=device)
    pos = world_to_clip(points, K, np.eye(3, dtype=np.float32), np.zeros(3, np.float32), resolution, resolution)
    tri = torch.tensor(np.asarray(mesh.faces), dtype=torch.int32, device=device)
    colours = torch.tensor(np.stack(colours), dtype=torch.float32, device=device)
    return pos.contiguous(), tri, colours


def surface_scene(grid: int, resolution: int, batch: int = 1, device="cpu", seed: int = 0):
    """A face-sized (160 x 200 mm) height field with a nose-like bump, on a ``grid`` x ``grid`` vertex
    lattice (2 (grid - 1)^2 triangles; grid 133 -> 34848), seen in perspective from 450 mm and turned
    by up to 40 degrees so that the bump occludes part of the surface."""
    s = np.linspace(-1, 1, grid)
    gx, gy = np.meshgrid(s, s, indexing="xy")
    height = 60 * np.exp(-(gx**2 / 0.5 + gy**2 / 0.7)) + 35 * np.exp(-(gx**2 / 0.01 + (gy + 0.05) ** 2 / 0.08))
    vertices = np.stack([80 * gx, -100 * gy, height - 40], -1).reshape(-1, 3)
    ids = np.arange(grid * grid).reshape(grid, grid)
    a, b, c, d = ids[:-1, :-1], ids[:-1, 1:], ids[1:, :-1], ids[1:, 1:]
    faces = np.concatenate([np.stack([a, c, b], -1).reshape(-1, 3), np.stack([b, c, d], -1).reshape(-1, 3)])
    focal = resolution * 1.6
    K = np.array([[focal, 0, resolution / 2], [0, focal, resolution / 2], [0, 0, 1]], np.float32)
    rng = np.random.default_rng(seed)
    points, colours = [], []
    for item in range(batch):
        angle = math.radians(40) * (item / max(batch - 1, 1) - 0.5) * 2 if batch > 1 else math.radians(30)
        R = np.array([[math.cos(angle), 0, math.sin(angle)], [0, 1, 0], [-math.sin(angle), 0, math.cos(angle)]])
        points.append(vertices @ R.T + np.array([0, 0, -450.0]))
        colours.append(rng.random((len(vertices), 3)))
    points = torch.tensor(np.stack(points), dtype=torch.float32, device=device)
    pos = world_to_clip(points, K, np.eye(3, dtype=np.float32), np.zeros(3, np.float32), resolution, resolution)
    tri = torch.tensor(faces, dtype=torch.int32, device=device)
    colours = torch.tensor(np.stack(colours), dtype=torch.float32, device=device)
    return pos.contiguous(), tri, colours


SCENES = {
    "surface35k": lambda res, batch, device: surface_scene(133, res, batch, device),
    "sphere20k": lambda res, batch, device: sphere_scene(5, res, batch, device),
    "sphere82k": lambda res, batch, device: sphere_scene(6, res, batch, device),
}
