"""Options of a generation run and the random parameters of each sample.

Every sample ``index`` of a run with ``seed`` draws from its own generators,
``numpy.random.default_rng([seed, index, part])`` with one ``part`` per aspect (shape, camera,
lighting, appearance, occluders, photo effects): sample k is the same whatever the batch size, and
changing, say, the occluder kinds leaves the faces, cameras and lights of a run unchanged.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..errors import InputError

OCCLUDER_KINDS = ("hand", "microphone", "phone", "cup", "glasses", "sunglasses", "hair", "cloth_mask", "paper_mask",
                  "pasted")
DEFAULT_OCCLUDERS = tuple(kind for kind in OCCLUDER_KINDS if kind != "pasted")  # pasted uses a test set: opt in
SIZE_STEP = 64  # image sides are multiples of this (samples of one size render as one batch)
PART_SHAPE, PART_CAMERA, PART_LIGHT, PART_LOOK, PART_OCCLUDER, PART_PHOTO = range(6)


@dataclass
class SynthOptions:
    """What ``shrn synth`` exposes; see docs/synth.md."""

    model: str = "sfm"  # "sfm" or "ict"
    sfm: Optional[Path] = None  # Surrey folder or arrays .npz (default: ../shared/data/sfm when it exists)
    ict: Optional[Path] = None  # ict_face_model.npz (default: ../shared/data/ict_facekit/...)
    yaw_max: float = 60.0
    pitch_max: float = 25.0
    roll_max: float = 10.0
    size: tuple[int, int] = (256, 1024)
    occluders: tuple[str, ...] = DEFAULT_OCCLUDERS
    coverage: tuple[float, float] = (0.05, 0.60)  # occluded fraction of the face region
    expression: float = 0.5  # probability that a face has a non-neutral expression
    neutral: bool = False  # force neutral expressions (overrides ``expression``)
    identity_clip: float = 3.0  # identity coefficients ~ N(0, 1) clipped at this many sd
    photo_effects: bool = True  # blur, noise, JPEG round trip
    batch_size: int = 8
    device: str = "auto"
    pasted_dir: Optional[Path] = None  # WebFace-OCC folder for the "pasted" kind (a test set: never train on it)

    def validate(self) -> "SynthOptions":
        if self.model not in ("sfm", "ict"):
            raise InputError(f"unknown --model {self.model!r}; choose sfm or ict")
        if not 0 <= self.yaw_max <= 90 or not 0 <= self.pitch_max <= 60 or not 0 <= self.roll_max <= 45:
            raise InputError(f"pose limits out of range: --yaw-max {self.yaw_max} (0..90), --pitch-max "
                             f"{self.pitch_max} (0..60), roll {self.roll_max} (0..45)")
        low, high = self.size
        if not (32 <= low <= high <= 4096):
            raise InputError(f"--size must be N or A..B with 32 <= A <= B <= 4096, got {low}..{high}")
        unknown = [k for k in self.occluders if k not in OCCLUDER_KINDS]
        if unknown:
            raise InputError(f"unknown occluder kind(s) {', '.join(unknown)}; choose from {', '.join(OCCLUDER_KINDS)}")
        lo, hi = self.coverage
        if not (0 <= lo < hi <= 1):
            raise InputError(f"coverage range must satisfy 0 <= min < max <= 1, got {lo}..{hi}")
        if not 0 <= self.expression <= 1:
            raise InputError(f"expression probability must be in 0..1, got {self.expression}")
        if self.batch_size < 1:
            raise InputError(f"--batch-size must be at least 1, got {self.batch_size}")
        return self


def parse_size(text: str) -> tuple[int, int]:
    """``"512"`` -> (512, 512); ``"256..1024"`` -> (256, 1024)."""
    try:
        if ".." in str(text):
            low, high = (int(part) for part in str(text).split(".."))
        else:
            low = high = int(text)
    except ValueError:
        raise InputError(f"--size must be N or A..B (pixels), got {text!r}") from None
    return low, high


def parse_kinds(text: str) -> tuple[str, ...]:
    """``"hand,cup"`` -> ("hand", "cup"); ``"all"`` -> every kind incl. pasted; ``"none"`` -> ()."""
    text = str(text).strip()
    if text in ("", "none"):
        return ()
    if text == "all":
        return OCCLUDER_KINDS
    if text == "default":
        return DEFAULT_OCCLUDERS
    return tuple(part.strip() for part in text.split(",") if part.strip())


@dataclass
class SampleParams:
    """Everything that defines one sample (and its clean twin). Angles in degrees, lengths in mm,
    colours sRGB 0..1. ``to_json`` gives the dict stored in ``<id>.gt.json``."""

    index: int
    seed: int
    model: str
    identity: np.ndarray  # (K,)
    expression: np.ndarray  # (E,)
    yaw: float
    pitch: float
    roll: float
    size: int
    focal_px: float
    focal_equiv_1024: float  # focal length in pixels of a 1024-pixel-wide image
    face_fraction: float  # face width / image width
    principal: tuple[float, float]
    offset: tuple[float, float]  # face centre shift in the image, fraction of the size
    light_direction: np.ndarray  # (3,) camera frame, towards the light
    light_colour: np.ndarray  # (3,)
    light_intensity: float
    ambient: np.ndarray  # (9, 3) SH coefficients (camera frame)
    specular: float
    shininess: float
    exposure: float
    albedo_index: int
    albedo_gain: np.ndarray  # (3,)
    hair_colour: np.ndarray
    hair_thickness: float  # 0 = bald
    cloth_colour: np.ndarray
    background_index: int
    background_crop: tuple[float, float, float, bool]  # zoom, x, y, flip
    background_gain: np.ndarray
    blur_sigma: float
    noise_sigma: float
    jpeg_quality: int  # 0 = no JPEG round trip
    occluder: Optional[dict] = None  # kind and its parameters (see occluders.py)
    extras: dict = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = {}
        for key, value in asdict(self).items():
            out[key] = _jsonable(value)
        return out


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return np.round(value.astype(np.float64), 6).tolist()
    if isinstance(value, (np.floating, float)):
        return round(float(value), 6)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def rng_for(seed: int, index: int, part: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(index), int(part)])


def sample_params(seed: int, index: int, options: SynthOptions, num_identity: int, expression_names: tuple[str, ...],
                  bank_sizes: tuple[int, int]) -> SampleParams:
    """The random parameters of sample ``index`` (occluder drawn separately, see ``occluders.draw``)."""
    shape = rng_for(seed, index, PART_SHAPE)
    identity = np.clip(shape.standard_normal(num_identity), -options.identity_clip, options.identity_clip)
    expression = _expression(shape, options, expression_names)

    camera = rng_for(seed, index, PART_CAMERA)
    low, high = options.size
    sizes = np.arange(math.ceil(low / SIZE_STEP) * SIZE_STEP, high + 1, SIZE_STEP)
    size = int(camera.choice(sizes)) if len(sizes) else int(low)
    focal_equiv = float(np.exp(camera.uniform(np.log(500), np.log(3000))))
    yaw = float(camera.uniform(-options.yaw_max, options.yaw_max))
    pitch = float(camera.uniform(-options.pitch_max, options.pitch_max))
    roll = float(np.clip(camera.normal(0, options.roll_max / 2), -options.roll_max, options.roll_max))
    face_fraction = float(camera.uniform(0.35, 0.7))
    offset = tuple(float(v) for v in camera.uniform(-0.08, 0.08, 2))
    principal = tuple(float(size / 2 + v) for v in camera.normal(0, size * 0.01, 2))

    light = rng_for(seed, index, PART_LIGHT)
    azimuth, elevation = np.radians(light.uniform(-80, 80)), np.radians(light.uniform(-15, 60))
    direction = np.array([np.sin(azimuth) * np.cos(elevation), np.sin(elevation), np.cos(azimuth) * np.cos(elevation)])
    temperature = light.uniform(-1, 1)
    light_colour = np.array([1 + 0.12 * temperature, 1.0, 1 - 0.15 * temperature]) * light.uniform(0.95, 1.05, 3)
    intensity = float(light.uniform(0.5, 1.5))
    ambient = np.zeros((9, 3))
    ambient_level = light.uniform(0.2, 0.7)
    ambient_tint = light.uniform(0.85, 1.15, 3)
    ambient[0] = ambient_level * ambient_tint / 0.282095
    sky = light.normal(0, 1, 3)
    sky[1] = abs(sky[1]) + 0.5  # light from above is more common
    sky = sky / np.linalg.norm(sky) * ambient_level * light.uniform(0.1, 0.5)
    ambient[[3, 1, 2]] = (sky / 0.488603)[:, None] * ambient_tint
    ambient[4:] = light.normal(0, 0.03, (5, 3)) * ambient_level
    specular = float(light.uniform(0.05, 0.5))
    shininess = float(np.exp(light.uniform(np.log(8), np.log(60))))
    exposure = float(light.uniform(0.85, 1.15) / (ambient_level + 0.6 * intensity))

    look = rng_for(seed, index, PART_LOOK)
    albedo_index = int(look.integers(0, bank_sizes[0]))
    albedo_gain = look.normal(1, 0.04, 3) * look.uniform(0.9, 1.1)
    from .procedural import HAIR_COLOURS  # noqa: PLC0415

    hair_colour = np.clip(HAIR_COLOURS[look.integers(0, len(HAIR_COLOURS))] * look.uniform(0.8, 1.2, 3), 0, 1)
    hair_thickness = 0.0 if look.random() < 0.12 else float(look.uniform(3, 16))
    cloth_colour = look.uniform(0.05, 0.9, 3)
    background_index = int(look.integers(0, bank_sizes[1]))
    background_crop = (float(look.uniform(0.5, 1.0)), float(look.random()), float(look.random()), bool(look.random() < 0.5))
    background_gain = look.uniform(0.7, 1.2) * look.normal(1, 0.05, 3)

    photo = rng_for(seed, index, PART_PHOTO)
    effects = options.photo_effects
    blur_sigma = float(photo.uniform(0.3, 1.2) * size / 512) if effects else 0.0
    noise_sigma = float(photo.uniform(0.0, 0.025)) if effects else 0.0
    jpeg_quality = int(photo.integers(55, 96)) if effects and photo.random() < 0.8 else 0

    return SampleParams(
        index=index, seed=seed, model=options.model, identity=identity.astype(np.float32),
        expression=expression.astype(np.float32), yaw=yaw, pitch=pitch, roll=roll, size=size,
        focal_px=focal_equiv * size / 1024, focal_equiv_1024=focal_equiv, face_fraction=face_fraction,
        principal=principal, offset=offset, light_direction=direction, light_colour=light_colour,
        light_intensity=intensity, ambient=ambient, specular=specular, shininess=shininess, exposure=exposure,
        albedo_index=albedo_index, albedo_gain=albedo_gain, hair_colour=hair_colour, hair_thickness=hair_thickness,
        cloth_colour=cloth_colour, background_index=background_index, background_crop=background_crop,
        background_gain=background_gain, blur_sigma=blur_sigma, noise_sigma=noise_sigma, jpeg_quality=jpeg_quality)


def _expression(rng: np.random.Generator, options: SynthOptions, names: tuple[str, ...]) -> np.ndarray:
    weights = np.zeros(len(names))
    draw = rng.random()
    chosen = rng.permutation(len(names))
    amounts = rng.uniform(0.2, 1.0, len(names))
    if options.neutral or draw >= options.expression:
        return weights
    if len(names) <= 8:  # Surrey: one or two of six expressions
        count = 1 + int(rng.random() < 0.3)
        weights[chosen[:count]] = amounts[:count] / count
        return weights
    # ICT blendshapes: a few, left and right together, and never much jaw opening
    count = int(rng.integers(1, 4))
    for idx in chosen[:count]:
        name = names[idx]
        value = amounts[idx] * 0.8
        weights[idx] = value
        for other, suffix in (("_L", "_R"), ("_R", "_L")):
            if name.endswith(other) and name[:-2] + suffix in names:
                weights[names.index(name[:-2] + suffix)] = value * rng.uniform(0.8, 1.0)
    for idx, name in enumerate(names):
        if name.startswith("eyeLook") or name.startswith("eyeBlink"):
            weights[idx] = min(weights[idx], 0.4)
        if name == "jawOpen":
            weights[idx] = min(weights[idx], 0.4)
    return weights
