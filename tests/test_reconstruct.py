"""The reconstruct stage with the embedded fit backend: known-answer fits, real photos, masks, bad input."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from shrn_core.errors import FaceError, InputError, NumericalError, OutputError
from shrn_core.face.topology import NUM_MESH_POINTS, load_topology
from shrn_core.formats.image import read_image
from shrn_core.geometry.transforms import umeyama
from shrn_core.reconstruct import reconstruct, reconstruct_multiview, write_reconstruction
from shrn_core.reconstruct.fit.camera import default_intrinsics
from shrn_core.reconstruct.fit.landmarks import ViewObservation, fit_landmarks
from shrn_core.reconstruct.fit.mesh_ops import subdivide, subdivided_mirror

# small settings: the tests check behaviour, benchmarks check quality and speed at default settings
FAST = dict(render_size=96, texture_size=96, subdivisions=1, mid_iterations=6, fine_iterations=4,
            displacement_size=32, max_render_side=256, coarse_iterations=100)


def _synthetic_view(shape, euler_deg, t, width=640, height=480):
    R = Rotation.from_euler("YXZ", euler_deg, degrees=True).as_matrix()
    K = default_intrinsics(width, height)
    cam = shape @ R.T + t
    u = K[0, 0] * cam[:, 0] / -cam[:, 2] + K[0, 2]
    v = K[1, 1] * -cam[:, 1] / -cam[:, 2] + K[1, 2]
    z = -(cam[:, 2] - cam[:, 2].mean()) * K[0, 0] / -t[2]  # mediapipe-like relative depth in pixels
    return ViewObservation(np.stack([u, v, z], 1), K, width, height, np.zeros(len(shape), bool)), R


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """As the fit itself does on CPU: small tensors, so one thread (no synchronisation cost)."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


@pytest.fixture(scope="module")
def topo():
    return load_topology()


@pytest.fixture(scope="module")
def deformed_shape(topo):
    shape = topo.mean_shape.astype(np.float64).copy()
    shape[:, 0] *= 1.06  # wider face
    shape[:, 2] += 6 * np.exp(-((shape[:, 0]) ** 2 + (shape[:, 1] + 10) ** 2) / (2 * 25 ** 2))  # fuller mid-face
    return shape


def _aligned_error(a, b):
    return np.linalg.norm(umeyama(a, b).apply(a) - b, axis=1).mean()


def test_coarse_fit_recovers_known_pose_and_shape(topo, deformed_shape):
    view, R_true = _synthetic_view(deformed_shape, [25, -10, 5], np.array([15.0, -10.0, -600.0]))
    fit = fit_landmarks([view], topo)
    assert fit.vertices.shape == (1, NUM_MESH_POINTS, 3)
    angle = np.degrees(Rotation.from_matrix(fit.rotations[0] @ R_true.T).magnitude())
    assert angle < 1.5
    assert fit.reprojection_px[0] < 0.5
    shape_error = _aligned_error(fit.vertices[0], deformed_shape[:NUM_MESH_POINTS])
    prior_error = _aligned_error(topo.mean_shape[:NUM_MESH_POINTS].astype(np.float64), deformed_shape[:NUM_MESH_POINTS])
    assert shape_error < 0.6 * prior_error
    assert abs(fit.translations[0, 2] + 600) < 40  # distance from the IPD prior: within 7 %


def test_multi_view_coarse_fit_shares_one_shape(topo, deformed_shape):
    views, rotations = zip(*[_synthetic_view(deformed_shape, [yaw, 0, 0], np.array([0.0, 0.0, -500.0]))
                             for yaw in (-30, 0, 30)])
    fit = fit_landmarks(list(views), topo)
    for R_fit, R_true in zip(fit.rotations, rotations):
        assert np.degrees(Rotation.from_matrix(R_fit @ R_true.T).magnitude()) < 1.5
    prior_error = _aligned_error(topo.mean_shape[:NUM_MESH_POINTS].astype(np.float64), deformed_shape[:NUM_MESH_POINTS])
    assert _aligned_error(fit.vertices[0], deformed_shape[:NUM_MESH_POINTS]) < 0.6 * prior_error


def test_subdivision_keeps_landmark_vertices_first(topo):
    sub = subdivide(topo.triangles, NUM_MESH_POINTS)
    points = sub.smooth_points(topo.mean_shape[:NUM_MESH_POINTS].astype(np.float64))
    assert len(sub.faces) == 4 * len(topo.triangles)
    assert len(points) == NUM_MESH_POINTS + len(sub.edges)
    # the old vertices keep their index and stay within a few mm of their landmark
    assert np.linalg.norm(points[:NUM_MESH_POINTS] - topo.mean_shape[:NUM_MESH_POINTS], axis=1).max() < 5.0
    uvs = sub.midpoints(topo.uvs)
    assert np.allclose(uvs[:NUM_MESH_POINTS], topo.uvs)
    a, b = sub.edges[0]
    assert np.allclose(uvs[NUM_MESH_POINTS], (topo.uvs[a] + topo.uvs[b]) / 2)
    mirror = subdivided_mirror(sub, topo.mirror)
    assert (mirror[mirror] == np.arange(len(mirror))).mean() > 0.99
    flipped = points[mirror] * [-1, 1, 1]
    assert np.median(np.linalg.norm(flipped - points, axis=1)) < 0.5


@pytest.fixture(scope="module")
def photo(hrn_photo):
    return read_image(hrn_photo)


@pytest.fixture(scope="module")
def photo_analysis(photo):
    from shrn_core.face import analyze_image

    return analyze_image(photo)


PROGRESS: list[str] = []


@pytest.fixture(scope="module")
def recon(photo, photo_analysis, hrn_photo):
    return reconstruct(photo, face_analysis=photo_analysis, device="cpu", image_paths=[str(hrn_photo)],
                       progress=PROGRESS.append, **FAST)


def test_reconstruct_photo_gives_all_levels_aligned_with_landmarks(recon, photo, photo_analysis):
    assert list(recon.levels) == ["coarse", "mid", "fine"]
    coarse, mid = recon.levels["coarse"], recon.levels["mid"]
    assert coarse.vertices.shape == (468, 3) and len(mid.vertices) > 468 and len(mid.faces) == 4 * len(coarse.faces)
    for mesh in recon.levels.values():
        assert np.isfinite(mesh.vertices).all() and mesh.uvs.shape == (len(mesh.vertices), 2)
    # the 468 landmark vertices project onto the detected landmarks
    view = recon.views[0]
    cam = recon.final.vertices[:468] @ view.camera.R.T + view.camera.t
    K = view.camera.K
    proj = np.stack([K[0, 0] * cam[:, 0] / -cam[:, 2] + K[0, 2], K[1, 1] * -cam[:, 1] / -cam[:, 2] + K[1, 2]], 1)
    face_width = np.ptp(photo_analysis.face.landmarks[:, 0])
    rms = np.sqrt(((proj - photo_analysis.face.landmarks[:468, :2]) ** 2).sum(1).mean())
    assert rms < 0.02 * face_width
    # face size from the interpupillary prior: a plausible adult face (cheek to cheek 120-170 mm)
    width_mm = np.linalg.norm(recon.final.vertices[234] - recon.final.vertices[454])
    assert 110 < width_mm < 180
    assert recon.albedo.shape == (96, 96, 3) and recon.albedo.dtype == np.uint8
    assert view.overlay.shape == photo.shape and view.shading.shape == photo.shape
    # the overlay changed the face pixels and left the corners of the photo alone
    assert (view.overlay[:20, :20] == photo[:20, :20]).all()
    assert recon.displacement is not None and np.isfinite(recon.displacement).all()
    assert [m.split()[0] for m in PROGRESS] == ["coarse", "mid", "fine"]  # per-level progress reports


def test_albedo_reproduces_skin_colour(recon, photo, photo_analysis):
    # the albedo over the visible face is close in colour to the photo's cheeks (shading normalised to 1)
    x, y = photo_analysis.face.landmarks[[50, 280], :2].mean(0).astype(int)
    cheek = photo[y - 10:y + 10, x - 10:x + 10].reshape(-1, 3).mean(0)
    centre = recon.albedo[35:60, 35:60].reshape(-1, 3).mean(0)
    assert np.abs(centre.astype(float) - cheek).max() < 60


def test_occlusion_mask_keeps_occluder_colour_out_of_albedo(photo, photo_analysis):
    landmarks = photo_analysis.face.landmarks
    x0, y0 = landmarks[[205, 50, 187], :2].min(0).astype(int) - 10  # subject's right cheek
    x1, y1 = landmarks[[205, 50, 187], :2].max(0).astype(int) + 10
    occluded = photo.copy()
    occluded[y0:y1, x0:x1] = (0, 255, 0)
    mask = np.zeros(photo.shape[:2], np.uint8)
    mask[y0:y1, x0:x1] = 255
    options = dict(FAST, render_outputs=False)
    greenness = lambda a: ((a[..., 1].astype(int) - a[..., [0, 2]].max(-1)) > 80).sum()  # noqa: E731
    with_mask = reconstruct(occluded, mask, face_analysis=photo_analysis, device="cpu", levels="coarse", **options)
    without = reconstruct(occluded, None, face_analysis=photo_analysis, device="cpu", levels="coarse", **options)
    assert greenness(without.albedo) > 50  # the test occluder does reach the texture when unmasked
    assert greenness(with_mask.albedo) < 0.1 * greenness(without.albedo)


def test_mask_of_wrong_size_is_an_input_error(photo, photo_analysis):
    with pytest.raises(InputError, match="resize-mask"):
        reconstruct(photo, np.zeros((10, 10), np.uint8), face_analysis=photo_analysis, levels="coarse", **FAST)


def test_no_face_is_a_face_error():
    with pytest.raises(FaceError):
        reconstruct(np.full((200, 200, 3), 128, np.uint8), levels="coarse", **FAST)


def test_nan_in_fitting_stops_with_numerical_error(photo, photo_analysis, monkeypatch, tmp_path):
    from shrn_core.reconstruct.fit import photometric

    real = photometric.sh_basis
    monkeypatch.setattr(photometric, "sh_basis", lambda n: real(n) * float("nan"))
    with pytest.raises(NumericalError, match="mid level"):
        reconstruct(photo, face_analysis=photo_analysis, levels="mid", **FAST)


def test_nan_landmarks_are_refused(photo, photo_analysis):
    import copy

    broken = copy.deepcopy(photo_analysis)
    broken.face.landmarks[3, 0] = np.nan
    with pytest.raises(NumericalError):
        reconstruct(photo, face_analysis=broken, levels="coarse", **FAST)


def test_unwritable_output_is_an_output_error(recon, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OutputError):
        write_reconstruction(recon, blocker / "out", "x")
    assert not (blocker.parent / "out").exists()


def test_unknown_option_and_level_are_input_errors(photo, photo_analysis):
    with pytest.raises(InputError, match="unknown option"):
        reconstruct(photo, face_analysis=photo_analysis, levels="coarse", iterations_typo=3)
    with pytest.raises(InputError, match="level"):
        reconstruct(photo, face_analysis=photo_analysis, levels="ultra")


def test_multi_view_fits_one_face_with_a_camera_per_view(shared_data):
    paths = sorted((shared_data / "faces_hrn").glob("multi_view_images__*.jpg"))
    recon = reconstruct_multiview(paths, levels="coarse", device="cpu", **dict(FAST, render_outputs=False))
    assert len(recon.views) == 3 and "coarse" in recon.levels
    yaws = [Rotation.from_matrix(v.camera.R).as_euler("YXZ", degrees=True)[0] for v in recon.views]
    assert abs(yaws[0] - yaws[1]) < 5 < abs(yaws[2] - yaws[0])  # 10078, 21650 near frontal; 5932 turned
    assert len({tuple(np.round(v.sh_lighting[0], 3)) for v in recon.views}) == 3  # lighting per view
    assert max(recon.info["landmark_rms_px"]) < 15
    assert recon.info["view_shape_disagreement"] < 0.05 and not recon.info["warnings"]


def test_multi_view_of_different_people_warns(shared_data, caplog):
    paths = [shared_data / "faces_hrn" / "single_view_image__00034.png", shared_data / "faces_deca" / "exp__1.jpg"]
    recon = reconstruct_multiview(paths, levels="coarse", device="cpu", **dict(FAST, render_outputs=False))
    assert any("disagree" in w for w in recon.info["warnings"])
    assert "disagree" in caplog.text


def test_batched_fit_matches_one_by_one(shared_data):
    from shrn_core.reconstruct import reconstruct_batch

    paths = [shared_data / "faces_deca" / "exp__0.jpg", shared_data / "faces_deca" / "exp__3.jpg"]
    options = dict(FAST, render_outputs=False)
    batch = reconstruct_batch(paths, levels="mid", device="cpu", **options)
    assert len(batch) == 2 and all(r.info["batch_size"] == 2 for r in batch)
    assert batch[0].views[0].image_path.endswith("exp__0.jpg")
    for path, batched in zip(paths, batch):
        alone = reconstruct(path, levels="mid", device="cpu", **options)
        for level in ("coarse", "mid"):
            gap = np.linalg.norm(batched.levels[level].vertices - alone.levels[level].vertices, axis=1).mean()
            assert gap < 0.05, (path.name, level, gap)  # the faces of a batch do not influence each other
    # and the two faces differ from each other by much more than that
    assert np.linalg.norm(batch[0].levels["mid"].vertices - batch[1].levels["mid"].vertices, axis=1).mean() > 1.0
