"""The eval sheet: a known 3 mm bump on the prediction shows up hot, on the right side, in both
heatmaps; a point-cloud scan is drawn too."""
from __future__ import annotations

import numpy as np
import pytest

from shrn_core.evaluate import evaluate
from shrn_core.evaluate.report import prediction_errors, render_error_sheet, write_item_outputs
from shrn_core.evaluate.synthetic import face_mesh, write_obj, write_pair
from shrn_core.formats.image import read_image

BUMP_MM, BUMP_SIGMA_MM = 3.0, 6.0
WIDTH, GUTTER, HEADER = 1600, 8, 74
PANEL = (WIDTH - 3 * GUTTER) // 2


def hot(image: np.ndarray) -> np.ndarray:
    """Pixels of the upper half of the turbo map (yellow to dark red), even when shaded."""
    r, g, b = (image[..., i].astype(int) for i in range(3))
    return (r > 90) & (r > b + 60)


@pytest.fixture(scope="module")
def bumped(tmp_path_factory):
    """A scan of the mean face and a prediction with a Gaussian bump on the subject's left cheek."""
    folder = tmp_path_factory.mktemp("eval_sheet")
    pred, scan, _, _ = write_pair(folder, stem="face", sigma=0.05, seed=3, pred_subdivisions=2, scan_subdivisions=0)
    vertices, faces = face_mesh(2)
    centre = np.array([vertices[:, 0].max() * 0.55, np.median(vertices[:, 1]), 0.0])
    centre = vertices[np.argmin(np.linalg.norm(vertices[:, :2] - centre[:2], axis=1))]
    weight = np.exp(-np.sum((vertices - centre) ** 2, axis=1) / (2 * BUMP_SIGMA_MM ** 2))
    moved = vertices + np.array([0, 0, BUMP_MM]) * weight[:, None]  # out of the face (head frame +z)
    write_obj(pred, moved, faces, topology="mediapipe468")
    return evaluate(pred, scan), weight


def test_prediction_errors_find_the_bump(bumped):
    result, weight = bumped
    distances, inside = prediction_errors(result)
    assert inside.mean() > 0.5
    peak = weight > 0.95
    # the alignment moves a little towards the bump; its top stays about BUMP_MM off the scan
    assert np.median(distances[peak]) == pytest.approx(BUMP_MM, abs=0.6)
    assert np.median(distances[(weight < 1e-3) & inside]) < 0.3


def test_sheet_shows_the_bump_in_both_panels(bumped, tmp_path):
    result, _ = bumped
    paths = write_item_outputs(result, tmp_path, "face", "pred.obj", "scan.obj", heatmap_max=2.0)
    sheet = read_image(paths["error_sheet"])
    assert sheet.shape[1] == WIDTH
    for index in range(2):
        x = GUTTER + index * (PANEL + GUTTER)
        panel = sheet[HEADER + GUTTER:HEADER + GUTTER + PANEL, x:x + PANEL]
        rows, cols = np.nonzero(hot(panel))
        assert len(rows) > 300, index
        # the subject's left cheek is on the image right in a front view
        assert cols.mean() > PANEL * 0.55, index
    # a point cloud (no scan triangles) is splatted rather than rasterized
    cloud = result.__class__(**{**result.__dict__, "scan_faces": np.zeros((0, 3), np.int64)})
    splatted = render_error_sheet(cloud, 2.0, "cloud")
    right = splatted[HEADER + GUTTER:HEADER + GUTTER + PANEL, 2 * GUTTER + PANEL:2 * GUTTER + 2 * PANEL]
    assert hot(right).sum() > 300
