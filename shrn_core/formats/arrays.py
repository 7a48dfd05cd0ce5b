"""Loading ``.npy`` / ``.npz`` files that may be corrupt or hostile: never a pickle, never an
allocation bigger than the file's own data.

``np.load(..., allow_pickle=False)`` already refuses pickles, but a header may declare a huge array
that numpy allocates before finding the data missing, and a damaged file raises any of a dozen
exception types. These loaders read every array header first (dtype without Python objects, size
no larger than the bytes actually stored, at most ``max_bytes``) and turn every failure into
``error`` (``FormatError`` by default) naming the file.
"""
from __future__ import annotations

import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np
from numpy.lib import format as npy_format

from ..errors import FormatError, InputError, ShrnError

MAX_ARRAY_BYTES = 256 * 2 ** 20  # shrn's own arrays are a few MB; scans' per-point errors well below this


def load_npy(path: str | Path, error: type[ShrnError] = FormatError, max_bytes: int = MAX_ARRAY_BYTES) -> np.ndarray:
    path = _existing(path)
    try:
        with open(path, "rb") as handle:
            _check_header(handle, path.stat().st_size, max_bytes)
        return np.load(path, allow_pickle=False)
    except _Refused as why:
        raise error(str(why), path) from None
    except Exception as exc:  # numpy raises ValueError, EOFError, OSError, ... for damaged files
        raise error(f"not a readable .npy file ({_first_line(exc)})", path) from None


def load_npz(path: str | Path, error: type[ShrnError] = FormatError, max_bytes: int = MAX_ARRAY_BYTES) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` as a dict (member names without ``.npy``)."""
    path = _existing(path)
    try:
        with zipfile.ZipFile(path) as archive:
            total = 0
            for member in archive.infolist():
                if not member.filename.endswith(".npy"):
                    raise _Refused(f"unexpected member {member.filename!r} (an .npz holds only .npy arrays)")
                total += member.file_size
                if total > max_bytes:
                    raise _Refused(f"arrays take more than {max_bytes // 2 ** 20} MB uncompressed")
                with archive.open(member) as handle:
                    _check_header(handle, member.file_size, max_bytes)
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except _Refused as why:
        raise error(str(why), path) from None
    except Exception as exc:  # zipfile, zlib and numpy raise many types for damaged archives
        raise error(f"not a readable .npz file ({_first_line(exc)})", path) from None


class _Refused(Exception):
    pass


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", path)
    return path


def _check_header(handle: BinaryIO, stored_bytes: int, max_bytes: int) -> None:
    try:
        version = npy_format.read_magic(handle)
        reader = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
        shape, _, dtype = reader(handle)
    except Exception as exc:  # a bad magic string or header dictionary
        raise _Refused(f"not a valid .npy array header ({_first_line(exc)})") from None
    if dtype.hasobject:
        raise _Refused("array holds Python objects (pickles are refused)")
    count = 1
    for side in shape:
        count *= int(side)
    declared = count * dtype.itemsize
    if declared > max_bytes:
        raise _Refused(f"array of shape {tuple(shape)} would take {declared / 2 ** 20:.0f} MB "
                       f"(limit {max_bytes // 2 ** 20} MB)")
    if declared > stored_bytes:
        raise _Refused(f"array of shape {tuple(shape)} needs {declared} bytes but the file holds {stored_bytes}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:160]}" if text else type(exc).__name__
