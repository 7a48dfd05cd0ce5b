"""The table of every file shrn reads: how to build a valid one, how shrn reads it, what is allowed.

One ``Reader`` per file type. To fuzz a new file type, add one entry to ``READERS``:

    Reader("synth.labels", build=build_labels,                   # folder -> path of a valid file
           api=lambda p: read_labels(p), check=check_labels,      # Python reader + invariants of its result
           errors=(FormatError, InputError),                      # what the reader may raise
           cli=("synth", "{path}", "--out", "{out}"), codes={0, 2, 5},   # optional: a command reading it
           families=("bytes", "json"))                            # mutation families (see mutate.FAMILIES)

``{path}`` is the fuzzed file, ``{dir}`` the folder the builder wrote into, ``{out}`` an empty
output folder. ``check`` gets what ``api`` returned for a mutated file the reader accepted and
asserts the documented guarantees (shape, dtype, finiteness, ranges).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from shrn_core.errors import FormatError, InputError, NumericalError, WeightsError

from . import examples as ex


@dataclass(frozen=True)
class Reader:
    name: str
    build: Callable[[Path], Path]
    api: Optional[Callable[[Path], Any]] = None
    check: Optional[Callable[[Any], None]] = None
    errors: tuple[type, ...] = (InputError, FormatError)
    cli: Optional[tuple[str, ...]] = None
    codes: frozenset[int] = frozenset({0, 2})
    families: tuple[str, ...] = ("bytes",)
    needs: tuple[str, ...] = ()  # importable modules without which the entry is skipped
    weight: int = 1  # relative share of the cases


# ---------------------------------------------------------------- invariants of accepted results

def check_rgb(image) -> None:
    from shrn_core.formats.image import max_pixels

    assert isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3, \
        f"not HxWx3 uint8: {getattr(image, 'dtype', type(image))} {getattr(image, 'shape', '')}"
    assert image.shape[0] >= 1 and image.shape[1] >= 1 and image.shape[0] * image.shape[1] <= max_pixels()


def check_mask(mask) -> None:
    assert isinstance(mask, np.ndarray) and mask.dtype == np.uint8 and mask.shape == (ex.PHOTO_SIDE, ex.PHOTO_SIDE)


def check_face(analysis) -> None:
    assert analysis.faces and 0 <= analysis.selected < len(analysis.faces)
    assert analysis.width >= 1 and analysis.height >= 1
    for face in analysis.faces:
        assert face.landmarks.shape == (478, 3) and np.isfinite(face.landmarks).all()
        assert face.bbox.shape == (4,) and np.isfinite(face.bbox).all() and np.isfinite(face.score)
    for hand in analysis.hands:
        assert hand.landmarks.shape == (21, 3) and np.isfinite(hand.landmarks).all()


def check_manifest(doc) -> None:
    assert isinstance(doc["ok"], bool) and (doc["error"] is None or isinstance(doc["error"], str))
    assert isinstance(doc["stages"], list) and isinstance(doc["warnings"], list)
    assert all(isinstance(s["name"], str) for s in doc["stages"])


def check_metrics(doc) -> None:
    for key in ("median_mm", "mean_mm", "std_mm"):
        value = doc[key]
        assert isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(float(value)), (key, value)


def check_errors(errors) -> None:
    assert errors.ndim == 1 and errors.dtype.kind == "f"


def check_params(params) -> None:
    n = len(params["K"])
    assert n >= 1
    for key, shape in (("K", (n, 3, 3)), ("R", (n, 3, 3)), ("t", (n, 3)), ("sh_lighting", (n, 9, 3)),
                       ("image_size", (n, 2)), ("pose_ypr_deg", (n, 3))):
        assert params[key].shape == shape, (key, params[key].shape)
        assert np.isfinite(params[key]).all(), key
    assert params["landmarks_2d"].ndim == 3 and params["landmarks_2d"].shape[0] == n


def check_shrn_obj(result) -> None:
    vertices, faces, uvs = result
    assert vertices.ndim == 2 and vertices.shape[1] == 3 and np.isfinite(vertices).all()
    assert faces.ndim == 2 and faces.shape[1] == 3
    assert not len(faces) or (faces.min() >= 0 and faces.max() < len(vertices))
    assert uvs is None or (uvs.ndim == 2 and uvs.shape[1] == 2 and np.isfinite(uvs).all())


def check_mesh(mesh) -> None:
    assert mesh.vertices.ndim == 2 and mesh.vertices.shape[1] == 3 and len(mesh.vertices) >= 1
    assert np.isfinite(mesh.vertices).all(), "non-finite vertices accepted"
    assert mesh.faces.ndim == 2 and mesh.faces.shape[1] == 3
    assert not len(mesh.faces) or (mesh.faces.min() >= 0 and mesh.faces.max() < len(mesh.vertices))


def check_landmarks(spec) -> None:
    if spec.points is not None:
        assert spec.points.ndim == 2 and spec.points.shape[1] == 3 and np.isfinite(spec.points).all()
    else:
        assert spec.vertex_ids.ndim == 1 and (spec.vertex_ids >= 0).all()


def check_config(config) -> None:
    assert isinstance(config, dict) and all(isinstance(k, str) for k in config)
    for value in config.values():
        items = value if isinstance(value, list) else [value]
        assert all(v is None or isinstance(v, (str, int, float, bool)) for v in items), value


def check_topology(topo) -> None:
    n = 468
    assert topo.mean_shape.shape == (478, 3) and np.isfinite(topo.mean_shape).all()
    assert topo.triangles.ndim == 2 and topo.triangles.shape[1] == 3
    assert topo.triangles.min() >= 0 and topo.triangles.max() < n
    assert topo.uvs.shape == (n, 2) and topo.mirror.shape == (n,)
    assert topo.mirror.min() >= 0 and topo.mirror.max() < n
    assert topo.landmark_vertex_ids.shape == (478,) and topo.landmark_vertex_ids.max() < n


def check_anything(_result) -> None:
    pass


# ---------------------------------------------------------------- how each file is read

def _read_image(path):
    from shrn_core.formats.image import read_image

    return read_image(path)


def _read_mask(path):
    from shrn_core.formats.mask import read_mask

    return read_mask(path, (ex.PHOTO_SIDE, ex.PHOTO_SIDE))


def _read_face(path):
    from shrn_core.formats.face import read_face_json

    return read_face_json(path)


def _read_manifest(path):
    from shrn_core.formats.manifest import read_manifest

    return read_manifest(path)


def _read_metrics(path):
    from shrn_core.formats.metrics import read_metrics

    return read_metrics(path)


def _read_errors(path):
    from shrn_core.formats.metrics import read_errors

    return read_errors(path)


def _read_params(path):
    from shrn_core.formats.mesh import read_params

    return read_params(path)


def _read_shrn_obj(path):
    from shrn_core.formats.mesh import read_obj

    return read_obj(path)


def _read_mesh(path):
    """What ``shrn eval`` does with a mesh file: read it, then the geometry checks (NaN/inf coordinates
    are a NumericalError there, by design)."""
    from shrn_core.formats.mesh_io import read_mesh
    from shrn_core.geometry.validate import validate_mesh

    mesh = read_mesh(path)
    validate_mesh(mesh.vertices, mesh.faces, path, require_faces=False)
    return mesh


def _read_landmarks(path):
    from shrn_core.formats.mesh_io import read_landmarks

    return read_landmarks(path)


def _load_config(path):
    from shrn_core.config import load_config

    return load_config(path, "face")


def _load_deeplab(path):
    from shrn_core.segment import create_backend

    return create_backend("deeplabv3", weights=path, device="cpu")


def _read_hrn_checkpoint(path):
    from shrn_core.reconstruct.hrn.checkpoint import read_checkpoint

    return read_checkpoint(path)


def _load_repaint(path):
    from shrn_core.inpaint import repaint

    try:
        return repaint.load_model(Path(path).parents[1], "cpu")
    finally:
        repaint._cache.clear()  # every case is a new folder: keep the fuzz worker's memory flat


def _load_hrn_assets(path):
    from shrn_core.reconstruct.hrn.assets import resolve_assets
    from shrn_core.reconstruct.hrn.bfm import load_bfm_arrays

    root = next(parent for parent in Path(path).parents if parent.name == "assets")
    return load_bfm_arrays(resolve_assets(root))


def check_bfm(arrays) -> None:
    n = arrays.mean_shape.shape[0]
    assert np.isfinite(arrays.mean_shape).all() and arrays.tri.max() < n and arrays.template_tri.max() < n
    assert arrays.uvs.shape == (n, 2) and arrays.keypoints.shape == (68,)


def _load_topology(path):
    from shrn_core.face.topology import load_topology

    return load_topology.__wrapped__(path)


def _load_face_model(path):
    from shrn_core.facemodel.model import _load_face_model as load

    return load.__wrapped__(path.parent)


def check_face_model(model) -> None:
    v = model.num_vertices
    assert model.neutral.shape == (v, 3) and np.isfinite(model.neutral).all()
    assert model.identity_basis.shape[1:] == (v, 3) and model.expression_basis.shape[1:] == (v, 3)
    assert model.triangles.min() >= 0 and model.triangles.max() < v


def _load_occlusion_net(path):
    from shrn_core.segment.learned import LearnedSegmenter

    return LearnedSegmenter(weights=path.parent, device="cpu")


def check_occlusion_net(segmenter) -> None:
    assert 32 <= segmenter.spec.size <= 2048 and 0 < segmenter.spec.threshold < 1 and 0.5 <= segmenter.spec.crop_scale <= 4


MESH_ERRORS = (InputError, FormatError, NumericalError)
IMAGE_CLI = ("face", "{path}", "--no-hands", "--out", "{out}")
EVAL_OPTIONS = ("--out", "{out}", "--icp-iterations", "3")

READERS: list[Reader] = [
    *[Reader(f"image.{kind}", ex.image_builder(kind), _read_image, check_rgb, (InputError,), IMAGE_CLI,
             frozenset({0, 2, 3}), ("bytes", "image"))
      for kind in ("png8", "png16", "gray_png", "rgba_png", "jpeg_exif", "tiff16", "tiff_float", "webp", "bmp")],
    Reader("mask.png", ex.build_mask, _read_mask, check_mask, (InputError, FormatError),
           ("inpaint", "{dir}/photo.png", "--mask", "{path}", "--backend", "telea", "--out", "{out}"),
           frozenset({0, 2, 3, 5}), ("bytes", "image"), weight=2),
    Reader("face.json", ex.build_face_json, _read_face, check_face, (FormatError, InputError),
           ("segment", "{dir}/photo.png", "--out", "{dir}"), frozenset({0, 2, 3, 5}), ("bytes", "json"), weight=3),
    Reader("manifest.json", ex.build_manifest, _read_manifest, check_manifest, families=("bytes", "json"), weight=2),
    Reader("metrics.json", ex.build_metrics, _read_metrics, check_metrics, families=("bytes", "json")),
    Reader("errors.npy", ex.build_errors, _read_errors, check_errors, families=("bytes", "npy")),
    Reader("params.npz", ex.build_params, _read_params, check_params, families=("bytes", "npz"), weight=2),
    Reader("mesh.shrn_obj", ex.build_shrn_obj, _read_shrn_obj, check_shrn_obj, families=("bytes", "text"), weight=2),
    Reader("mesh.obj", ex.build_eval_pred_obj, _read_mesh, check_mesh, MESH_ERRORS,
           ("eval", "{path}", "{dir}/gt/face.obj", *EVAL_OPTIONS), frozenset({0, 2, 5, 7}), ("bytes", "text"), weight=2),
    Reader("mesh.ply_binary", ex.scan_builder(".ply"), _read_mesh, check_mesh, MESH_ERRORS,
           ("eval", "{dir}/pred/face.obj", "{path}", *EVAL_OPTIONS), frozenset({0, 2, 5, 7}), ("bytes", "text")),
    Reader("mesh.ply_ascii", ex.scan_builder(".ply", ascii_ply=True), _read_mesh, check_mesh, MESH_ERRORS,
           families=("bytes", "text")),
    Reader("mesh.stl", ex.scan_builder(".stl"), _read_mesh, check_mesh, MESH_ERRORS,
           ("eval", "{dir}/pred/face.obj", "{path}", *EVAL_OPTIONS), frozenset({0, 2, 5, 7}), ("bytes", "text")),
    *[Reader(f"landmarks{ext}", ex.landmarks_builder(ext), _read_landmarks, check_landmarks, (InputError, FormatError),
             ("eval", "{dir}/pred/face.obj", "{dir}/gt/face.obj", "--gt-landmarks", "{path}", *EVAL_OPTIONS),
             frozenset({0, 2, 5, 7}), families)
      for ext, families in ((".txt", ("bytes", "text")), (".npy", ("bytes", "npy")), (".json", ("bytes", "json")),
                            (".pp", ("bytes", "text", "xml")))],
    Reader("config.yaml", ex.build_config, _load_config, check_config, (InputError,),
           ("face", "{dir}/photo.png", "--config", "{path}", "--out", "{out}"), frozenset({0, 2, 3}),
           ("bytes", "yaml"), weight=2),
    # its command runs a 512x512 network per case: covered by tests/test_fuzz.py's malicious-checkpoint test
    Reader("checkpoint.deeplabv3", ex.build_deeplab, _load_deeplab, check_anything, (WeightsError,),
           families=("bytes", "torch"), needs=("torchvision",)),
    Reader("checkpoint.hrn", ex.build_hrn_checkpoint, _read_hrn_checkpoint, check_anything, (WeightsError,),
           families=("bytes", "torch")),
    Reader("repaint.config", ex.repaint_builder("config"), _load_repaint, check_anything, (WeightsError,),
           families=("bytes", "json"), needs=("diffusers",)),
    Reader("repaint.safetensors", ex.repaint_builder("safetensors"), _load_repaint, check_anything, (WeightsError,),
           families=("bytes",), needs=("diffusers",)),
    Reader("repaint.bin", ex.repaint_builder("bin"), _load_repaint, check_anything, (WeightsError,),
           families=("bytes", "torch"), needs=("diffusers",)),
    *[Reader(f"hrn_assets.{name}", ex.hrn_asset_builder(name), _load_hrn_assets, check_bfm, (WeightsError,),
             families=families)
      for name, families in (("bfm", ("bytes",)), ("lm3d", ("bytes",)), ("uvs", ("bytes", "npy")),
                             ("template", ("bytes", "text")))],
    Reader("packaged.face_topology", ex.build_topology, _load_topology, check_topology, (WeightsError,),
           families=("bytes", "npz")),
    Reader("packaged.face_model", ex.packaged_builder("face_model", "model.npz"), _load_face_model, check_face_model,
           (WeightsError,), families=("bytes", "npz")),
    Reader("packaged.face_model_config", ex.packaged_builder("face_model", "config.json"), _load_face_model,
           check_face_model, (WeightsError,), families=("bytes", "json")),
    Reader("packaged.occlusion_net", ex.packaged_builder("occlusion_net", "occlusion_net.pt"), _load_occlusion_net,
           check_occlusion_net, (WeightsError,), families=("bytes", "torch")),
    Reader("packaged.occlusion_net_config", ex.packaged_builder("occlusion_net", "config.json"), _load_occlusion_net,
           check_occlusion_net, (WeightsError,), families=("bytes", "json")),
]

BY_NAME = {reader.name: reader for reader in READERS}


def available(reader: Reader) -> bool:
    import importlib.util

    return all(importlib.util.find_spec(module) is not None for module in reader.needs)
