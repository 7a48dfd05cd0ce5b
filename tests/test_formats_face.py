"""The face JSON round-trips, and malformed files are refused with FormatError."""
from __future__ import annotations

import json

import numpy as np
import pytest

from shrn_core.errors import FormatError
from shrn_core.face import analyze_image, load_or_analyze
from shrn_core.formats import atomic_write, image_stem, output_path
from shrn_core.formats.face import read_face_json, write_face_json


@pytest.fixture(scope="module")
def analysis(two_face_photo):
    return analyze_image(two_face_photo)


def test_face_json_round_trip(analysis, tmp_path):
    path = write_face_json(tmp_path / "x.face.json", analysis)
    doc = json.loads(path.read_text())
    assert doc["format"] == "shrn.face" and doc["schema_version"] == 1
    assert len(doc["faces"][0]["landmarks_68"]) == 68 and len(doc["faces"][0]["landmarks_5"]) == 5
    back = read_face_json(path)
    assert (back.width, back.height) == (analysis.width, analysis.height)
    assert len(back.faces) == len(analysis.faces) == 2
    for a, b in zip(back.faces, analysis.faces):
        assert np.abs(a.landmarks - b.landmarks).max() <= 0.006
        assert np.abs(a.bbox - b.bbox).max() <= 0.006


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(format="shrn.mask"), "not a shrn face"),
    (lambda d: d.update(schema_version=99), "schema_version"),
    (lambda d: d.pop("faces"), "missing field"),
    (lambda d: d["faces"][0].update(landmarks_478=[[0, 0, 0]] * 10), "shape"),
    (lambda d: d.update(selected_face=7), "out of range"),
])
def test_invalid_face_json_is_refused(analysis, tmp_path, mutate, message):
    path = write_face_json(tmp_path / "x.face.json", analysis)
    doc = json.loads(path.read_text())
    mutate(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(FormatError, match=message):
        read_face_json(path)


def test_garbage_face_json(tmp_path):
    path = tmp_path / "x.face.json"
    path.write_text("{not json")
    with pytest.raises(FormatError, match="not valid JSON"):
        read_face_json(path)


def test_reuse_prefers_valid_json_and_recomputes_bad(two_face_photo, analysis, tmp_path):
    target = output_path(tmp_path, image_stem(two_face_photo), "face", "json")
    write_face_json(target, analysis)
    reused, computed = load_or_analyze(two_face_photo, tmp_path, width=analysis.width, height=analysis.height)
    assert not computed and len(reused.faces) == 2
    target.write_text("garbage")
    again, computed = load_or_analyze(two_face_photo, tmp_path)
    assert computed and len(again.faces) == 2


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError):
        with atomic_write(target) as handle:
            handle.write(b"partial")
            raise RuntimeError("boom")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_stem_of_intermediates():
    assert image_stem("a/b/photo.jpg") == "photo"
    assert image_stem("a/photo.mask.png") == "photo"
    assert image_stem("photo.inpainted.png") == "photo"


def test_atomic_write_gives_ordinary_permissions(tmp_path):
    import os
    import stat

    target = tmp_path / "out.bin"
    with atomic_write(target) as handle:
        handle.write(b"x")
    mode = stat.S_IMODE(target.stat().st_mode)
    current = os.umask(0)
    os.umask(current)
    assert mode == 0o666 & ~current
