"""RePaint backend with a tiny randomly initialised UNet saved by the test (CPU, few steps)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from shrn_core.errors import FaceError, WeightsError
from shrn_core.formats.image import read_image, read_image_raw, write_image
from shrn_core.inpaint import inpaint_with_report
from shrn_core.inpaint.face_crop import aligned_crop, paste_back, warp_to_crop
from shrn_core.inpaint.repaint import _count_evaluations, load_model

pytest.importorskip("diffusers")

FAST = {"steps": 8, "jump_length": 4, "jump_n_sample": 2, "device": "cpu"}


def tiny_unet():
    import torch
    from diffusers import UNet2DModel

    torch.manual_seed(0)
    return UNet2DModel(sample_size=32, in_channels=3, out_channels=3, layers_per_block=1, block_out_channels=(8, 16),
                       down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"),
                       norm_num_groups=4)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """A 2k-parameter UNet gains nothing from threads, and on a busy 2-core machine they spin: 100x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_ddpm")
    tiny_unet().save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def photo(shared_data):
    from shrn_core.face import analyze_image

    path = shared_data / "faces_deca" / "exp__0.jpg"
    image = read_image(path)
    return path, image, analyze_image(image, hands=False)


def mouth_mask(analysis, shape) -> np.ndarray:
    mask = np.zeros(shape[:2], np.uint8)
    hull = cv2.convexHull(analysis.face.landmarks[[61, 291, 0, 17, 13, 14], :2].astype(np.float32)).astype(np.int32)
    cv2.fillConvexPoly(mask, hull, 255)
    return cv2.dilate(mask, np.ones((7, 7), np.uint8))


def test_aligned_crop_frames_the_face_like_celebahq(photo):
    _, image, analysis = photo
    crop = aligned_crop(analysis.face, 256)
    eyes = cv2.transform(analysis.face.landmarks_5[None, :2].astype(np.float64) - 0.5, crop.matrix)[0] + 0.5
    assert abs(eyes[0, 1] - eyes[1, 1]) < 0.03 * 256  # eye line level
    assert abs(eyes[:, 0].mean() - 128) < 0.03 * 256  # centred between the eyes
    assert 0.18 * 256 < np.linalg.norm(eyes[1] - eyes[0]) <= 0.25 * 256 + 1  # eyes a quarter of the side apart at most
    # crop and paste back: the interior comes back close to the original photo
    pasted, weight = paste_back(warp_to_crop(image.astype(np.float32), crop), crop, image.shape, feather=4)
    inner = weight > 0.99
    assert inner.sum() > 0.2 * inner.size
    assert np.abs(pasted[inner] - image[inner]).mean() < 12


def test_repaint_fills_only_the_mask_deterministically(photo, model_dir):
    _, image, analysis = photo
    mask = mouth_mask(analysis, image.shape)
    first = inpaint_with_report(image, mask, analysis, "repaint", weights=model_dir, seed=3, **FAST)
    outside = mask == 0
    assert np.array_equal(first.image[outside], image[outside])
    assert not np.array_equal(first.image[~outside], image[~outside])
    assert first.info["model_evaluations"] == _count_evaluations(8, 4, 2) and first.info["crop_size"] == 32
    second = inpaint_with_report(image, mask, analysis, "repaint", weights=model_dir, seed=3, **FAST)
    assert np.array_equal(first.image, second.image)


def test_repaint_accepts_a_ddpm_pipeline_folder(tmp_path, model_dir):
    tiny_unet().save_pretrained(tmp_path / "unet")
    (tmp_path / "scheduler").mkdir()
    (tmp_path / "scheduler" / "scheduler_config.json").write_text(json.dumps(
        {"_class_name": "DDPMScheduler", "num_train_timesteps": 500, "beta_schedule": "linear", "variance_type": "fixed_small"}))
    model = load_model(tmp_path, "cpu")
    assert model.size == 32 and model.scheduler_config["num_train_timesteps"] == 500


def test_repaint_weight_errors_name_the_problem(tmp_path, model_dir):
    with pytest.raises(WeightsError, match="not found"):
        load_model(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(WeightsError, match="config.json"):
        load_model(empty)
    no_weights = tmp_path / "no_weights"
    no_weights.mkdir()
    (no_weights / "config.json").write_text((model_dir / "config.json").read_text())
    with pytest.raises(WeightsError, match="diffusion_pytorch_model.safetensors"):
        load_model(no_weights)
    (no_weights / "diffusion_pytorch_model.safetensors").write_bytes(b"garbage, not safetensors")
    with pytest.raises(WeightsError, match="cannot load"):
        load_model(no_weights)
    other = tmp_path / "vae"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"_class_name": "AutoencoderKL"}))
    (other / "diffusion_pytorch_model.safetensors").write_bytes(b"x")
    with pytest.raises(WeightsError, match="not a UNet2DModel"):
        load_model(other)


def test_repaint_without_a_face_is_a_face_error(model_dir):
    yy, xx = np.mgrid[0:64, 0:64]
    image = np.dstack([xx * 3, yy * 3, np.full_like(xx, 90)]).astype(np.uint8)
    mask = np.zeros((64, 64), np.uint8)
    mask[20:40, 20:40] = 255
    with pytest.raises(FaceError):
        inpaint_with_report(image, mask, None, "repaint", weights=model_dir, **FAST)


def test_cli_repaint_writes_the_output_and_refuses_missing_weights(photo, model_dir, tmp_path):
    path, image, analysis = photo
    write_image(tmp_path / "face.png", image)
    write_image(tmp_path / "face.mask.png", mouth_mask(analysis, image.shape))
    from shrn_core.formats.face import write_face_json

    write_face_json(tmp_path / "face.face.json", analysis)  # reused by the command: no second analysis
    env = dict(os.environ, COLUMNS="200", OMP_NUM_THREADS="1")
    base = [sys.executable, "-m", "shrn_cli", "inpaint", str(tmp_path / "face.png"), "--backend", "repaint"]
    result = subprocess.run(base + ["--weights", str(model_dir), "--steps", "6", "--jump-length", "3",
                                    "--jump-n-sample", "2", "--device", "cpu", "--json"], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["face"] == "reused"
    out = read_image_raw(json.loads(result.stdout)["outputs"]["inpainted"])
    assert out.shape == image.shape
    result = subprocess.run(base + ["--weights", str(tmp_path / "nowhere")], capture_output=True, text=True, env=env)
    assert result.returncode == 4 and "Traceback" not in result.stderr and "config.json" in result.stderr
