"""Loading the official HRN checkpoint files into ``HRNNetworks`` with strict key checks."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ...errors import WeightsError
from ...formats.checkpoint import load_checkpoint
from .networks import HRNNetworks

MAX_LISTED = 5


def read_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    data = load_checkpoint(path, "HRN checkpoint")
    if not isinstance(data, dict):
        raise WeightsError(f"checkpoint holds a {type(data).__name__}, expected a dict of state dicts", path)
    return data


def key_mismatches(expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor]) -> list[str]:
    """Human-readable differences between two state dicts: missing, unexpected, wrong shape."""
    problems = [f"missing {k}" for k in expected if k not in found]
    problems += [f"unexpected {k}" for k in found if k not in expected]
    for key, tensor in expected.items():
        other = found.get(key)
        if other is not None and hasattr(other, "shape") and tuple(other.shape) != tuple(tensor.shape):
            problems.append(f"{key} has shape {tuple(other.shape)}, expected {tuple(tensor.shape)}")
    return problems


def _load_entry(module: nn.Module, state: object, path: Path, entry: str) -> None:
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"entry {entry!r} is not a state dict of tensors", path)
    problems = key_mismatches(module.state_dict(), state)
    if problems:
        shown = "; ".join(problems[:MAX_LISTED])
        more = f" (+{len(problems) - MAX_LISTED} more)" if len(problems) > MAX_LISTED else ""
        raise WeightsError(f"entry {entry!r} does not match the HRN network: {shown}{more}", path)
    module.load_state_dict(state, strict=True)


def load_hrn_weights(nets: HRNNetworks, hrn_path: str | Path, de_retouching_path: str | Path) -> HRNNetworks:
    """Fill ``nets`` from ``hrn_v1.1/epoch_10.pth`` and ``de-retouching.pth`` (strict)."""
    files = dict(zip(nets.checkpoint_modules(), (Path(hrn_path), Path(de_retouching_path))))
    for name, path in files.items():
        data = read_checkpoint(path)
        targets = nets.checkpoint_modules()[name]
        absent = [entry for entry in targets if entry not in data]
        if absent:
            raise WeightsError(f"not an HRN {name} checkpoint: entries {', '.join(absent)} missing "
                               f"(it holds: {', '.join(map(str, list(data)[:8]))})", path)
        for entry, target in targets.items():
            if isinstance(target, str):
                value = data[entry]
                if not isinstance(value, torch.Tensor) or value.numel() != 1:
                    raise WeightsError(f"entry {entry!r} should be a one-element tensor", path)
                getattr(nets, target).copy_(value.reshape(1).float())
            else:
                _load_entry(target, data[entry], path, entry)
    return nets
