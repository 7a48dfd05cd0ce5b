"""The derived face-mesh topology is a clean, consistently oriented 2-manifold with a valid UV layout."""
from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest

from shrn_core.face.topology import (NUM_MESH_POINTS, face_normals, load_topology, orient_consistently,
                                     tessellation_edges, triangles_from_edges)


@pytest.fixture(scope="module")
def topo():
    return load_topology()


def _edge_counts(triangles):
    return Counter(tuple(sorted(e)) for tri in triangles for e in itertools.combinations(tri, 2))


def test_triangles_cover_every_tessellation_edge_as_a_manifold(topo):
    counts = _edge_counts(topo.triangles)
    edges = {tuple(e) for e in tessellation_edges().tolist()}
    assert set(counts) == edges  # no edge invented, none lost
    assert max(counts.values()) == 2  # 2-manifold: an edge bounds at most two faces
    boundary = sum(1 for c in counts.values() if c == 1)
    assert boundary > 0
    # Euler characteristic of a disc with three holes (eyes, mouth) is -2
    assert NUM_MESH_POINTS - len(edges) + len(topo.triangles) == -2
    assert topo.triangles.max() == NUM_MESH_POINTS - 1 and len(np.unique(topo.triangles)) == NUM_MESH_POINTS


def test_orientation_is_consistent_and_faces_the_viewer(topo):
    directed = Counter((int(t[a]), int(t[b])) for t in topo.triangles for a, b in ((0, 1), (1, 2), (2, 0)))
    assert max(directed.values()) == 1  # each directed edge used once: neighbours agree on orientation
    normals = face_normals(topo.mean_shape[:NUM_MESH_POINTS], topo.triangles)
    areas = np.linalg.norm(normals, axis=1) / 2
    assert areas.min() > 0.05  # mm^2: no degenerate triangle
    assert (normals[:, 2] > 0).mean() > 0.95  # the face looks down +z (towards the camera)


def test_orientation_repair_undoes_random_flips(topo):
    rng = np.random.default_rng(0)
    flipped = topo.triangles.copy()
    pick = rng.random(len(flipped)) < 0.3
    flipped[pick] = flipped[pick][:, [0, 2, 1]]
    repaired = orient_consistently(flipped)
    directed = Counter((int(t[a]), int(t[b])) for t in repaired for a, b in ((0, 1), (1, 2), (2, 0)))
    assert max(directed.values()) == 1


def test_derivation_from_edges_is_reproducible(topo):
    derived = {tuple(sorted(t)) for t in triangles_from_edges(tessellation_edges()).tolist()}
    assert derived == {tuple(sorted(t)) for t in topo.triangles.tolist()}


def test_uv_layout_is_injective_inside_unit_square(topo):
    uv = topo.uvs.astype(np.float64)
    assert uv.min() >= 0 and uv.max() <= 1
    a = uv[topo.triangles[:, 1]] - uv[topo.triangles[:, 0]]
    b = uv[topo.triangles[:, 2]] - uv[topo.triangles[:, 0]]
    signed = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
    assert (signed > 0).all()  # same orientation as in 3D: no fold-over
    # no two triangles overlap: sample points lie strictly inside at most one triangle
    grid = (np.stack(np.meshgrid(np.arange(160), np.arange(160)), -1).reshape(-1, 2) + 0.5) / 160
    p0, p1, p2 = (uv[topo.triangles[:, k]] for k in range(3))
    inside_count = np.zeros(len(grid), int)
    for start in range(0, len(grid), 10000):
        q = grid[start:start + 10000, None, :]
        w = [((pb - pa)[None, :, 0] * (q - pa)[..., 1] - (pb - pa)[None, :, 1] * (q - pa)[..., 0])
             for pa, pb in ((p0, p1), (p1, p2), (p2, p0))]
        inside = (w[0] > 1e-9) & (w[1] > 1e-9) & (w[2] > 1e-9)
        inside_count[start:start + 10000] = inside.sum(1)
    assert inside_count.max() == 1
    assert (inside_count == 1).mean() > 0.3  # and the layout uses a fair share of the texture


def test_mirror_map_and_mean_shape(topo):
    m = topo.mirror
    assert (m[m] == np.arange(NUM_MESH_POINTS)).all()
    shape = topo.mean_shape
    assert np.allclose(shape[:NUM_MESH_POINTS], shape[m] * [-1, 1, 1], atol=1e-3)
    assert np.isclose(np.linalg.norm(shape[468] - shape[473]), 63.0, atol=0.01)
    assert shape[468, 0] < 0 < shape[473, 0]  # subject's right eye at -x (image left)
    assert shape[10, 1] > shape[152, 1]  # forehead above chin
    assert shape[4, 2] > shape[234, 2] + 40  # nose tip in front of the cheek by > 4 cm
    edges = tessellation_edges().tolist()
    edge_set = {tuple(e) for e in edges}
    mapped = sum(tuple(sorted((m[a], m[b]))) in edge_set for a, b in edges)
    assert mapped >= 0.99 * len(edges)
    assert (topo.landmark_vertex_ids[:NUM_MESH_POINTS] == np.arange(NUM_MESH_POINTS)).all()
