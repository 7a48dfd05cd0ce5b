"""Which inputs a run handles: expansion, stem clashes, deterministic sharding."""
from __future__ import annotations

import hashlib
from pathlib import Path

from ..errors import InputError
from ..formats.core import image_stem


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"I/N"`` -> (I, N) with 0 <= I < N; None for no sharding."""
    if text in (None, ""):
        return None
    try:
        index, count = (int(part) for part in str(text).split("/"))
    except ValueError:
        raise InputError(f"--shard must look like I/N (for example 0/4), got {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise InputError(f"--shard {text}: need N >= 1 and 0 <= I < N")
    return index, count


def shard_of(path: Path, count: int) -> int:
    """Stable across machines and runs: depends only on the file name, not on listing order, so a
    cluster job array (Slurm, Kubernetes) splits a dataset with no coordinator."""
    digest = hashlib.sha1(Path(path).name.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


def select_shard(paths: list[Path], shard: tuple[int, int] | None) -> list[Path]:
    if shard is None:
        return list(paths)
    index, count = shard
    return [p for p in paths if shard_of(p, count) == index]


def check_unique_stems(paths: list[Path]) -> None:
    """One output folder per input is named after its stem: two inputs may not share one."""
    seen: dict[str, Path] = {}
    for path in paths:
        stem = image_stem(path)
        if stem in seen and Path(seen[stem]).resolve() != Path(path).resolve():
            raise InputError(f"inputs {seen[stem]} and {path} share the stem {stem!r}; their output folders would clash")
        seen[stem] = path
