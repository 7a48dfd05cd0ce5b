"""The training-free ``auto`` segmenter on real photos with known (pasted) occluders, plus the API."""
from __future__ import annotations

import numpy as np
import pytest

from shrn_core.errors import FaceError, InputError
from shrn_core.evaluate.occluders import load_occluders, paste_occluder
from shrn_core.face.types import Hand
from shrn_core.formats.image import read_image
from shrn_core.segment import create_backend, segment
from shrn_core.segment import regions


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    p, t = pred > 0, truth > 0
    return float((p & t).sum() / max((p | t).sum(), 1))


@pytest.fixture(scope="module")
def photo(hrn_photo):
    from shrn_core.face import analyze_image

    return read_image(hrn_photo), analyze_image(hrn_photo)


@pytest.fixture(scope="module")
def occluders(shared_data):
    return {o.name: o for o in load_occluders(shared_data)}


@pytest.fixture(scope="module")
def auto():
    return create_backend("auto")


@pytest.mark.parametrize("name,seed", [("3_cloth", 0), ("6_N95", 1), ("8_gas", 1)])
def test_face_mask_found(photo, occluders, auto, name, seed):
    rgb, analysis = photo
    occluded, truth = paste_occluder(rgb, analysis.face, occluders[name], np.random.default_rng(seed))
    result = segment(occluded, analysis, backend=auto)
    assert result.mask.shape == truth.shape and result.mask.dtype == np.uint8
    assert set(np.unique(result.mask)) <= {0, 255}
    assert iou(result.mask, truth) > 0.75


def test_glasses_cover_the_eyes(photo, occluders, auto):
    rgb, analysis = photo
    occluded, truth = paste_occluder(rgb, analysis.face, occluders["13_glass"], np.random.default_rng(0))
    result = segment(occluded, analysis, backend=auto)
    assert iou(result.mask, truth) > 0.5
    # The eyes themselves are not skin-coloured in any photo; under a lens they count as occluded.
    irises = np.round(analysis.face.landmarks[[468, 473], :2] - 0.5).astype(int)
    covered = [(x, y) for x, y in irises if truth[y, x] == 255]
    assert covered and all(result.mask[y, x] == 255 for x, y in covered)


def test_clean_photo_has_almost_no_occlusion(photo, auto):
    rgb, analysis = photo
    result = segment(rgb, analysis, backend=auto)
    assert result.occluded_fraction < 0.03
    region = result.face_region > 0
    lm = analysis.face.landmarks[:468, :2]
    # The face region is the face: all mesh points inside its bounding box, covering most of it.
    x0, y0 = lm.min(axis=0)
    x1, y1 = lm.max(axis=0)
    assert region[int(y0):int(y1), int(x0):int(x1)].mean() > 0.7
    assert not region[: int(y0) - 5].any() and not region[int(y1) + 5:].any()


def test_hand_over_the_face_is_occluded(photo, auto):
    """Hands are skin-coloured: they are found from the hand landmarks, not from colour."""
    rgb, analysis = photo
    face = analysis.face
    eye_distance = np.linalg.norm(face.landmarks_5[1] - face.landmarks_5[0])
    cheek = face.landmarks[50, :2]  # subject's right cheek
    # A flat hand: wrist below the cheek, fingers pointing up, palm ~0.8 eye distances wide.
    hand = np.zeros((21, 3), np.float32)
    for finger, base in enumerate((1, 5, 9, 13, 17)):
        x = cheek[0] + (finger - 2) * 0.2 * eye_distance
        for joint in range(4):
            hand[base + joint, :2] = (x, cheek[1] - (joint - 1) * 0.25 * eye_distance)
    hand[0, :2] = (cheek[0], cheek[1] + 0.5 * eye_distance)
    with_hand = type(analysis)(analysis.image_path, analysis.width, analysis.height, analysis.faces,
                               [Hand(hand, "Left", 0.9)], analysis.selected)
    result = segment(rgb, with_hand, backend=auto)
    drawn = regions.hands_mask([Hand(hand, "Left", 0.9)], rgb.shape[:2]) > 0
    inside = drawn & (result.face_region > 0)
    assert inside.sum() > 0.3 * eye_distance ** 2
    assert (result.mask[inside] == 255).mean() > 0.95
    assert segment(rgb, analysis, backend=auto).mask[inside].mean() < 0.05 * 255  # not there without the hand


def test_labelled_webface_crop(shared_data, occluders, auto):
    """A real 112x112 WebFace-OCC crop against its ground-truth mask."""
    occ = occluders["0_surgical"]
    result = segment(occ.rgb, backend=auto)
    assert iou(result.mask, occ.gt_mask) > 0.7


def test_api_paths_arrays_and_errors(photo, hrn_photo, auto, tmp_path):
    rgb, analysis = photo
    from_path = segment(hrn_photo, analysis, backend=auto)
    from_array = segment(rgb, analysis, backend=auto)
    np.testing.assert_array_equal(from_path.mask, from_array.mask)
    with pytest.raises(FaceError, match="face index 3 out of range"):
        segment(rgb, analysis, backend=auto, face_index=3)
    with pytest.raises(InputError, match="describes a"):
        segment(rgb[:-10], analysis, backend=auto)
    with pytest.raises(InputError, match="HxWx3 uint8"):
        segment(rgb.astype(np.float32), analysis, backend=auto)
    with pytest.raises(InputError, match="unknown segment backend"):
        segment(rgb, analysis, backend="nope")
    with pytest.raises(InputError, match="bad option"):
        create_backend("auto", not_an_option=1)
    with pytest.raises(FaceError, match="no face"):
        segment(np.full((200, 200, 3), 128, np.uint8))
