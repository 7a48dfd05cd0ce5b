"""Synthetic faces of known 3D shape, clean and occluded: a ground-truth benchmark and a data factory.

Python API (docs/synth.md)::

    from shrn_core.synth import SynthOptions, generate, write_sample, appearance_bank
    bank = appearance_bank(photos="faces/")             # or appearance_bank(bank="bank.npz"), or None: painted
    for sample in generate(100, seed=0, options=SynthOptions(model="sfm"), bank=bank):
        write_sample(sample, "out/")                    # <id>.png, <id>_occ.png and their .gt.* files

    # training batches on the GPU, no files:
    generator = Generator(SynthOptions(size=(256, 256), device="cuda"), bank)
    batch = generator.tensors(seed=0, indices=range(64))   # images (B,3,H,W), masks (B,1,H,W) on the device
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Optional

from .bank import (AppearanceBank, build_bank, cached_procedural_bank, default_bank_path, load_bank, procedural_bank,
                   save_bank)
from .generate import MASK_DEFINITION, Generator, Sample, TensorBatch
from .models import MODELS, ShapeModel, export_sfm_arrays, load_ict, load_sfm
from .params import DEFAULT_OCCLUDERS, OCCLUDER_KINDS, SampleParams, SynthOptions, parse_kinds, parse_size


def generate(count: int, seed: int = 0, options: Optional[SynthOptions] = None,
             bank: Optional[AppearanceBank] = None, start: int = 0) -> Iterator[Sample]:
    """Samples ``start .. start + count - 1`` of the run ``seed`` (sample k is the same in any run with
    the same seed and options, whatever the batch size)."""
    return Generator(options, bank).samples(count, seed, start)


def appearance_bank(bank: str | Path | None = None, photos: str | Path | None = None, progress=None) -> AppearanceBank:
    """The appearance to render with: ``bank`` (an existing file, or where to cache one built from
    ``photos``), else one built from ``photos`` and cached under ``default_bank_path``, else the
    painted (procedural) bank."""
    from ..errors import InputError  # noqa: PLC0415
    from ..formats.image import IMAGE_EXTENSIONS  # noqa: PLC0415

    if bank is not None and Path(bank).is_file():
        return load_bank(bank)
    if photos is None:
        if bank is not None:
            raise InputError("appearance bank not found (give --photos DIR to build it there)", bank)
        return cached_procedural_bank()
    folder = Path(photos)
    if not folder.is_dir():
        raise InputError("photo folder not found", folder)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        raise InputError("folder holds no images", folder)
    target = Path(bank) if bank is not None else default_bank_path(files)
    if target.is_file():
        return load_bank(target)
    built = build_bank(files, progress=progress)
    save_bank(built, target)
    return built


def write_sample(sample: Sample, out_dir: str | Path, bank: Optional[AppearanceBank] = None):
    """Write a sample's files (see ``files.write_sample``); ``bank`` adds its description to the JSON."""
    from .files import write_sample as _write  # noqa: PLC0415 - needs OpenCV (image writing)

    info = None
    if bank is not None:
        info = {"procedural": bank.procedural, "fingerprint": bank.fingerprint(), "textures": len(bank.albedo),
                "albedo_source": bank.sources[sample.params.albedo_index]}
    return _write(sample, out_dir, info)


__all__ = [
    "AppearanceBank", "DEFAULT_OCCLUDERS", "Generator", "MASK_DEFINITION", "MODELS", "OCCLUDER_KINDS", "Sample",
    "SampleParams", "ShapeModel", "SynthOptions", "TensorBatch", "appearance_bank", "build_bank", "default_bank_path",
    "export_sfm_arrays", "generate", "load_bank", "load_ict", "load_sfm", "parse_kinds", "parse_size",
    "procedural_bank", "save_bank", "write_sample",
]
