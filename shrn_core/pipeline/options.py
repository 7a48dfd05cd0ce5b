"""Options of a whole-pipeline run and what it reports per input."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

STAGES = ("face", "segment", "inpaint", "reconstruct")


def parse_stage_options(items: list[str]) -> dict[str, dict[str, Any]]:
    """``["reconstruct.render_size=192", ...]`` -> ``{"reconstruct": {"render_size": 192}, ...}``.

    Values are read as YAML scalars (numbers, booleans, strings)."""
    import yaml

    from ..errors import InputError

    parsed: dict[str, dict[str, Any]] = {"segment": {}, "inpaint": {}, "reconstruct": {}}
    for item in items:
        key, sep, value = str(item).partition("=")
        stage, dot, name = key.partition(".")
        if not sep or not dot or stage not in parsed or not name:
            raise InputError(f"--option must look like STAGE.KEY=VALUE with STAGE one of segment, inpaint, "
                             f"reconstruct; got {item!r}")
        try:
            parsed[stage][name.replace("-", "_")] = yaml.safe_load(value)
        except yaml.YAMLError:
            parsed[stage][name.replace("-", "_")] = value
    return parsed


def _default_segment_backend() -> str:
    from ..segment.api import DEFAULT_BACKEND

    return DEFAULT_BACKEND


@dataclass
class PipelineOptions:
    segment_backend: str = field(default_factory=lambda: _default_segment_backend())
    inpaint_backend: str = "face"
    reconstruct_backend: str = "fit"
    segment_options: dict[str, Any] = field(default_factory=dict)
    inpaint_options: dict[str, Any] = field(default_factory=dict)
    reconstruct_options: dict[str, Any] = field(default_factory=dict)
    device: str = "auto"
    face_index: Optional[int] = None
    mask: Optional[Path] = None  # a user's mask replaces the segment stage (single input)
    from_stage: Optional[str] = None  # recompute this stage and the ones after it
    overwrite: bool = False
    skip_inpaint: bool = False  # reconstruct from the photo + mask (SegmentationHRN without inpainting)
    reconstruct_mask: bool = True  # also exclude the occluded pixels when fitting the inpainted photo
    batch_size: int = 1  # photos whose reconstructions are fitted together (pays off on a GPU)
    summary: bool = True  # write <stem>.summary.png per photo (shrn_core.report)
    gallery: bool = True  # write/refresh <out>/index.html at the end of ``run``


@dataclass
class StageRecord:
    name: str
    status: str  # "computed", "reused" (fresh output kept), "provided" (user file), "skipped" (not run)
    seconds: float = 0.0
    outputs: dict[str, str] = field(default_factory=dict)
    backend: Optional[str] = None
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class ItemReport:
    input: Path
    out_dir: Path
    ok: bool
    stages: list[StageRecord] = field(default_factory=list)
    error: Optional[str] = None
    exit_code: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def resumed(self) -> bool:
        """Nothing had to be computed: every output was already there and fresh."""
        return self.ok and all(s.status in ("reused", "provided", "skipped") for s in self.stages)

    @property
    def outputs(self) -> dict[str, str]:
        merged: dict[str, str] = {}
        for stage in self.stages:
            merged.update(stage.outputs)
        return merged

    def seconds(self) -> dict[str, float]:
        return {s.name: round(s.seconds, 3) for s in self.stages}
