"""The packaged face model: its arrays, the torch API, and how broken or foreign files are refused."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from shrn_core.errors import FormatError, WeightsError
from shrn_core.facemodel import MODEL_DIR, REGION_NAMES, coefficients_from_params, load_face_model
from shrn_core.formats.mesh import read_params


@pytest.fixture(scope="module")
def model():
    return load_face_model()


def test_packaged_model_is_small_consistent_and_in_mm(model):
    size = sum(p.stat().st_size for p in MODEL_DIR.iterdir())
    assert size <= 8 * 2**20
    assert (MODEL_DIR / "LICENSE").read_text().count("MIT") >= 1
    assert model.name == "ict-face-v1"
    assert model.identity_basis.shape == (model.num_identity, model.num_vertices, 3)
    assert model.num_expression == 53 and len(model.expression_names) == 53
    width = np.ptp(model.neutral[:, 0])
    assert 120 < width < 220  # ear to ear of an adult head area, mm
    assert model.uvs.min() >= 0 and model.uvs.max() <= 1
    for name in REGION_NAMES[1:]:
        assert model.region(name).any(), name


def test_mirror_map_reflects_the_neutral_face(model):
    mirrored = model.neutral[model.mirror] * np.array([-1, 1, 1])
    assert np.median(np.linalg.norm(mirrored - model.neutral, axis=1)) < 1.0
    assert (model.mirror[model.mirror] == np.arange(model.num_vertices)).mean() > 0.95


def test_vertices_are_linear_batched_and_differentiable(model):
    zero = model.vertices(torch.zeros(1, model.num_identity))
    assert torch.allclose(zero[0], torch.as_tensor(model.neutral), atol=1e-5)

    rng = np.random.default_rng(0)
    a = torch.tensor(rng.normal(size=(2, 20)), dtype=torch.float32, requires_grad=True)
    e = torch.as_tensor(rng.uniform(0, 1, size=(2, model.num_expression)), dtype=torch.float32)
    both = model.vertices(a, e)
    assert both.shape == (2, model.num_vertices, 3)
    one = model.vertices(a[1:], e[1:])
    assert torch.allclose(both[1], one[0], atol=1e-4)
    # linear: identity and expression offsets add up
    sum_parts = model.vertices(a, None) + model.vertices(torch.zeros_like(a), e) - zero
    assert torch.allclose(both, sum_parts, atol=1e-3)

    both[:, model.now7].sum().backward()
    assert a.grad is not None and torch.isfinite(a.grad).all() and a.grad.abs().sum() > 0

    with pytest.raises(ValueError, match="identity must be"):
        model.vertices(torch.zeros(1, model.num_identity + 1))
    with pytest.raises(ValueError, match="expression must be"):
        model.vertices(torch.zeros(1, 5), torch.zeros(1, 3))


def test_mediapipe_points_lie_on_the_surface_near_the_68_landmarks(model):
    neutral = torch.as_tensor(model.neutral)[None]
    points = model.mediapipe_points(neutral)[0].numpy()
    assert points.shape == (478, 3)
    # mediapipe 1 (nose tip) and the iBUG-68 nose tip (30) are a few mm apart at most
    assert np.linalg.norm(points[1] - model.neutral[model.landmarks68[30]]) < 8.0


def _copy_model(tmp_path: Path) -> Path:
    folder = tmp_path / "face_model"
    shutil.copytree(MODEL_DIR, folder)
    return folder


def test_missing_corrupt_or_foreign_model_files_are_weights_errors(tmp_path):
    folder = _copy_model(tmp_path)
    (folder / "model.npz").unlink()
    with pytest.raises(WeightsError, match="missing") as missing:
        load_face_model(folder)
    assert missing.value.exit_code == 4

    folder = _copy_model(tmp_path / "b")
    data = (folder / "model.npz").read_bytes()
    (folder / "model.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="corrupt"):
        load_face_model(folder)

    folder = _copy_model(tmp_path / "c")
    config = json.loads((folder / "config.json").read_text())
    config["schema_version"] = 99
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(WeightsError, match="config"):
        load_face_model(folder)


def test_a_broken_model_ends_the_command_with_one_line_and_exit_4(tmp_path, shared_data):
    folder = _copy_model(tmp_path)
    (folder / "model.npz").write_bytes(b"PK\x03\x04 not really a zip")
    photo = sorted((shared_data / "faces_deca").iterdir())[0]
    env = dict(os.environ, SHRN_FACE_MODEL=str(folder))
    result = subprocess.run([sys.executable, "-m", "shrn_cli", "reconstruct", str(photo), "--out", str(tmp_path / "out")], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 4, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip() and "W0000" not in line and "INFO:" not in line
             and "WARNING:" not in line and not line.startswith("I0000")]
    assert "Traceback" not in result.stderr
    assert any("face model" in line for line in lines), lines
    assert not list((tmp_path / "out").glob("*.obj"))


def _params_of(model, tmp_path: Path, name: str | None = None) -> dict:
    return {"model": np.array(name or model.name), "identity": np.zeros(model.num_identity, np.float32),
              "expression": np.zeros((1, model.num_expression), np.float32),
              "expression_names": np.array(list(model.expression_names))}


def test_coefficients_of_another_model_are_refused_by_name(model, tmp_path):
    identity, expression = coefficients_from_params(_params_of(model, tmp_path), model)
    assert identity.shape == (model.num_identity,) and expression.shape == (1, model.num_expression)
    with pytest.raises(FormatError, match="'ict-face-v0'"):
        coefficients_from_params(_params_of(model, tmp_path, "ict-face-v0"), model)
    renamed = _params_of(model, tmp_path)
    renamed["expression_names"] = np.array(["x"] * model.num_expression)
    with pytest.raises(FormatError, match="expression names"):
        coefficients_from_params(renamed, model)
    with pytest.raises(FormatError, match="no face-model coefficients"):
        coefficients_from_params({"K": np.eye(3)}, model)


def test_written_params_carry_coefficients_that_rebuild_the_neutral_mesh(model, tmp_path, shared_data):
    from shrn_core.face import analyze_image
    from shrn_core.formats.image import read_image
    from shrn_core.formats.mesh import read_obj
    from shrn_core.reconstruct import reconstruct, write_reconstruction

    photo = read_image(sorted((shared_data / "faces_deca").iterdir())[0])
    recon = reconstruct(photo, face_analysis=analyze_image(photo), levels="coarse", render_outputs=False)
    paths = write_reconstruction(recon, tmp_path, "face")
    identity, expression = coefficients_from_params(read_params(paths["params"]), model, paths["params"])
    rebuilt = model.vertices(torch.as_tensor(identity)[None])[0].numpy()
    neutral, _, _ = read_obj(paths["mesh_neutral"])
    assert np.abs(neutral[: model.num_vertices] - rebuilt).max() < 0.01  # OBJ text keeps 5 decimals
    assert expression.min() >= 0 and expression.max() <= 1
