"""The pieces of shrn's face-mesh topology the generator needs, read without importing
``shrn_core.face`` (whose package imports OpenCV, which a bare GPU machine may lack).

``tests/test_synth.py`` checks that these equal ``shrn_core.face.topology.load_topology()`` and
``shrn_core.face.landmark_sets.LANDMARKS_68``.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import WeightsError

TOPOLOGY_FILE = Path(__file__).resolve().parents[1] / "data" / "face_topology.npz"
NUM_MESH_POINTS = 468
CYLINDER_AXIS_DEPTH_MM = 80.0  # as in shrn_core.face.topology
UV_MARGIN = 0.02
# shrn_core.face.landmark_sets.LANDMARKS_68: the mediapipe vertex of each iBUG-68 point
LANDMARKS_68 = np.array([
    127, 234, 93, 132, 58, 172, 136, 150, 152, 379, 365, 397, 288, 361, 323, 454, 356,
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300,
    168, 197, 5, 4, 98, 97, 2, 326, 327,
    33, 160, 158, 133, 153, 144,
    362, 385, 387, 263, 373, 380,
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,
    78, 82, 13, 312, 308, 317, 14, 87,
], dtype=np.int64)


@dataclass(frozen=True)
class Topology:
    triangles: np.ndarray  # (F, 3) int64
    uvs: np.ndarray  # (468, 2) float32
    mean_shape: np.ndarray  # (478, 3) float32 mm


@functools.lru_cache(maxsize=1)
def load_topology() -> Topology:
    if not TOPOLOGY_FILE.is_file():
        raise WeightsError("face topology asset missing", TOPOLOGY_FILE)
    with np.load(TOPOLOGY_FILE) as data:
        return Topology(data["triangles"].astype(np.int64), data["uvs"].astype(np.float32),
                        data["mean_shape"].astype(np.float32))
