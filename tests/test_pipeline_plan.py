"""Sharding and input planning of `shrn run` (no models needed)."""
from __future__ import annotations

from pathlib import Path

import pytest

from shrn_core.errors import InputError
from shrn_core.pipeline import parse_shard, select_shard, shard_of
from shrn_core.pipeline.plan import check_unique_stems
from shrn_core.pipeline.runner import is_fresh


def test_shards_partition_inputs_deterministically():
    paths = [Path(f"/data/img_{i:04d}.jpg") for i in range(400)]
    shards = [select_shard(paths, (i, 4)) for i in range(4)]
    assert sorted(p for s in shards for p in s) == sorted(paths)  # every input in exactly one shard
    assert sum(len(s) for s in shards) == 400
    assert all(60 <= len(s) <= 140 for s in shards)  # roughly balanced
    # independent of order and of the folder the file list came from
    assert select_shard(list(reversed(paths)), (2, 4)) == list(reversed(shards[2]))
    assert shard_of(Path("/a/img_0007.jpg"), 4) == shard_of(Path("/b/img_0007.jpg"), 4)


@pytest.mark.parametrize("text", ["3", "4/4", "-1/2", "a/b", "1/0"])
def test_bad_shard_specs(text):
    with pytest.raises(InputError):
        parse_shard(text)


def test_shard_parse():
    assert parse_shard("1/3") == (1, 3)
    assert parse_shard(None) is None


def test_stem_clash_is_refused():
    with pytest.raises(InputError, match="share the stem"):
        check_unique_stems([Path("a/x.jpg"), Path("b/x.png")])
    check_unique_stems([Path("a/x.jpg"), Path("a/y.jpg")])


def test_freshness(tmp_path):
    import os

    src = tmp_path / "in.txt"
    out = tmp_path / "out.txt"
    src.write_text("a")
    assert not is_fresh(out, [src])
    out.write_text("b")
    os.utime(src, ns=(1_000_000_000, 1_000_000_000))
    assert is_fresh(out, [src])
    os.utime(out, ns=(500_000_000, 500_000_000))
    assert not is_fresh(out, [src])
    assert is_fresh(src, [tmp_path / "missing"])
