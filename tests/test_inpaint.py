"""Inpaint stage: Poisson solver, pixel bookkeeping, face-aware filling, OpenCV baselines, CLI."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import scipy.sparse.linalg as spl
from shrn_core.errors import InputError
from shrn_core.formats.image import read_image, read_image_raw, write_image
from shrn_core.inpaint import inpaint, inpaint_with_report
from shrn_core.inpaint.poisson import build_problem, poisson_fill, solve
from shrn_core.inpaint.symmetry import mesh_points, mirror_map



def shrn(*args):
    env = dict(os.environ, COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "shrn_cli", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    diff = a[mask].astype(np.float64) - b[mask].astype(np.float64)
    return float(10 * np.log10(255.0**2 / max(np.mean(diff**2), 1e-12)))


@pytest.fixture(scope="module")
def portrait(hrn_photo):
    """A frontal studio portrait at 512x512 and its face analysis."""
    from shrn_core.face import analyze_image

    image = cv2.resize(read_image(hrn_photo), (512, 512), interpolation=cv2.INTER_AREA)
    return image, analyze_image(image, hands=False)


def cheek_blob(analysis, shape, side: str = "image_left", radius_fraction: float = 0.12) -> np.ndarray:
    """An elliptical occlusion on one cheek only (the other cheek stays visible)."""
    points = analysis.face.landmarks[:, :2]
    width = np.ptp(points[:468, 0])
    vertex = 50 if side == "image_left" else 280  # mediapipe cheek vertices, subject's right / left
    centre = tuple(int(v) for v in points[vertex])
    mask = np.zeros(shape[:2], np.uint8)
    cv2.ellipse(mask, centre, (int(radius_fraction * width), int(radius_fraction * width * 1.3)), 0, 0, 360, 255, -1)
    return mask


# ------------------------------------------------------------------ Poisson solver


def test_poisson_solver_matches_direct_factorisation():
    rng = np.random.default_rng(1)
    image = rng.random((70, 90, 3)).astype(np.float32)
    mask = np.zeros((70, 90), bool)
    mask[10:50, 0:60] = True  # touches the image border (Neumann there)
    mask[30:68, 40:80] = True
    guide = rng.random((70, 90, 3)).astype(np.float32)
    valid = rng.random((70, 90)) > 0.3
    problem = build_problem(image, mask, guide, valid, dtype=np.float64)
    exact = spl.splu(problem.matrix.tocsc()).solve(problem.rhs)
    approx = solve(problem, tolerance=1e-8, max_iterations=200)
    assert np.abs(approx - exact).max() < 1e-5


def test_harmonic_fill_reproduces_a_linear_ramp():
    yy, xx = np.mgrid[0:80, 0:100].astype(np.float32)
    ramp = np.stack([xx / 100, yy / 80, (xx + yy) / 180], axis=2)
    mask = np.zeros((80, 100), bool)
    cv2.circle(mask.view(np.uint8), (50, 40), 25, 1, -1)
    filled = poisson_fill(np.where(mask[:, :, None], 0.0, ramp).astype(np.float32), mask, tolerance=1e-7, dtype=np.float64)
    assert np.abs(filled - ramp)[mask].max() < 1e-4


def test_poisson_fill_with_offset_guide_restores_the_original():
    rng = np.random.default_rng(2)
    original = cv2.GaussianBlur(rng.random((60, 60, 3)).astype(np.float32), (0, 0), 2)
    mask = np.zeros((60, 60), bool)
    mask[15:45, 20:50] = True
    guide = original + 0.3  # same texture, wrong brightness: the blend must remove the offset
    damaged = np.where(mask[:, :, None], 1.0, original).astype(np.float32)
    filled = poisson_fill(damaged, mask, guide, np.ones_like(mask), tolerance=1e-8, dtype=np.float64)
    assert np.abs(filled - original)[mask].max() < 1e-4


def test_region_barrier_keeps_colours_on_their_side():
    image = np.zeros((60, 100, 3), np.float32)
    image[:, :50], image[:, 50:] = 0.2, 0.8  # e.g. skin | background, hole across both
    mask = np.zeros((60, 100), bool)
    mask[20:40, 10:90] = True
    regions = np.zeros((60, 100), np.uint8)
    regions[:, 50:] = 1
    damaged = np.where(mask[:, :, None], 0.5, image).astype(np.float32)
    separated = poisson_fill(damaged, mask, regions=regions, tolerance=1e-6, dtype=np.float64)
    blended = poisson_fill(damaged, mask, tolerance=1e-6, dtype=np.float64)
    assert np.abs(separated - image)[mask].max() < 0.02
    assert abs(blended[30, 48, 0] - 0.2) > 0.1  # without the barrier the two colours mix at the border


# ------------------------------------------------------------------ pixels outside the mask


@pytest.mark.parametrize("backend", ["telea", "ns", "face"])
def test_outside_mask_bit_identical_for_8bit_16bit_gray_rgba(portrait, backend):
    image, analysis = portrait
    image = image[96:416, 96:416]  # keep it quick
    face = analysis.face
    shifted = type(face)(face.bbox - 96, face.score, face.landmarks - np.array([96, 96, 0], np.float32))
    mask = cheek_blob(analysis, (512, 512))[96:416, 96:416]
    variants = {
        "rgb8": image,
        "rgb16": image.astype(np.uint16) * 257 + np.uint16(3),
        "gray8": cv2.cvtColor(image, cv2.COLOR_RGB2GRAY),
        "rgba8": np.dstack([image, np.full(image.shape[:2], 200, np.uint8)]),
    }
    for name, raw in variants.items():
        out = inpaint(raw, mask, shifted, backend)
        assert out.dtype == raw.dtype and out.shape == raw.shape, name
        outside = mask == 0
        assert np.array_equal(out[outside], raw[outside]), name
        if raw.ndim == 3 and raw.shape[2] == 4:
            assert np.array_equal(out[:, :, 3], raw[:, :, 3]), "alpha changed"
        assert not np.array_equal(out[~outside], raw[~outside]), f"{name}: nothing was filled"


# ------------------------------------------------------------------ face-aware filling


def test_mirror_map_sends_eye_corners_to_their_counterparts(portrait):
    image, analysis = portrait
    landmarks = analysis.face.landmarks
    points = mesh_points(landmarks)
    region = np.zeros(image.shape[:2], bool)
    pairs = [(33, 263), (133, 362), (61, 291), (234, 454)]  # right/left eye corners, mouth corners, cheeks
    for a, _ in pairs:
        x, y = np.rint(points[a, :2]).astype(int)
        region[y, x] = True
    mirrored = mirror_map(landmarks, image.shape, region, np.zeros(image.shape[:2], bool))
    face_width = np.ptp(points[:, 0])
    for a, b in pairs:
        x, y = np.rint(points[a, :2]).astype(int)
        source = np.array([mirrored.source_x[y, x], mirrored.source_y[y, x]])
        assert np.isfinite(source).all(), (a, b)
        assert np.linalg.norm(source - points[b, :2]) < 0.03 * face_width, (a, b)


def test_face_backend_beats_telea_on_a_one_sided_occlusion(portrait):
    image, analysis = portrait
    mask = cheek_blob(analysis, image.shape)
    occluded = image.copy()
    occluded[mask > 0] = (20, 200, 40)  # a green occluder
    face = inpaint_with_report(occluded, mask, analysis, "face")
    telea = inpaint(occluded, mask, analysis, "telea")
    assert face.info["mirror_fraction"] > 0.9
    assert psnr(face.image, image, mask > 0) > psnr(telea, image, mask > 0) + 1.5


def test_face_backend_refuses_a_mirror_that_does_not_match_the_surroundings(portrait):
    image, analysis = portrait
    mask = cheek_blob(analysis, image.shape, side="image_right")
    striped = image.copy()
    half = image.shape[1] // 2
    striped[::6, :half] = 255  # the source half gets stripes the hole's side does not have
    striped[1::6, :half] = 0
    report = inpaint_with_report(striped, mask, analysis, "face")
    assert report.info["mirror_rejected"] and report.info["mirror_fraction"] == 0.0
    assert not inpaint_with_report(image, mask, analysis, "face").info["mirror_rejected"]


def test_face_backend_matches_illumination_between_the_sides(portrait):
    image, analysis = portrait
    # light falling off towards image-right: the filled cheek there must be darker than its mirror
    ramp = np.linspace(1.0, 0.6, image.shape[1], dtype=np.float32)[None, :, None]
    lit = np.clip(image.astype(np.float32) * ramp, 0, 255).astype(np.uint8)
    mask = cheek_blob(analysis, image.shape, side="image_right")
    out = inpaint(lit, mask, analysis, "face")
    hole = mask > 0
    truth = lit[hole].astype(np.float64).mean()
    assert abs(out[hole].astype(np.float64).mean() - truth) / truth < 0.05


def test_mask_size_mismatch_is_an_error_unless_resized(portrait):
    image, analysis = portrait
    small = cv2.resize(cheek_blob(analysis, image.shape), (256, 256), interpolation=cv2.INTER_NEAREST)
    with pytest.raises(InputError, match="--resize-mask"):
        inpaint(image, small, analysis, "telea")
    out = inpaint(image, small, analysis, "telea", resize_mask=True)
    assert out.shape == image.shape


def test_empty_mask_copies_and_full_mask_is_refused(portrait):
    image, analysis = portrait
    report = inpaint_with_report(image, np.zeros(image.shape[:2], np.uint8), analysis, "face")
    assert np.array_equal(report.image, image) and report.warnings and "empty" in report.warnings[0]
    with pytest.raises(InputError, match="whole image"):
        inpaint(image, np.full(image.shape[:2], 255, np.uint8), analysis, "face")


def test_mask_over_the_whole_face_fills_and_warns(portrait):
    image, analysis = portrait
    mask = np.zeros(image.shape[:2], np.uint8)
    hull = cv2.convexHull(analysis.face.landmarks[:468, :2].astype(np.float32)).astype(np.int32)
    cv2.fillConvexPoly(mask, hull, 255)
    mask = cv2.dilate(mask, np.ones((9, 9), np.uint8))
    report = inpaint_with_report(image, mask, analysis, "face")
    assert any("covers" in w for w in report.warnings)
    assert np.isfinite(report.image.astype(np.float64)).all()
    assert report.image[mask > 0].std() > 1  # filled with something, not a constant


def test_face_backend_without_a_face_falls_back_to_diffusion():
    yy, xx = np.mgrid[0:96, 0:96]
    image = np.dstack([xx * 2, yy * 2, np.full_like(xx, 90)]).astype(np.uint8)  # a colour ramp, no face
    mask = np.zeros((96, 96), np.uint8)
    mask[30:60, 30:60] = 255
    report = inpaint_with_report(image, mask, None, "face")
    assert report.info["method"] == "diffusion" and report.warnings
    assert np.abs(report.image.astype(int) - image.astype(int))[mask > 0].max() <= 2  # a ramp diffuses exactly


# ------------------------------------------------------------------ command line


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory, portrait):
    image, analysis = portrait
    folder = tmp_path_factory.mktemp("inpaint_cli")
    write_image(folder / "anna.png", image)
    write_image(folder / "anna.mask.png", cheek_blob(analysis, image.shape))
    deep = image.astype(np.uint16) * 257
    write_image(folder / "deep.png", deep)
    write_image(folder / "deep.mask.png", cheek_blob(analysis, image.shape))
    write_image(folder / "broken.png", image)
    (folder / "broken.mask.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    return folder


def test_cli_folder_batch_goes_on_past_a_corrupt_mask(photo_dir, tmp_path):
    result = shrn("inpaint", photo_dir, "--backend", "telea", "--out", tmp_path, "--json")
    assert result.returncode == 1, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    by_name = {r["input"].rsplit("/", 1)[-1]: r for r in records}
    assert by_name["anna.png"]["ok"] and by_name["deep.png"]["ok"]
    assert not by_name["broken.png"]["ok"] and "broken.mask.png" in by_name["broken.png"]["error"]
    assert not (tmp_path / "broken.inpainted.png").exists()
    deep_out = read_image_raw(tmp_path / "deep.inpainted.png")
    deep_in = read_image_raw(photo_dir / "deep.png")
    mask = read_image_raw(photo_dir / "deep.mask.png") > 0
    assert deep_out.dtype == np.uint16 and np.array_equal(deep_out[~mask], deep_in[~mask])


def test_cli_face_backend_default_mask_and_clear_errors(photo_dir, tmp_path):
    result = shrn("inpaint", photo_dir / "anna.png", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "anna.inpainted.png")
    small = tmp_path / "small.mask.png"
    write_image(small, np.zeros((10, 10), np.uint8))
    result = shrn("inpaint", photo_dir / "anna.png", "--mask", small, "--out", tmp_path, "--overwrite")
    assert result.returncode == 2 and "--resize-mask" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not result.stdout
    result = shrn("inpaint", photo_dir / "anna.png", "--backend", "magic")
    assert result.returncode == 2 and "unknown inpaint backend" in result.stderr
