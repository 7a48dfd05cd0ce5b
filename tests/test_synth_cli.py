"""``shrn synth`` as a user runs it: files and stdout, resuming, one-line errors with exit codes."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("eos", reason="the Surrey model needs eos-py (pip install 'shrn[synth]')")


def shrn(*args, cwd=None):
    env = dict(os.environ, COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "shrn_cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


@pytest.fixture(scope="module")
def bank_file(tmp_path_factory):
    from shrn_core.synth import procedural_bank, save_bank

    return save_bank(procedural_bank(seed=1, count=2), tmp_path_factory.mktemp("bank") / "bank.npz")


def test_synth_writes_twins_and_resumes(shared_data, bank_file, tmp_path):
    common = ["--sfm", shared_data / "sfm", "--ict", shared_data / "ict_facekit" / "ict_face_model.npz",
              "--bank", bank_file, "--size", "64", "--out", tmp_path, "--device", "cpu"]
    result = shrn("synth", "--count", "2", "--seed", "4", "--json", *common)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["id"] for r in records] == ["000000", "000001"] and all(r["ok"] for r in records)
    names = sorted(p.name for p in tmp_path.iterdir())
    for stem in ("000000", "000000_occ", "000001", "000001_occ"):
        for suffix in (".png", ".gt.obj", ".gt.txt", ".gt_mask.png", ".gt.json"):
            assert stem + suffix in names
    meta = json.loads((tmp_path / "000001_occ.gt.json").read_text())
    assert meta["format"] == "shrn.synth_gt" and meta["occluder"]["kind"] == records[1]["occluder"]
    before = (tmp_path / "000000_occ.png").read_bytes()
    again = shrn("synth", "--count", "2", "--seed", "4", *common)  # resumes: nothing to do
    assert again.returncode == 0 and again.stdout == "", again.stderr
    assert "already written" in again.stderr and (tmp_path / "000000_occ.png").read_bytes() == before


@pytest.mark.parametrize("args, code, words", [
    (["--occluders", "hand,umbrella"], 2, "unknown occluder kind"),
    (["--sfm", "/nonexistent/sfm"], 4, "Surrey Face Model folder not found"),
])
def test_bad_options_fail_with_one_line(tmp_path, args, code, words):
    result = shrn("synth", "--count", "1", "--out", tmp_path, "--device", "cpu", *args)
    assert result.returncode == code, (result.returncode, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_option_parsing_errors_name_the_option():
    from shrn_core.errors import InputError
    from shrn_core.synth import SynthOptions, parse_kinds, parse_size

    assert parse_size("512") == (512, 512) and parse_size("256..1024") == (256, 1024)
    assert parse_kinds("default") == SynthOptions().occluders and "pasted" not in parse_kinds("default")
    assert "pasted" in parse_kinds("all") and parse_kinds("none") == ()
    for bad, words in ((lambda: parse_size("big"), "--size"), (lambda: SynthOptions(model="bfm").validate(), "--model"),
                       (lambda: SynthOptions(size=(512, 256)).validate(), "--size"),
                       (lambda: SynthOptions(coverage=(0.5, 0.2)).validate(), "coverage"),
                       (lambda: SynthOptions(yaw_max=120).validate(), "--yaw-max")):
        with pytest.raises(InputError, match=words):
            bad()
