"""shrn_core.geometry: exact point-to-triangle distances, Umeyama, ICP, validation, surface_distance."""
from __future__ import annotations

import numpy as np
import pytest
import trimesh
from scipy.spatial.transform import Rotation

from shrn_core.errors import FormatError, InputError, NumericalError
from shrn_core.geometry import (Similarity, SurfaceIndex, closest_points_on_triangles, icp_to_surface,
                                surface_distance, umeyama, validate_mesh)


def brute_force_distances(vertices, faces, points):
    """Reference: every point against every triangle with the same per-pair routine."""
    tri = np.asarray(vertices)[faces]
    best = np.full(len(points), np.inf)
    for t in tri:  # loop over triangles: slow but obviously exhaustive
        closest = closest_points_on_triangles(points, t[0], t[1], t[2])
        best = np.minimum(best, np.linalg.norm(closest - points, axis=1))
    return best


def test_closest_point_in_each_voronoi_region():
    a, b, c = np.array([0.0, 0, 0]), np.array([2.0, 0, 0]), np.array([0.0, 2, 0])
    cases = {  # query -> expected closest point
        (0.5, 0.5, 3.0): (0.5, 0.5, 0.0),  # interior (above the face)
        (-1.0, -1.0, 0.0): (0.0, 0.0, 0.0),  # vertex A
        (3.0, -1.0, 1.0): (2.0, 0.0, 0.0),  # vertex B
        (-1.0, 3.0, -1.0): (0.0, 2.0, 0.0),  # vertex C
        (1.0, -2.0, 0.0): (1.0, 0.0, 0.0),  # edge AB
        (-2.0, 1.0, 5.0): (0.0, 1.0, 0.0),  # edge AC
        (2.0, 2.0, 0.0): (1.0, 1.0, 0.0),  # edge BC
    }
    queries = np.array(list(cases))
    expected = np.array(list(cases.values()))
    assert np.allclose(closest_points_on_triangles(queries, a, b, c), expected)


def test_degenerate_triangle_falls_back_to_a_vertex():
    a = np.array([0.0, 0, 0])
    result = closest_points_on_triangles(np.array([[5.0, 1, 0]]), a, a, a)
    assert np.allclose(result, 0.0)


@pytest.mark.parametrize("seed", [0, 1])
def test_surface_index_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    mesh = trimesh.creation.icosphere(subdivisions=2, radius=20)
    vertices = mesh.vertices + rng.normal(scale=1.0, size=mesh.vertices.shape)
    faces = mesh.faces
    # mix in big triangles: a far "flap" made of a few large faces
    extra = np.array([[60.0, 0, 0], [60, 80, 0], [60, 0, 80], [60, 80, 80]])
    vertices = np.vstack([vertices, extra])
    n = len(mesh.vertices)
    faces = np.vstack([faces, [[n, n + 1, n + 2], [n + 1, n + 3, n + 2]]])
    points = np.vstack([rng.normal(scale=25, size=(400, 3)),  # near and inside
                        rng.normal(scale=150, size=(100, 3))])  # far away
    result = SurfaceIndex(vertices, faces).query(points)
    reference = brute_force_distances(vertices, faces, points)
    assert np.allclose(result.distances, reference, atol=1e-9)
    # the returned points lie on the returned triangles at that distance
    assert np.allclose(np.linalg.norm(result.points - points, axis=1), result.distances)
    # and agree with trimesh's independent implementation
    _, tm_dist, _ = trimesh.proximity.closest_point(trimesh.Trimesh(vertices, faces, process=False), points[:100])
    assert np.allclose(tm_dist, reference[:100], atol=1e-9)


def test_unreferenced_vertices_are_not_surface():
    vertices = np.array([[0.0, 0, 0], [10, 0, 0], [0, 10, 0], [2, 2, 5]])  # the last one is on no face
    result = SurfaceIndex(vertices, np.array([[0, 1, 2]])).query(np.array([[2.0, 2, 5.1]]))
    assert result.distances[0] == pytest.approx(5.1)
    assert np.allclose(result.points[0], [2, 2, 0])


def test_umeyama_recovers_similarity_and_refuses_bad_input():
    rng = np.random.default_rng(3)
    truth = Similarity(1.7, Rotation.from_rotvec([0.3, -1.1, 0.4]).as_matrix(), np.array([10.0, -5, 2]))
    src = rng.normal(size=(7, 3)) * 40
    fit = umeyama(src, truth.apply(src))
    assert fit.scale == pytest.approx(1.7, rel=1e-9)
    assert np.allclose(fit.rotation, truth.rotation)
    assert np.allclose(fit.translation, truth.translation)
    rigid = umeyama(src, truth.apply(src), with_scale=False)
    assert rigid.scale == 1.0 and np.allclose(rigid.rotation, truth.rotation)
    # A mirror image is fitted with a proper rotation, never a reflection
    mirrored = umeyama(src, src * np.array([-1.0, 1, 1]))
    assert np.linalg.det(mirrored.rotation) == pytest.approx(1.0)
    with pytest.raises(InputError, match="at least 3"):
        umeyama(src[:2], src[:2])
    with pytest.raises(NumericalError, match="collinear"):
        line = np.outer(np.arange(5.0), [1.0, 2, 3])
        umeyama(line, line)
    assert np.allclose(truth.inverse().apply(truth.apply(src)), src)


@pytest.mark.parametrize("method", ["point_to_plane", "point_to_point"])
def test_icp_recovers_small_perturbation(method):
    mesh = trimesh.creation.icosphere(subdivisions=3, radius=50)
    mesh.vertices *= np.array([1.0, 0.7, 0.45])  # an ellipsoid: no rotational symmetry
    truth = Similarity(1.1, Rotation.from_rotvec([0.05, -0.04, 0.06]).as_matrix(), np.array([2.0, -1.5, 1.0]))
    points = truth.apply(trimesh.sample.sample_surface(mesh, 4000, seed=2)[0])
    index = SurfaceIndex(mesh.vertices, mesh.faces)
    result = icp_to_surface(points, index, init=Similarity(), method=method, max_iterations=60)
    # Gauss-Newton lands on the answer; plain point-to-point ICP creeps along a smooth surface
    tol = 1e-4 if method == "point_to_plane" else 1e-2
    assert result.transform.scale == pytest.approx(1.1, abs=tol)
    assert np.abs(result.transform.rotation - truth.rotation).max() < tol
    assert result.rms < (1e-3 if method == "point_to_plane" else 0.1)


def test_validate_mesh_errors():
    v = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [2, 2, 2]])
    with pytest.raises(FormatError, match="no faces"):
        validate_mesh(v, np.zeros((0, 3)), "m.obj")
    with pytest.raises(NumericalError, match="NaN"):
        validate_mesh(np.vstack([v, [np.nan, 0, 0]]), [[0, 1, 2]], "m.obj")
    with pytest.raises(FormatError, match="out of range"):
        validate_mesh(v, [[0, 1, 9]], "m.obj")
    with pytest.raises(FormatError, match="no vertices"):
        validate_mesh(np.zeros((0, 3)), [], "m.obj")
    with pytest.raises(FormatError, match="zero area"):
        validate_mesh(v, [[0, 0, 1]], "m.obj")
    kept_v, kept_f = validate_mesh(v, [[0, 1, 2], [0, 0, 3]], "m.obj")  # zero-area face dropped
    assert kept_f.tolist() == [[0, 1, 2]]
    points, faces = validate_mesh(v, [], require_faces=False)  # point clouds allowed when asked
    assert len(faces) == 0


def test_surface_distance_modes():
    rng = np.random.default_rng(8)
    mesh = trimesh.creation.icosphere(subdivisions=3, radius=40)
    mesh.vertices *= np.array([1.0, 0.8, 0.5])
    moved = Similarity(1.0, Rotation.from_rotvec([0.02, 0.03, -0.02]).as_matrix(), np.array([1.0, 0.5, -0.5]))
    a = (moved.apply(mesh.vertices) + rng.normal(scale=0.2, size=mesh.vertices.shape), mesh.faces)
    b = mesh
    unaligned = surface_distance(a, b, align="none")
    rigid = surface_distance(a, b, align="rigid")
    assert unaligned.mean > 0.5
    # the remaining error is the noise: half-normal mean 0.798 sigma
    assert rigid.mean == pytest.approx(0.798 * 0.2, rel=0.15)
    assert rigid.transform.scale == 1.0
    scaled = (a[0] * 1.3, a[1])
    sim = surface_distance(scaled, b, align="similarity")
    assert sim.transform.scale == pytest.approx(1 / 1.3, rel=5e-3)
    assert sim.mean == pytest.approx(rigid.mean, rel=0.1)
    far = (a[0] + np.array([0.0, 0.0, 500.0]), a[1])  # far away: the centroid start finds it
    assert surface_distance(far, b, align="rigid").mean == pytest.approx(rigid.mean, rel=0.05)
    both = surface_distance(a, b, align="rigid", symmetric=True)
    assert both.count == len(a[0]) + len(b.vertices)
    with pytest.raises(InputError, match="align mode"):
        surface_distance(a, b, align="affine")
