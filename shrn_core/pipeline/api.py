"""``shrn_core.pipeline.run``: the Python API behind ``shrn run``."""
from __future__ import annotations

import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, Optional

from ..errors import InputError, ShrnError
from ..formats.core import image_stem
from .engines import Engines
from .options import ItemReport, PipelineOptions
from .plan import check_unique_stems, select_shard
from .runner import finish_chunk, prepare_chunk

log = logging.getLogger("shrn.pipeline")


def run(inputs: Iterable[str | Path], out: str | Path, options: Optional[PipelineOptions] = None, *,
        shard: tuple[int, int] | None = None,
        on_item: Optional[Callable[[Path, ItemReport], None]] = None,
        on_stage: Optional[Callable[[Path, str], None]] = None) -> list[ItemReport]:
    """Run the pipeline on image files into ``out/<stem>/``; returns one report per input.

    A failing input is reported (``ok=False``, ``error``) and the run goes on. Each photo gets a
    ``<stem>.summary.png`` and ``out/index.html`` is refreshed at the end (``options.summary``,
    ``options.gallery``).
    """
    options = options or PipelineOptions()
    paths = select_shard([Path(p) for p in inputs], shard)
    check_unique_stems(paths)
    if options.mask is not None and len(paths) != 1:
        raise InputError("--mask names one mask file: give exactly one input image with it")
    engines = Engines(options)
    if paths:
        engines.load()  # models load once, before timing starts
    if options.batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, got {options.batch_size}")
    chunks = [paths[start:start + options.batch_size] for start in range(0, len(paths), options.batch_size)]

    def prepare(chunk):
        return prepare_chunk(chunk, [Path(out) / image_stem(p) for p in chunk], options, engines, on_stage)

    reports = []
    # While one chunk is reconstructed (the GPU's part), the next chunk's face analysis,
    # segmentation and inpainting run on a worker thread (mostly CPU work outside the GIL).
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="shrn-prepare") as worker:
        upcoming = worker.submit(prepare, chunks[0]) if chunks else None
        for index, chunk in enumerate(chunks):
            prepared = upcoming.result()
            upcoming = worker.submit(prepare, chunks[index + 1]) if index + 1 < len(chunks) else None
            try:
                chunk_reports = finish_chunk(prepared, engines)
            except BaseException:
                if upcoming is not None:  # release the next chunk's folder locks before leaving
                    with contextlib.suppress(BaseException):
                        upcoming.result().locks.close()
                raise
            for path, report in zip(chunk, chunk_reports):
                reports.append(report)
                if on_item:
                    on_item(path, report)
    if options.gallery and paths:
        refresh_gallery(out)
    return reports


def refresh_gallery(out: str | Path) -> Optional[Path]:
    """Rewrite ``<out>/index.html`` (every photo folder in ``out``, this run's and earlier ones);
    a page that cannot be written is logged, the run's results stand."""
    from ..report.gallery import write_gallery

    try:
        return write_gallery(out)
    except ShrnError as err:
        log.error("gallery not written: %s", err)
        return None
