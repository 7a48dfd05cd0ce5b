"""The CLI as a user runs it: stdout carries only paths/JSON, errors are one line with an exit code."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def shrn(*args, cwd=None):
    env = dict(os.environ, COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "shrn_cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_version_and_help():
    result = shrn("--version")
    assert result.returncode == 0 and result.stdout.startswith("shrn ")
    result = shrn("--help")
    assert result.returncode == 0 and "face" in result.stdout


def test_face_folder_writes_json_per_image(shared_data, tmp_path):
    result = shrn("face", shared_data / "faces_3ddfa", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    written = [Path(line) for line in result.stdout.splitlines()]
    assert sorted(p.name for p in written) == ["JianzhuGuo.face.json", "emma.face.json", "trump_hillary.face.json"]
    for path in written:
        assert json.loads(path.read_text())["format"] == "shrn.face"
    assert "Traceback" not in result.stderr
    # a rerun keeps existing outputs and says so
    again = shrn("face", shared_data / "faces_3ddfa" / "emma.jpg", "--out", tmp_path, "--json")
    record = json.loads(again.stdout)
    assert record["ok"] and record["skipped"]


def test_json_output_and_face_choice(two_face_photo, tmp_path):
    result = shrn("face", two_face_photo, "--out", tmp_path, "--json", "--face", "1")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["faces"] == 2 and record["selected_face"] == 1


@pytest.mark.parametrize("make, code, message", [
    (lambda d: d / "missing.jpg", 2, "file not found"),
    (lambda d: d, 2, "no input files"),
    (lambda d: _write(d / "empty.jpg", b""), 2, "empty"),
    (lambda d: _write(d / "text.png", b"hello"), 2, "not a readable image"),
])
def test_bad_inputs_one_line_and_exit_code(tmp_path, make, code, message):
    target = make(tmp_path)
    result = shrn("face", target, "--out", tmp_path / "out")
    assert result.returncode == code
    assert message in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_no_face_exit_code_and_batch_goes_on(tmp_path, hrn_photo):
    import numpy as np
    from PIL import Image

    Image.fromarray(np.full((200, 200, 3), 127, np.uint8)).save(tmp_path / "blank.png")
    (tmp_path / "ok.png").write_bytes(hrn_photo.read_bytes())
    single = shrn("face", tmp_path / "blank.png", "--out", tmp_path / "o1")
    assert single.returncode == 3 and "no face" in single.stderr
    batch = shrn("face", tmp_path, "--out", tmp_path / "o2")
    assert batch.returncode == 1
    assert batch.stdout.strip().endswith("ok.face.json")
    assert "1 of 2 inputs failed" in batch.stderr


def test_config_file_supplies_options(two_face_photo, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("face:\n  face_index: 1\n")
    result = shrn("face", two_face_photo, "--out", tmp_path, "--json", "--config", config)
    assert json.loads(result.stdout)["selected_face"] == 1
    bad = tmp_path / "bad.yaml"
    bad.write_text("face:\n  nonsense_option: 3\n")
    result = shrn("face", two_face_photo, "--out", tmp_path, "--config", bad)
    assert result.returncode == 2 and "unknown option" in result.stderr


def test_unwritable_output_dir(two_face_photo, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = shrn("face", two_face_photo, "--out", blocker / "sub")
    assert result.returncode == 6 and "Traceback" not in result.stderr
