"""Files of a synthetic sample (docs/formats.md, "shrn synth"): for each stem (``<id>`` and ``<id>_occ``)
``<stem>.png``, ``<stem>.gt.obj``, ``<stem>.gt.txt``, ``<stem>.gt_mask.png`` and ``<stem>.gt.json``."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import FormatError
from ..evaluate.landmarks import NOW7_NAMES
from ..formats.core import atomic_write, output_path, read_json, write_json
from ..formats.image import read_image, write_image
from ..formats.mask import read_mask, validate_mask, write_mask
from ..formats.mesh_io import read_landmarks, read_mesh
from .generate import MASK_DEFINITION, Sample

GT_KIND = "synth_gt"  # JSON format "shrn.synth_gt"
OBJ_HEADER = "# shrn synth ground truth"
REQUIRED = ("id", "twin", "occluded", "image", "model", "camera", "params", "landmarks7", "coverage")


def sample_paths(out_dir: str | Path, stem: str) -> dict[str, Path]:
    return {"image": output_path(out_dir, stem, "", "png"), "mesh": output_path(out_dir, stem, "gt", "obj"),
            "landmarks": output_path(out_dir, stem, "gt", "txt"), "mask": output_path(out_dir, stem, "gt_mask", "png"),
            "meta": output_path(out_dir, stem, "gt", "json")}


def stems(sample_id: str, occluded: bool = True) -> list[str]:
    return [sample_id, f"{sample_id}_occ"] if occluded else [sample_id]


def write_sample(sample: Sample, out_dir: str | Path, bank_info: dict | None = None) -> dict[str, Path]:
    """Write the clean twin (``<id>``) and, when there is one, the occluded twin (``<id>_occ``).

    Returns {"<stem>.<kind>": path}. Everything is validated before the first file is written."""
    twins = [(sample.id, sample.image, np.zeros_like(sample.mask), False)]
    if sample.occluded is not None:
        twins.append((f"{sample.id}_occ", sample.occluded, sample.mask, True))
    for _, image, mask, _ in twins:
        validate_mask(mask, image.shape[:2])
    mesh_text = obj_text(sample)
    landmark_text = "\n".join(" ".join(f"{c:.5f}" for c in row) for row in sample.landmarks7) + "\n"
    written = {}
    for stem, image, mask, occluded in twins:
        paths = sample_paths(out_dir, stem)
        write_image(paths["image"], image)
        with atomic_write(paths["mesh"], "w") as handle:
            handle.write(mesh_text)
        with atomic_write(paths["landmarks"], "w") as handle:
            handle.write(landmark_text)
        write_mask(paths["mask"], mask)
        write_json(paths["meta"], GT_KIND, metadata(sample, stem, occluded, paths, bank_info))
        written.update({f"{stem}.{key}": path for key, path in paths.items()})
    return written


def obj_text(sample: Sample) -> str:
    lines = [f"{OBJ_HEADER} model={sample.model} units=mm vertices={len(sample.vertices)} faces={len(sample.triangles)}",
             "# head frame: x to the subject's left, y up, z towards the viewer; NoW landmarks in <stem>.gt.txt"]
    lines += [f"v {x:.4f} {y:.4f} {z:.4f}" for x, y, z in sample.vertices]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in sample.triangles]
    return "\n".join(lines) + "\n"


def metadata(sample: Sample, stem: str, occluded: bool, paths: dict[str, Path], bank_info: dict | None) -> dict:
    p = sample.params
    camera = sample.camera
    landmarks_2d = camera.project(sample.landmarks7)
    return {
        "id": stem, "twin": sample.id if occluded else f"{sample.id}_occ", "occluded": occluded,
        "image": paths["image"].name, "mesh": paths["mesh"].name, "landmarks": paths["landmarks"].name,
        "mask": paths["mask"].name, "width": int(sample.image.shape[1]), "height": int(sample.image.shape[0]),
        "seed": p.seed, "index": p.index, "shrn_version": __version__,
        "model": sample.model, "camera": camera.to_json(),
        "pose_deg": {"yaw": round(p.yaw, 4), "pitch": round(p.pitch, 4), "roll": round(p.roll, 4),
                     "convention": "R = Ry(yaw) Rx(pitch) Rz(roll): yaw > 0 nose to the image right (subject's left), "
                                   "pitch > 0 nose down"},
        "landmarks7": {"names": list(NOW7_NAMES), "head_mm": np.round(sample.landmarks7, 4).tolist(),
                       "image_px": np.round(landmarks_2d, 3).tolist()},
        "occluder": p.occluder if occluded else None,
        "coverage": round(sample.coverage, 5) if occluded else 0.0,
        "face_region_pixels": int((sample.face_region > 0).sum()),
        "mask_definition": MASK_DEFINITION,
        "appearance_bank": bank_info or {},
        "params": {k: v for k, v in p.to_json().items() if k != "occluder"},
    }


@dataclass
class GroundTruth:
    """A sample's files read back."""

    meta: dict
    image: np.ndarray  # (H, W, 3) uint8
    vertices: np.ndarray  # (V, 3) float64 mm
    triangles: np.ndarray  # (F, 3) int64
    landmarks7: np.ndarray  # (7, 3) float64 mm
    mask: np.ndarray  # (H, W) uint8 0/255


def read_ground_truth(out_dir: str | Path, stem: str) -> GroundTruth:
    paths = sample_paths(out_dir, stem)
    meta = read_json(paths["meta"], GT_KIND, REQUIRED)
    image = read_image(paths["image"])
    mesh = read_mesh(paths["mesh"])
    with open(paths["mesh"]) as handle:
        if not handle.readline().startswith(OBJ_HEADER):
            raise FormatError(f"not a shrn synth ground-truth mesh (first line must start with {OBJ_HEADER!r})",
                              paths["mesh"])
    landmarks = read_landmarks(paths["landmarks"])
    if landmarks.points is None or len(landmarks.points) != 7:
        raise FormatError("expected 7 landmark points (x y z per line)", paths["landmarks"])
    mask = validate_mask(read_mask(paths["mask"], image.shape[:2]), image.shape[:2], source=paths["mask"])
    return GroundTruth(meta, image, mesh.vertices, mesh.faces, landmarks.points, mask)
