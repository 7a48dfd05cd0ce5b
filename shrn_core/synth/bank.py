"""Appearance banks: skin albedo textures (canonical UV space) and background crops.

``build_bank(photos)`` turns real face photos into albedo textures once: mediapipe's 478 landmarks
of each photo give a piecewise-affine map from the photo to the canonical texture
(``texture_space``); texels on triangles that face away from the camera are taken from the mirror
side, the rest of the square is filled by diffusion; slow lighting gradients are divided out
(a normalised Gaussian blur of the luminance stands for the shading). Photos whose face is small,
turned far, or grey are skipped. Regions of each photo away from the face become background crops.
This step needs mediapipe and OpenCV; loading and using a bank needs only numpy.

``procedural_bank(seed)`` makes a bank without any photo: skin tones across the range of human
skin, blush, lips, brows, eyes and pores painted into the canonical texture, and painted
backgrounds. ``shrn synth`` uses it when no ``--photos``/``--bank`` is given.

A bank file is ``.npz`` (see docs/formats.md, "synth appearance bank"): ``format``
``shrn.synth_bank``, ``schema_version`` 1, ``albedo`` (N, T, T, 3) uint8 sRGB with row 0 at v = 0,
``skin`` (N, 3) float32 mean skin colour (sRGB 0..1), ``background`` (M, S, S, 3) uint8,
``sources`` (N,) names of the photos (or ``procedural``).
"""
from __future__ import annotations

import hashlib
import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..errors import FaceError, FormatError, InputError
from .texture_space import canonical_mesh

log = logging.getLogger("shrn.synth")

BANK_FORMAT = "shrn.synth_bank"
BANK_VERSION = 1
TEXTURE_SIZE = 256
BACKGROUND_SIZE = 192
MIN_EYE_DISTANCE_PX = 36.0  # smaller faces give blurry textures
MAX_TURN = 0.35  # skip photos turned further than this (|yaw| ~ 20 degrees, from the eye-distance ratio)
MIN_CHROMA = 0.035  # skip grey photos: mean |chroma| of the skin below this
# mediapipe vertices of skin patches (forehead, both cheeks) used for the mean skin colour
SKIN_PATCH_VERTICES = (151, 9, 108, 337, 50, 280, 205, 425, 36, 266)


@dataclass(frozen=True)
class AppearanceBank:
    albedo: np.ndarray  # (N, T, T, 3) uint8 sRGB, row 0 = v 0 (canonical UV space)
    skin: np.ndarray  # (N, 3) float32 sRGB in 0..1
    background: np.ndarray  # (M, S, S, 3) uint8 sRGB
    sources: tuple[str, ...]  # per albedo

    def __post_init__(self):
        if len(self.albedo) == 0 or len(self.background) == 0:
            raise InputError("an appearance bank needs at least one albedo texture and one background")

    @property
    def procedural(self) -> bool:
        return all(s.startswith("procedural") for s in self.sources)

    def fingerprint(self) -> str:
        digest = hashlib.sha1()
        for array in (self.albedo, self.background):
            digest.update(np.ascontiguousarray(array[:: max(1, len(array) // 16)]).tobytes())
        return digest.hexdigest()[:12]


def save_bank(bank: AppearanceBank, path: str | Path) -> Path:
    from ..formats.core import write_bytes  # noqa: PLC0415

    buffer = io.BytesIO()
    np.savez_compressed(buffer, format=np.array(BANK_FORMAT), schema_version=np.array(BANK_VERSION), albedo=bank.albedo,
                        skin=bank.skin, background=bank.background, sources=np.array(bank.sources))
    return write_bytes(path, buffer.getvalue())


def load_bank(path: str | Path) -> AppearanceBank:
    path = Path(path)
    if not path.is_file():
        raise InputError("appearance bank not found", path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError) as exc:
        raise FormatError(f"not a readable .npz ({exc.__class__.__name__})", path) from None
    if str(arrays.get("format", "")) != BANK_FORMAT:
        raise FormatError(f"not an appearance bank (expected format {BANK_FORMAT!r})", path)
    if int(arrays.get("schema_version", -1)) != BANK_VERSION:
        raise FormatError(f"unsupported schema_version {arrays.get('schema_version')!r} (this shrn reads {BANK_VERSION})",
                          path)
    albedo, background = arrays.get("albedo"), arrays.get("background")
    if albedo is None or albedo.ndim != 4 or albedo.shape[3] != 3 or albedo.dtype != np.uint8 or \
            background is None or background.ndim != 4 or background.dtype != np.uint8:
        raise FormatError("bank arrays have the wrong shape or type (albedo (N,T,T,3) and background (M,S,S,3) uint8)",
                          path)
    return AppearanceBank(albedo, arrays["skin"].astype(np.float32), background,
                          tuple(str(s) for s in arrays["sources"]))


def default_bank_path(photos: Sequence[Path]) -> Path:
    """Cache file for a bank built from ``photos``: ``$XDG_CACHE_HOME/shrn/synth/bank-<hash>.npz``."""
    digest = hashlib.sha1(f"v{BANK_VERSION}".encode())
    for path in sorted(Path(p).resolve() for p in photos):
        stat = path.stat()
        digest.update(f"{path}:{stat.st_size}:{int(stat.st_mtime)}".encode())
    return cache_dir() / f"bank-{digest.hexdigest()[:16]}.npz"


# ------------------------------------------------------------------ from photos


def build_bank(photos: Iterable[str | Path], texture_size: int = TEXTURE_SIZE, progress=None) -> AppearanceBank:
    """Albedo textures and background crops from face photos (needs mediapipe and OpenCV)."""
    from ..face import analyze_image  # noqa: PLC0415
    from ..formats.image import read_image  # noqa: PLC0415

    albedos, skins, sources, backgrounds = [], [], [], []
    photos = [Path(p) for p in photos]
    face_log = logging.getLogger("shrn.face")
    level = face_log.level
    face_log.setLevel(logging.ERROR)  # "N faces found, using the largest" is expected for group photos
    try:
        return _build(photos, texture_size, progress, analyze_image, read_image, albedos, skins, sources, backgrounds)
    finally:
        face_log.setLevel(level)


def _build(photos, texture_size, progress, analyze_image, read_image, albedos, skins, sources, backgrounds):
    for path in photos:
        if progress:
            progress(path)
        try:
            image = read_image(path)
            analysis = analyze_image(image, hands=False, image_path=str(path))
        except (FaceError, InputError) as err:
            log.info("bank: skipping %s (%s)", path.name, err)
            continue
        landmarks = analysis.face.landmarks
        backgrounds.extend(background_crops(image, landmarks))
        reason = photo_problem(image, landmarks)
        if reason:
            log.info("bank: no texture from %s (%s)", path.name, reason)
            continue
        texture, skin = albedo_texture(image, landmarks, texture_size)
        if texture is None:
            log.info("bank: no texture from %s (%s)", path.name, skin)
            continue
        albedos.append(texture)
        skins.append(skin)
        sources.append(path.name)
    if not albedos:
        raise InputError(f"none of the {len(photos)} photos gave a skin texture (frontal faces with at least "
                         f"{MIN_EYE_DISTANCE_PX:.0f} px between the eyes are needed)")
    if not backgrounds:
        backgrounds = list(procedural_backgrounds(np.random.default_rng(0), 8))
    return AppearanceBank(np.stack(albedos), np.asarray(skins, np.float32), np.stack(backgrounds), tuple(sources))


def photo_problem(image: np.ndarray, landmarks: np.ndarray) -> str | None:
    """Why a photo cannot give a texture (too small, turned, grey), else None."""
    points = landmarks[:, :2].astype(np.float64)
    eye_distance = np.linalg.norm(points[263] - points[33])
    if eye_distance < MIN_EYE_DISTANCE_PX:
        return f"face too small ({eye_distance:.0f} px between the outer eye corners)"
    nose = points[4]
    right, left = np.linalg.norm(nose - points[234]), np.linalg.norm(nose - points[454])
    turn = abs(right - left) / max(right + left, 1e-6)
    if turn > MAX_TURN:
        return f"face turned too far ({turn:.2f})"
    patch = _skin_samples(image, points)
    rgb = patch / 255.0
    chroma = np.abs(rgb - rgb.mean(1, keepdims=True)).mean()
    if chroma < MIN_CHROMA:
        return "no colour (greyscale photo)"
    return None


def _skin_samples(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    radius = max(2, int(0.03 * np.linalg.norm(points[263] - points[33])))
    samples = []
    for vertex in SKIN_PATCH_VERTICES:
        x, y = np.round(points[vertex]).astype(int)
        patch = image[max(y - radius, 0): y + radius + 1, max(x - radius, 0): x + radius + 1]
        if patch.size:
            samples.append(patch.reshape(-1, 3))
    return np.concatenate(samples).astype(np.float64) if samples else np.zeros((1, 3))


def albedo_texture(image: np.ndarray, landmarks: np.ndarray, size: int = TEXTURE_SIZE):
    """(texture (size, size, 3) uint8, skin colour (3,) in 0..1), or (None, reason)."""
    import cv2  # noqa: PLC0415
    import torch  # noqa: PLC0415

    from ..render import create_context, interpolate, rasterize  # noqa: PLC0415

    mesh = canonical_mesh()
    points = landmarks[:, :3].astype(np.float64)
    image_xy = np.concatenate([points[:468, :2], [points[loop, :2].mean(0) for loop in mesh.holes]])
    image_z = np.concatenate([points[:468, 2], [points[loop, 2].mean() for loop in mesh.holes]])
    facing = _facing(np.column_stack([image_xy, image_z]), mesh.triangles)
    weight_per_vertex = np.zeros(len(image_xy))
    counts = np.zeros(len(image_xy))
    for k in range(3):
        np.add.at(weight_per_vertex, mesh.triangles[:, k], facing)
        np.add.at(counts, mesh.triangles[:, k], 1)
    weight_per_vertex /= np.maximum(counts, 1)
    uv = mesh.uvs.astype(np.float32)
    pos = torch.tensor(np.column_stack([2 * uv - 1, np.zeros((len(uv), 1)), np.ones((len(uv), 1))]),
                       dtype=torch.float32)[None]
    tri = torch.tensor(mesh.triangles, dtype=torch.int32)
    attrs = torch.tensor(np.column_stack([image_xy, weight_per_vertex]), dtype=torch.float32)[None]
    rast, _ = rasterize(create_context("torch", "cpu"), pos, tri, (size, size))
    values = interpolate(attrs, rast, tri)[0][0].numpy()
    covered = rast[0, ..., 3].numpy() > 0
    map_x, map_y = values[..., 0].astype(np.float32), values[..., 1].astype(np.float32)
    photo = image.astype(np.float32) / 255.0
    # the photo is sampled at the texture's resolution: pre-blur big photos to avoid aliasing
    step = np.median(np.abs(np.diff(map_x[covered.any(1)], axis=1)[covered[covered.any(1)][:, 1:]]))
    if step > 1.5:
        photo = cv2.GaussianBlur(photo, (0, 0), 0.5 * step)
    texture = cv2.remap(photo, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    weight = np.where(covered, np.clip((values[..., 2] - 0.3) / 0.3, 0, 1), 0.0).astype(np.float32)
    if (weight > 0.5).mean() < 0.2:
        return None, "too little of the face is visible"
    texture = _delight(texture, weight > 0.3, size)
    # blend in the mirror side where the photo sees the surface obliquely (the canonical UVs are
    # left/right symmetric: u -> 1 - u); smooth weights avoid seams between the two sides
    mirrored, mirror_weight = texture[:, ::-1], weight[:, ::-1]
    own, other = weight**4, mirror_weight**4
    total = own + other
    texture = np.where((total > 1e-6)[..., None], (own[..., None] * texture + other[..., None] * mirrored)
                       / np.maximum(total, 1e-6)[..., None], texture)
    valid = (np.maximum(weight, mirror_weight) > 0.3) & ~_hair_near_outline(texture, mesh, image, points[:, :2])
    texture = _fill(texture, valid)
    skin = _texture_skin(texture, mesh)
    return np.clip(texture * 255 + 0.5, 0, 255).astype(np.uint8), skin


def _facing(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Per triangle, how squarely it faces the camera: image-plane area / 3D area (1 = frontal, <0 = away).

    mediapipe's z grows away from the camera and y points down, so a front-facing triangle of the
    (counter-clockwise from the front) topology has a negative signed image area."""
    a, b, c = (points[triangles[:, k]] for k in range(3))
    area2d = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    area3d = np.linalg.norm(np.cross(b - a, c - a), axis=1)
    return -area2d / np.maximum(area3d, 1e-9)


def _fill(texture: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Fill invalid texels from valid ones by repeated normalised blurring (push-pull)."""
    import cv2  # noqa: PLC0415

    out = texture.copy()
    weight = valid.astype(np.float32)
    filled = out * weight[..., None]
    for sigma in (2, 4, 8, 16, 32, 64):
        blurred = cv2.GaussianBlur(filled, (0, 0), sigma)
        norm = cv2.GaussianBlur(weight, (0, 0), sigma)
        estimate = blurred / np.maximum(norm, 1e-6)[..., None]
        missing = (weight < 0.5) & (norm > 1e-3)
        out[missing] = estimate[missing]
        filled = np.where(missing[..., None], estimate, filled)
        weight = np.where(missing, 1.0, weight)
    return out


def _delight(texture: np.ndarray, valid: np.ndarray, size: int) -> np.ndarray:
    """Divide out slow brightness changes (the photo's shading), keeping colour and fine detail."""
    import cv2  # noqa: PLC0415

    luminance = texture @ np.array([0.299, 0.587, 0.114], np.float32)
    weight = valid.astype(np.float32)
    sigma = size / 10
    smooth = cv2.GaussianBlur(luminance * weight, (0, 0), sigma) / np.maximum(cv2.GaussianBlur(weight, (0, 0), sigma), 1e-4)
    level = np.median(luminance[valid])
    gain = np.clip(level / np.maximum(smooth, 1e-3), 0.5, 2.5)
    return np.clip(texture * gain[..., None], 0, 1)


def _hair_near_outline(texture: np.ndarray, mesh, image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Texels near the face outline whose colour is far from the skin's (hair, hats, background)."""
    size = texture.shape[0]
    skin = np.median(_skin_samples(image, points), axis=0) / 255.0
    centres = (np.arange(size) + 0.5) / size
    grid = np.stack(np.meshgrid(centres, centres), -1).reshape(-1, 2)
    from .texture_space import _distance_to_polygon  # noqa: PLC0415

    near = (_distance_to_polygon(grid, mesh.uvs[mesh.outline]) < 0.12).reshape(size, size)
    ratio = texture / np.maximum(texture.sum(-1, keepdims=True), 1e-3)
    skin_ratio = skin / max(skin.sum(), 1e-3)
    chroma_far = np.abs(ratio - skin_ratio).sum(-1) > 0.09
    luminance = texture.mean(-1)
    darker = luminance < 0.72 * skin.mean()
    return near & (chroma_far | darker)


def _texture_skin(texture: np.ndarray, mesh) -> np.ndarray:
    """Median colour of a band just inside the face outline (forehead, temples, cheeks, jaw): the colour
    the texture fades to beyond the face."""
    size = texture.shape[0]
    centres = (np.arange(size) + 0.5) / size
    grid = np.stack(np.meshgrid(centres, centres), -1).reshape(-1, 2)
    from .texture_space import _distance_to_polygon, _inside_polygon  # noqa: PLC0415

    outline = mesh.uvs[mesh.outline]
    inside = _inside_polygon(grid, outline)
    band = inside & (_distance_to_polygon(grid, outline) < 0.06)
    return np.median(texture.reshape(-1, 3)[band], axis=0).astype(np.float32)


def background_crops(image: np.ndarray, landmarks: np.ndarray, size: int = BACKGROUND_SIZE) -> list[np.ndarray]:
    """Square crops of the photo that stay clear of the face (its landmark box grown by half its size)."""
    import cv2  # noqa: PLC0415

    height, width = image.shape[:2]
    x0, y0 = landmarks[:, :2].min(0)
    x1, y1 = landmarks[:, :2].max(0)
    grow_x, grow_y = 0.5 * (x1 - x0), 0.6 * (y1 - y0)
    box = (x0 - grow_x, y0 - grow_y, x1 + grow_x, y1 + 10 * grow_y)  # below the face: body, not background
    regions = [(0, 0, width, box[1]), (0, 0, box[0], height), (box[2], 0, width, height)]
    crops = []
    for rx0, ry0, rx1, ry1 in regions:
        rx0, ry0, rx1, ry1 = (int(max(0, min(v, lim))) for v, lim in zip((rx0, ry0, rx1, ry1), (width, height) * 2))
        side = min(rx1 - rx0, ry1 - ry0)
        if side < 48:
            continue
        cx, cy = (rx0 + rx1) // 2, (ry0 + ry1) // 2
        crop = image[cy - side // 2: cy - side // 2 + side, cx - side // 2: cx - side // 2 + side]
        crops.append(cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA))
    return crops


# ------------------------------------------------------------------ procedural


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "shrn" / "synth"


def cached_procedural_bank(seed: int = 0, count: int = 12) -> AppearanceBank:
    """``procedural_bank`` through a cache file (painting takes a few seconds per texture)."""
    path = cache_dir() / f"procedural-v{BANK_VERSION}-{seed}-{count}.npz"
    if path.is_file():
        try:
            return load_bank(path)
        except (InputError, FormatError):
            pass
    bank = procedural_bank(seed, count)
    try:
        save_bank(bank, path)
    except Exception as err:  # an unwritable cache only costs time
        log.debug("could not cache the procedural bank at %s: %s", path, err)
    return bank


def procedural_bank(seed: int = 0, count: int = 12, texture_size: int = TEXTURE_SIZE) -> AppearanceBank:
    """A bank painted from scratch (no photos), deterministic per ``seed``."""
    from .procedural import procedural_backgrounds as backgrounds, procedural_skin  # noqa: PLC0415

    rng = np.random.default_rng([seed, 7])
    textures, skins = [], []
    for index in range(count):
        texture, skin = procedural_skin(np.random.default_rng([seed, 7, index]), texture_size)
        textures.append(texture)
        skins.append(skin)
    return AppearanceBank(np.stack(textures), np.asarray(skins, np.float32), np.stack(backgrounds(rng, 16)),
                          tuple(f"procedural-{i}" for i in range(count)))


def procedural_backgrounds(rng: np.random.Generator, count: int) -> list[np.ndarray]:
    from .procedural import procedural_backgrounds as backgrounds  # noqa: PLC0415

    return backgrounds(rng, count)
