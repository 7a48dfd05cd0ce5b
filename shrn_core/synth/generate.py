"""The generator: parameters -> batched renders -> ``Sample`` objects (or tensors for training)."""
from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Iterable, Iterator, Optional

import numpy as np
import torch

from ..device import resolve_device
from ..errors import WeightsError
from . import occluders as occ
from .bank import AppearanceBank, cached_procedural_bank
from .effects import add_noise, blur, jpeg_round_trip, sensor_noise, to_uint8
from .models import ShapeModel, load_ict, load_model
from .params import PART_OCCLUDER, SampleParams, SynthOptions, rng_for, sample_params
from .person import PersonRig, build_rig
from .renderer import SceneRenderer
from .scene import Camera, camera_for, face_vertices, scene_input

log = logging.getLogger("shrn.synth")

COVERAGE_SIZE = 96  # occluder placements are checked at this resolution
MAX_TRIES = 8
WINDOW_BATCHES = 4  # samples() groups sizes over this many batches of parameters
MASK_DEFINITION = ("255 where an occluder is the nearest surface and the ray behind it would hit the face (the "
                   "ground-truth surface, the eyes or the mouth cavity); lenses count only when their opacity is at "
                   "least 0.5; pasted occluders count where their alpha is at least 0.5 over the face")


def shared_data_dir() -> Path:
    env = os.environ.get("SHRN_SHARED_DATA")
    return Path(env) if env else Path("..") / "shared" / "data"


def default_sfm_path() -> Path:
    return shared_data_dir() / "sfm"


def default_ict_path() -> Path:
    return shared_data_dir() / "ict_facekit" / "ict_face_model.npz"


def default_pasted_path() -> Path:
    return shared_data_dir() / "occluded_webfaceocc"


@dataclass
class Sample:
    """One generated face: the clean photo and its occluded twin, with the ground truth of both."""

    id: str
    params: SampleParams
    image: np.ndarray  # (H, W, 3) uint8 clean twin
    occluded: Optional[np.ndarray]  # (H, W, 3) uint8, or None when no occluder kind is enabled
    mask: np.ndarray  # (H, W) uint8 0/255 occluder mask of the occluded twin
    face_region: np.ndarray  # (H, W) uint8 0/255 face surface + eyes + mouth cavity
    vertices: np.ndarray  # (V, 3) float32 mm, head frame: the ground-truth surface as rendered
    triangles: np.ndarray  # (F, 3) int64
    landmarks7: np.ndarray  # (7, 3) float32 mm: NoW landmarks on that surface
    camera: Camera
    model: str
    occluder: Optional[dict] = None
    coverage: float = 0.0  # mask pixels / face-region pixels
    extras: dict = field(default_factory=dict)


@dataclass
class TensorBatch:
    """``Generator.tensors``: images and masks on the generator's device, no files."""

    images: torch.Tensor  # (B, 3, H, W) float32 in [0, 1], occluded twins (clean when no occluder kinds)
    masks: torch.Tensor  # (B, 1, H, W) float32 {0, 1}
    face_regions: torch.Tensor  # (B, 1, H, W) float32 {0, 1}
    clean: torch.Tensor  # (B, 3, H, W) float32, the clean twins
    params: list[SampleParams]


def shape_models(options: SynthOptions) -> tuple[ShapeModel, Optional[ShapeModel]]:
    """The ground-truth model and, for the Surrey model, the ICT head it is rendered on (None when the
    ICT file is missing: the face is then rendered alone)."""
    if options.model == "sfm":
        model = load_model("sfm", options.sfm or default_sfm_path())
        ict_path = options.ict or default_ict_path()
        try:
            return model, load_ict(ict_path)
        except WeightsError:
            log.warning("no ICT-FaceKit model at %s: Surrey faces are rendered without a head", ict_path)
            return model, None
    return load_model(options.model, options.ict or default_ict_path()), None


@functools.lru_cache(maxsize=4)
def _rig(model: ShapeModel, head: Optional[ShapeModel]) -> PersonRig:
    return build_rig(model, head)


class Generator:
    """``Generator(options, bank).samples(count, seed)`` yields ``Sample``; ``tensors(seed, indices)``
    returns a ``TensorBatch``. Loads the shape model(s) once; renders on ``options.device``."""

    def __init__(self, options: SynthOptions | None = None, bank: AppearanceBank | None = None):
        self.options = (options or SynthOptions()).validate()
        opts = self.options
        self.model, self.head = shape_models(opts)
        self.rig = _rig(self.model, self.head)
        self.bank = bank if bank is not None else cached_procedural_bank()
        self.device = resolve_device(opts.device)
        self.renderer = SceneRenderer(self.rig, self.bank, self.device)
        self._pasted = None

    # ------------------------------------------------------------------ parameters

    def params(self, seed: int, index: int) -> SampleParams:
        return sample_params(seed, index, self.options, self.model.num_identity, self.model.expression_names,
                             (len(self.bank.albedo), len(self.bank.background)))

    # ------------------------------------------------------------------ public entry points

    def samples(self, count: int, seed: int, start: int = 0, skip=None) -> Iterator[Sample]:
        """Samples ``start .. start + count - 1``; ``skip(index)`` -> True leaves one out (resuming)."""
        indices = [i for i in range(start, start + count) if not (skip and skip(i))]
        # samples of one size render together: look a few batches ahead so that batches stay full
        window = self.options.batch_size * WINDOW_BATCHES
        for chunk_start in range(0, len(indices), window):
            chunk = [self.params(seed, i) for i in indices[chunk_start:chunk_start + window]]
            yield from self.render(chunk)

    def render(self, params: list[SampleParams]) -> list[Sample]:
        """Render the given parameters (any sizes; grouped by size into batches of at most ``batch_size``)."""
        out: dict[int, Sample] = {}
        by_size: dict[int, list[int]] = {}
        for position, p in enumerate(params):
            by_size.setdefault(p.size, []).append(position)
        step = self.options.batch_size
        for positions in by_size.values():
            for first in range(0, len(positions), step):
                group = positions[first:first + step]
                for sample, position in zip(self._render_group([params[i] for i in group]), group):
                    out[position] = sample
        return [out[i] for i in range(len(params))]

    @torch.no_grad()
    def tensors(self, seed: int, indices: Iterable[int], size: Optional[int] = None) -> TensorBatch:
        """A training batch on the device, without files: occluded images, masks, face regions.

        All images get ``size`` (default: the lower end of ``options.size``)."""
        size = size or self.options.size[0]
        originals = [self.params(seed, i) for i in indices]
        params = [replace(p, size=size) for p in originals]
        for p, original in zip(params, originals):
            p.focal_px = p.focal_equiv_1024 * size / 1024
            p.blur_sigma = original.blur_sigma * size / original.size
            p.principal = tuple(size / 2 + (c - original.size / 2) * size / original.size for c in original.principal)
        prepared = self._prepare(params)
        clean, occluded, masks, regions = self._draw(prepared)
        to_chw = lambda x: x.permute(0, 3, 1, 2).float() / 255.0  # noqa: E731
        return TensorBatch(to_chw(occluded), masks[:, None].float(), regions[:, None].float(), to_chw(clean), params)

    # ------------------------------------------------------------------ internals

    def _prepare(self, params: list[SampleParams]) -> list[dict]:
        prepared = []
        for p in params:
            face = face_vertices(self.model, p)
            camera = camera_for(self.model, face, p)
            person = self.rig.vertices(face, p.hair_thickness)
            prepared.append({"params": p, "face": face, "camera": camera, "person": person,
                             "frame": occ.FaceFrame.of(face, self.model), "meshes": [], "pasted": None})
        kinds = self.options.occluders
        if kinds:
            self._choose_occluders(prepared, kinds)
        return prepared

    def _choose_occluders(self, prepared: list[dict], kinds: tuple[str, ...]) -> None:
        low, high = self.options.coverage
        pending = []
        for item in prepared:
            p = item["params"]
            rng = rng_for(p.seed, p.index, PART_OCCLUDER)
            kind = str(rng.choice(kinds))
            item.update(rng=rng, kind=kind, best=None, best_distance=np.inf)
            if kind == "pasted":
                item["pasted"] = {"kind": "pasted", "rng": rng}
            else:
                pending.append(item)
        person = None
        if pending:
            first = [scene_input(self.rig, i["params"], i["face"], i["camera"].scaled(COVERAGE_SIZE), [], i["person"])
                     for i in pending]
            person = self.renderer.person_pass(first)
            for row, item in enumerate(pending):
                item["row"] = row
        for attempt in range(MAX_TRIES):
            if not pending:
                break
            skin = lambda item: self.bank.skin[item["params"].albedo_index]  # noqa: E731
            for item in pending:
                item["candidate"] = occ.draw(item["kind"], item["rng"], item["frame"], item["camera"], skin(item),
                                             item["params"].hair_colour)
                item["candidate_meshes"] = occ.build(item["candidate"], item["frame"], item["camera"])
            scenes = [scene_input(self.rig, i["params"], i["face"], i["camera"].scaled(COVERAGE_SIZE),
                                  i["candidate_meshes"], i["person"]) for i in pending]
            rows = torch.as_tensor([i["row"] for i in pending], device=self.device)
            fractions = self.renderer.coverage(scenes, {key: value[rows] for key, value in person.items()})
            still = []
            for item, fraction in zip(pending, fractions):
                distance = 0.0 if low <= fraction <= high else min(abs(fraction - low), abs(fraction - high))
                if distance < item["best_distance"]:
                    item.update(best=item["candidate"], best_distance=distance, meshes=item["candidate_meshes"],
                                estimate=float(fraction), attempts=attempt + 1)
                if distance > 0:
                    still.append(item)
            pending = still
        for item in prepared:
            if item.get("best") is not None:
                item["params"].occluder = item["best"]

    def _draw(self, prepared: list[dict]):
        """Render one same-size group: uint8 clean and occluded images, masks, face regions (torch)."""
        scenes = [scene_input(self.rig, i["params"], i["face"], i["camera"], i["meshes"], i["person"]) for i in prepared]
        batch = self.renderer.render(scenes)
        clean, occluded, mask = batch.clean, batch.occluded, batch.mask
        params = [i["params"] for i in prepared]
        if any(i["pasted"] is not None for i in prepared):
            occluded, mask = self._paste(prepared, occluded, mask, batch.face_region)
        sigmas = [p.blur_sigma for p in params]
        noises = [sensor_noise(clean.shape[1:3], p.noise_sigma, p.seed, p.index) for p in params]
        finished = []
        for images in (clean, occluded):
            images = to_uint8(add_noise(blur(images, sigmas), [p.noise_sigma for p in params], noises))
            finished.append(torch.stack([jpeg_round_trip(img, p.jpeg_quality) for img, p in zip(images, params)]))
        return finished[0], finished[1], mask, batch.face_region

    def _render_group(self, params: list[SampleParams]) -> list[Sample]:
        prepared = self._prepare(params)
        clean, occluded, mask, region = self._draw(prepared)
        has_occluder = bool(self.options.occluders)
        samples = []
        for b, item in enumerate(prepared):
            p = item["params"]
            vertices, triangles = self.model.surface(item["face"])
            m = mask[b].cpu().numpy()
            r = region[b].cpu().numpy()
            samples.append(Sample(
                id=f"{p.index:06d}", params=p, image=clean[b].cpu().numpy(),
                occluded=occluded[b].cpu().numpy() if has_occluder else None,
                mask=np.where(m, 255, 0).astype(np.uint8), face_region=np.where(r, 255, 0).astype(np.uint8),
                vertices=vertices.astype(np.float32), triangles=triangles, landmarks7=item["face"][self.model.now7],
                camera=item["camera"], model=self.model.name, occluder=p.occluder,
                coverage=float(m.sum() / max(r.sum(), 1)),
                extras={"occluder_attempts": item.get("attempts", 0)}))
        return samples

    # ------------------------------------------------------------------ pasted (2D) occluders

    def _paste(self, prepared, occluded, mask, region):
        from ..evaluate.occluders import load_occluders, paste_occluder  # noqa: PLC0415 - needs OpenCV

        if self._pasted is None:
            self._pasted = load_occluders(self.options.pasted_dir or default_pasted_path())
        low, high = self.options.coverage
        occluded, mask = occluded.clone(), mask.clone()
        for b, item in enumerate(prepared):
            if item["pasted"] is None:
                continue
            rng = item["pasted"]["rng"]
            image = (occluded[b].clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu().numpy()
            face_region = region[b].cpu().numpy()
            five = item["camera"].project(self._five_points(item["face"]))
            best = None
            for attempt in range(MAX_TRIES):
                index = int(rng.integers(0, len(self._pasted)))
                seed = int(rng.integers(0, 2**31))
                pasted, pasted_mask = paste_occluder(image, SimpleNamespace(landmarks_5=five), self._pasted[index],
                                                     np.random.default_rng(seed))
                over_face = (pasted_mask > 0) & face_region
                fraction = over_face.sum() / max(face_region.sum(), 1)
                distance = 0.0 if low <= fraction <= high else min(abs(fraction - low), abs(fraction - high))
                if best is None or distance < best[0]:
                    best = (distance, pasted, over_face, {"kind": "pasted", "occluder": self._pasted[index].name,
                                                          "placement_seed": seed, "attempts": attempt + 1})
                if distance == 0:
                    break
            _, pasted, over_face, info = best
            item["params"].occluder = info
            occluded[b] = torch.as_tensor(pasted, device=occluded.device).float() / 255.0
            mask[b] = torch.as_tensor(over_face, device=mask.device)
        return occluded, mask

    def _five_points(self, face: np.ndarray) -> np.ndarray:
        lm = self.model.landmarks68
        return np.stack([face[lm[36:42]].mean(0), face[lm[42:48]].mean(0), face[lm[30]], face[lm[48]], face[lm[54]]])
