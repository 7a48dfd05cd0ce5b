"""Contact sheet of training samples: each sample's picture above the same picture with its label
(red) and the area outside the loss region darkened."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def render_sheet(image: torch.Tensor, label: torch.Tensor, weight: torch.Tensor, columns: int = 8) -> np.ndarray:
    """(n, 3, S, S), (n, 1, S, S), (n, 1, S, S) -> an RGB uint8 sheet (rows of picture-over-label pairs)."""
    pictures = (image.clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8)
    occluded = label[:, 0].cpu().numpy() > 0.5
    counted = weight[:, 0].cpu().numpy() > 0.5
    tiles = []
    for picture, occ, inside in zip(pictures, occluded, counted):
        marked = picture.copy()
        marked[occ] = (marked[occ] * 0.4 + np.array([255, 0, 0]) * 0.6).astype(np.uint8)
        marked[~inside] = (marked[~inside] * 0.35).astype(np.uint8)
        tiles.append(np.concatenate([picture, marked], 0))
    while len(tiles) % columns:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.concatenate(tiles[i:i + columns], 1) for i in range(0, len(tiles), columns)]
    return np.concatenate(rows, 0)


def write_preview(pack_path, out, count: int = 24, seed: int = 0, kinds: str | None = None, device: str = "auto") -> Path:
    from ...device import resolve_device
    from ...formats.image import write_image
    from .augment import FaceBank
    from .data import CompositeSource, Recipe
    from .pack import load_pack

    pack = load_pack(pack_path)
    bank = FaceBank(pack, resolve_device(device), region_margin=0.2)
    recipe = Recipe()
    if kinds:
        recipe.kinds = {k.strip(): 1.0 for k in kinds.split(",") if k.strip()}
        recipe.layers = [0.0, 1.0]
    source = CompositeSource(bank, seed, float(pack.meta["crop_scale"]), recipe)
    with torch.no_grad():
        batch = source.next_batch(count)
    return write_image(out, render_sheet(batch.image, batch.label, batch.weight))
