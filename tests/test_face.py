"""Face analysis on the real photos in ../shared/data: plausibility, selection, odd image types."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from shrn_core.errors import FaceError, InputError
from shrn_core.face import analyze_image
from shrn_core.face.landmark_sets import LANDMARKS_68
from shrn_core.formats.image import read_image


def _check_plausible(face, width, height):
    lm = face.landmarks
    assert lm.shape == (478, 3) and np.isfinite(lm).all()
    # eyes above the nose tip, nose tip above the mouth (image y grows downwards), for upright photos
    eyes_y = face.landmarks_5[:2, 1].mean()
    nose_y = face.landmarks_5[2, 1]
    mouth_y = face.landmarks_5[3:, 1].mean()
    assert eyes_y < nose_y < mouth_y
    # the subject's right eye appears on the image left
    assert face.landmarks_5[0, 0] < face.landmarks_5[1, 0]
    x0, y0, x1, y1 = face.bbox
    assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
    # inner points (eyes, nose, mouth) lie inside the detector box; the whole mesh within a margin of it
    inner = face.landmarks_68[17:, :2]
    margin = 0.05 * (x1 - x0)
    assert ((inner[:, 0] >= x0 - margin) & (inner[:, 0] <= x1 + margin)).all()
    assert ((inner[:, 1] >= y0 - margin) & (inner[:, 1] <= y1 + margin)).all()
    width_box = x1 - x0
    assert np.ptp(lm[:, 0]) < 2.0 * width_box


def test_all_clean_photos_give_plausible_landmarks(clean_photos):
    upright_failures = []
    for path in clean_photos:
        analysis = analyze_image(path)
        assert analysis.width > 0 and analysis.faces
        for face in analysis.faces:
            assert face.landmarks.shape == (478, 3)
        try:
            _check_plausible(analysis.face, analysis.width, analysis.height)
        except AssertionError:
            upright_failures.append(path.name)
    # AFLW2000 holds large-pose photos where a landmark ordering check may legitimately not hold
    assert len(upright_failures) <= 2, upright_failures


def test_largest_face_selected_and_index_picks_others(two_face_photo):
    analysis = analyze_image(two_face_photo)
    assert len(analysis.faces) == 2
    areas = [f.area for f in analysis.faces]
    assert areas[0] >= areas[1]
    assert analysis.selected == 0
    second = analyze_image(two_face_photo, face_index=1)
    assert second.face.bbox[0] != analysis.face.bbox[0]
    with pytest.raises(FaceError, match="out of range"):
        analyze_image(two_face_photo, face_index=5)


def test_sixty_eight_point_subset_is_ordered_like_ibug(hrn_photo):
    face = analyze_image(hrn_photo).face
    lm68 = face.landmarks_68
    assert len(set(LANDMARKS_68.tolist())) == 68
    assert lm68[0, 0] < lm68[8, 0] < lm68[16, 0]  # jaw runs from image left to right via the chin
    assert lm68[8, 1] > lm68[57, 1] > lm68[33, 1] > lm68[27, 1]  # chin below lip below nose below bridge
    assert lm68[36, 0] < lm68[39, 0] < lm68[42, 0] < lm68[45, 0]  # eye corners left to right


def test_no_face_raises(tmp_path):
    rng = np.random.default_rng(0)
    noise = (rng.random((256, 256, 3)) * 255).astype(np.uint8)
    with pytest.raises(FaceError, match="no face"):
        analyze_image(noise)


def test_odd_image_types_give_the_same_face(hrn_photo, tmp_path):
    rgb = read_image(hrn_photo)
    reference = analyze_image(rgb).face.landmarks_5

    gray = tmp_path / "gray.png"
    Image.fromarray(rgb).convert("L").save(gray)
    rgba = tmp_path / "rgba.png"
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])).save(rgba)
    sixteen = tmp_path / "sixteen.png"
    import cv2
    cv2.imwrite(str(sixteen), cv2.cvtColor(rgb.astype(np.uint16) * 257, cv2.COLOR_RGB2BGR))
    for path in (gray, rgba, sixteen):
        got = analyze_image(path).face.landmarks_5
        assert np.abs(got - reference).max() < 6.0, path.name


def test_exif_rotated_jpeg_reports_upright_pixels(hrn_photo, tmp_path):
    rgb = read_image(hrn_photo)
    rotated_store = np.ascontiguousarray(np.rot90(rgb, k=1))  # stored sideways
    path = tmp_path / "exif.jpg"
    image = Image.fromarray(rotated_store)
    exif = image.getexif()
    exif[0x0112] = 6  # viewer must rotate 90 degrees clockwise to show it upright
    image.save(path, exif=exif, quality=95)
    loaded = read_image(path)
    assert loaded.shape == rgb.shape
    face = analyze_image(path).face
    assert face.landmarks_5[0, 1] < face.landmarks_5[3, 1]  # eyes above the mouth: upright


def test_tiny_and_huge_images(hrn_photo):
    import cv2

    rgb = read_image(hrn_photo)
    tiny = cv2.resize(rgb, (112, 112), interpolation=cv2.INTER_AREA)
    face = analyze_image(tiny).face
    assert 0 <= face.landmarks_5[:, 0].min() and face.landmarks_5[:, 0].max() <= 112
    huge = cv2.resize(rgb, (4000, 4000), interpolation=cv2.INTER_LINEAR)
    big = analyze_image(huge).face.landmarks_5
    small = analyze_image(rgb).face.landmarks_5
    assert np.abs(big / (4000 / rgb.shape[1]) - small).max() < 8.0


@pytest.mark.parametrize("content", [b"", b"not an image at all", None])
def test_bad_files_raise_input_error(tmp_path, hrn_photo, content):
    path = tmp_path / "bad.jpg"
    if content is None:  # truncated real file
        path.write_bytes(hrn_photo.read_bytes()[:2000])
    else:
        path.write_bytes(content)
    with pytest.raises(InputError):
        analyze_image(path)


def test_directory_and_missing_path(tmp_path):
    with pytest.raises(InputError, match="directory"):
        analyze_image(tmp_path)
    with pytest.raises(InputError, match="not found"):
        analyze_image(tmp_path / "missing.jpg")
