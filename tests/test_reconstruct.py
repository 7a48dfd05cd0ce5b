"""The reconstruct stage with the embedded fit backend: known-answer fits, real photos, masks, bad input."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from shrn_core.errors import FaceError, InputError, NumericalError, OutputError
from shrn_core.facemodel import load_face_model
from shrn_core.formats.image import read_image
from shrn_core.geometry.transforms import umeyama
from shrn_core.reconstruct import reconstruct, reconstruct_multiview, write_reconstruction
from shrn_core.reconstruct.fit.camera import default_intrinsics
from shrn_core.reconstruct.fit.model_fit import ModelFitOptions, ViewObservation, fit_model
from shrn_core.reconstruct.fit.mesh_ops import subdivide, subdivided_mirror, vertex_normals

# small settings: the tests check behaviour, benchmarks check quality and speed at default settings
FAST = dict(render_size=96, texture_size=96, mid_iterations=6, fine_iterations=4,
            displacement_size=32, max_render_side=256, subdivisions=0)


def _synthetic_view(model, identity, expression, euler_deg, t, width=640, height=480, noise_px=0.0, seed=0):
    """Landmarks of a known face-model face seen by a known camera (mediapipe-like depth in pixels)."""
    R = Rotation.from_euler("YXZ", euler_deg, degrees=True).as_matrix()
    K = default_intrinsics(width, height)
    verts = model.vertices(torch.as_tensor(identity[None], dtype=torch.float64),
                           torch.as_tensor(expression[None], dtype=torch.float64))
    points = model.mediapipe_points(verts)[0].numpy()
    cam = points @ R.T + t
    u = K[0, 0] * cam[:, 0] / -cam[:, 2] + K[0, 2]
    v = K[1, 1] * -cam[:, 1] / -cam[:, 2] + K[1, 2]
    z = -(cam[:, 2] - cam[:, 2].mean()) * K[0, 0] / -t[2]
    landmarks = np.stack([u, v, z], 1) + np.random.default_rng(seed).normal(scale=noise_px, size=(len(u), 3))
    return ViewObservation(landmarks, K, width, height, np.zeros(len(u), bool)), R, verts[0].numpy()


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """As the fit itself does on CPU: small tensors, so one thread (no synchronisation cost)."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


@pytest.fixture(scope="module")
def model():
    return load_face_model()


@pytest.fixture(scope="module")
def known_face(model):
    rng = np.random.default_rng(3)
    identity = rng.normal(size=model.num_identity)
    expression = np.zeros(model.num_expression)
    expression[model.expression_names.index("mouthSmile_L")] = 0.6
    expression[model.expression_names.index("mouthSmile_R")] = 0.6
    return identity, expression


# The solver's known answers: exact landmarks deserve a tight noise model, the synthetic oval
# points are embedded surface points, not the silhouette the default fit matches them to, and the
# identities are drawn from N(0, 1), whose exact prior weight is 1 (the default's 3 is a choice for
# real photos).
EXACT = ModelFitOptions(landmark_sigma_mm=0.5, oval_weight=0.0, identity_weight=1.0)


def _aligned_error(a, b):
    return np.linalg.norm(umeyama(a, b).apply(a) - b, axis=1).mean()


def test_coarse_fit_recovers_known_pose_shape_and_expression(model, known_face):
    identity, expression = known_face
    view, R_true, truth = _synthetic_view(model, identity, expression, [25, -10, 5], np.array([15.0, -10.0, -600.0]),
                                          noise_px=0.3)
    fit = fit_model([view], model, EXACT)
    assert fit.vertices.shape == (1, model.num_vertices, 3) and fit.neutral.shape == fit.vertices.shape
    angle = np.degrees(Rotation.from_matrix(fit.rotations[0] @ R_true.T).magnitude())
    assert angle < 2.0
    assert fit.reprojection_px[0] < 1.0
    mean = model.neutral.astype(np.float64)
    assert _aligned_error(fit.vertices[0], truth) < 0.6 * _aligned_error(mean, truth)
    smile = [model.expression_names.index(n) for n in ("mouthSmile_L", "mouthSmile_R")]
    assert fit.expression[0, smile].min() > 0.3 and np.delete(fit.expression[0], smile).max() < 0.3
    assert ((fit.expression >= 0) & (fit.expression <= 1)).all()
    # the neutral mesh is the identity alone: no smile left in it
    truth_neutral = model.vertices(torch.as_tensor(identity[None]), None)[0].numpy()
    assert _aligned_error(fit.neutral[0], truth_neutral) < _aligned_error(fit.vertices[0], truth_neutral)
    # the model's 68 landmarks project near the truth's (inner points; the jaw is a silhouette)
    true_68 = (truth[model.landmarks68[17:]] @ R_true.T + np.array([15.0, -10.0, -600.0]))
    K = view.K
    proj = np.stack([K[0, 0] * true_68[:, 0] / -true_68[:, 2] + K[0, 2], K[1, 1] * -true_68[:, 1] / -true_68[:, 2] + K[1, 2]], 1)
    assert np.linalg.norm(fit.landmarks_68[0, 17:] - proj, axis=1).mean() < 2.0


def test_multi_view_coarse_fit_shares_one_identity(model, known_face):
    identity, expression = known_face
    views, rotations, truths = zip(*[_synthetic_view(model, identity, expression, [yaw, 0, 0], np.array([0.0, 0.0, -500.0]))
                                     for yaw in (-30, 0, 30)])
    fit = fit_model(list(views), model, EXACT)
    assert fit.identity.shape == (1, model.num_identity) and fit.expression.shape == (3, model.num_expression)
    for R_fit, R_true in zip(fit.rotations, rotations):
        assert np.degrees(Rotation.from_matrix(R_fit @ R_true.T).magnitude()) < 2.0
    mean = model.neutral.astype(np.float64)
    assert _aligned_error(fit.vertices[0], truths[0]) < 0.6 * _aligned_error(mean, truths[0])


def test_batched_coarse_fit_equals_one_by_one(model, known_face):
    identity, expression = known_face
    a, _, _ = _synthetic_view(model, identity, expression, [10, 0, 0], np.array([0.0, 0.0, -550.0]), noise_px=0.5)
    b, _, _ = _synthetic_view(model, -identity, np.zeros_like(expression), [-20, 5, 0], np.array([5.0, 0.0, -450.0]),
                              noise_px=0.5, seed=1)
    together = fit_model([a, b], model, subject_of_view=[0, 1])
    for index, view in enumerate((a, b)):
        alone = fit_model([view], model)
        assert np.abs(together.vertices[index] - alone.vertices[0]).max() < 1e-3


def test_hidden_points_guessed_wrong_barely_move_the_fit(model, known_face):
    """At yaw 50 the far side of the face is hidden and mediapipe only guesses its points; when those
    guesses are off by 10 px, the facing weights keep the shape close to the truth."""
    identity, expression = known_face
    t = np.array([0.0, 0.0, -550.0])
    view, R, truth = _synthetic_view(model, identity, expression, [50, 0, 0], t)
    normals = vertex_normals(torch.as_tensor(truth), torch.as_tensor(model.triangles)).numpy()
    corners = model.triangles[model.mediapipe_triangles]
    points = model.mediapipe_points(torch.as_tensor(truth[None]))[0].numpy()
    normal = np.einsum("nk,nkc->nc", model.mediapipe_barycentric, normals[corners]) @ R.T
    ray = -(points @ R.T + t)
    hidden = (normal * ray).sum(1) / np.linalg.norm(normal, axis=1) / np.linalg.norm(ray, axis=1) < 0.0
    hidden[468:] = False
    assert 20 < hidden.sum() < 200  # the far cheek and the nose's far side
    guessed = view.landmarks.copy()
    guessed[hidden, 0] += 10.0
    view = ViewObservation(guessed, view.K, view.width, view.height, view.occluded)
    neutral_truth = model.vertices(torch.as_tensor(identity[None]))[0].numpy()
    weighted = fit_model([view], model, EXACT).neutral[0]
    unweighted = fit_model([view], model, ModelFitOptions(**{**EXACT.__dict__, "hidden_weight": 1.0})).neutral[0]
    assert _aligned_error(weighted, neutral_truth) < 0.7 * _aligned_error(unweighted, neutral_truth)


def test_jaw_landmarks_follow_the_silhouette(model):
    """Turned to the side, the far jaw points sit on the face's outline: the model's outermost
    projected vertex on that side, not the frontal jaw vertex hidden behind the cheek."""
    zero_id, zero_ex = np.zeros(model.num_identity), np.zeros(model.num_expression)
    view, R, verts = _synthetic_view(model, zero_id, zero_ex, [50, 0, 0], np.array([0.0, 0.0, -600.0]))
    fit = fit_model([view], model)
    K, t = view.K, fit.translations[0]
    cam = fit.vertices[0] @ fit.rotations[0].T + t
    u = K[0, 0] * cam[:, 0] / -cam[:, 2] + K[0, 2]
    # yaw +50: the subject's right side (jaw points 0-3) turns away; its outline is the smallest u
    # among the candidate band, and the chosen points lie on it
    for k in range(4):
        candidates = model.jaw_contour[k][model.jaw_contour[k] >= 0]
        assert fit.landmarks_68[0, k, 0] <= u[candidates].min() + 1.0
        assert fit.landmarks_68[0, k, 0] < u[model.landmarks68[k]] - 2.0  # not the hidden frontal vertex


def test_subdivision_keeps_model_vertices_first(model):
    sub = subdivide(model.triangles, model.num_vertices)
    points = sub.smooth_points(model.neutral.astype(np.float64))
    V = model.num_vertices
    assert len(sub.faces) == 4 * len(model.triangles) and len(points) == V + len(sub.edges)
    # the old vertices keep their index and stay within a few mm of where they were
    assert np.linalg.norm(points[:V] - model.neutral, axis=1).max() < 5.0
    uvs = sub.midpoints(model.uvs)
    assert np.allclose(uvs[:V], model.uvs)
    mirror = subdivided_mirror(sub, model.mirror)
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
    model = load_face_model()
    assert coarse.vertices.shape == (model.num_vertices, 3) and len(mid.vertices) == model.num_vertices
    for mesh in list(recon.levels.values()) + [recon.neutral]:
        assert np.isfinite(mesh.vertices).all() and mesh.uvs.shape == (len(mesh.vertices), 2)
        assert mesh.topology == model.name
    # mediapipe's points, embedded in the fitted surface, project onto the detected landmarks
    view = recon.views[0]
    points = model.mediapipe_points(torch.as_tensor(recon.final.vertices[None]))[0].numpy()
    cam = points[:468] @ view.camera.R.T + view.camera.t
    K = view.camera.K
    proj = np.stack([K[0, 0] * cam[:, 0] / -cam[:, 2] + K[0, 2], K[1, 1] * -cam[:, 1] / -cam[:, 2] + K[1, 2]], 1)
    face_width = np.ptp(photo_analysis.face.landmarks[:, 0])
    rms = np.sqrt(((proj - photo_analysis.face.landmarks[:468, :2]) ** 2).sum(1).mean())
    assert rms < 0.03 * face_width
    # a plausible adult face: cheek to cheek (mediapipe 234 - 454) 110-180 mm
    width_mm = np.linalg.norm(points[234] - points[454])
    assert 110 < width_mm < 180
    # 68 model landmarks: inner points near the detector's
    inner = np.linalg.norm(view.landmarks_68[17:] - photo_analysis.face.landmarks_68[17:], axis=1).mean()
    assert inner < 0.05 * face_width
    assert recon.model.identity.shape == (model.num_identity,) and view.expression.shape == (model.num_expression,)
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
    options = dict(FAST, render_outputs=False, texture_size=128)  # the patch covers ~1% of the texels
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
