"""Reconstruction outputs: textured OBJ (+ MTL + albedo PNG), per-level meshes, GLB, camera/lighting
parameters (``<stem>.params.npz``), overlay and shading renders. See docs/formats.md."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Iterable

import numpy as np

from ..errors import FormatError, InputError
from .arrays import load_npz
from .core import atomic_write, ensure_dir, output_path, write_bytes
from .image import read_image, write_image

OBJ_HEADER = "# shrn mesh topology="
PARAMS_VERSION = 2
READABLE_PARAMS_VERSIONS = (1, 2)
FORMATS = ("obj", "glb")


def obj_text(vertices: np.ndarray, faces: np.ndarray, uvs: np.ndarray | None = None,
             mtl_name: str | None = None, comment: str = "", topology: str | None = None) -> str:
    """OBJ text whose first line is ``# shrn mesh topology=<id> ...``: ``<id>`` names the vertex layout
    (the face model's name, e.g. ``ict-face-v1``: its vertices come first, in order, at every level;
    ``unknown`` otherwise); UVs are per vertex, so ``f a/a b/b c/c``."""
    vertices = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    one = np.asarray(faces, dtype=np.int64).reshape(-1, 3) + 1
    head = [f"{OBJ_HEADER}{topology or 'unknown'} vertices={len(vertices)} faces={len(one)} units=mm {comment}".rstrip(),
            "# x right, y up, z towards the viewer (head frame)"]
    if mtl_name:
        head.append(f"mtllib {mtl_name}")
    # one %-format over the flattened array: several times faster than a Python loop per line
    parts = ["\n".join(head) + "\n", _rows("v %.5f %.5f %.5f\n", vertices)]
    if uvs is not None:
        parts.append(_rows("vt %.6f %.6f\n", np.asarray(uvs, dtype=np.float64).reshape(-1, 2)))
    if mtl_name:
        parts.append("usemtl face\n")
    if uvs is not None:
        parts.append(_rows("f %d/%d %d/%d %d/%d\n", np.repeat(one, 2, axis=1)))
    else:
        parts.append(_rows("f %d %d %d\n", one))
    return "".join(parts)


def _rows(line_format: str, array: np.ndarray) -> str:
    return (line_format * len(array)) % tuple(array.ravel().tolist()) if len(array) else ""


def mtl_text(texture_name: str) -> str:
    return ("# shrn material: unlit albedo texture\nnewmtl face\nKa 1.000 1.000 1.000\nKd 1.000 1.000 1.000\n"
            f"Ks 0.000 0.000 0.000\nd 1.0\nillum 1\nmap_Kd {texture_name}\n")


def write_obj(path: str | Path, vertices, faces, uvs=None, mtl_name: str | None = None, comment: str = "",
              topology: str | None = None) -> Path:
    with atomic_write(path, "w") as handle:
        handle.write(obj_text(vertices, faces, uvs, mtl_name, comment, topology))
    return Path(path)


def read_obj(path: str | Path):
    """(vertices, faces, uvs or None) of a shrn OBJ, vertex order kept; checks the header line, that
    every value is finite and every face names three existing vertices."""
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", path)
    try:
        lines = path.read_bytes().decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise FormatError("not a text OBJ file (not UTF-8)", path) from None
    if not lines or not lines[0].startswith(OBJ_HEADER):
        raise FormatError(f"not a shrn mesh (first line must start with {OBJ_HEADER!r})", path)
    vertices, uvs, faces = [], [], []
    for number, line in enumerate(lines, 1):
        tokens = line.split()
        try:
            if line.startswith("v "):
                vertices.append([float(x) for x in _exactly(tokens, 3)])
            elif line.startswith("vt "):
                uvs.append([float(x) for x in _exactly(tokens, 2)])
            elif line.startswith("f "):
                faces.append([int(token.split("/")[0]) - 1 for token in _exactly(tokens, 3)])
        except ValueError:
            raise FormatError(f"malformed line {number}: {line[:60]!r}", path) from None
    v = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    f = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    if not len(v):
        raise FormatError("mesh has no vertices", path)
    if not np.isfinite(v).all() or np.abs(v).max() > np.finfo(np.float32).max:
        raise FormatError("vertex coordinates contain NaN, inf or out-of-range values", path)
    if len(f) and (f.min() < 0 or f.max() >= len(v)):
        raise FormatError("face refers to a missing vertex", path)
    t = np.asarray(uvs, dtype=np.float64).reshape(-1, 2) if uvs else None
    if t is not None and not np.isfinite(t).all():
        raise FormatError("texture coordinates contain NaN or inf", path)
    return v.astype(np.float32), f, (t.astype(np.float32) if t is not None else None)


_VALUES_ALLOWED = {3: (3, 4, 6), 2: (2, 3)}  # v: x y z [w | r g b]; vt: u v [w]; f: exactly 3


def _exactly(tokens: list[str], count: int) -> list[str]:
    """The first ``count`` values after the keyword; ValueError when the line has a wrong number of values."""
    values = tokens[1:]
    if len(values) not in _VALUES_ALLOWED.get(count, (count,)) or (tokens[0] == "f" and len(values) != 3):
        raise ValueError
    return values[:count]


def glb_bytes(vertices, faces, uvs, albedo: np.ndarray) -> bytes:
    import trimesh
    from PIL import Image

    material = trimesh.visual.material.PBRMaterial(baseColorTexture=Image.fromarray(albedo), metallicFactor=0.0,
                                                   roughnessFactor=1.0)
    visual = trimesh.visual.TextureVisuals(uv=uvs, material=material)
    mesh = trimesh.Trimesh(vertices=vertices, faces=faces, visual=visual, process=False)
    return mesh.export(file_type="glb")


def write_params(path: str | Path, recon) -> Path:
    """Per-view cameras, pose, lighting and landmarks (mm, radians / degrees as named) as .npz."""
    views = recon.views
    rotations = np.stack([v.camera.R for v in views]).astype(np.float32)
    payload = {
        "format": np.array("shrn.params"),
        "schema_version": np.array(PARAMS_VERSION),
        "units": np.array("mm"),
        "backend": np.array(recon.backend),
        "levels": np.array(list(recon.levels)),
        "image_paths": np.array([v.image_path for v in views]),
        "image_size": np.array([[v.camera.width, v.camera.height] for v in views], dtype=np.int32),
        "K": np.stack([v.camera.K for v in views]).astype(np.float32),
        "R": rotations,
        "t": np.stack([v.camera.t for v in views]).astype(np.float32),
        "pose_ypr_deg": np.stack([pose_angles(R) for R in rotations]).astype(np.float32),
        "sh_lighting": np.stack([v.sh_lighting for v in views]).astype(np.float32),
        "landmarks_2d": np.stack([v.landmarks_2d for v in views]).astype(np.float32),
        "landmark_vertex_ids": np.asarray(recon.landmark_vertex_ids, dtype=np.int64),
    }
    if all(v.landmarks_68 is not None for v in views):
        payload["landmarks_68"] = np.stack([v.landmarks_68 for v in views]).astype(np.float32)
    model = getattr(recon, "model", None)
    if model is not None:
        payload["model"] = np.array(model.model)
        payload["identity"] = np.asarray(model.identity, dtype=np.float32)
        payload["expression_names"] = np.array(list(model.expression_names))
        payload["expression"] = np.stack([v.expression for v in views]).astype(np.float32)
    if recon.displacement is not None:
        payload["displacement_map"] = np.asarray(recon.displacement, dtype=np.float32)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **payload)
    return write_bytes(path, buffer.getvalue())


PARAMS_SHAPES = {  # key -> shape, with N = views, L = levels; None = any length
    "K": ("N", 3, 3), "R": ("N", 3, 3), "t": ("N", 3), "pose_ypr_deg": ("N", 3), "sh_lighting": ("N", 9, 3),
    "image_size": ("N", 2), "landmarks_2d": ("N", None, 2), "image_paths": ("N",), "levels": (None,),
    "landmark_vertex_ids": (None,),
}


def read_params(path: str | Path) -> dict:
    """The arrays of a ``<stem>.params.npz`` (docs/formats.md), checked: format and version, every
    documented key with its shape, finite numbers; ``FormatError`` names the first problem."""
    path = Path(path)
    params = load_npz(path)
    if str(params.get("format", "")) != "shrn.params":
        raise FormatError("not a shrn params file (expected format 'shrn.params')", path)
    version = params.get("schema_version")
    if (version is None or version.shape != () or version.dtype.kind not in "iu"
            or int(version) not in READABLE_PARAMS_VERSIONS):
        raise FormatError(f"unsupported schema_version {version!r}", path)
    missing = [key for key in PARAMS_SHAPES if key not in params]
    if missing:
        raise FormatError(f"missing array(s): {', '.join(missing)}", path)
    views = params["K"].shape[0] if params["K"].ndim else 0
    if views < 1:
        raise FormatError("no camera views", path)
    for key, shape in PARAMS_SHAPES.items():
        array = params[key]
        wanted = tuple(views if side == "N" else side for side in shape)
        if array.ndim != len(wanted) or any(w is not None and w != got for w, got in zip(wanted, array.shape)):
            raise FormatError(f"{key} has shape {array.shape}, expected {wanted} (None = any)", path)
        numeric = array.dtype.kind in "fiu"
        if key in ("image_paths", "levels"):
            if array.dtype.kind != "U":
                raise FormatError(f"{key} must hold strings, got {array.dtype}", path)
        elif not numeric or (array.dtype.kind == "f" and not np.isfinite(array).all()):
            raise FormatError(f"{key} must hold finite numbers, got {array.dtype}", path)
    displacement = params.get("displacement_map")
    if displacement is not None and (displacement.ndim != 2 or displacement.dtype.kind != "f"
                                     or not np.isfinite(displacement).all()):
        raise FormatError(f"displacement_map must be a finite 2-D float map, got {displacement.dtype} "
                          f"{displacement.shape}", path)
    return params


def pose_angles(R: np.ndarray) -> np.ndarray:
    """(yaw, pitch, roll) in degrees of a head-to-camera rotation: yaw about y (positive = the subject
    turns to their left), pitch about x (positive = looking up), roll about z; R = Ry(yaw) Rx(pitch) Rz(roll)."""
    from scipy.spatial.transform import Rotation

    yaw, pitch, roll = Rotation.from_matrix(np.asarray(R, dtype=np.float64)).as_euler("YXZ", degrees=True)
    return np.array([yaw, pitch, roll])


def reconstruction_outputs(out_dir: str | Path, stem: str, recon_levels: Iterable[str], formats=("obj",),
                           view_stems: list[str] | None = None, renders: bool = True,
                           neutral: bool = False) -> dict[str, Path]:
    """The paths ``write_reconstruction`` will write (for ``--overwrite`` checks)."""
    levels = list(recon_levels)
    paths = {"mesh": output_path(out_dir, stem, "", "obj"), "mtl": output_path(out_dir, stem, "", "mtl"),
             "albedo": output_path(out_dir, stem, "albedo", "png"), "params": output_path(out_dir, stem, "params", "npz")}
    for level in levels[:-1]:
        paths[f"mesh_{level}"] = output_path(out_dir, stem, level, "obj")
    if neutral:
        paths["mesh_neutral"] = output_path(out_dir, stem, "neutral", "obj")
    if "glb" in formats:
        paths["glb"] = output_path(out_dir, stem, "", "glb")
    if renders:
        for index, view_stem in enumerate(view_stems or [stem]):
            suffix = "" if index == 0 and len(view_stems or [stem]) == 1 else f"_{index}"
            paths[f"overlay{suffix}"] = output_path(out_dir, view_stem, "overlay", "png")
            paths[f"shading{suffix}"] = output_path(out_dir, view_stem, "shading", "png")
    return paths


def write_reconstruction_files(recon, out_dir: str | Path, stem: str, formats=("obj",),
                               view_stems: list[str] | None = None) -> dict[str, Path]:
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise InputError(f"unknown mesh format(s) {', '.join(unknown)}; choose from {', '.join(FORMATS)}")
    out_dir = ensure_dir(out_dir)
    levels = list(recon.levels)
    renders = any(v.overlay is not None for v in recon.views)
    paths = reconstruction_outputs(out_dir, stem, levels, formats, view_stems, renders, recon.neutral is not None)
    final = recon.final
    texture_name = paths["albedo"].name
    # albedo rows: texel row 0 is v = 0 (bottom); image files store the top row first
    write_image(paths["albedo"], np.ascontiguousarray(recon.albedo[::-1]))
    with atomic_write(paths["mtl"], "w") as handle:
        handle.write(mtl_text(texture_name))
    for level in levels[:-1]:
        mesh = recon.levels[level]
        write_obj(paths[f"mesh_{level}"], mesh.vertices, mesh.faces, mesh.uvs, paths["mtl"].name, f"level={level}",
                  mesh.topology)
    if recon.neutral is not None:
        write_obj(paths["mesh_neutral"], recon.neutral.vertices, recon.neutral.faces, recon.neutral.uvs, paths["mtl"].name,
                  f"level={levels[-1]} expression=neutral", recon.neutral.topology)
    write_params(paths["params"], recon)
    if "glb" in formats:
        write_bytes(paths["glb"], glb_bytes(final.vertices, final.faces, final.uvs, np.ascontiguousarray(recon.albedo[::-1])))
    if renders:
        names = [k for k in paths if k.startswith("overlay")]
        for key, view in zip(names, recon.views):
            suffix = key[len("overlay"):]
            write_image(paths[key], view.overlay)
            write_image(paths[f"shading{suffix}"], view.shading)
    # The main mesh last: its presence means every other file of this reconstruction was written
    # (``shrn run`` deletes it before recomputing, so a killed run is never taken as done).
    write_obj(paths["mesh"], final.vertices, final.faces, final.uvs, paths["mtl"].name, f"level={levels[-1]}",
              final.topology)
    return paths


def read_albedo(path: str | Path) -> np.ndarray:
    """The albedo PNG as stored (top row = v = 1)."""
    return read_image(path)
