"""``<out>/<stem>/manifest.json``: what ``shrn run`` did for one input (format ``shrn.manifest``)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import FormatError
from .core import read_json, write_json

KIND = "manifest"
REQUIRED = ("shrn_version", "input", "ok", "error", "backends", "options", "stages", "warnings")
STAGE_STATUSES = ("computed", "reused", "provided", "skipped")


def write_manifest(path: str | Path, payload: dict[str, Any]) -> Path:
    missing = [key for key in REQUIRED if key not in payload]
    if missing:
        raise ValueError(f"manifest payload lacks {missing}")
    return write_json(path, KIND, payload)


def read_manifest(path: str | Path) -> dict[str, Any]:
    """Read and validate a manifest; ``FormatError`` names the first problem."""
    doc = read_json(path, KIND, required=REQUIRED)
    types = {"ok": bool, "error": (str, type(None)), "backends": dict, "options": dict, "stages": list,
             "warnings": list, "input": str}
    for key, expected in types.items():
        if not isinstance(doc[key], expected):
            raise FormatError(f"field {key!r} has the wrong type ({type(doc[key]).__name__})", path)
    for stage in doc["stages"]:
        if not isinstance(stage, dict) or stage.get("status") not in STAGE_STATUSES or not isinstance(stage.get("name"), str):
            raise FormatError(f"malformed stage entry {str(stage)[:200]}", path)
    return doc
