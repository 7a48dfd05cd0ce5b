"""``shrn segment`` end to end: outputs, face JSON reuse, folders with bad items, exit codes."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from shrn_core.formats.image import read_image, write_image
from shrn_core.formats.mask import read_mask


def run(*args):
    """``shrn segment ARGS`` in a fresh process, as a user runs it."""
    env = dict(os.environ, COLUMNS="200")
    done = subprocess.run([sys.executable, "-m", "shrn_cli", "segment", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=300)
    return SimpleNamespace(exit_code=done.returncode, stdout=done.stdout, stderr=done.stderr,
                           output=done.stdout + done.stderr)


@pytest.fixture(scope="module")
def folder(tmp_path_factory, shared_data):
    """Two WebFace-OCC crops, a photo without a face and a corrupt file."""
    root = tmp_path_factory.mktemp("inputs")
    for name in ("0_surgical.jpg", "9_cloth.jpg"):
        shutil.copy(shared_data / "occluded_webfaceocc" / "images" / name, root / name)
    write_image(root / "blank.png", np.full((120, 160, 3), 200, np.uint8))
    (root / "broken.jpg").write_bytes(b"\xff\xd8 this is not really a jpeg")
    return root


def test_single_photo_writes_masks_and_face_json(folder, tmp_path):
    result = run(folder / "0_surgical.jpg", "--out", tmp_path, "--prob", "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert record["ok"] and not record["face_reused"] and 0.2 < record["occluded_fraction"] < 0.9
    mask = read_mask(tmp_path / "0_surgical.mask.png")
    assert mask.shape == read_image(folder / "0_surgical.jpg").shape[:2]
    assert set(np.unique(mask)) <= {0, 255} and (mask > 0).any()
    assert (tmp_path / "0_surgical.face_region.png").is_file()
    assert (tmp_path / "0_surgical.mask_prob.png").is_file()
    assert (tmp_path / "0_surgical.face.json").is_file()

    # Second run: everything exists -> skipped; with --overwrite the face JSON is reused.
    again = run(folder / "0_surgical.jpg", "--out", tmp_path, "--prob", "--json")
    assert json.loads(again.stdout.strip().splitlines()[-1])["skipped"] is True
    redo = run(folder / "0_surgical.jpg", "--out", tmp_path, "--json", "--overwrite")
    record = json.loads(redo.stdout.strip().splitlines()[-1])
    assert record["face_reused"] is True and "face" not in record["outputs"]
    np.testing.assert_array_equal(read_mask(tmp_path / "0_surgical.mask.png"), mask)


def test_folder_goes_on_past_bad_items(folder, tmp_path):
    result = run(folder, "--out", tmp_path)
    assert result.exit_code == 1
    written = {line for line in result.stdout.splitlines() if line.strip()}
    assert str(tmp_path / "9_cloth.mask.png") in written and str(tmp_path / "0_surgical.mask.png") in written
    assert "blank.png: no face found" in result.output
    assert "broken.jpg: not a readable image" in result.output
    assert not list(tmp_path.glob("blank.*")) and not list(tmp_path.glob("broken.*"))


def test_single_bad_inputs_exit_codes(folder, tmp_path):
    no_face = run(folder / "blank.png", "--out", tmp_path)
    assert no_face.exit_code == 3 and "no face found" in no_face.output and "Traceback" not in no_face.output
    missing = run(tmp_path / "nothing.jpg")
    assert missing.exit_code == 2 and "file not found" in missing.output
    bad_backend = run(folder / "0_surgical.jpg", "--backend", "magic", "--out", tmp_path)
    assert bad_backend.exit_code == 2 and "unknown segment backend" in bad_backend.output
    no_weights = run(folder / "0_surgical.jpg", "--backend", "deeplabv3", "--out", tmp_path)
    assert no_weights.exit_code == 4 and "--weights" in no_weights.output
    bad_face = run(folder / "0_surgical.jpg", "--face", "4", "--out", tmp_path / "x")
    assert bad_face.exit_code == 3 and "face index 4 out of range" in bad_face.output
