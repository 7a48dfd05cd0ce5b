"""The shared synthetic-occluder generator: loading the labelled set and landmark-guided pasting."""
from __future__ import annotations

import numpy as np
import pytest

from shrn_core.errors import InputError
from shrn_core.evaluate.occluders import (
    ARCFACE_TEMPLATE_112,
    load_occluders,
    make_synthetic_set,
    paste_occluder,
    similarity_transform,
)
from shrn_core.face.landmark_sets import LEFT_IRIS, MOUTH_LEFT, MOUTH_RIGHT, NOSE_TIP, RIGHT_IRIS
from shrn_core.face.types import Face


def face_with_five_points(points: np.ndarray) -> Face:
    """A Face whose five alignment points are ``points`` (other landmarks at their centroid)."""
    landmarks = np.zeros((478, 3), np.float32)
    landmarks[:, :2] = points.mean(axis=0)
    for index, point in zip((RIGHT_IRIS, LEFT_IRIS, NOSE_TIP, MOUTH_RIGHT, MOUTH_LEFT), points):
        landmarks[index, :2] = point
    x0, y0 = points.min(axis=0) - 20
    x1, y1 = points.max(axis=0) + 20
    return Face(bbox=np.array([x0, y0, x1, y1], np.float32), score=1.0, landmarks=landmarks)


@pytest.fixture(scope="module")
def occluders(shared_data):
    return load_occluders(shared_data / "occluded_webfaceocc")


def test_load_occluders_reads_all_twelve_with_kinds(occluders, shared_data):
    assert len(occluders) == 12
    kinds = {o.name: o.kind for o in occluders}
    assert sorted(n for n, k in kinds.items() if k == "glasses") == ["13_glass", "14_glass", "1_glass", "7_glass"]
    assert kinds["8_gas"] == kinds["0_surgical"] == kinds["2_N95"] == "mask"
    for occ in occluders:
        assert occ.rgb.shape == (112, 112, 3) and occ.rgb.dtype == np.uint8
        assert occ.alpha.shape == (112, 112) and 0.0 <= occ.alpha.min() and occ.alpha.max() <= 1.0
        coverage = (occ.gt_mask > 0).mean()
        assert 0.05 < coverage < 0.6, (occ.name, coverage)
    # Masks sit low in the aligned crop (mouth at y~92), glasses around the eyes (y~52).
    for occ in occluders:
        rows = np.nonzero(occ.gt_mask)[0]
        centre = rows.mean()
        assert (40 < centre < 65) if occ.kind == "glasses" else (centre > 70), (occ.name, centre)
    # The parent data folder is accepted too.
    assert len(load_occluders(shared_data)) == 12


def test_load_occluders_rejects_wrong_folder(tmp_path):
    with pytest.raises(InputError, match="images/"):
        load_occluders(tmp_path)


def test_similarity_transform_recovers_known_transform():
    angle, scale, shift = np.deg2rad(17.0), 3.5, np.array([40.0, -12.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = ARCFACE_TEMPLATE_112 @ rot.T + shift
    matrix = similarity_transform(ARCFACE_TEMPLATE_112, dst)
    np.testing.assert_allclose(matrix[:, :2], rot, atol=1e-9)
    np.testing.assert_allclose(matrix[:, 2], shift, atol=1e-7)


def test_paste_on_template_face_reproduces_ground_truth(occluders):
    """A face whose landmarks are the template itself gets the occluder exactly where it was."""
    occ = occluders[0]
    background = np.full((112, 112, 3), 90, np.uint8)
    occluded, mask = paste_occluder(background, face_with_five_points(ARCFACE_TEMPLATE_112), occ, rng=None)
    np.testing.assert_array_equal(mask, np.where(occ.alpha >= 0.5, 255, 0))
    inside = occ.alpha > 0.99
    assert np.abs(occluded[inside].astype(int) - occ.rgb[inside].astype(int)).max() <= 1
    assert (occluded[occ.alpha == 0] == 90).all()


def test_paste_follows_landmarks_and_is_deterministic(occluders):
    """Twice-as-large face shifted by (100, 50): mask area x4 and centroid moved accordingly."""
    target = ARCFACE_TEMPLATE_112 * 2 + np.array([100.0, 50.0])
    face = face_with_five_points(target)
    image = np.zeros((400, 400, 3), np.uint8)
    occ = next(o for o in occluders if o.kind == "mask")
    _, mask = paste_occluder(image, face, occ, rng=None)
    area_ratio = (mask > 0).sum() / (occ.gt_mask > 0).sum()
    assert 3.8 < area_ratio < 4.2
    src_centre = np.argwhere(occ.gt_mask > 0).mean(axis=0)[::-1]
    dst_centre = np.argwhere(mask > 0).mean(axis=0)[::-1]
    np.testing.assert_allclose(dst_centre, src_centre * 2 + [100, 50], atol=2.0)

    a = paste_occluder(image, face, occ, np.random.default_rng(5))
    b = paste_occluder(image, face, occ, np.random.default_rng(5))
    c = paste_occluder(image, face, occ, np.random.default_rng(6))
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[0], b[0])
    assert (a[1] != c[1]).any()


def test_paste_rejects_non_rgb(occluders):
    face = face_with_five_points(ARCFACE_TEMPLATE_112)
    with pytest.raises(InputError, match="uint8 RGB"):
        paste_occluder(np.zeros((112, 112), np.uint8), face, occluders[0])


def test_synthetic_set_on_real_photo_places_occluders_on_the_face(occluders, hrn_photo):
    from shrn_core.face import analyze_image

    analysis = analyze_image(hrn_photo)
    samples = list(make_synthetic_set([hrn_photo, hrn_photo], occluders, seed=3, per_photo=2,
                                      analyze=lambda _: analysis))
    assert [s.occluder for s in samples] == [o.name for o in occluders[:4]]
    lm = analysis.face.landmarks_5
    eye_y, mouth_y = lm[:2, 1].mean(), lm[3:, 1].mean()
    eye_distance = np.linalg.norm(lm[1] - lm[0])
    for sample in samples:
        assert sample.image.shape == (analysis.height, analysis.width, 3)
        ys = np.nonzero(sample.mask)[0]
        assert ys.size > 0.2 * eye_distance ** 2  # a sizeable occluder, not a speck
        if sample.kind == "glasses":
            assert abs(ys.mean() - eye_y) < 0.4 * eye_distance
        else:
            assert abs(ys.mean() - mouth_y) < 0.6 * eye_distance
    again = list(make_synthetic_set([hrn_photo, hrn_photo], occluders, seed=3, per_photo=2,
                                    analyze=lambda _: analysis))
    assert all((x.mask == y.mask).all() for x, y in zip(samples, again))


def test_synthetic_set_skips_photos_without_face(occluders, tmp_path, hrn_photo):
    from shrn_core.errors import FaceError

    def analyze(path):
        raise FaceError("no face found", path)

    assert list(make_synthetic_set([hrn_photo], occluders, analyze=analyze)) == []
