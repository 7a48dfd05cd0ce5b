"""The ``learned`` segment backend and its training code, on real photos at a tiny scale (CPU).

A pack of five training photos aligned at 64 px, two training steps plus one resumed step, then the
backend on the resulting model folder; known answers for the crop geometry, the shape primitives,
the JPEG step and a constant-output network.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from shrn_core.errors import WeightsError
from shrn_core.segment import create_backend, segment
from shrn_core.segment import crop as crops
from shrn_core.segment import regions
from shrn_core.segment.occnet import OccNet, OccNetConfig, save_folder
from shrn_core.segment.train import augment, shapes
from shrn_core.segment.train.data import CompositeSource, Recipe
from shrn_core.segment.train.loop import Trainer, TrainOptions
from shrn_core.segment.train.occluders import KINDS
from shrn_core.segment.train.pack import build_pack, load_pack
from shrn_core.segment.train.textures import Random

NET, PACK = 64, 80


@pytest.fixture(scope="module")
def tiny_pack(tmp_path_factory, shared_data):
    folder = tmp_path_factory.mktemp("photos")
    for name in sorted((shared_data / "faces_extra" / "images").iterdir())[40:45]:
        os.symlink(name, folder / name.name)
    path = tmp_path_factory.mktemp("pack") / "pack.npz"
    build_pack(folder, path, net_size=NET, pack_size=PACK, crop_scale=1.25)
    return path


@pytest.fixture(scope="module")
def trained(tiny_pack, tmp_path_factory):
    """Two steps, then one resumed step: the second run's output folder."""
    root = tmp_path_factory.mktemp("runs")
    common = dict(pack=tiny_pack, batch=4, data_batch=8, device="cpu", validate_every_s=1e9, validation_batches=1,
                  minutes=5, budget_minutes=10, commit="test")
    Trainer(TrainOptions(out=root / "run1", max_steps=2, **common)).run()
    Trainer(TrainOptions(out=root / "run2", max_steps=1, resume=root / "run1" / "checkpoint.pt", **common)).run()
    return root / "run2"


@pytest.fixture(scope="module")
def photo(hrn_photo):
    from shrn_core.face import analyze_image
    from shrn_core.formats.image import read_image

    return read_image(hrn_photo), analyze_image(hrn_photo)


def test_pack_holds_aligned_faces_and_their_regions(tiny_pack):
    pack = load_pack(tiny_pack)
    assert len(pack) >= 5 and pack.images.shape[1:] == (PACK, PACK, 3) and pack.landmarks.shape[1:] == (478, 2)
    assert pack.meta["net_size"] == NET and pack.meta["pack_crop_scale"] == pytest.approx(1.25 * PACK / NET)
    from shrn_core.face.landmark_sets import five_point

    template = crops.template(PACK, pack.meta["pack_crop_scale"])
    for landmarks, region in zip(pack.landmarks, pack.regions):
        # The similarity puts the five points on the template (least squares: within a few px).
        assert np.abs(five_point(landmarks) - template).max() < 0.08 * PACK
        np.testing.assert_array_equal(region, regions.face_region(landmarks, (PACK, PACK)) > 0)


def test_crop_and_paste_back_invert_each_other():
    rng = np.random.default_rng(0)
    height, width = 300, 400
    yy, xx = np.mgrid[0:height, 0:width]
    image = np.stack([xx * 255 // width, yy * 255 // height, (xx + yy) % 256], -1).astype(np.uint8)
    template = crops.template(128, 1.25)
    angle, scale, shift = 0.3, 1.4, np.array([150.0, 90.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    five = template @ (scale * rotation).T + shift + rng.normal(0, 0.2, (5, 2))
    for size in (128, 48):  # 48: the photo is area-averaged first (scale below 0.6)
        matrix = crops.crop_transform(five, size, 1.25)
        np.testing.assert_allclose(crops.apply(matrix, five), crops.template(size, 1.25), atol=0.5 * size / 128 + 0.3)
        cut = crops.aligned_crop(image, matrix, size)
        # The crop pixel centre (i + 0.5, j + 0.5) samples the photo at the inverse-mapped point.
        inverse = crops.invert(matrix)
        centre = crops.apply(inverse, np.array([[size / 2, size / 2]]))[0]
        expected = image[int(centre[1]), int(centre[0]), 0].astype(float)
        assert abs(float(cut[size // 2, size // 2, 0]) - expected) < 4
        back = crops.paste_back(cut[:, :, 0].astype(np.float32), matrix, (height, width))
        inside = crops.paste_back(np.ones((size, size), np.float32), matrix, (height, width)) > 0.999
        error = np.abs(back[inside] - image[:, :, 0][inside])
        assert inside.sum() > 1000 and np.median(error) < (2 if size == 128 else 4)


def test_shape_primitives_known_answers():
    X, Y = shapes.pixel_grid(40, "cpu")
    square = torch.tensor([[[10.0, 10.0], [30.0, 10.0], [30.0, 30.0], [10.0, 30.0]]])
    sdf = shapes.polygon(X, Y, square)[0]
    assert sdf[19, 19] == pytest.approx(-9.5) and sdf[19, 35] == pytest.approx(5.5) and sdf[2, 2] > 0
    capsule = shapes.capsules(X, Y, torch.tensor([[[5.5, 20.5]]]), torch.tensor([[[30.5, 20.5]]]), torch.tensor([[3.0]]))
    assert capsule[0, 0, 20, 15] == pytest.approx(-3.0) and capsule[0, 0, 26, 15] == pytest.approx(3.0)
    assert capsule[0, 0, 20, 36] == pytest.approx(6.0 - 3.0)
    assert shapes.coverage(torch.tensor([0.0, -5.0, 5.0])).tolist() == [0.5, 1.0, 0.0]


def test_jpeg_step_keeps_high_quality_and_degrades_low_quality():
    rng = Random(0, "cpu")
    X, Y = shapes.pixel_grid(64, "cpu")
    image = torch.stack([X / 64, Y / 64, (X + Y) / 128], 1).repeat(2, 1, 1, 1)
    image[:, :, 20:40, 20:40] = torch.tensor([0.9, 0.1, 0.2])[:, None, None]
    fine = augment.jpeg(rng, image, p=1.0, quality=(95, 95))
    coarse = augment.jpeg(rng, image, p=1.0, quality=(10, 10))
    assert (fine - image).abs().mean() < 0.01
    assert (coarse - image).abs().mean() > 2 * (fine - image).abs().mean()


def test_generator_is_seeded_and_labels_each_kind(tiny_pack):
    bank = augment.FaceBank(load_pack(tiny_pack), "cpu", region_margin=0.2)
    first = CompositeSource(bank, seed=3, crop_scale=1.25).next_batch(4)
    again = CompositeSource(bank, seed=3, crop_scale=1.25).next_batch(4)
    other = CompositeSource(bank, seed=4, crop_scale=1.25).next_batch(4)
    assert torch.equal(first.image, again.image) and torch.equal(first.label, again.label)
    assert not torch.equal(first.image, other.image)
    assert first.image.shape == (4, 3, NET, NET) and set(first.label.unique().tolist()) <= {0.0, 1.0}
    chunked = CompositeSource(bank, seed=3, crop_scale=1.25, chunk=4, reuse=2)
    served = [chunked.next_batch(2) for _ in range(4)]  # one chunk of 4, then its mirrored second pass
    assert torch.equal(torch.cat([served[0].image, served[1].image]), first.image)
    second = torch.cat([served[2].label, served[3].label]).flip(-1)
    assert sorted(float(x.sum()) for x in second) == sorted(float(x.sum()) for x in first.label)
    clean = CompositeSource(bank, seed=5, crop_scale=1.25, recipe=Recipe(layers=[1.0])).next_batch(4)
    assert clean.label.sum() == 0 and clean.weight.sum() > 0
    for kind in KINDS:
        batch = CompositeSource(bank, seed=6, crop_scale=1.25, recipe=Recipe(layers=[0.0, 1.0], kinds={kind: 1.0},
                                                                           tight_crop=0.0)).next_batch(4)
        assert (batch.label * batch.weight).sum(dim=(1, 2, 3)).gt(0).sum() >= 2, kind


class _Plain:
    """A second data source for ``--extra-source``: grey pictures, a square occluder label."""

    def __init__(self, size, device, seed):
        self.size = size

    def next_batch(self, n):
        label = torch.zeros(n, 1, self.size, self.size)
        label[:, :, 10:30, 10:30] = 1
        return {"image": torch.full((n, 3, self.size, self.size), 0.5), "label": label}


def test_an_extra_source_fills_its_share_of_each_batch(tiny_pack):
    from shrn_core.segment.train.data import MixedSource, load_extra_source

    bank = augment.FaceBank(load_pack(tiny_pack), "cpu", region_margin=0.2)
    extra = load_extra_source(f"{__name__}:_Plain", NET, "cpu", 0)
    batch = MixedSource(CompositeSource(bank, seed=1, crop_scale=1.25), extra, 0.25).next_batch(8)
    assert batch.image.shape == (8, 3, NET, NET) and batch.weight.shape == (8, 1, NET, NET)
    assert torch.all(batch.image[6:] == 0.5) and torch.all(batch.weight[6:] == 1)
    assert batch.label[6:, :, 10:30, 10:30].min() == 1 and batch.label[6:].sum() == 2 * 400
    with pytest.raises(ValueError, match="module:factory"):
        load_extra_source("no_colon", NET, "cpu", 0)


def test_training_runs_resumes_and_writes_a_model_folder(trained):
    checkpoint = trained / "checkpoint.pt"
    assert checkpoint.stat().st_size < 16e6
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    assert state["step"] == 3 and state["samples"] == 12
    curves = json.loads((trained / "curves.json").read_text())
    assert [r["steps"] for r in curves["runs"]] == [2, 1] and curves["curves"]
    config = json.loads((trained / "occlusion_net" / "config.json").read_text())
    assert config["format"] == "shrn.occlusion_net" and config["input"]["size"] == NET
    assert len(config["training"]["command"]) == 2 and "--resume" not in config["training"]["command"][0]
    assert config["training"]["steps"] == 3 and config["training"]["commit"] == "test"
    weights = torch.load(trained / "occlusion_net" / "occlusion_net.pt", map_location="cpu", weights_only=True)
    assert all(v.dtype == torch.float16 for v in weights.values() if v.is_floating_point())


def test_backend_runs_a_trained_folder_and_its_checkpoint(trained, photo):
    rgb, analysis = photo
    for weights in (trained / "occlusion_net", trained / "checkpoint.pt"):
        backend = create_backend("learned", weights=weights, device="cpu")
        result = segment(rgb, analysis, backend=backend)
        assert result.backend == "learned" and result.mask.shape == rgb.shape[:2]
        assert 0.0 <= result.probability.min() and result.probability.max() <= 1.0
        np.testing.assert_array_equal(result.mask > 0, result.probability >= backend.spec.threshold)
        assert result.probability[:40, :40].max() == 0.0  # far outside the face: nothing
    batched = backend.segment_batch([rgb, rgb], [analysis, analysis])
    np.testing.assert_allclose(batched[1].probability, result.probability, atol=1e-5)


@pytest.fixture(scope="module")
def constant_model(tmp_path_factory):
    """A network whose answer is 'occluder' everywhere: the mask must be the grown face region."""
    model = OccNet(OccNetConfig())
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.fill_(8.0)
    folder = tmp_path_factory.mktemp("constant") / "model"
    save_folder(folder, model, {"input": {"size": 128, "crop_scale": 1.25}, "output": {"threshold": 0.5,
                                                                                     "region_margin": 0.1}})
    return folder


def test_constant_network_marks_exactly_the_grown_face_region(constant_model, photo):
    rgb, analysis = photo
    result = segment(rgb, analysis, backend=create_backend("learned", weights=constant_model, device="cpu"))
    landmarks = analysis.face.landmarks
    face = result.face_region > 0
    grown = crops.grow_region(result.face_region, landmarks, 0.1)
    mask = result.mask > 0
    assert mask[face].mean() > 0.995  # the whole face ...
    assert (mask & ~crops.grow_region(result.face_region, landmarks, 0.11)).sum() < 0.002 * mask.sum()  # ... no more
    assert mask[grown].mean() > 0.97  # ... and its margin


def test_hand_cue_adds_the_hands_found_by_face_analysis(tmp_path, photo):
    from dataclasses import replace

    from shrn_core.face.types import Hand

    model = OccNet(OccNetConfig())
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.fill_(-8.0)  # never an occluder
    save_folder(tmp_path / "zero", model, {"input": {"size": 128, "crop_scale": 1.25}, "output": {}})
    rgb, analysis = photo
    # A flat hand over the mouth: the 21 points spread around the mouth centre.
    mouth = analysis.face.landmarks[13, :2]
    offsets = np.random.default_rng(1).normal(0, 60, (21, 2))
    hand = Hand(np.concatenate([mouth + offsets, np.zeros((21, 1))], 1).astype(np.float32), "Left", 0.9)
    with_hand = replace(analysis, hands=[hand])
    plain = segment(rgb, with_hand, backend=create_backend("learned", weights=tmp_path / "zero", device="cpu"))
    cued = segment(rgb, with_hand, backend=create_backend("learned", weights=tmp_path / "zero", device="cpu",
                                                          use_hands=True))
    assert not plain.mask.any()
    drawn = regions.hands_mask([hand], rgb.shape[:2]) > 0
    marked = cued.mask > 0
    # Drawn at the crop's resolution (128 px here), so edges and the thinnest fingers differ by a few px.
    crop_px = int(np.ceil(2 / crops.scale_of(create_backend("learned", weights=tmp_path / "zero",
                                                              device="cpu").crop_transform(analysis))))
    near = cv2.dilate(drawn.astype(np.uint8), np.ones((2 * crop_px + 1,) * 2, np.uint8)) > 0
    assert marked[drawn].mean() > 0.9 and (marked & ~near).sum() < 0.01 * drawn.sum()


def test_missing_and_broken_weights_fail_with_one_clear_error(tmp_path, monkeypatch, constant_model):
    from shrn_core.segment import learned

    monkeypatch.setattr(learned, "SHIPPED_MODEL", tmp_path / "absent")
    with pytest.raises(WeightsError, match="--weights"):
        create_backend("learned", device="cpu")
    with pytest.raises(WeightsError, match="not found"):
        create_backend("learned", weights=tmp_path / "none.pt", device="cpu")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00garbage")
    with pytest.raises(WeightsError, match="cannot load"):
        create_backend("learned", weights=junk, device="cpu")
    with pytest.raises(WeightsError, match="config.json"):  # a bare state dict without its config
        bare = tmp_path / "bare" / "weights.pt"
        bare.parent.mkdir()
        torch.save(OccNet().state_dict(), bare)
        create_backend("learned", weights=bare, device="cpu")
    wrong = tmp_path / "wrong"
    config = json.loads((constant_model / "config.json").read_text())
    config["architecture"]["decoder_width"] = 32
    wrong.mkdir()
    (wrong / "config.json").write_text(json.dumps(config))
    (wrong / "occlusion_net.pt").write_bytes((constant_model / "occlusion_net.pt").read_bytes())
    with pytest.raises(WeightsError, match="do not match"):
        create_backend("learned", weights=wrong, device="cpu")


def test_cli_segments_with_a_model_folder(trained, hrn_photo, tmp_path):
    env = dict(os.environ, COLUMNS="200")
    done = subprocess.run([sys.executable, "-m", "shrn_cli", "segment", str(hrn_photo), "--backend", "learned",
                           "--weights", str(trained / "occlusion_net"), "--out", str(tmp_path), "--json", "--device", "cpu"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout.strip().splitlines()[-1])
    assert record["ok"] and record["backend"] == "learned"
    assert (tmp_path / f"{hrn_photo.stem}.mask.png").is_file()


def test_heldout_set_changes_only_the_occluded_pixels(shared_data):
    from shrn_core.face import analyze_image
    from shrn_core.formats.image import read_image
    from shrn_core.segment.train.heldout import make_heldout_set

    photo = shared_data / "faces_3ddfa" / sorted(p.name for p in (shared_data / "faces_3ddfa").iterdir())[0]
    samples = list(make_heldout_set([photo], analyze_image, per_photo=2, work_size=128))
    clean = read_image(photo).astype(int)
    assert len(samples) == 2 and samples[0].kinds[0] == next(iter(KINDS))
    for sample in samples:
        mask = sample.mask > 0
        changed = np.abs(sample.image.astype(int) - clean).max(-1) > 3
        assert mask.any() and changed[mask].mean() > 0.5
        assert changed[~crops.grow_region(mask, sample.analysis.face.landmarks, 0.05)].mean() < 0.01
