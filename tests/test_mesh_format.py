"""Reconstruction files: OBJ/MTL/albedo that trimesh loads back with UVs and texture, GLB, params."""
from __future__ import annotations

import numpy as np
import pytest
import trimesh

from shrn_core.errors import FormatError, InputError
from shrn_core.face.topology import load_topology
from shrn_core.formats.mesh import (OBJ_HEADER, pose_angles, read_obj, read_params, write_obj,
                                    write_reconstruction_files)
from shrn_core.reconstruct.types import Camera, Mesh, Reconstruction, ViewResult


@pytest.fixture(scope="module")
def synthetic_recon():
    """A reconstruction built by hand: the topology's mean shape, a gradient albedo, one camera."""
    topo = load_topology()
    mesh = Mesh(topo.mean_shape[:468].copy(), topo.triangles.copy(), topo.uvs.copy())
    size = 64
    albedo = np.zeros((size, size, 3), np.uint8)
    albedo[..., 0] = np.linspace(0, 255, size, dtype=np.uint8)[None, :]  # red grows with u
    albedo[..., 1] = np.linspace(0, 255, size, dtype=np.uint8)[:, None]  # green grows with v (row 0 = v 0)
    R = np.array([[0.0, 0, 1], [0, 1, 0], [-1, 0, 0]], np.float32)  # yaw +90 degrees
    camera = Camera(np.diag([800, 800, 1]).astype(np.float32), R, np.array([0, 0, -500], np.float32), 640, 480)
    render = np.full((480, 640, 3), 7, np.uint8)
    view = ViewResult("photo.jpg", camera, np.arange(27, dtype=np.float32).reshape(9, 3),
                      np.ones((478, 2), np.float32), render, render + 1)
    return Reconstruction({"coarse": mesh, "mid": mesh}, albedo, [view], "fit", topo.landmark_vertex_ids.copy(),
                          displacement=np.zeros((size, size), np.float32))


def test_obj_round_trip_and_header(tmp_path):
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0.5]], np.float32)
    faces = np.array([[0, 1, 2], [1, 3, 2]])
    uvs = vertices[:, :2].copy()
    path = write_obj(tmp_path / "m.obj", vertices, faces, uvs)
    assert path.read_text().splitlines()[0].startswith(OBJ_HEADER)
    v, f, uv = read_obj(path)
    assert np.allclose(v, vertices, atol=1e-5) and (f == faces).all() and np.allclose(uv, uvs, atol=1e-6)


def test_read_obj_refuses_a_foreign_obj(tmp_path):
    path = tmp_path / "other.obj"
    path.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    with pytest.raises(FormatError, match="shrn mesh"):
        read_obj(path)
    with pytest.raises(InputError):
        read_obj(tmp_path / "missing.obj")


def test_written_files_load_in_trimesh_with_uvs_and_texture(synthetic_recon, tmp_path):
    paths = write_reconstruction_files(synthetic_recon, tmp_path, "anna", formats=("obj", "glb"))
    assert {"mesh", "mtl", "albedo", "params", "mesh_coarse", "glb", "overlay", "shading"} <= set(paths)
    assert paths["mesh"].name == "anna.obj" and paths["mesh_coarse"].name == "anna.coarse.obj"
    loaded = trimesh.load(paths["mesh"], process=False, maintain_order=True)
    final = synthetic_recon.final
    assert np.allclose(loaded.vertices, final.vertices, atol=1e-4)
    assert np.allclose(loaded.visual.uv, final.uvs, atol=1e-5)
    image = np.asarray(loaded.visual.material.image.convert("RGB"))
    assert image.shape == synthetic_recon.albedo.shape
    # the texture file stores the top row (v = 1) first: what trimesh reads at a vertex's UV is the
    # albedo texel of that UV in the reconstruction's v-up convention
    vertex = 4
    u, v = final.uvs[vertex]
    size = image.shape[0]
    col, row_file = int(u * size), int((1 - v) * size)
    assert np.abs(image[row_file, col].astype(int) - synthetic_recon.albedo[int(v * size), col].astype(int)).max() <= 1
    scene = trimesh.load(paths["glb"], process=False)
    glb_mesh = next(iter(scene.geometry.values()))
    assert len(glb_mesh.vertices) == len(final.vertices)
    assert np.allclose(glb_mesh.visual.uv, final.uvs, atol=1e-5)


def test_params_round_trip(synthetic_recon, tmp_path):
    paths = write_reconstruction_files(synthetic_recon, tmp_path, "anna")
    params = read_params(paths["params"])
    view = synthetic_recon.views[0]
    assert str(params["units"]) == "mm"
    assert np.allclose(params["K"][0], view.camera.K) and np.allclose(params["R"][0], view.camera.R)
    assert np.allclose(params["t"][0], view.camera.t) and np.allclose(params["sh_lighting"][0], view.sh_lighting)
    assert params["landmarks_2d"].shape == (1, 478, 2)
    assert (params["landmark_vertex_ids"] == synthetic_recon.landmark_vertex_ids).all()
    assert np.allclose(params["pose_ypr_deg"][0], [90, 0, 0], atol=1e-3)
    assert list(params["levels"]) == ["coarse", "mid"]


def test_params_reader_refuses_other_npz(tmp_path):
    path = tmp_path / "x.params.npz"
    np.savez(path, a=np.zeros(3))
    with pytest.raises(FormatError):
        read_params(path)


def test_pose_angles_of_known_rotations():
    from scipy.spatial.transform import Rotation

    R = Rotation.from_euler("YXZ", [20, -10, 5], degrees=True).as_matrix()
    assert np.allclose(pose_angles(R), [20, -10, 5], atol=1e-6)
