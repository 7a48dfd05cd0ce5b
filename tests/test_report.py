"""Summary sheets: clay renders with known geometry, sheets of a real `shrn run` (in memory and
from files alone), resume, --no-summary, failed photos, the neutral mesh, `shrn reconstruct --summary`."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from shrn_core.evaluate.occluders import load_occluders, paste_occluder
from shrn_core.face import analyze_image
from shrn_core.formats.image import read_image, write_image
from shrn_core.formats.mask import read_mask
from shrn_core.pipeline import PipelineOptions, run
from shrn_core.report import draw
from shrn_core.report.summary import (GUTTER, HEADER, PANEL, WIDTH, face_box, load_inputs, render_sheet,
                                      write_reconstruction_summary)
from shrn_core.report.views import CLAY, INSIDE, ViewCamera, crop_camera, orbit_cameras, render_clay

FAST_FIT = {"render_size": 96, "texture_size": 128, "subdivisions": 1, "coarse_iterations": 20,
            "mid_iterations": 4, "fine_iterations": 3, "displacement_size": 32, "max_render_side": 256}
LABEL_BAND = 32  # rows at the top of a panel that carry its caption


def square(side: float = 100.0) -> tuple[np.ndarray, np.ndarray]:
    """A flat square in the head frame's x-y plane facing +z (towards a frontal camera)."""
    h = side / 2
    vertices = np.array([[-h, -h, 0], [h, -h, 0], [h, h, 0], [-h, h, 0]], np.float32)
    return vertices, np.array([[0, 1, 2], [0, 2, 3]])


def panel(sheet: np.ndarray, row: int, col: int) -> np.ndarray:
    y = HEADER + GUTTER + row * (PANEL + GUTTER)
    x = GUTTER + col * (PANEL + GUTTER)
    return sheet[y:y + PANEL, x:x + PANEL]


def test_orbit_views_of_a_square_have_the_expected_footprints():
    vertices, faces = square()
    size = 200
    # alone, the front view fills 86 % of the image, centred
    [(_, alone)] = render_clay(vertices, faces, orbit_cameras(vertices, [0], size))
    rows, cols = np.nonzero(alone)
    assert np.ptp(cols) + 1 == pytest.approx(0.86 * size, abs=2)
    assert np.ptp(rows) + 1 == pytest.approx(0.86 * size, abs=2)
    assert (cols.min() + cols.max()) / 2 == pytest.approx(size / 2, abs=1.5)
    cameras = orbit_cameras(vertices, [0, -40, -90, 180], size)
    (front, front_mask), (turned, turned_mask), (edge, edge_mask), (back, back_mask) = render_clay(vertices, faces, cameras)
    # the views share one scale, set by the largest: in profile the square's near edge (50 mm closer
    # than its centre, seen from 6 x its half-diagonal) spans the 86 %, so the front view shrinks
    distance = 6 * np.hypot(50, 50)
    rows, cols = np.nonzero(front_mask)
    assert np.ptp(cols) + 1 == pytest.approx(0.86 * size * (distance - 50) / distance, abs=2)
    assert np.ptp(rows) == np.ptp(cols)
    # turned by 40 degrees the square narrows by about cos 40 (a long lens: little perspective)
    width = np.ptp(np.nonzero(turned_mask)[1]) + 1
    assert width / (cols.max() - cols.min() + 1) == pytest.approx(np.cos(np.radians(40)), rel=0.05)
    # edge-on in profile it all but disappears
    assert edge_mask.sum() < 0.02 * front_mask.sum()
    # seen from behind, every pixel is a back face in the flat "inside" colour
    assert back_mask.sum() == pytest.approx(front_mask.sum(), rel=0.02)
    assert np.abs(back[back_mask].astype(int) - np.round(INSIDE * 255)).max() <= 1
    # the lit front is clay-coloured: warm, brighter than the inside colour
    mean = front[front_mask].mean(0)
    assert mean[0] > mean[2] and mean.mean() > np.round(INSIDE * 255).mean()
    assert np.allclose(mean / mean.max(), CLAY / CLAY.max(), atol=0.06)


def test_crop_camera_puts_the_mesh_where_it_is_in_the_photo():
    vertices, faces = square(60)
    K = np.array([[800, 0, 320], [0, 800, 240], [0, 0, 1]], np.float64)
    R, t = np.eye(3), np.array([10.0, -5.0, -700.0])
    cam = vertices @ R.T + t
    u = K[0, 0] * cam[:, 0] / -cam[:, 2] + K[0, 2]
    v = K[1, 1] * -cam[:, 1] / -cam[:, 2] + K[1, 2]
    box = (250, 180, 200)  # x0, y0, side in photo pixels
    size = 100
    [(_, mask)] = render_clay(vertices, faces, [crop_camera(K, R, t, box, size)])
    rows, cols = np.nonzero(mask)
    scale = size / box[2]
    assert cols.min() == pytest.approx((u.min() - box[0]) * scale, abs=1)
    assert cols.max() + 1 == pytest.approx((u.max() - box[0]) * scale, abs=1)
    assert rows.min() == pytest.approx((v.min() - box[1]) * scale, abs=1)
    assert rows.max() + 1 == pytest.approx((v.max() - box[1]) * scale, abs=1)


@pytest.fixture(scope="module")
def occluded_photo(tmp_path_factory, shared_data):
    """A real 450x450 photo with a surgical mask pasted over nose and mouth."""
    folder = tmp_path_factory.mktemp("report_photo")
    photo = read_image(shared_data / "faces_deca" / "AFLW2000__image04085.jpg")
    occluder = next(o for o in load_occluders(shared_data / "occluded_webfaceocc") if o.kind == "mask")
    image, _ = paste_occluder(photo, analyze_image(photo).face, occluder, rng=None)
    return write_image(folder / "masked.png", image)


@pytest.fixture(scope="module")
def run_folder(occluded_photo, tmp_path_factory):
    out = tmp_path_factory.mktemp("report_run")
    [report] = run([occluded_photo], out, PipelineOptions(reconstruct_options=dict(FAST_FIT), device="cpu"))
    assert report.ok, report.error
    return out


def test_run_writes_a_sheet_that_shows_each_stage(run_folder, occluded_photo):
    folder = run_folder / "masked"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["summary"]["status"] == "computed" and manifest["summary"]["seconds"] > 0
    sheet = read_image(folder / "masked.summary.png")
    assert sheet.shape[1] == WIDTH and sheet.shape[0] >= HEADER + 2 * PANEL + 3 * GUTTER

    photo = read_image(occluded_photo)
    inputs = load_inputs(folder)
    assert inputs.mesh is not None and inputs.camera is not None and inputs.photo is not None
    box = face_box(inputs)
    # photo panel: the photo's face crop (below the caption band)
    expected = draw.crop(photo, box, PANEL)
    shown = panel(sheet, 0, 0)
    assert np.abs(shown[LABEL_BAND:].astype(int) - expected[LABEL_BAND:]).mean() < 2.0
    # mask panel: the photo turned red where the mask is, unchanged elsewhere (away from the outline)
    mask = draw.crop(read_mask(folder / "masked.mask.png"), box, PANEL)
    region = draw.crop(read_mask(folder / "masked.face_region.png"), box, PANEL)
    masked_panel = panel(sheet, 0, 1).astype(int)
    redder = (masked_panel[..., 0] - masked_panel[..., 1]) - (shown[..., 0].astype(int) - shown[..., 1])
    inside = mask[LABEL_BAND:] > 200
    assert inside.sum() > 500
    assert redder[LABEL_BAND:][inside].mean() > 60
    outline = cv2.morphologyEx((region > 127).astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((9, 9), np.uint8)) > 0
    calm = ~outline[LABEL_BAND:] & (mask[LABEL_BAND:] == 0)
    assert np.abs(masked_panel - shown).sum(2)[LABEL_BAND:][calm].mean() < 3
    # inpainted panel: differs from the photo where the mask is, equals it elsewhere
    inpainted = panel(sheet, 0, 2).astype(int)
    diff = np.abs(inpainted - shown).mean(2)[LABEL_BAND:]
    assert diff[inside].mean() > 10 and diff[mask[LABEL_BAND:] == 0].mean() < 2
    # mesh over the photo: changed inside the face, the photo at the panel's corners
    over = panel(sheet, 0, 3).astype(int)
    centre = slice(PANEL // 3, 2 * PANEL // 3)
    assert np.abs(over[centre, centre] - shown[centre, centre]).mean() > 15
    assert np.abs(over[-20:, :20] - shown[-20:, :20]).mean() < 2
    # bottom row: three views of the mesh on the panel background, then the neutral mesh or the albedo
    background = np.array(draw.PANEL_BG)
    coverage = [(np.abs(panel(sheet, 1, c)[LABEL_BAND:].astype(int) - background).sum(2) > 12).mean() for c in range(3)]
    assert all(0.1 < c < 0.8 for c in coverage), coverage
    assert coverage[2] < coverage[0]  # the profile is narrower than the front
    last = panel(sheet, 1, 3)[LABEL_BAND:].astype(int)
    if (folder / "masked.neutral.obj").is_file():  # the backend made a neutral-expression mesh: drawn there
        assert 0.1 < (np.abs(last - background).sum(2) > 12).mean() < 0.8
    else:  # else the albedo texture
        albedo = draw.letterbox(read_image(folder / "masked.albedo.png"), PANEL, PANEL)
        assert np.abs(last - albedo[LABEL_BAND:]).mean() < 2.0

    # from the files alone (no reconstruction in memory) the sheet comes out the same
    again = render_sheet(inputs)
    assert again.shape == sheet.shape
    assert np.abs(again.astype(int) - sheet).mean() < 1.5


def test_resumed_run_keeps_the_sheet_and_refreshes_the_gallery(run_folder, occluded_photo):
    sheet = run_folder / "masked" / "masked.summary.png"
    before = sheet.stat().st_mtime_ns
    [report] = run([occluded_photo], run_folder, PipelineOptions(reconstruct_options=dict(FAST_FIT), device="cpu"))
    assert report.resumed
    assert sheet.stat().st_mtime_ns == before
    manifest = json.loads((run_folder / "masked" / "manifest.json").read_text())
    assert manifest["summary"]["status"] == "reused"
    page = (run_folder / "index.html").read_text(encoding="utf-8")
    assert 'href="masked/masked.summary.png"' in page and "resumed" in page


def test_no_summary_and_a_failed_photo(tmp_path, run_folder, occluded_photo):
    shutil.copytree(run_folder / "masked", tmp_path / "plain" / "masked")  # keeps the times: a resumed run
    (tmp_path / "plain" / "masked" / "masked.summary.png").unlink()
    [report] = run([occluded_photo], tmp_path / "plain", PipelineOptions(reconstruct_options=dict(FAST_FIT), device="cpu",
                                                                       summary=False))
    assert report.ok and report.resumed and not (tmp_path / "plain" / "masked" / "masked.summary.png").exists()
    assert json.loads((tmp_path / "plain" / "masked" / "manifest.json").read_text())["summary"] is None

    blank = write_image(tmp_path / "blank.png", np.full((120, 160, 3), 90, np.uint8))
    [failed] = run([blank], tmp_path / "out", PipelineOptions(device="cpu"))
    assert not failed.ok and "no face" in failed.error
    sheet = read_image(tmp_path / "out" / "blank" / "blank.summary.png")
    # the error is written in red under the panels; the mesh panels are placeholders
    footer = sheet[HEADER + 2 * PANEL + 3 * GUTTER:].astype(int)
    red = (footer[..., 0] > 150) & (footer[..., 1] < 90) & (footer[..., 2] < 90)
    assert red.sum() > 50
    front = panel(sheet, 1, 0).astype(int)
    assert (np.abs(front - np.array(draw.PANEL_BG)).sum(2) > 12).mean() < 0.03


def test_neutral_mesh_is_shown_when_present(run_folder, tmp_path):
    from shrn_core.formats.mesh import read_obj

    folder = run_folder / "masked"
    without, with_neutral = tmp_path / "without" / "masked", tmp_path / "with" / "masked"
    for target in (without, with_neutral):
        target.mkdir(parents=True)
        for item in folder.iterdir():
            if item.name != "masked.neutral.obj":
                os.symlink(item, target / item.name)
    # a backend that writes <stem>.neutral.obj gets it drawn in the last panel instead of the albedo
    os.symlink(folder / "masked.coarse.obj", with_neutral / "masked.neutral.obj")
    plain = load_inputs(without)
    assert plain.neutral is None
    inputs = load_inputs(with_neutral)
    assert np.allclose(inputs.neutral[0], read_obj(folder / "masked.coarse.obj")[0])
    before, sheet = render_sheet(plain), render_sheet(inputs)
    last = panel(sheet, 1, 3).astype(int)
    assert np.abs(last - panel(before, 1, 3)).mean() > 20
    assert (np.abs(last[LABEL_BAND:] - np.array(draw.PANEL_BG)).sum(2) < 6).mean() > 0.3  # a render on the background
    assert np.abs(panel(sheet, 1, 0).astype(int) - panel(before, 1, 0)).mean() < 1  # the other views unchanged


def test_reconstruction_in_memory_with_neutral(occluded_photo, tmp_path):
    from shrn_core.reconstruct import reconstruct

    photo = read_image(occluded_photo)
    recon = reconstruct(photo, device="cpu", **FAST_FIT)
    recon.neutral = recon.levels["coarse"]  # what a backend with an expression model adds
    path = write_reconstruction_summary(recon, tmp_path, "masked", photo, image_path=str(occluded_photo))
    sheet = read_image(path)
    assert path.name == "masked.summary.png" and sheet.shape[1] == WIDTH
    inputs = load_inputs(tmp_path, "masked", photo=photo, reconstruction=recon)
    assert inputs.neutral is not None and inputs.mesh[0].shape == recon.final.vertices.shape
    assert (np.abs(panel(sheet, 1, 3)[LABEL_BAND:].astype(int) - np.array(draw.PANEL_BG)).sum(2) < 6).mean() > 0.3


def test_cli_reconstruct_summary_from_existing_outputs(run_folder, occluded_photo):
    folder = run_folder / "masked"
    sheet = folder / "masked.summary.png"
    sheet.unlink()
    env = dict(os.environ, COLUMNS="200")
    result = subprocess.run([sys.executable, "-m", "shrn_cli", "reconstruct", str(occluded_photo), "--out", str(folder),
                             "--summary", "--json"], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["skipped"] and record["outputs"]["summary"] == str(sheet)
    assert read_image(sheet).shape[1] == WIDTH


def test_png_exif_orientation_is_still_applied(tmp_path):
    """Reading PNGs skips Pillow's EXIF look-up only when the file has no eXIf chunk."""
    from PIL import Image

    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :10] = 255  # a white band on the left
    plain = tmp_path / "plain.png"
    Image.fromarray(pixels).save(plain)
    assert np.array_equal(read_image(plain), pixels)
    rotated = tmp_path / "rotated.png"
    exif = Image.Exif()
    exif[0x0112] = 6  # viewer rotates 90 degrees clockwise
    Image.fromarray(pixels).save(rotated, exif=exif)
    upright = read_image(rotated)
    assert upright.shape == (40, 20, 3) and upright[:10].min() == 255 and upright[10:].max() == 0
