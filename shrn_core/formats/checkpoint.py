"""Reading PyTorch checkpoint files safely: tensors only (``weights_only=True``), one clear error.

A checkpoint is a pickle; unpickling an arbitrary one can run code. ``torch.load`` with
``weights_only=True`` only rebuilds tensors and plain containers and refuses anything else, which is
what every shrn loader uses, whatever torch's own default is.
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from ..errors import WeightsError


def load_checkpoint(path: str | Path, what: str = "PyTorch checkpoint", mmap: bool = False) -> Any:
    """The object stored in ``path`` (tensors, dicts, lists, numbers, strings), or ``WeightsError``
    "cannot load <what> ..." naming the file: missing, corrupt, or holding other Python objects."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{what} not found", path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError:
        raise WeightsError(f"cannot load {what}: it holds Python objects other than tensors, which shrn never "
                           "unpickles (loaded with weights_only=True)", path) from None
    except Exception as exc:  # torch raises many types (RuntimeError, EOFError, zip errors, ...) for bad files
        lines = str(exc).strip().splitlines()
        raise WeightsError(f"cannot load {what}: not a readable PyTorch checkpoint "
                           f"({lines[0][:160] if lines else type(exc).__name__}; weights_only=True)", path) from None
