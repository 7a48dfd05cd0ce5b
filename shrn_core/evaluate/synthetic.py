"""Synthetic prediction/scan pairs with known answers, for tests, benchmarks and sanity checks.

The prediction is shrn's face-mesh mean shape (mm), midpoint-subdivided (the first 468 vertices
stay mediapipe's points, so NOW7_MEDIAPIPE still indexes the landmarks). The "scan" is that
surface under a known similarity transform, densely resampled, plus isotropic Gaussian noise of
known sigma: its point-to-surface errors then follow a half-normal distribution
(median 0.674 sigma, mean 0.798 sigma, std 0.603 sigma) up to curvature and boundary effects.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from ..formats.core import atomic_write
from ..geometry import Similarity
from .landmarks import NOW7_MEDIAPIPE

HALF_NORMAL = {"median": 0.6744897501960817, "mean": 0.7978845608028654, "std": 0.6028102749890869}


def face_mesh(subdivisions: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """(vertices mm, triangles) of the mean face, each subdivision splitting every triangle in 4."""
    import trimesh.remesh

    from ..face.topology import NUM_MESH_POINTS, load_topology

    topo = load_topology()
    vertices = topo.mean_shape[:NUM_MESH_POINTS].astype(np.float64)
    faces = topo.triangles
    for _ in range(subdivisions):
        vertices, faces = trimesh.remesh.subdivide(vertices, faces)
    return np.asarray(vertices), np.asarray(faces, dtype=np.int64)


def random_similarity(seed: int, scale_range: tuple[float, float] = (0.8, 1.25)) -> Similarity:
    rng = np.random.default_rng(seed)
    rotation = Rotation.random(random_state=int(rng.integers(2**31))).as_matrix()
    return Similarity(float(rng.uniform(*scale_range)), rotation, rng.uniform(-200, 200, size=3))


def noisy_scan(vertices: np.ndarray, faces: np.ndarray, transform: Similarity, sigma: float,
               subdivisions: int = 1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The surface mapped by ``transform``, subdivided further, vertices jittered by N(0, sigma^2) (mm)."""
    import trimesh.remesh

    v, f = vertices, faces
    for _ in range(subdivisions):
        v, f = trimesh.remesh.subdivide(v, f)
    rng = np.random.default_rng(seed)
    return transform.apply(v) + rng.normal(scale=sigma, size=np.shape(v)), np.asarray(f, dtype=np.int64)


def write_obj(path: str | Path, vertices: np.ndarray, faces: np.ndarray, topology: str | None = None) -> Path:
    """Minimal OBJ (for fixtures; shrn's own meshes are written by ``formats.mesh``)."""
    lines = [f"# shrn mesh topology={topology}"] if topology else ["# synthetic mesh"]
    lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in np.asarray(vertices)]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in np.asarray(faces)]
    with atomic_write(path, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    return Path(path)


def write_pair(folder: str | Path, stem: str = "face", sigma: float = 0.5, seed: int = 0,
               pred_subdivisions: int = 2, scan_subdivisions: int = 1, landmark_sigma: float = 0.0,
               transform: Similarity | None = None) -> tuple[Path, Path, Path, Similarity]:
    """Write ``pred/<stem>.obj`` (shrn topology header), ``gt/<stem>.obj`` and ``gt/<stem>.txt``
    (the scan's 7 NoW landmarks) under ``folder``; return the paths and the true transform."""
    folder = Path(folder)
    vertices, faces = face_mesh(pred_subdivisions)
    transform = transform or random_similarity(seed)
    scan_v, scan_f = noisy_scan(vertices, faces, transform, sigma, scan_subdivisions, seed + 1)
    rng = np.random.default_rng(seed + 2)
    landmarks = transform.apply(vertices[NOW7_MEDIAPIPE]) + rng.normal(scale=landmark_sigma, size=(7, 3))
    pred = write_obj(folder / "pred" / f"{stem}.obj", vertices, faces, topology="mediapipe468")
    scan = write_obj(folder / "gt" / f"{stem}.obj", scan_v, scan_f)
    lmk = folder / "gt" / f"{stem}.txt"
    with atomic_write(lmk, "w") as handle:
        handle.write("\n".join(" ".join(f"{c:.6f}" for c in row) for row in landmarks) + "\n")
    return pred, scan, lmk, transform
