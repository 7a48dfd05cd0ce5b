"""Stage backends created once per run and the per-stage steps the runner calls."""
from __future__ import annotations

import logging
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ..errors import InputError
from .options import PipelineOptions, StageRecord

if TYPE_CHECKING:
    from .runner import StageFiles, _LazyState

log = logging.getLogger("shrn.pipeline")


class Engines:
    """Holds each stage's backend so models load once for a whole folder."""

    def __init__(self, options: PipelineOptions):
        self.options = options
        self._cache: dict[str, Any] = {}

    def _get(self, key: str, factory):
        if key not in self._cache:
            self._cache[key] = factory()
        return self._cache[key]

    def load(self) -> None:
        """Create every backend now (so per-image timings exclude model loading)."""
        from ..face import load_models

        load_models()
        self.segmenter()
        if not self.options.skip_inpaint:
            self.inpainter()
        from ..reconstruct import CALL_OPTIONS, get_backend

        construct = {k: v for k, v in self.options.reconstruct_options.items() if k not in CALL_OPTIONS and v is not None}
        get_backend(self.options.reconstruct_backend, self.options.device, **construct)

    def segmenter(self):
        from ..segment import create_backend

        return self._get("segment", lambda: create_backend(self.options.segment_backend, device=self.options.device,
                                                           **self.options.segment_options))

    def inpainter(self):
        from ..inpaint import create_backend

        opts = dict(self.options.inpaint_options)
        if self.options.inpaint_backend == "repaint":
            opts.setdefault("device", self.options.device)
        return self._get("inpaint", lambda: create_backend(self.options.inpaint_backend, **opts))

    # --- stages -------------------------------------------------------------------------
    def run_face(self, files: "StageFiles", state: "_LazyState") -> StageRecord:
        from ..face import analyze_image
        from ..formats.face import write_face_json

        analysis = analyze_image(state.rgb, self.options.face_index, image_path=str(files.image))
        write_face_json(files.face, analysis)
        state.analysis = analysis
        return StageRecord("face", "computed", outputs={"face": str(files.face)},
                           info={"faces": len(analysis.faces), "hands": len(analysis.hands)})

    def run_segment(self, files: "StageFiles", state: "_LazyState") -> StageRecord:
        from ..formats.mask import write_segmentation
        from ..segment import segment

        result = segment(state.rgb, state.face_analysis(), backend=self.segmenter())
        written = write_segmentation(files.out_dir, files.stem, result)
        return StageRecord("segment", "computed", backend=self.options.segment_backend,
                           outputs={k: str(v) for k, v in written.items()},
                           info={"occluded_fraction": round(result.occluded_fraction, 4)})

    def provide_mask(self, files: "StageFiles", state: "_LazyState", mask_path) -> StageRecord:
        from ..formats.mask import read_mask

        mask = read_mask(mask_path)
        if mask.shape[:2] != state.raw.shape[:2]:
            raise InputError(f"mask is {mask.shape[1]}x{mask.shape[0]} but the photo is "
                             f"{state.raw.shape[1]}x{state.raw.shape[0]}", mask_path)
        if not files.mask.exists() or not files.mask.samefile(mask_path):
            from ..formats.core import atomic_write

            with atomic_write(files.mask) as handle, open(mask_path, "rb") as source:
                shutil.copyfileobj(source, handle)
        return StageRecord("segment", "provided", outputs={"mask": str(files.mask)})

    def run_inpaint(self, files: "StageFiles", state: "_LazyState") -> StageRecord:
        from ..formats.image import write_image
        from ..formats.mask import read_mask
        from ..inpaint import inpaint_with_report

        mask = read_mask(files.mask)
        result = inpaint_with_report(state.raw, mask, state.face_analysis(), backend=self.inpainter())
        write_image(files.inpainted, result.image)
        info = result.summary()
        warnings = info.pop("warnings", [])
        # an unoccluded face is the normal case of a run, not something to warn about
        info["warnings"] = warnings if mask.any() else []
        return StageRecord("inpaint", "computed", backend=self.options.inpaint_backend,
                           outputs={"inpainted": str(files.inpainted)}, info=info)

    def _reconstruct_inputs(self, files: "StageFiles", state: "_LazyState"):
        from ..formats.image import read_image
        from ..formats.mask import read_mask

        photo = read_image(files.image if self.options.skip_inpaint else files.inpainted)
        use_mask = self.options.skip_inpaint or self.options.reconstruct_mask
        mask = read_mask(files.mask) if use_mask and files.mask.is_file() else None
        state.loaded = {"inpainted": None if self.options.skip_inpaint else photo, "mask": mask}  # for the summary
        return photo, mask, state.face_analysis()

    def _reconstruct_record(self, files: "StageFiles", state: "_LazyState", recon) -> StageRecord:
        from ..reconstruct import write_reconstruction

        written = write_reconstruction(recon, files.out_dir, files.stem)
        state.reconstruction = recon  # the summary sheet renders it without reading the files back
        info = {"warnings": list(recon.info.get("warnings", []))}
        if recon.info.get("timings"):
            info["timings"] = dict(recon.info["timings"])
        return StageRecord("reconstruct", "computed", backend=self.options.reconstruct_backend,
                           outputs={k: str(v) for k, v in written.items()}, info=info)

    def run_reconstruct(self, files: "StageFiles", state: "_LazyState") -> StageRecord:
        from ..reconstruct import reconstruct

        photo, mask, analysis = self._reconstruct_inputs(files, state)
        recon = reconstruct(photo, mask=mask, face_analysis=analysis, backend=self.options.reconstruct_backend,
                            device=self.options.device, **dict(self.options.reconstruct_options))
        return self._reconstruct_record(files, state, recon)

    def run_reconstruct_batch(self, items: list) -> list[StageRecord]:
        """Several independent photos in one batched fit; ``items`` are (files, state) pairs."""
        from ..reconstruct import reconstruct_batch

        photos, masks, analyses = zip(*(self._reconstruct_inputs(files, state) for files, state in items))
        recons = reconstruct_batch(list(photos), list(masks), face_analyses=list(analyses),
                                   backend=self.options.reconstruct_backend, device=self.options.device,
                                   **dict(self.options.reconstruct_options))
        return parallel_map(lambda pair: self._reconstruct_record(*pair[0], pair[1]), list(zip(items, recons)))


def parallel_map(function: Callable, items: Sequence) -> list:
    """``[function(item) for item in items]`` on a few threads: writing a batch's outputs (OBJ text,
    PNG encoding, summary renders; most of it releases the GIL) overlaps across photos. The first
    exception is raised, as in the plain loop."""
    workers = min(len(items), os.cpu_count() or 1, 8)
    if workers <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="shrn-write") as pool:
        return list(pool.map(function, items))
