"""Shared mechanics of every intermediate file: naming, atomic writes, versioned JSON."""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

from ..errors import FormatError, InputError, OutputError, ShrnError

SCHEMA_VERSION = 1


def output_path(out_dir: str | Path, stem: str, kind: str, ext: str) -> Path:
    """``<out_dir>/<stem>.<kind>.<ext>``; ``kind`` may be empty for the main mesh (``<stem>.obj``)."""
    name = f"{stem}.{kind}.{ext}" if kind else f"{stem}.{ext}"
    return Path(out_dir) / name


def image_stem(path: str | Path) -> str:
    """The stem shared by all intermediates of one input: ``a/b/photo.jpg`` -> ``photo``.

    An intermediate's own name reduces to the stem too (``photo.mask.png`` -> ``photo``), so a
    stage may be given another stage's output as its input.
    """
    name = Path(path).name
    for suffix in (".inpainted.png", ".mask.png", ".face_region.png", ".mask_prob.png"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def check_input_file(path: str | Path, expected: str = "an image file", suffixes: set[str] | None = None,
                     unsupported: str = "unsupported format {suffix}") -> Path:
    """An existing, non-empty file (with one of ``suffixes`` when given), else ``InputError``.

    ``expected`` completes "is a directory, expected ..."; ``unsupported`` is the message for a
    suffix outside ``suffixes`` (``{suffix}`` stands for the file's suffix)."""
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", path)
    if path.is_dir():
        raise InputError(f"is a directory, expected {expected}", path)
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise InputError(unsupported.format(suffix=repr(path.suffix)), path)
    if path.stat().st_size == 0:
        raise InputError("file is empty (0 bytes)", path)
    return path


def ensure_dir(path: str | Path) -> Path:
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create output directory ({exc.strerror})", path) from None
    if not os.access(path, os.W_OK):
        raise OutputError("output directory is not writable", path)
    return path


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb") -> Iterator[Any]:
    """Open a temporary file beside ``path``; on success rename it over ``path``, else delete it.

    Readers never see a half-written file, and a failure leaves any previous file untouched.
    """
    path = Path(path)
    ensure_dir(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OutputError(f"cannot write ({exc.strerror})", path) from None
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; outputs get the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_write(path, "wb") as handle:
        handle.write(data)
    return Path(path)


def write_json(path: str | Path, kind: str, payload: dict[str, Any]) -> Path:
    """Write ``payload`` with ``format`` and ``schema_version`` header fields added."""
    document = {"format": f"shrn.{kind}", "schema_version": SCHEMA_VERSION, **payload}
    text = json.dumps(document, indent=1, allow_nan=False)
    with atomic_write(path, "w") as handle:
        handle.write(text + "\n")
    return Path(path)


MAX_JSON_BYTES = 64 * 2 ** 20  # a face JSON is ~30 KB per face; far below this


def parse_json_file(path: str | Path, error: type[ShrnError] = FormatError, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """A JSON document from a file, strictly: UTF-8, no NaN/Infinity or numbers that overflow to
    inf (shrn never writes them), bounded nesting and size; every failure is ``error`` naming the file."""
    path = Path(path)
    try:
        if path.stat().st_size > max_bytes:
            raise error(f"JSON file larger than {max_bytes // 2 ** 20} MB", path)
        return json.loads(path.read_bytes().decode("utf-8"), parse_constant=_reject_constant, parse_float=_finite_float)
    except ShrnError:
        raise
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror})", path) from None
    except UnicodeDecodeError:
        raise error("not valid JSON (not UTF-8 text)", path) from None
    except json.JSONDecodeError as exc:
        raise error(f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})", path) from None
    except RecursionError:
        raise error("not valid JSON (nested too deeply)", path) from None
    except ValueError as exc:  # NaN/Infinity/overflow (below) or an integer with thousands of digits
        raise error(f"not valid JSON ({str(exc).splitlines()[0][:120]})", path) from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _finite_float(text: str) -> float:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text[:30]} is not finite")
    return value


def read_json(path: str | Path, kind: str, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """Read a shrn JSON file, checking its ``format``, ``schema_version`` and required keys."""
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", path)
    document = parse_json_file(path)
    if not isinstance(document, dict) or document.get("format") != f"shrn.{kind}":
        raise FormatError(f"not a shrn {kind} file (expected format 'shrn.{kind}')", path)
    version = document.get("schema_version")
    if version != SCHEMA_VERSION:
        raise FormatError(f"unsupported schema_version {version!r} (this shrn reads {SCHEMA_VERSION})", path)
    missing = [key for key in required if key not in document]
    if missing:
        raise FormatError(f"missing field(s): {', '.join(missing)}", path)
    return document
