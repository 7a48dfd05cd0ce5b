"""End to end: the hrn backend with randomly initialised (official-init) weights, loaded from a
tiny BFM-shaped asset folder written here, on real photos, on CPU."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import trimesh

from shrn_core.errors import FaceError, InputError
from shrn_core.face import analyze_image
from shrn_core.face.landmark_sets import LANDMARKS_68
from shrn_core.formats.image import read_image
from shrn_core.formats.mesh import read_albedo, read_params
from shrn_core.reconstruct import get_backend, reconstruct, write_reconstruction
from shrn_core.reconstruct.hrn import HRNBackend
from shrn_core.reconstruct.hrn.synthetic import face_mesh_arrays, write_assets
from shrn_core.reconstruct.hrn.networks import HRNNetworks
from shrn_core.reconstruct.hrn.views import face_region, prepare_view
from shrn_core.reconstruct.types import Reconstruction

SMALL = {"uv_size": 128, "hd_size": 256, "retouch_size": 128}  # CPU-friendly sizes; benchmarks use HRN's


@pytest.fixture(scope="module")
def arrays():
    return face_mesh_arrays(tex_side=32)


@pytest.fixture(scope="module")
def asset_folder(tmp_path_factory, arrays):
    torch.manual_seed(0)
    return write_assets(tmp_path_factory.mktemp("hrn") / "assets", arrays, HRNNetworks())


@pytest.fixture(scope="module")
def backend(asset_folder) -> HRNBackend:
    """The instance the shared ``reconstruct`` API creates (and caches) for these options."""
    return get_backend("hrn", "cpu", assets=str(asset_folder), **SMALL)


@pytest.fixture(scope="module")
def photo(hrn_photo):
    return read_image(hrn_photo), analyze_image(hrn_photo)


@pytest.fixture(scope="module")
def single(backend, asset_folder, photo, hrn_photo) -> Reconstruction:
    """Through the stage API, as ``shrn reconstruct --backend hrn --assets DIR`` calls it."""
    _, analysis = photo
    return reconstruct(hrn_photo, backend="hrn", device="cpu", face_analysis=analysis, assets=str(asset_folder), **SMALL)


def project(camera, points):
    cam = points @ camera.R.T + camera.t
    return np.stack([camera.K[0, 0] * cam[:, 0] / -cam[:, 2] + camera.K[0, 2],
                     camera.K[1, 1] * -cam[:, 1] / -cam[:, 2] + camera.K[1, 2]], axis=1)


def test_single_view_outputs_have_the_shared_reconstruction_form(single, arrays, backend, asset_folder):
    assert isinstance(backend, HRNBackend)
    assert get_backend("hrn", "cpu", assets=str(asset_folder), **SMALL) is backend  # weights load once
    assert single.backend == "hrn" and list(single.levels) == ["coarse", "mid", "fine"]
    coarse, mid, fine = (single.levels[k] for k in ("coarse", "mid", "fine"))
    assert coarse.vertices.shape == (468, 3) and coarse.faces.shape == (852, 3) and coarse.uvs.shape == (468, 2)
    assert mid.vertices.shape == coarse.vertices.shape
    # untrained regressor heads are zero (as in HRN): the coarse level is the BFM mean, in mm
    assert np.allclose(coarse.vertices, arrays.mean_shape * 100.0, atol=1e-3)
    # the deformation is small but present and finite
    offset = np.linalg.norm(mid.vertices - coarse.vertices, axis=1)
    assert np.isfinite(offset).all() and 0 < offset.max() < 5.0
    assert fine.vertices.shape[0] > 1000 and fine.faces.max() < fine.vertices.shape[0]
    assert fine.uvs.min() >= 0 and fine.uvs.max() <= 1
    assert single.albedo.shape == (128, 128, 3) and single.albedo.dtype == np.uint8
    assert single.displacement.shape == (128, 128) and np.isfinite(single.displacement).all()
    assert set(single.info["timings"]) == {"preprocess_s", "network_s", "outputs_s"}


def test_outputs_are_written_by_the_shared_writers(single, tmp_path):
    paths = write_reconstruction(single, tmp_path, "face")
    for name in ("mesh", "mtl", "albedo", "params", "mesh_coarse", "mesh_mid", "overlay", "shading"):
        assert paths[name].is_file(), name
    mesh = trimesh.load(paths["mesh"], process=False, force="mesh")
    assert len(mesh.vertices) == len(single.final.vertices)
    params = read_params(paths["params"])
    assert params["displacement_map"].shape == (128, 128)
    stored = read_albedo(paths["albedo"])
    assert np.array_equal(stored, single.albedo[::-1])  # files keep the top row (v = 1) first


def test_albedo_is_the_photo_without_shading_where_the_face_is_visible(single, photo, tmp_path):
    """Each fine-mesh vertex sits on one texel: that texel of the written albedo, times the fitted
    (here ambient-only) shading, is the photo colour where the vertex projects."""
    image, analysis = photo
    view = single.views[0]
    albedo = read_albedo(write_reconstruction(single, tmp_path, "face")["albedo"]).astype(np.float64) / 255
    fine = single.final
    size = albedo.shape[0]
    cols = np.clip((fine.uvs[:, 0] * size).astype(int), 0, size - 1)
    rows = np.clip(((1 - fine.uvs[:, 1]) * size).astype(int), 0, size - 1)
    texel = albedo[rows, cols]
    xy = project(view.camera, fine.vertices)
    inner = cv2.erode(face_region(analysis.face, image.shape[:2]), np.ones((61, 61), np.uint8)) > 0
    xi, yi = np.clip(xy.astype(int), 0, [image.shape[1] - 1, image.shape[0] - 1]).T
    normals = trimesh.Trimesh(fine.vertices, fine.faces, process=False).vertex_normals
    use = inner[yi, xi] & (normals[:, 2] > 0.6) & (texel.max(1) < 0.95)
    assert use.sum() > 300
    blurred = cv2.GaussianBlur(image.astype(np.float32) / 255, (0, 0), 3)
    seen = cv2.remap(blurred, (xy[:, 0] - 0.5).astype(np.float32)[:, None], (xy[:, 1] - 0.5).astype(np.float32)[:, None],
                     cv2.INTER_LINEAR)[:, 0]
    ambient = single.views[0].sh_lighting[0] * np.pi / np.sqrt(4 * np.pi)  # band-0 irradiance
    error = np.abs(texel[use] * ambient - seen[use])
    spread = np.abs(seen[use] - seen[use].mean(0))
    assert np.median(error) < 0.035 and np.median(error) < 0.5 * np.median(spread)


def test_camera_projects_the_mesh_onto_the_detected_landmarks(single, photo, arrays):
    image, analysis = photo
    view = single.views[0]
    assert (view.camera.width, view.camera.height) == (image.shape[1], image.shape[0])
    assert np.allclose(view.camera.R @ view.camera.R.T, np.eye(3), atol=1e-5)
    ids = single.landmark_vertex_ids[LANDMARKS_68]
    assert (ids >= 0).all() and (np.delete(single.landmark_vertex_ids, LANDMARKS_68) == -1).all()
    # ids index the final (dense) mesh: its vertex nearest in UV to each BFM keypoint
    keypoints_mid = single.levels["mid"].vertices[arrays.keypoints]
    assert np.linalg.norm(single.final.vertices[ids] - keypoints_mid, axis=1).max() < 3.0
    projected = project(view.camera, single.final.vertices[ids])
    detected = analysis.face.landmarks_68
    inter_ocular = np.linalg.norm(analysis.face.landmarks_5[0] - analysis.face.landmarks_5[1])
    errors = np.linalg.norm(projected - detected, axis=1)
    inner = errors[17:]  # brows, nose, eyes, mouth (the jaw line of the mesh is approximate)
    assert inner.mean() < 0.08 * inter_ocular, inner.mean()
    assert errors.mean() < 0.12 * inter_ocular


def test_overlay_changes_the_face_only(single, photo):
    image, analysis = photo
    view = single.views[0]
    assert view.overlay.shape == image.shape and view.shading.shape == image.shape
    region = face_region(analysis.face, image.shape[:2]) > 0
    changed = np.abs(view.overlay.astype(int) - image.astype(int)).sum(-1) > 0
    ys, xs = np.nonzero(region)
    box = np.zeros_like(region)
    pad = 40
    box[max(ys.min() - pad, 0):ys.max() + pad, max(xs.min() - pad, 0):xs.max() + pad] = True
    assert not changed[~box].any()
    assert changed[region].mean() > 0.7
    assert view.sh_lighting.shape == (9, 3) and view.landmarks_2d.shape == (68, 2)
    assert view.mask.shape == image.shape[:2] and view.mask.max() == 0


def test_occlusion_mask_removes_occluded_texels(backend, photo):
    image, analysis = photo
    face = analysis.face
    occlusion = np.zeros(image.shape[:2], np.uint8)
    x0, y0, x1, y1 = face.bbox.astype(int)
    occlusion[(y0 + y1) // 2:, :] = 255  # lower half of the face hidden
    lm3d = backend.model.bfm.lm3d_5
    clear = prepare_view(image, None, analysis, lm3d, 256)
    hidden = prepare_view(image, occlusion, analysis, lm3d, 256)
    assert torch.equal(clear.image, hidden.image)
    assert hidden.face_mask.sum() < 0.75 * clear.face_mask.sum()
    # mask rows below the occluder edge are empty in the crop
    rows = hidden.face_mask[0].sum(1)
    assert rows[int(hidden.crop.to_crop(np.array([[0, (y0 + y1) / 2 + 4]]))[0, 1]):].sum() == 0
    # the untrained regressor predicts the mean face, frontal: unwrap both masks onto it
    bfm = backend.model.bfm
    posed = bfm.mean_shape.view(1, -1, 3).expand(2, -1, -1)
    valid = bfm.texture_from_image(posed, torch.stack([clear.face_mask, hidden.face_mask]))
    visible = valid.flatten(1).sum(1)
    assert visible[1] < 0.8 * visible[0]


def test_bad_inputs_raise_clear_errors(backend, photo):
    image, analysis = photo
    with pytest.raises(InputError, match="occlusion mask is 10x10"):
        backend.reconstruct([image], [np.zeros((10, 10), np.uint8)], [analysis])
    with pytest.raises(FaceError, match="needs the face analysis"):
        backend.reconstruct([image], [None], [None])
    with pytest.raises(InputError, match="one photo per call"):
        backend.reconstruct([image, image], [None, None], [analysis, analysis])
    with pytest.raises(InputError, match="HxWx3 uint8"):
        backend.reconstruct([image.astype(np.float32)], [None], [analysis])


def test_multi_view_fits_jointly_and_lowers_the_loss(backend, shared_data):
    paths = [shared_data / "faces_hrn" / name for name in ("multi_view_images__10078.jpg", "multi_view_images__21650.jpg")]
    images = [read_image(p) for p in paths]
    faces = [analyze_image(p) for p in paths]
    result = backend.reconstruct(images, None, faces, {"multi_view": True, "mv_iterations": 3, "renders": False,
                                                        "texture": "albedo", "image_paths": [str(p) for p in paths]})
    history = result.info["mv_loss_history"]
    assert len(history) == 4 and history[-1] < history[0]
    assert [v.image_path for v in result.views] == [str(p) for p in paths]
    assert result.views[0].overlay is None
    assert result.albedo.shape == (128, 128, 3) and result.albedo.std() > 0
    assert not np.allclose(result.views[0].camera.R, result.views[1].camera.R)
    for view, face in zip(result.views, faces):
        ids = result.landmark_vertex_ids[LANDMARKS_68]
        # the shared mesh, seen through each view's camera, lands on that view's face
        error = np.linalg.norm(project(view.camera, result.final.vertices[ids])[17:] - face.face.landmarks_68[17:], axis=1)
        iod = np.linalg.norm(face.face.landmarks_5[0] - face.face.landmarks_5[1])
        assert error.mean() < 0.15 * iod
