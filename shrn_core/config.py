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


MAX_CONFIG_BYTES = 1 * 2 ** 20


def load_config(path: str | Path | None, command: str) -> dict[str, Any]:
    """The options of ``command`` from a YAML file: ``{option_name: value}``, values being scalars
    or flat lists of scalars (as on the command line); ``InputError`` naming the file otherwise."""
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise InputError("config file not found", path)
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise InputError(f"config file larger than {MAX_CONFIG_BYTES // 2 ** 20} MB", path)
    try:
        data = yaml.safe_load(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError("config is not UTF-8 text", path) from None
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "parse error"
        raise InputError(f"not valid YAML ({first})", path) from None
    except (RecursionError, ValueError, TypeError) as exc:  # deep nesting; values PyYAML cannot build
        raise InputError(f"not a usable YAML config ({exc.__class__.__name__})", path) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError("config must be a mapping of option: value", path)
    merged = {_norm(k): v for k, v in data.items() if _norm(k) not in COMMANDS}
    section = data.get(command) or {}
    if not isinstance(section, dict):
        raise InputError(f"config section {command!r} must be a mapping", path)
    merged.update({_norm(k): v for k, v in section.items()})
    for key, value in merged.items():
        if not _is_option_value(value):
            raise InputError(f"option {key!r} must be a value or a list of values, not {type(value).__name__} "
                             "holding lists or mappings", path)
    return merged


def _is_option_value(value: Any) -> bool:
    scalar = (str, int, float, bool, type(None))
    return isinstance(value, scalar) or (isinstance(value, list) and all(isinstance(v, scalar) for v in value))


def _norm(key: Any) -> str:
    return str(key).replace("-", "_")
