"""A synthetic held-out set at photo resolution: procedural occluders on photos never trained on.

For the segment benchmark: each photo's face is aligned like the network's input (at ``work_size``
px), occluders of the kinds in ``occluders.KINDS`` are drawn there by the training generator with
seeds the training never uses (kinds taken in turn, sometimes a second one on top), and the
premultiplied occluder layer is warped back into the photo. The photo keeps its resolution and its
own look (no photometric augmentation); the mask is exact (warped label >= 0.5) and, like the
pasted set of ``shrn_core.evaluate.occluders``, not restricted to the face region.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import torch

from ...errors import FaceError
from ...face.types import FaceAnalysis
from .. import crop as crops
from ..regions import face_region
from .occluders import KINDS
from .scene import Scene, estimate_skin
from .shapes import pixel_grid
from .textures import Random

HELDOUT_SEED = 10_000_019  # training streams use seed * 1000 + run: never this


@dataclass
class HeldoutSample:
    photo: Path
    kinds: list[str]
    image: np.ndarray  # (H, W, 3) uint8, occluded photo
    mask: np.ndarray  # (H, W) uint8 0/255, exact occluder area
    analysis: FaceAnalysis  # of the clean photo (only pixels changed)


def make_heldout_set(photos: Iterable[str | Path], analyze: Callable, per_photo: int = 2, seed: int = HELDOUT_SEED,
                     work_size: int = 384, crop_scale: float = 1.25, second_layer: float = 0.3) -> Iterator[HeldoutSample]:
    """Yield ``per_photo`` occluded versions of every photo with a face (kind ``(i * per_photo + k) % K``)."""
    from ...formats.image import read_image

    names = list(KINDS)
    loaded = []
    for photo in photos:
        try:
            analysis = analyze(Path(photo))
        except FaceError:
            continue
        rgb = read_image(photo)
        matrix = crops.crop_transform(analysis.face.landmarks_5, work_size, crop_scale)
        loaded.append((Path(photo), rgb, analysis, matrix, crops.aligned_crop(rgb, matrix, work_size)))
    if not loaded:
        return
    bank = torch.from_numpy(np.stack([c for *_, c in loaded]).transpose(0, 3, 1, 2).copy())
    X, Y = pixel_grid(work_size, "cpu")
    for index, (photo, rgb, analysis, matrix, crop_rgb) in enumerate(loaded):
        rng = Random(seed + index, "cpu")
        landmarks = torch.from_numpy(crops.apply(matrix, analysis.face.landmarks).astype(np.float32))[None].repeat(per_photo, 1, 1)
        region = face_region(landmarks[0].numpy(), (work_size, work_size)) > 0
        image = (torch.from_numpy(crop_rgb).permute(2, 0, 1).float() / 255.0)[None].repeat(per_photo, 1, 1, 1)
        scene = Scene(image.clone(), landmarks, torch.from_numpy(region)[None, None].float().repeat(per_photo, 1, 1, 1),
                      estimate_skin(image, landmarks), bank, X, Y, rng)
        kinds = [[names[(index * per_photo + k) % len(names)]] for k in range(per_photo)]
        for k in range(per_photo):
            if rng.chance((1,), second_layer).item():
                kinds[k].append(names[int(rng.integers((1,), len(names)))])
        label = torch.zeros(per_photo, 1, work_size, work_size)
        transmitted = torch.ones(per_photo, 1, work_size, work_size)  # share of the face still seen
        composite = image.clone()
        for k in range(per_photo):
            for name in kinds[k]:
                one = scene.subset(torch.tensor([k]))
                one.image = composite[k:k + 1]
                with torch.no_grad():
                    layer = KINDS[name][0](one)
                composite[k:k + 1] = composite[k:k + 1] * (1 - layer.alpha) + layer.colour * layer.alpha
                transmitted[k:k + 1] *= 1 - layer.alpha
                label[k:k + 1] = torch.maximum(label[k:k + 1], (layer.cover >= 0.5).float())
        height, width = rgb.shape[:2]
        photo_f = rgb.astype(np.float32) / 255.0
        for k in range(per_photo):
            # "Over" compositing: composite = face * transmitted + premultiplied occluder colour.
            premultiplied = (composite[k] - image[k] * transmitted[k]).permute(1, 2, 0).numpy()
            cover_photo = crops.paste_back(1.0 - transmitted[k, 0].numpy(), matrix, (height, width))
            colour_photo = np.stack([crops.paste_back(premultiplied[:, :, c], matrix, (height, width)) for c in range(3)], -1)
            out = photo_f * (1 - cover_photo[:, :, None]) + colour_photo
            mask = crops.paste_back(label[k, 0].numpy(), matrix, (height, width)) >= 0.5
            yield HeldoutSample(photo, kinds[k], np.clip(out * 255 + 0.5, 0, 255).astype(np.uint8),
                                np.where(mask, 255, 0).astype(np.uint8), analysis)

