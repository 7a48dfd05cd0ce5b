"""``shrn_core.pipeline.run``: the Python API behind ``shrn run``."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Optional

from ..errors import InputError
from ..formats.core import image_stem
from .engines import Engines
from .options import ItemReport, PipelineOptions
from .plan import check_unique_stems, select_shard
from .runner import run_one


def run(inputs: Iterable[str | Path], out: str | Path, options: Optional[PipelineOptions] = None, *,
        shard: tuple[int, int] | None = None,
        on_item: Optional[Callable[[Path, ItemReport], None]] = None,
        on_stage: Optional[Callable[[Path, str], None]] = None) -> list[ItemReport]:
    """Run the pipeline on image files into ``out/<stem>/``; returns one report per input.

    A failing input is reported (``ok=False``, ``error``) and the run goes on.
    """
    options = options or PipelineOptions()
    paths = select_shard([Path(p) for p in inputs], shard)
    check_unique_stems(paths)
    if options.mask is not None and len(paths) != 1:
        raise InputError("--mask names one mask file: give exactly one input image with it")
    engines = Engines(options)
    if paths:
        engines.load()  # models load once, before timing starts
    reports = []
    for path in paths:
        report = run_one(path, Path(out) / image_stem(path), options, engines,
                         on_stage=(lambda stage, p=path: on_stage(p, stage)) if on_stage else None)
        reports.append(report)
        if on_item:
            on_item(path, report)
    return reports
