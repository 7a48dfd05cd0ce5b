"""Mask files: round trips, validation, lenient reading of user masks, no half-written outputs."""
from __future__ import annotations

import numpy as np
import pytest

from shrn_core.errors import FormatError, InputError, NumericalError
from shrn_core.formats.image import write_image
from shrn_core.formats.mask import (
    read_mask,
    read_segmentation,
    segmentation_paths,
    validate_mask,
    write_mask,
    write_segmentation,
)
from shrn_core.segment.types import SegmentationResult


def make_result(height=40, width=60) -> SegmentationResult:
    mask = np.zeros((height, width), np.uint8)
    mask[10:20, 15:40] = 255
    region = np.zeros_like(mask)
    region[5:35, 10:50] = 255
    prob = np.linspace(0, 1, height * width, dtype=np.float32).reshape(height, width)
    return SegmentationResult(mask=mask, face_region=region, probability=prob, backend="test")


def test_segmentation_round_trip(tmp_path):
    result = make_result()
    paths = write_segmentation(tmp_path, "photo", result, probability=True)
    assert paths == segmentation_paths(tmp_path, "photo", True)
    assert [p.name for p in paths.values()] == ["photo.mask.png", "photo.face_region.png", "photo.mask_prob.png"]
    back = read_segmentation(tmp_path, "photo", shape=(40, 60))
    np.testing.assert_array_equal(back["mask"], result.mask)
    np.testing.assert_array_equal(back["face_region"], result.face_region)
    np.testing.assert_allclose(back["mask_prob"], result.probability, atol=0.5 / 255 + 1e-6)
    assert result.occluded_fraction == pytest.approx((10 * 25) / (30 * 40))


def test_without_probability_only_two_files(tmp_path):
    paths = write_segmentation(tmp_path, "a", make_result())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.face_region.png", "a.mask.png"]
    assert set(paths) == {"mask", "face_region"}


def test_validate_rejects_bad_masks():
    good = np.zeros((4, 5), np.uint8)
    validate_mask(good, (4, 5))
    with pytest.raises(FormatError, match="only 0 and 255"):
        validate_mask(np.full((4, 5), 7, np.uint8))
    with pytest.raises(FormatError, match="5x4 but the photo is 6x4"):
        validate_mask(good, (4, 6))
    with pytest.raises(FormatError, match="HxW uint8"):
        validate_mask(np.zeros((4, 5, 3), np.uint8))
    with pytest.raises(FormatError, match="HxW uint8"):
        validate_mask(np.zeros((4, 5), np.float32))


def test_invalid_result_writes_nothing(tmp_path):
    bad = make_result()
    bad.face_region = bad.face_region[:-1]  # wrong size
    with pytest.raises(FormatError):
        write_segmentation(tmp_path, "x", bad, probability=True)
    nan = make_result()
    nan.probability[0, 0] = np.nan
    with pytest.raises(NumericalError):
        write_segmentation(tmp_path, "y", nan, probability=True)
    assert list(tmp_path.iterdir()) == []


def test_read_mask_accepts_user_masks(tmp_path):
    base = np.zeros((8, 9), np.uint8)
    base[2:5, 3:7] = 255
    write_image(tmp_path / "gray.png", base)
    write_image(tmp_path / "rgb.png", np.dstack([base] * 3))
    write_image(tmp_path / "alpha.png", np.dstack([np.full_like(base, 255)] * 3 + [base]))
    write_image(tmp_path / "deep.png", base.astype(np.uint16) * 257)
    for name in ("gray.png", "rgb.png", "alpha.png", "deep.png"):
        np.testing.assert_array_equal(read_mask(tmp_path / name), base, err_msg=name)
    with pytest.raises(InputError, match="9x8 but the photo is 10x8"):
        read_mask(tmp_path / "gray.png", shape=(8, 10))


def test_read_mask_bad_files(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_mask(tmp_path / "missing.png")
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    with pytest.raises(InputError, match="not a readable image"):
        read_mask(tmp_path / "junk.png")
    with pytest.raises(InputError, match="PNG"):
        write_mask(tmp_path / "m.jpg", np.zeros((3, 3), np.uint8))
