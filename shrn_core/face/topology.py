"""The face-mesh surface: triangles, UV layout, mirror map and mean shape of mediapipe's 468 points.

mediapipe's python package ships the face-mesh tessellation only as an edge list
(``FACEMESH_TESSELATION``, 1322 edges) and no canonical model, so shrn derives its own:

* **Triangles** -- every 3-cycle of the edge graph is a candidate face; a 3-cycle that encloses a
  degree-3 vertex (its three edges each already bound two other triangles) is not a face and is
  dropped. The rest (852 triangles) form a disc with three holes (eyes, mouth): a 2-manifold with
  boundary, oriented consistently by a breadth-first walk so normals point out of the face.
* **Mean shape** (mm, head frame: x to the subject's left = image right in a frontal photo, y up,
  z towards the viewer, origin at the centroid of the 468 mesh points) -- the 478 landmarks of the
  frontal photos in ``faces_hrn/`` and ``faces_3ddfa/`` (mediapipe's x, y and z, all in pixels),
  aligned by similarity transforms, averaged, made left/right symmetric and scaled so the distance
  between the iris centres is 63 mm (mean adult interpupillary distance, Dodgson 2004).
* **Mirror map** -- vertex ``i``'s left/right counterpart: a one-to-one assignment to the mirrored
  mean shape; an involution that maps all but 6 of the 1322 edges onto edges (mediapipe's
  tessellation itself is not perfectly symmetric).
* **UVs** -- a cylindrical unwrap of the mean shape around a vertical axis 80 mm behind the face
  (u from the angle, v from the height, same scale), fitted into [0.02, 0.98]; checked to have no
  flipped or degenerate UV triangle.

The arrays are built once by ``python -m shrn_core.face.topology --build`` (needs the shared test
photos) and committed as ``shrn_core/data/face_topology.npz``; ``load_topology()`` reads that file.
"""
from __future__ import annotations

import argparse
import functools
import itertools
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import WeightsError

NUM_MESH_POINTS = 468
NUM_LANDMARKS = 478
IRIS_CENTRES = (468, 473)  # subject's right, left
MEAN_IPD_MM = 63.0
CYLINDER_AXIS_DEPTH_MM = 80.0
UV_MARGIN = 0.02
TOPOLOGY_FILE = Path(__file__).resolve().parents[1] / "data" / "face_topology.npz"
MEAN_SHAPE_PHOTOS = (
    "faces_hrn/single_view_image__00016.png", "faces_hrn/single_view_image__00034.png",
    "faces_hrn/single_view_image__00133.png", "faces_hrn/single_view_image__00437.png",
    "faces_hrn/single_view_image__00521.png", "faces_hrn/multi_view_images__10078.jpg",
    "faces_3ddfa/emma.jpg", "faces_3ddfa/JianzhuGuo.jpg",
)


@dataclass(frozen=True)
class FaceTopology:
    triangles: np.ndarray  # (F, 3) int64, counter-clockwise seen from the front
    uvs: np.ndarray  # (468, 2) float32 in [0, 1], v up
    mirror: np.ndarray  # (468,) int64 left/right counterpart of each vertex
    mean_shape: np.ndarray  # (478, 3) float32 mm, head frame (the 10 iris points last)
    landmark_vertex_ids: np.ndarray  # (478,) int64: mesh vertex of each landmark (iris -> nearest eyelid vertex)

    @property
    def num_vertices(self) -> int:
        return NUM_MESH_POINTS


@functools.lru_cache(maxsize=1)
def load_topology(path: str | Path = TOPOLOGY_FILE) -> FaceTopology:
    from ..formats.arrays import load_npz

    path = Path(path)
    if not path.is_file():
        raise WeightsError("face topology asset missing (rebuild with python -m shrn_core.face.topology --build)", path)
    data = load_npz(path, error=WeightsError)
    shapes = {"triangles": (None, 3), "uvs": (NUM_MESH_POINTS, 2), "mirror": (NUM_MESH_POINTS,),
              "mean_shape": (NUM_LANDMARKS, 3), "landmark_vertex_ids": (NUM_LANDMARKS,)}
    for key, shape in shapes.items():
        array = data.get(key)
        if array is None or array.ndim != len(shape) or any(w is not None and w != g for w, g in zip(shape, array.shape)) \
                or array.dtype.kind not in "iuf" or not np.isfinite(array).all():
            found = "missing" if array is None else f"{array.dtype} {array.shape}"
            raise WeightsError(f"face topology asset is damaged: {key} is {found}, expected shape {shape}", path)
    for key in ("triangles", "mirror", "landmark_vertex_ids"):
        if data[key].min(initial=0) < 0 or data[key].max(initial=0) >= NUM_MESH_POINTS:
            raise WeightsError(f"face topology asset is damaged: {key} refers to a vertex outside 0..467", path)
    return FaceTopology(
        triangles=data["triangles"].astype(np.int64),
        uvs=data["uvs"].astype(np.float32),
        mirror=data["mirror"].astype(np.int64),
        mean_shape=data["mean_shape"].astype(np.float32),
        landmark_vertex_ids=data["landmark_vertex_ids"].astype(np.int64),
    )


# ---------------------------------------------------------------- derivation


def tessellation_edges() -> np.ndarray:
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_TESSELATION

    return np.array(sorted({tuple(sorted(e)) for e in FACEMESH_TESSELATION}), dtype=np.int64)


def triangles_from_edges(edges: np.ndarray) -> np.ndarray:
    """Faces of a triangulated surface given only its edges (unoriented, sorted vertex ids)."""
    neighbours: dict[int, set[int]] = {}
    for a, b in edges:
        neighbours.setdefault(int(a), set()).add(int(b))
        neighbours.setdefault(int(b), set()).add(int(a))
    cycles = {tuple(sorted((int(a), int(b), c))) for a, b in edges for c in neighbours[int(a)] & neighbours[int(b)]}
    edge_use = Counter(e for tri in cycles for e in itertools.combinations(tri, 2))
    # A surface edge bounds at most two faces; a 3-cycle all of whose edges are over-used is the
    # rim of a fan around a degree-3 vertex, not a face.
    faces = [tri for tri in sorted(cycles) if not all(edge_use[e] > 2 for e in itertools.combinations(tri, 2))]
    return np.array(faces, dtype=np.int64)


def orient_consistently(triangles: np.ndarray) -> np.ndarray:
    """Flip triangles so every interior edge is traversed in opposite directions by its two faces."""
    tris = [list(t) for t in triangles]
    by_edge: dict[tuple[int, int], list[int]] = {}
    for index, tri in enumerate(tris):
        for a, b in ((0, 1), (1, 2), (2, 0)):
            by_edge.setdefault(tuple(sorted((tri[a], tri[b]))), []).append(index)
    done = np.zeros(len(tris), bool)
    for seed in range(len(tris)):
        if done[seed]:
            continue
        done[seed] = True
        queue = deque([seed])
        while queue:
            current = queue.popleft()
            tri = tris[current]
            for a, b in ((0, 1), (1, 2), (2, 0)):
                u, v = tri[a], tri[b]
                for other in by_edge[tuple(sorted((u, v)))]:
                    if other == current or done[other]:
                        continue
                    o = tris[other]
                    directed = {(o[0], o[1]), (o[1], o[2]), (o[2], o[0])}
                    if (u, v) in directed:  # same direction: flip the neighbour
                        tris[other] = [o[0], o[2], o[1]]
                    done[other] = True
                    queue.append(other)
    return np.array(tris, dtype=np.int64)


def face_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    v = np.asarray(vertices, dtype=np.float64)
    return np.cross(v[triangles[:, 1]] - v[triangles[:, 0]], v[triangles[:, 2]] - v[triangles[:, 0]])


def mirror_map(shape: np.ndarray) -> np.ndarray:
    """Left/right counterpart of each point of a roughly symmetric shape centred on x = 0.

    A one-to-one assignment to the mirrored shape (not a plain nearest neighbour), so the map is a
    permutation; on a symmetric shape it is an involution.
    """
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial.distance import cdist

    _, index = linear_sum_assignment(cdist(shape, shape * np.array([-1.0, 1.0, 1.0])))
    return index.astype(np.int64)


def cylindrical_uvs(shape: np.ndarray) -> np.ndarray:
    """u from the angle around a vertical axis behind the face, v from the height (same scale)."""
    x, y, z = shape[:, 0], shape[:, 1], shape[:, 2]
    axis_depth = z.mean() - CYLINDER_AXIS_DEPTH_MM
    radius = z.max() - axis_depth
    arc = radius * np.arctan2(x, z - axis_depth)
    flat = np.stack([arc, y], axis=1)
    flat -= (flat.max(0) + flat.min(0)) / 2
    scale = (1 - 2 * UV_MARGIN) / np.ptp(flat, axis=0).max()
    return (flat * scale + 0.5).astype(np.float32)


def _landmarks_3d(path: Path) -> np.ndarray:
    from .analyze import analyze_image

    points = analyze_image(path).face.landmarks.astype(np.float64)
    return points * np.array([1.0, -1.0, -1.0])  # pixels, y down, z away -> y up, z towards viewer


def build_mean_shape(photo_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(478, 3) symmetric mean shape in mm and the (468,) mirror map (see the module docstring)."""
    from ..geometry.transforms import umeyama

    shapes = [_landmarks_3d(photo_dir / name) for name in MEAN_SHAPE_PHOTOS]
    reference = shapes[0] - shapes[0][:NUM_MESH_POINTS].mean(0)
    for _ in range(3):  # generalised Procrustes: align to the running mean, re-average
        aligned = [umeyama(s[:NUM_MESH_POINTS], reference[:NUM_MESH_POINTS]).apply(s) for s in shapes]
        reference = np.mean(aligned, axis=0)
    # The first mean is in the first photo's head pose: rotate it to face the camera squarely, with
    # the eyes level, before deriving the mirror map.
    reference = _frontalise(reference)
    for _ in range(2):
        mirror = mirror_map(reference)
        reference = (reference + reference[mirror] * np.array([-1.0, 1.0, 1.0])) / 2
    mirror = mirror_map(reference)
    if np.any(mirror[:NUM_MESH_POINTS] >= NUM_MESH_POINTS):
        raise ValueError("mirror map pairs a mesh point with an iris point")
    reference -= reference[:NUM_MESH_POINTS].mean(0)
    ipd = np.linalg.norm(reference[IRIS_CENTRES[0]] - reference[IRIS_CENTRES[1]])
    return (reference * (MEAN_IPD_MM / ipd)).astype(np.float32), mirror[:NUM_MESH_POINTS]


def _frontalise(shape: np.ndarray) -> np.ndarray:
    """Rotate so the eye-to-eye axis is x and the face's mean normal is +z."""
    shape = shape - shape[:NUM_MESH_POINTS].mean(0)
    x_axis = shape[IRIS_CENTRES[1]] - shape[IRIS_CENTRES[0]]
    x_axis /= np.linalg.norm(x_axis)
    # forehead (10) to chin (152) gives "down"; up is its opposite, made orthogonal to x
    up = shape[10] - shape[152]
    up -= x_axis * (up @ x_axis)
    up /= np.linalg.norm(up)
    z_axis = np.cross(x_axis, up)
    rotation = np.stack([x_axis, up, z_axis])
    return shape @ rotation.T


def build(photo_dir: Path, out: Path = TOPOLOGY_FILE) -> FaceTopology:
    mean_shape, mirror = build_mean_shape(photo_dir)
    mesh = mean_shape[:NUM_MESH_POINTS]
    triangles = orient_consistently(triangles_from_edges(tessellation_edges()))
    if face_normals(mesh, triangles)[:, 2].sum() < 0:  # make normals point towards the viewer
        triangles = triangles[:, [0, 2, 1]]
    uvs = cylindrical_uvs(mesh)
    from scipy.spatial import cKDTree

    _, iris_vertices = cKDTree(mesh).query(mean_shape[NUM_MESH_POINTS:])
    landmark_ids = np.concatenate([np.arange(NUM_MESH_POINTS), iris_vertices]).astype(np.int64)
    topo = FaceTopology(triangles, uvs, mirror, mean_shape, landmark_ids)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, triangles=triangles.astype(np.int32), uvs=uvs, mirror=mirror.astype(np.int32),
                        mean_shape=mean_shape, landmark_vertex_ids=landmark_ids.astype(np.int32))
    return topo


def main() -> None:
    parser = argparse.ArgumentParser(description="Rebuild shrn_core/data/face_topology.npz")
    parser.add_argument("--build", action="store_true", required=True)
    parser.add_argument("--photos", type=Path, default=Path(__file__).resolve().parents[3] / "shared" / "data")
    parser.add_argument("--out", type=Path, default=TOPOLOGY_FILE)
    args = parser.parse_args()
    topo = build(args.photos, args.out)
    print(f"{args.out}: {len(topo.triangles)} triangles, {NUM_MESH_POINTS} vertices")


if __name__ == "__main__":
    main()
