"""Chaining the stages for one input, reusing fresh intermediates, writing manifest.json."""
from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional

import numpy as np

from .. import __version__
from ..errors import InputError, OutputError, ShrnError
from ..formats.core import ensure_dir, image_stem, output_path
from ..formats.manifest import write_manifest
from .engines import Engines, parallel_map
from .lock import locked_folders, remove_temporary_files
from .options import STAGES, ItemReport, PipelineOptions, StageRecord

log = logging.getLogger("shrn.pipeline")
SUMMARY_LAYOUT = 1  # docs/formats.md, <stem>.summary.png


class StageFiles:
    """The files of one input's output folder, and which stage reads and writes which."""

    def __init__(self, image: Path, out_dir: Path):
        self.image = Path(image)
        self.out_dir = Path(out_dir)
        self.stem = image_stem(image)

    def path(self, kind: str, ext: str) -> Path:
        return output_path(self.out_dir, self.stem, kind, ext)

    @property
    def face(self) -> Path:
        return self.path("face", "json")

    @property
    def mask(self) -> Path:
        return self.path("mask", "png")

    @property
    def inpainted(self) -> Path:
        return self.path("inpainted", "png")

    @property
    def mesh(self) -> Path:
        return self.path("", "obj")

    @property
    def manifest(self) -> Path:
        return self.out_dir / "manifest.json"

    @property
    def summary(self) -> Path:
        return self.path("summary", "png")

    def primary(self, stage: str) -> Path:
        """The file a stage writes last: its presence means the stage's last attempt finished."""
        return {"face": self.face, "segment": self.mask, "inpaint": self.inpainted, "reconstruct": self.mesh}[stage]

    def outputs_of(self, stage: str) -> list[Path]:
        """Files that must all exist (and be fresh) for a stage to count as done; primary last."""
        extra = {"segment": [self.path("face_region", "png")],
                 "reconstruct": [self.path("", "mtl"), self.path("albedo", "png"), self.path("params", "npz")]}
        return [*extra.get(stage, []), self.primary(stage)]

    def inputs_of(self, stage: str, skip_inpaint: bool) -> list[Path]:
        photo_for_fit = self.image if skip_inpaint else self.inpainted
        return {
            "face": [self.image],
            "segment": [self.image, self.face],
            "inpaint": [self.image, self.mask, self.face],
            "reconstruct": [photo_for_fit, self.mask, self.face],
        }[stage]


def is_fresh(output: Path | list[Path], inputs: Iterable[Path]) -> bool:
    """Outputs are fresh when they all exist and each is at least as new as every input that exists."""
    outputs = [output] if isinstance(output, Path) else list(output)
    if not all(path.is_file() for path in outputs):
        return False
    newest = max((p.stat().st_mtime_ns for p in inputs if p.is_file()), default=0)
    return all(path.stat().st_mtime_ns >= newest for path in outputs)


def _invalidate(files: StageFiles, stage: str) -> None:
    """Before a stage recomputes: remove its primary output (written last, so a run killed midway
    leaves the stage visibly unfinished) and the manifest (present only after a finished run)."""
    for path in (files.primary(stage), files.manifest):
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise OutputError(f"cannot replace ({exc.strerror})", path) from None


def run_one(image: Path, out_dir: Path, options: PipelineOptions, engines: Optional[Engines] = None,
            on_stage: Optional[Callable[[str], None]] = None) -> ItemReport:
    """Run every stage for one photo into ``out_dir``; failures are reported, not raised."""
    hook = (lambda _path, stage: on_stage(stage)) if on_stage else None
    return run_chunk([Path(image)], [Path(out_dir)], options, engines or Engines(options), hook)[0]


def run_chunk(images: list[Path], out_dirs: list[Path], options: PipelineOptions, engines: Engines,
              on_stage: Optional[Callable[[Path, str], None]] = None) -> list[ItemReport]:
    """Run the pipeline on several photos; their reconstructions share one batched fit when
    there are several to do (``--batch-size``), which is what makes a GPU pay off."""
    return finish_chunk(prepare_chunk(images, out_dirs, options, engines, on_stage), engines)


@dataclass
class PreparedChunk:
    """A chunk whose folders are locked and whose face/segment/inpaint stages have run."""
    reports: list[ItemReport]
    items: list  # (files, state, report, needs_reconstruct)
    options: PipelineOptions
    locks: contextlib.ExitStack


def prepare_chunk(images: list[Path], out_dirs: list[Path], options: PipelineOptions, engines: Engines,
                  on_stage: Optional[Callable[[Path, str], None]] = None) -> PreparedChunk:
    """Lock the photo folders and run the stages before reconstruct (``shrn run`` does this for the
    next chunk on a worker thread while the current chunk is fitted)."""
    reports = [ItemReport(input=Path(image), out_dir=Path(out_dir), ok=False) for image, out_dir in zip(images, out_dirs)]
    created = []
    for report in reports:
        try:
            created.append(ensure_dir(report.out_dir))
        except ShrnError as err:
            report.error, report.exit_code = str(err), err.exit_code
    # Each photo folder is locked while its stages run: a second run on the same folder waits.
    locks = contextlib.ExitStack()
    locks.enter_context(locked_folders(created))
    try:
        items = []
        for report in reports:
            files = StageFiles(report.input, report.out_dir)
            state = _LazyState(files, options)
            stage_hook = (lambda stage, p=report.input: on_stage(p, stage)) if on_stage else None
            needs_reconstruct = False
            if report.error is None:
                remove_temporary_files(report.out_dir)
                try:
                    needs_reconstruct = _run_stages(files, state, options, engines, report, stage_hook)
                except ShrnError as err:
                    report.error, report.exit_code = str(err), err.exit_code
            items.append((files, state, report, needs_reconstruct))
    except BaseException:
        locks.close()
        raise
    return PreparedChunk(reports, items, options, locks)


def finish_chunk(chunk: PreparedChunk, engines: Engines) -> list[ItemReport]:
    """Reconstruct (batched when several photos need it), write sheets and manifests, unlock."""
    with chunk.locks:
        items, options = chunk.items, chunk.options
        pending = [(f, st, r) for f, st, r, needed in items if needed]
        if len(pending) > 1:
            _reconstruct_together(pending, engines)
        elif pending:
            _reconstruct_alone(*pending[0], engines)
        parallel_map(lambda item: _finish(*item[:3], options), items)
    return chunk.reports


def _finish(files: StageFiles, state: "_LazyState", report: ItemReport, options: PipelineOptions) -> None:
    """Summary sheet, then manifest.json (last: it records what the photo's folder holds)."""
    report.ok = report.error is None
    if files.out_dir.is_dir():
        payload = _manifest_payload(files, options, report)
        payload["summary"] = _write_summary(files, state, options, report, payload)
        _write_manifest(files, payload)


def _write_summary(files: StageFiles, state: "_LazyState", options: PipelineOptions, report: ItemReport,
                   payload: dict) -> Optional[dict]:
    """``<stem>.summary.png`` (kept when a resumed photo's sheet is newer than its inputs); a sheet
    that cannot be drawn is a warning, never a failed photo."""
    if not options.summary or not files.out_dir.is_dir():
        return None
    sources = [files.image, files.mask, files.inpainted, files.mesh, files.path("params", "npz")]
    if report.resumed and is_fresh(files.summary, sources):
        return {"path": str(files.summary), "status": "reused", "seconds": 0.0, "layout": SUMMARY_LAYOUT}
    from ..report.summary import load_inputs, write_summary

    start = time.perf_counter()
    try:
        photo = state.rgb if files.image.is_file() else None
    except ShrnError:
        photo = None  # an unreadable photo is the item's own error; the sheet shows what exists
    try:
        inputs = load_inputs(files.out_dir, files.stem, photo=photo, reconstruction=state.reconstruction,
                             manifest=_jsonable(payload), **state.loaded)
        write_summary(files.summary, inputs)
    except ShrnError as err:
        log.warning("%s: summary sheet not written (%s)", files.image, err)
        report.warnings.append(f"summary sheet not written: {err}")
        payload["warnings"] = report.warnings
        return None
    return {"path": str(files.summary), "status": "computed", "seconds": round(time.perf_counter() - start, 3),
            "layout": SUMMARY_LAYOUT}


def _reconstruct_alone(files: "StageFiles", state: "_LazyState", report: ItemReport, engines: Engines) -> None:
    start = time.perf_counter()
    try:
        record = engines.run_reconstruct(files, state)
    except ShrnError as err:
        report.error, report.exit_code = str(err), err.exit_code
        return
    record.seconds = time.perf_counter() - start
    report.warnings.extend(record.info.pop("warnings", []))
    report.stages.append(record)


def _reconstruct_together(pending: list, engines: Engines) -> None:
    start = time.perf_counter()
    try:
        records = engines.run_reconstruct_batch([(files, state) for files, state, _ in pending])
    except ShrnError as err:  # one bad input must not sink the others: retry them one by one
        log.warning("batched reconstruction failed (%s); reconstructing one by one", err)
        for files, state, report in pending:
            _reconstruct_alone(files, state, report, engines)
        return
    share = (time.perf_counter() - start) / len(pending)
    for (_, _, report), record in zip(pending, records):
        record.seconds = share
        record.info["batched"] = len(pending)
        report.warnings.extend(record.info.pop("warnings", []))
        report.stages.append(record)


def _run_stages(files: StageFiles, state: "_LazyState", options: PipelineOptions, engines: Engines,
                report: ItemReport, on_stage: Optional[Callable[[str], None]]) -> bool:
    """Run face, segment and inpaint; return whether reconstruct has to run (the caller runs it,
    possibly batched with other inputs)."""
    if options.from_stage is not None and options.from_stage not in STAGES:
        raise InputError(f"--from-stage must be one of {', '.join(STAGES)}, got {options.from_stage!r}")
    first_forced = STAGES.index(options.from_stage) if options.from_stage else (0 if options.overwrite else len(STAGES))
    for index, stage in enumerate(STAGES):
        if on_stage:
            on_stage(stage)
        if stage == "inpaint" and options.skip_inpaint:
            report.stages.append(StageRecord(stage, "skipped"))
            continue
        if stage == "segment" and options.mask is not None:
            report.stages.append(engines.provide_mask(files, state, options.mask))
            continue
        primary = files.primary(stage)
        fresh = index < first_forced and is_fresh(files.outputs_of(stage), files.inputs_of(stage, options.skip_inpaint))
        if fresh:
            report.stages.append(StageRecord(stage, "reused", outputs={stage: str(primary)}))
            continue
        _invalidate(files, stage)
        if stage == "reconstruct":
            return True
        start = time.perf_counter()
        record = getattr(engines, f"run_{stage}")(files, state)
        record.seconds = time.perf_counter() - start
        report.stages.append(record)
        report.warnings.extend(record.info.pop("warnings", []))
    return False


class _LazyState:
    """Images and analyses loaded on first use, so a fully resumed input reads nothing."""

    def __init__(self, files: StageFiles, options: PipelineOptions):
        self.files = files
        self.options = options
        self._raw: Optional[np.ndarray] = None
        self._rgb: Optional[np.ndarray] = None
        self.analysis = None
        self.reconstruction = None  # set when reconstruct ran in this call
        self.loaded: dict = {}  # intermediates the reconstruct stage read ("inpainted", "mask"), reused by the summary

    @property
    def raw(self) -> np.ndarray:
        if self._raw is None:
            from ..formats.image import read_image_raw

            self._raw = read_image_raw(self.files.image)
        return self._raw

    @property
    def rgb(self) -> np.ndarray:
        if self._rgb is None:
            from ..formats.image import to_rgb8

            self._rgb = to_rgb8(self.raw)
        return self._rgb

    def face_analysis(self):
        if self.analysis is None:
            from ..formats.face import read_face_json

            self.analysis = read_face_json(self.files.face)
            if self.options.face_index is not None:
                self.analysis.selected = self.options.face_index
        return self.analysis


def _manifest_payload(files: StageFiles, options: PipelineOptions, report: ItemReport) -> dict:
    return {
        "shrn_version": __version__,
        "input": str(files.image),
        "ok": report.ok,
        "error": report.error,
        "backends": {"segment": options.segment_backend, "inpaint": None if options.skip_inpaint else options.inpaint_backend,
                     "reconstruct": options.reconstruct_backend},
        "options": {"segment": options.segment_options, "inpaint": options.inpaint_options,
                    "reconstruct": options.reconstruct_options, "device": options.device, "face_index": options.face_index,
                    "mask": str(options.mask) if options.mask else None, "from_stage": options.from_stage,
                    "skip_inpaint": options.skip_inpaint, "reconstruct_mask": options.reconstruct_mask},
        "stages": [{"name": s.name, "status": s.status, "seconds": round(s.seconds, 3), "backend": s.backend,
                    "outputs": s.outputs, "info": s.info} for s in report.stages],
        "warnings": report.warnings,
    }


def _write_manifest(files: StageFiles, payload: dict) -> None:
    try:
        write_manifest(files.manifest, _jsonable(payload))
    except ShrnError as err:  # the item's own error matters more than a manifest we cannot write
        log.error("%s", err)


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
