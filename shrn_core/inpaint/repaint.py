"""The ``repaint`` backend: RePaint (Lugmayr et al., CVPR 2022) on a DDPM face model, via diffusers.

The face is cut out as an aligned square crop of the model's resolution (``face_crop``), the
occluded crop pixels are resampled by RePaint -- at every reverse-diffusion step the known pixels are
replaced by a correctly noised copy of the photo, and every ``jump_length`` steps the chain jumps
back in time ``jump_n_sample - 1`` times to harmonise generated and known content -- and the result
is pasted back with a feathered edge. Occluded pixels outside the crop get a diffusion fill.

The model is a diffusers ``UNet2DModel`` in a local folder (``--weights DIR``), either the model
folder itself (``config.json`` + ``diffusion_pytorch_model.safetensors`` or ``.bin``) or a
``DDPMPipeline`` folder holding ``unet/`` (and optionally ``scheduler/``). Nothing is downloaded.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, WeightsError
from ..face.types import Face
from ..formats.core import parse_json_file
from .base import INPAINTERS, FillResult, Inpainter
from .face_crop import aligned_crop, inside_photo, paste_back, warp_to_crop
from .poisson import harmonic_fill

log = logging.getLogger("shrn.inpaint")

# The RePaint paper's settings for its face models: T = 250 steps, jumps of j = 10, r = 10 resamplings.
DEFAULT_STEPS = 250
DEFAULT_JUMP_LENGTH = 10
DEFAULT_JUMP_N_SAMPLE = 10
WEIGHT_FILES = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
FEATHER_FRACTION = 1 / 32  # of the crop side


@dataclass
class RePaintModel:
    unet: Any  # diffusers.UNet2DModel
    scheduler_config: dict
    folder: Path

    @property
    def size(self) -> int:
        size = self.unet.config.sample_size
        return int(size[0] if isinstance(size, (list, tuple)) else size)


_cache: dict[tuple[str, str], RePaintModel] = {}
_cache_lock = threading.Lock()


def expected_layout() -> str:
    return ("expected a diffusers UNet2DModel folder (config.json + diffusion_pytorch_model.safetensors or .bin) "
            "or a DDPMPipeline folder holding unet/ (and optionally scheduler/)")


def locate_model(folder: str | Path) -> tuple[Path, Path | None]:
    """(UNet folder, scheduler config file or None); WeightsError naming what is missing."""
    if folder is None:
        raise WeightsError("the repaint backend needs --weights DIR: " + expected_layout())
    folder = Path(folder)
    if not folder.is_dir():
        raise WeightsError("RePaint model folder not found; " + expected_layout(), folder)
    unet_dir = folder / "unet" if (folder / "unet").is_dir() else folder
    config = unet_dir / "config.json"
    if not config.is_file():
        raise WeightsError(f"missing {config.relative_to(folder) if unet_dir != folder else 'config.json'}; "
                           + expected_layout(), folder)
    if not any((unet_dir / name).is_file() for name in WEIGHT_FILES):
        raise WeightsError(f"no weights file ({' or '.join(WEIGHT_FILES)}) in {unet_dir}; " + expected_layout(), folder)
    document = parse_json_file(config, error=WeightsError)
    class_name = document.get("_class_name", "UNet2DModel") if isinstance(document, dict) else None
    if class_name != "UNet2DModel":
        raise WeightsError(f"config.json describes a {class_name!r}, not a UNet2DModel (pixel-space DDPM)", config)
    scheduler = next((p for p in (folder / "scheduler" / "scheduler_config.json", folder / "scheduler_config.json",
                                  unet_dir / "scheduler_config.json") if p.is_file()), None)
    return unet_dir, scheduler


def load_model(folder: str | Path, device: str = "cpu") -> RePaintModel:
    """Load (once per folder and device) the UNet and the scheduler settings."""
    unet_dir, scheduler_file = locate_model(folder)
    key = (str(Path(unet_dir).resolve()), str(device))
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    UNet2DModel = _diffusers().UNet2DModel
    _refuse_pickled_code(unet_dir)
    try:
        # low_cpu_mem_usage needs the optional 'accelerate' package and only saves memory while loading
        unet = UNet2DModel.from_pretrained(unet_dir, local_files_only=True, low_cpu_mem_usage=False)
    except Exception as exc:  # diffusers/safetensors raise many types for unreadable or mismatched files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise WeightsError(f"cannot load the UNet2DModel ({first[:300]})", unet_dir) from None
    if unet.config.in_channels != 3 or unet.config.out_channels != 3:
        raise WeightsError(f"model maps {unet.config.in_channels} to {unet.config.out_channels} channels; "
                           "RePaint needs an RGB noise-prediction model (3 -> 3)", unet_dir)
    scheduler_config: dict = {}
    if scheduler_file is not None:
        scheduler_config = parse_json_file(scheduler_file, error=WeightsError)
        if not isinstance(scheduler_config, dict):
            raise WeightsError("scheduler config must be a JSON object", scheduler_file)
    model = RePaintModel(unet.to(device).eval(), scheduler_config, Path(folder))
    with _cache_lock:
        _cache[key] = model
    return model


def _refuse_pickled_code(unet_dir: Path) -> None:
    """A ``.bin`` (pickle) weights file is opened with ``weights_only=True`` first, so a file holding
    code is refused here whatever diffusers/torch version does the real loading (safetensors holds
    no code)."""
    if (unet_dir / WEIGHT_FILES[0]).is_file():
        return
    from ..formats.checkpoint import load_checkpoint

    load_checkpoint(unet_dir / WEIGHT_FILES[1], "UNet weights", mmap=True)


def _diffusers():
    try:
        import diffusers
    except ImportError:
        raise InputError("the repaint backend needs the 'diffusers' package: pip install 'shrn[repaint]'") from None
    return diffusers


def make_scheduler(config: dict):
    RePaintScheduler = _diffusers().RePaintScheduler

    known = {"num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "trained_betas", "clip_sample"}
    return RePaintScheduler(**{k: v for k, v in config.items() if k in known and v is not None})


def run_repaint(model: RePaintModel, image: np.ndarray, known: np.ndarray, steps: int, jump_length: int,
                jump_n_sample: int, seed: int, eta: float = 0.0, progress: bool = False) -> np.ndarray:
    """RePaint on one crop: ``image`` (SxSx3 float in [0, 1]), ``known`` (SxS bool). Returns SxSx3 in [0, 1]."""
    import torch

    device = model.unet.device
    dtype = model.unet.dtype
    scheduler = make_scheduler(model.scheduler_config)
    scheduler.set_timesteps(steps, jump_length, jump_n_sample, device)
    scheduler.eta = eta
    original = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None].to(device, dtype) * 2 - 1
    keep = torch.from_numpy(known.astype(np.float32))[None, None].to(device, dtype)
    generator = torch.Generator(device=device).manual_seed(int(seed))
    sample = torch.randn(original.shape, generator=generator, device=device, dtype=dtype)
    timesteps = scheduler.timesteps
    t_last = timesteps[0] + 1
    with torch.no_grad(), _progress(len(timesteps), progress) as advance:
        for t in timesteps:
            if t < t_last:
                noise_pred = model.unet(sample, t).sample
                sample = scheduler.step(noise_pred, t, sample, original, keep, generator).prev_sample
            else:
                sample = scheduler.undo_step(sample, t_last, generator)
            sample = sample.to(dtype)  # the scheduler's float32 constants would promote a half-precision model's sample
            t_last = t
            advance()
    result = (sample / 2 + 0.5).clamp(0, 1)[0].permute(1, 2, 0).float().cpu().numpy()
    return result


class _progress:
    """A rich progress bar on stderr for the diffusion steps (a no-op when disabled)."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled, self.bar = total, enabled, None

    def __enter__(self):
        if not self.enabled:
            return lambda: None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(TextColumn("[bold]repaint[/]"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                            console=Console(stderr=True), transient=True)
        self.bar.__enter__()
        task = self.bar.add_task("", total=self.total)
        return lambda: self.bar.advance(task)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)
        return False


class RePaintInpainter(Inpainter):
    name = "repaint"
    needs_face = True
    requires_face = True  # the crop is aligned on the face: no face, no crop
    generative = True

    def __init__(self, weights: str | Path | None = None, steps: int = DEFAULT_STEPS,
                 jump_length: int = DEFAULT_JUMP_LENGTH, jump_n_sample: int = DEFAULT_JUMP_N_SAMPLE,
                 device: str = "auto", seed: int = 0, eta: float = 0.0, progress: bool = False):
        for label, value in (("steps", steps), ("jump_length", jump_length), ("jump_n_sample", jump_n_sample)):
            if int(value) < 1:
                raise InputError(f"repaint: {label} must be >= 1, got {value}")
        if int(jump_length) >= int(steps) and int(jump_n_sample) > 1:
            log.debug("jump_length >= steps: RePaint makes no jumps")
        from ..device import resolve_device

        self.device = resolve_device(device)
        self.model = load_model(weights, str(self.device))
        self.steps, self.jump_length, self.jump_n_sample = int(steps), int(jump_length), int(jump_n_sample)
        self.seed, self.eta, self.progress = int(seed), float(eta), bool(progress)

    def fill(self, rgb: np.ndarray, mask: np.ndarray, face: Face | None, bit_depth: int) -> FillResult:
        if face is None:
            from ..errors import FaceError

            raise FaceError("repaint needs a face to align its crop on, and none was found")
        size = self.model.size
        crop = aligned_crop(face, size)
        crop_rgb = warp_to_crop(rgb, crop)
        crop_hole = warp_to_crop(mask.astype(np.float32), crop) > 0.0  # any occluded share: regenerate
        known = ~crop_hole & inside_photo(mask.shape, crop)
        generated = run_repaint(self.model, crop_rgb, known, self.steps, self.jump_length, self.jump_n_sample,
                                self.seed, self.eta, self.progress)
        pasted, weight = paste_back(generated, crop, mask.shape, FEATHER_FRACTION * size)
        outside = mask & (weight < 1)
        if not outside.any():
            base = rgb
        elif mask.all():  # nothing known to diffuse from: a neutral grey beyond the crop
            base = np.full_like(rgb, 0.5)
        else:
            base = harmonic_fill(rgb, mask)
        filled = weight[:, :, None] * pasted + (1 - weight[:, :, None]) * base
        info = {"method": "repaint", "steps": self.steps, "jump_length": self.jump_length,
                "jump_n_sample": self.jump_n_sample, "crop_size": size, "seed": self.seed,
                "outside_crop_fraction": round(float((mask & (weight <= 0)).sum() / max(mask.sum(), 1)), 4),
                "model_evaluations": int(_count_evaluations(self.steps, self.jump_length, self.jump_n_sample))}
        return FillResult(filled.astype(np.float32), info)


def _count_evaluations(steps: int, jump_length: int, jump_n_sample: int) -> int:
    scheduler = make_scheduler({})
    scheduler.set_timesteps(steps, jump_length, jump_n_sample)
    timesteps = scheduler.timesteps.tolist()
    evaluations, last = 0, timesteps[0] + 1
    for t in timesteps:
        evaluations += t < last
        last = t
    return evaluations


@INPAINTERS.register("repaint")
def _repaint(**options) -> Inpainter:
    return RePaintInpainter(**options)
