"""Training batches, generated on the training device as they are needed.

A *source* is anything with ``next_batch(n) -> Batch``. ``CompositeSource`` is the main one: clean
faces from the pack, 0-3 procedural occluder layers each (``occluders.KINDS``), cast shadows,
lipstick as a negative example, then photometric augmentation and tight crops. ``MixedSource`` draws
a fixed share of each batch from a second source (for example rendered faces with exact masks from
``shrn synth``): see ``load_extra_source`` for the interface such a source implements.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from . import augment
from .occluders import KINDS, Layer, recolour_lips
from .scene import Scene, estimate_skin
from .shapes import pixel_grid
from .textures import Random


@dataclass
class Batch:
    """``image`` (n, 3, S, S) RGB in [0, 1]; ``label`` (n, 1, S, S) 1 = occluder; ``weight``
    (n, 1, S, S) where the loss counts (the grown face region inside the picture)."""

    image: torch.Tensor
    label: torch.Tensor
    weight: torch.Tensor


@dataclass
class Recipe:
    """The data recipe (recorded in the model's config.json)."""

    layers: list[float] = field(default_factory=lambda: [0.15, 0.55, 0.22, 0.08])  # P(0, 1, 2, 3 occluders)
    kinds: dict[str, float] = field(default_factory=lambda: {k: w for k, (_, w) in KINDS.items()})
    shadow: float = 0.3
    lipstick: float = 0.15
    tight_crop: float = 0.25
    geometry: augment.Geometry = field(default_factory=augment.Geometry)

    def to_dict(self) -> dict:
        return {"occluders_per_face": self.layers, "kinds": self.kinds, "shadow": self.shadow,
                "lipstick": self.lipstick, "tight_crop": self.tight_crop, "geometry": vars(self.geometry)}


class CompositeSource:
    """``chunk`` > 0: faces are generated ``chunk`` at a time and served in slices (the generator's
    cost is mostly a fixed number of small GPU kernels per call, so large calls are cheaper per face).
    ``reuse`` > 1: each chunk is served that many times, every further pass mirrored left-right and
    shuffled (halves the generator's cost per training step; the 284 faces, not the occluders, limit
    the variety)."""

    def __init__(self, bank: augment.FaceBank, seed: int, crop_scale: float, recipe: Recipe | None = None,
                 chunk: int = 0, reuse: int = 1):
        self.bank = bank
        self.chunk = int(chunk)
        self.reuse = max(int(reuse), 1)
        self._buffer: Batch | None = None
        self._offset = 0
        self._passes = 0
        self.rng = Random(seed, bank.device)
        self.recipe = recipe or Recipe()
        self.crop_scale = crop_scale
        self.X, self.Y = pixel_grid(bank.net_size, bank.device)
        self.texture_bank = bank.images
        unknown = set(self.recipe.kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown occluder kind(s): {', '.join(sorted(unknown))}")

    def next_batch(self, n: int, index: torch.Tensor | None = None) -> Batch:
        if index is not None or self.chunk <= n:
            return self.generate(n, index)
        if self._buffer is not None and self._offset + n > self.chunk and self._passes < self.reuse:
            order = torch.randperm(self.chunk, generator=self.rng.generator, device=self.rng.device)
            b = self._buffer
            self._buffer = Batch(b.image[order].flip(-1), b.label[order].flip(-1), b.weight[order].flip(-1))
            self._offset, self._passes = 0, self._passes + 1
        if self._buffer is None or self._offset + n > self.chunk:
            self._buffer, self._offset, self._passes = self.generate(self.chunk), 0, 1
        part = slice(self._offset, self._offset + n)
        self._offset += n
        return Batch(self._buffer.image[part], self._buffer.label[part], self._buffer.weight[part])

    def generate(self, n: int, index: torch.Tensor | None = None) -> Batch:
        rng, recipe = self.rng, self.recipe
        image, region, valid, landmarks = self.bank.sample(rng, n, recipe.geometry, index)
        scene = Scene(image, landmarks, region, estimate_skin(image, landmarks), self.texture_bank, self.X, self.Y, rng)
        lipstick = torch.nonzero(rng.chance((n,), recipe.lipstick)).flatten()
        if lipstick.numel():
            scene.image[lipstick] = recolour_lips(scene.subset(lipstick), rng.uniform((lipstick.numel(),), 0.2, 0.6))
        image = scene.image
        label = torch.zeros_like(region)
        count = rng.choice(n, recipe.layers)
        names = list(recipe.kinds)
        for slot in range(len(recipe.layers) - 1):
            active = count > slot
            kind = rng.choice(n, [recipe.kinds[k] for k in names])
            for k, name in enumerate(names):
                pick = torch.nonzero(active & (kind == k)).flatten()
                if pick.numel() == 0:
                    continue
                sub = scene.subset(pick)
                sub.image = image[pick]
                layer = KINDS[name][0](sub)
                image[pick] = self._composite(image[pick], layer)
                label[pick] = torch.maximum(label[pick], (layer.cover >= 0.5).float())
        image = augment.photometric(rng, image)
        (image, label, valid), inside = augment.tight_crop(rng, [image, label, valid], self.crop_scale, recipe.tight_crop)
        return Batch(image.contiguous(), label, valid * inside)

    def _composite(self, image: torch.Tensor, layer: Layer) -> torch.Tensor:
        rng, m = self.rng, image.shape[0]
        shadow = rng.chance((m,), self.recipe.shadow)
        if shadow.any():
            offset = rng.normal((m, 2), 0.0, 0.025) * image.shape[-1]
            theta = torch.zeros(m, 2, 3, device=image.device)
            theta[:, 0, 0] = theta[:, 1, 1] = 1.0
            theta[:, :, 2] = -2.0 * offset / image.shape[-1]
            grid = F.affine_grid(theta, layer.alpha.shape, align_corners=False)
            cast = F.grid_sample(layer.alpha, grid, padding_mode="zeros", align_corners=False)
            cast = F.avg_pool2d(F.avg_pool2d(cast, 9, 1, 4), 9, 1, 4)
            strength = (rng.uniform((m,), 0.2, 0.6) * shadow.float())[:, None, None, None]
            image = image * (1.0 - strength * cast)
        return image * (1.0 - layer.alpha) + layer.colour * layer.alpha


class MixedSource:
    """``share`` of every batch from ``extra``, the rest from ``main`` (concatenated)."""

    def __init__(self, main, extra, share: float):
        if not 0.0 < share < 1.0:
            raise ValueError(f"the extra source's share must be between 0 and 1, got {share}")
        self.main, self.extra, self.share = main, extra, share

    def next_batch(self, n: int) -> Batch:
        m = int(round(n * self.share))
        a, b = self.main.next_batch(n - m), self.extra.next_batch(m)
        return Batch(torch.cat([a.image, b.image]), torch.cat([a.label, b.label]), torch.cat([a.weight, b.weight]))


def load_extra_source(spec: str, size: int, device, seed: int):
    """``"package.module:factory"`` -> ``factory(size=S, device=device, seed=seed)``, an object whose
    ``next_batch(n)`` returns a ``Batch`` (or a dict with ``image``, ``label`` and optionally
    ``weight``) of aligned ``S`` x ``S`` crops on ``device``: image float RGB in [0, 1], label 1 where
    an occluder covers the face. Rendered faces must be aligned like the pack (five landmarks to the
    ArcFace template at the model's crop scale)."""
    module_name, _, attribute = spec.partition(":")
    if not attribute:
        raise ValueError(f"--extra-source must look like package.module:factory, got {spec!r}")
    factory = getattr(importlib.import_module(module_name), attribute)
    source = factory(size=size, device=device, seed=seed)
    return _AsBatches(source)


class _AsBatches:
    def __init__(self, source):
        self.source = source

    def next_batch(self, n: int) -> Batch:
        out = self.source.next_batch(n)
        if isinstance(out, Batch):
            return out
        image, label = out["image"].float(), out["label"].float()
        weight = out.get("weight")
        return Batch(image, label, torch.ones_like(label) if weight is None else weight.float())
