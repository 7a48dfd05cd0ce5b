"""Helpers shared by benchmark scripts: where the data is, machine and commit descriptions."""
from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    env = os.environ.get("SHRN_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def clean_photos() -> list[Path]:
    root = shared_data_dir()
    return [p for folder in ("faces_hrn", "faces_deca", "faces_3ddfa") for p in sorted((root / folder).iterdir())]


def machine() -> str:
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {gpu}, Python {platform.python_version()}, torch {torch.__version__}"


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "unknown"


def write_json(path: str | None, payload: dict) -> None:
    if path:
        Path(path).write_text(json.dumps({"machine": machine(), "commit": commit(), **payload}, indent=1))
