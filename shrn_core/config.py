"""YAML configs: any CLI option may come from a file; options given on the command line win.

A config is a mapping. Top-level keys apply to every command; a section named after a command
(``segment:``, ``inpaint:``, ``reconstruct:``, ``run:``, ``eval:``, ``face:``) applies to that command only
and overrides the top level. Keys use the option names with ``_`` or ``-`` (``mask_dilate`` == ``mask-dilate``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import InputError

COMMANDS = ("face", "segment", "inpaint", "reconstruct", "run", "eval", "synth")


def load_config(path: str | Path | None, command: str) -> dict[str, Any]:
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise InputError("config file not found", path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "parse error"
        raise InputError(f"not valid YAML ({first})", path) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError("config must be a mapping of option: value", path)
    merged = {_norm(k): v for k, v in data.items() if _norm(k) not in COMMANDS}
    section = data.get(command) or {}
    if not isinstance(section, dict):
        raise InputError(f"config section {command!r} must be a mapping", path)
    merged.update({_norm(k): v for k, v in section.items()})
    return merged


def _norm(key: str) -> str:
    return str(key).replace("-", "_")
