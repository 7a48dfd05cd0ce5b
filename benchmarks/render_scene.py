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
