"""The deeplabv3 backend with small randomly initialised torchvision models saved by the test."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from shrn_core.errors import InputError, WeightsError
from shrn_core.segment import create_backend, segment
from shrn_core.segment.deeplab import build_model, infer_architecture, load_state_dict

torchvision_seg = pytest.importorskip("torchvision.models.segmentation")


@pytest.fixture(scope="module")
def mobilenet_state():
    torch.manual_seed(0)
    model = torchvision_seg.deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=2)
    state = model.state_dict()
    # A known answer: the head's last layer outputs a constant "occluder" logit everywhere.
    state["classifier.4.weight"].zero_()
    state["classifier.4.bias"].copy_(torch.tensor([-4.0, 4.0]))
    return state


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory, mobilenet_state):
    path = tmp_path_factory.mktemp("weights") / "occ.pth"
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in mobilenet_state.items()}}, path)
    return path


@pytest.fixture(scope="module")
def photo(hrn_photo):
    from shrn_core.face import analyze_image
    from shrn_core.formats.image import read_image

    return read_image(hrn_photo), analyze_image(hrn_photo)


def test_wrappers_and_prefixes_are_unwrapped(tmp_path, mobilenet_state, weights_file):
    plain = tmp_path / "plain.pth"
    torch.save(mobilenet_state, plain)
    model_wrapped = tmp_path / "model.pth"
    torch.save({"model": mobilenet_state}, model_wrapped)
    for path in (plain, model_wrapped, weights_file):
        state = load_state_dict(path)
        assert set(state) == set(mobilenet_state)
        assert infer_architecture(state) == "deeplabv3_mobilenet_v3_large"


def test_constant_occluder_model_masks_the_aligned_crop(photo, weights_file):
    rgb, analysis = _on_canvas(*photo, pad=600)
    backend = create_backend("deeplabv3", weights=weights_file, device="cpu", input_size=96)
    result = segment(rgb, analysis, backend=backend)
    assert result.info["num_classes"] == 2 and result.backend == "deeplabv3"
    assert result.mask.shape == rgb.shape[:2]
    # softmax([-4, 4]) gives 0.9997 inside the warped crop and nothing outside it.
    nose = np.round(analysis.face.landmarks_5[2] - 0.5).astype(int)
    assert result.mask[nose[1], nose[0]] == 255
    assert result.probability[nose[1], nose[0]] == pytest.approx(1.0, abs=1e-3)
    assert result.mask[0, 0] == 0 and result.mask[-1, -1] == 0
    # The masked area is the crop square: (input side / scale)^2 in photo pixels.
    scale = np.sqrt(abs(np.linalg.det(backend.crop_transform(analysis)[:, :2])))
    expected = (96 / scale) ** 2
    assert abs((result.mask > 0).sum() / expected - 1) < 0.05
    # Class 0 as the occluder class inverts the answer.
    inverted = create_backend("deeplabv3", weights=weights_file, device="cpu", input_size=96, occluder_classes=[0])
    assert (segment(rgb, analysis, backend=inverted).mask > 0).sum() == 0


def test_missing_and_wrong_weights(tmp_path, mobilenet_state):
    with pytest.raises(WeightsError, match="--weights"):
        create_backend("deeplabv3")
    with pytest.raises(WeightsError, match="not found"):
        create_backend("deeplabv3", weights=tmp_path / "none.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"\x00garbage")
    with pytest.raises(WeightsError, match="cannot load checkpoint"):
        create_backend("deeplabv3", weights=junk)
    not_state = tmp_path / "list.pth"
    torch.save([1, 2, 3], not_state)
    with pytest.raises(WeightsError, match="no state dict"):
        create_backend("deeplabv3", weights=not_state)
    # A checkpoint missing a layer and with a reshaped one: the error lists both.
    broken = dict(mobilenet_state)
    del broken["classifier.0.project.0.weight"]
    broken["classifier.1.weight"] = torch.zeros(3, 3, 3, 3)
    path = tmp_path / "broken.pth"
    torch.save(broken, path)
    with pytest.raises(WeightsError) as info:
        create_backend("deeplabv3", weights=path)
    message = str(info.value)
    assert "1 missing: classifier.0.project.0.weight" in message
    assert "classifier.1.weight (3, 3, 3, 3) vs (256, 256, 3, 3)" in message
    with pytest.raises(WeightsError, match="architecture"):
        infer_architecture({"foo.weight": torch.zeros(1)})
    with pytest.raises(InputError, match="out of range"):
        create_backend("deeplabv3", weights=_save(tmp_path, mobilenet_state), occluder_classes=[5])


def test_resnet_architecture_is_recognised():
    small = torchvision_seg.deeplabv3_resnet50(weights=None, weights_backbone=None, num_classes=3, aux_loss=True)
    state = small.state_dict()
    assert infer_architecture(state) == "deeplabv3_resnet50"
    model = build_model(state)
    assert model.classifier[4].out_channels == 3 and model.aux_classifier is not None


def _on_canvas(rgb, analysis, pad):
    """The photo in the middle of a larger black canvas, landmarks moved along: the crop fits inside."""
    import dataclasses

    canvas = np.zeros((rgb.shape[0] + 2 * pad, rgb.shape[1] + 2 * pad, 3), np.uint8)
    canvas[pad:-pad, pad:-pad] = rgb
    faces = []
    for face in analysis.faces:
        landmarks = face.landmarks.copy()
        landmarks[:, :2] += pad
        faces.append(dataclasses.replace(face, landmarks=landmarks, bbox=face.bbox + pad))
    moved = dataclasses.replace(analysis, faces=faces, width=canvas.shape[1], height=canvas.shape[0], hands=[])
    return canvas, moved


def _save(tmp_path, state):
    path = tmp_path / "ok.pth"
    torch.save(state, path)
    return path
