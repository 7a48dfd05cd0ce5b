"""``shrn reconstruct`` as a user runs it: outputs, reuse, masks found beside the photo, bad input."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

FAST = ["--levels", "coarse", "--texture-size", "64", "--render-size", "96"]


def shrn(*args):
    env = dict(os.environ, COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "shrn_cli", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)


def test_reconstruct_writes_documented_outputs_and_reuses_them(shared_data, tmp_path):
    photo = shared_data / "faces_deca" / "AFLW2000__image00302.jpg"
    result = shrn("reconstruct", photo, "--out", tmp_path, "--format", "glb", "--json", *FAST)
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout.strip().splitlines()[-1])
    outputs = {k: Path(v) for k, v in record["outputs"].items()}
    stem = "AFLW2000__image00302"
    assert {p.name for p in outputs.values()} == {f"{stem}.obj", f"{stem}.mtl", f"{stem}.albedo.png",
                                                  f"{stem}.params.npz", f"{stem}.glb", f"{stem}.overlay.png",
                                                  f"{stem}.shading.png", f"{stem}.neutral.obj"}
    assert all(p.is_file() for p in outputs.values())
    assert outputs["mesh"].read_text().startswith("# shrn mesh topology=ict-face-v1")
    assert outputs["mesh_neutral"].read_text().startswith("# shrn mesh topology=ict-face-v1")
    assert record["levels"] == ["coarse"] and record["vertices"] == 9409
    from shrn_core.formats.mesh import read_params

    params = read_params(outputs["params"])
    assert str(params["model"]) == "ict-face-v1" and params["identity"].shape == (100,)
    assert params["expression"].shape == (1, 53) and len(params["expression_names"]) == 53
    assert ((params["expression"] >= 0) & (params["expression"] <= 1)).all()
    assert params["landmarks_68"].shape == (1, 68, 2) and np.isfinite(params["landmarks_68"]).all()
    overlay = cv2.imread(str(outputs["overlay"]))
    assert overlay.shape == cv2.imread(str(photo)).shape
    again = shrn("reconstruct", photo, "--out", tmp_path, "--format", "glb", "--json", *FAST)
    assert again.returncode == 0 and json.loads(again.stdout)["skipped"] is True


def test_mask_beside_the_photo_is_used_and_checked(shared_data, tmp_path):
    photo = shutil.copy(shared_data / "faces_deca" / "exp__2.jpg", tmp_path / "exp.jpg")
    cv2.imwrite(str(tmp_path / "exp.mask.png"), np.zeros((10, 12), np.uint8))  # wrong size
    result = shrn("reconstruct", photo, *FAST)
    assert result.returncode == 2
    assert "resize-mask" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == "" and not (tmp_path / "exp.obj").exists()
    result = shrn("reconstruct", photo, "--no-mask", *FAST)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "exp.obj").is_file() and str(tmp_path / "exp.obj") in result.stdout


def test_bad_inputs_fail_clearly_and_a_folder_run_goes_on(shared_data, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "blank.png"), np.full((120, 120, 3), 128, np.uint8))
    (folder / "broken.jpg").write_bytes(b"not an image")
    shutil.copy(shared_data / "faces_deca" / "exp__5.jpg", folder / "good.jpg")
    result = shrn("reconstruct", folder, "--out", tmp_path / "out", *FAST)
    assert result.returncode == 1
    assert "no face" in result.stderr and "not a readable image" in result.stderr
    assert "Traceback" not in result.stderr
    written = result.stdout.split()
    assert any(p.endswith("good.obj") for p in written)
    assert not list((tmp_path / "out").glob("blank*")) and not list((tmp_path / "out").glob("broken*"))
    single = shrn("reconstruct", folder / "blank.png", "--out", tmp_path / "out", *FAST)
    assert single.returncode == 3 and len(single.stderr.strip().splitlines()) == 1
    bad_level = shrn("reconstruct", folder / "good.jpg", "--levels", "ultra")
    assert bad_level.returncode == 2 and "levels" in bad_level.stderr
