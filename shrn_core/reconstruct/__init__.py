"""Reconstruct stage: a textured 3D face (meshes per level, UV albedo, cameras) from one or several
photos of one person. Backends: ``fit`` (embedded hierarchical fitting, default, no weights) and
``hrn`` (HRN networks, needs downloaded assets)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ..errors import FaceError, InputError, NumericalError
from ..registry import Registry
from .types import LEVELS, Camera, Mesh, Reconstruction, ViewResult

log = logging.getLogger("shrn.reconstruct")

RECONSTRUCT_BACKENDS: Registry = Registry("reconstruct")
# per-call options of ``reconstruct`` (not backend construction settings)
CALL_OPTIONS = ("levels", "progress", "multi_view", "image_paths", "mv_iterations", "renders", "texture")
SHAPE_DISAGREEMENT_WARN = 0.05  # see multi_view_disagreement


@RECONSTRUCT_BACKENDS.register("fit")
def _fit_factory(device: Any = "auto", **options):
    from .fit import FitBackend

    return FitBackend(device=device, **options)


@RECONSTRUCT_BACKENDS.register("hrn")
def _hrn_factory(device: Any = "auto", **options):
    from .hrn import HRNBackend

    if "weights" in options and options.get("assets") is None:
        options["assets"] = options.pop("weights")
    return HRNBackend(device=device, **options)


_BACKEND_CACHE: dict[tuple, Any] = {}


def get_backend(name: str = "fit", device: Any = "auto", **options):
    """A backend instance, created once per (name, device, options) and reused (weights load once)."""
    from ..device import resolve_device

    device = resolve_device(device)
    key = (name, str(device), repr(sorted(options.items(), key=lambda kv: kv[0])))
    if key not in _BACKEND_CACHE:
        _BACKEND_CACHE[key] = RECONSTRUCT_BACKENDS.create(name, device=device, **options)
    return _BACKEND_CACHE[key]


def reconstruct(image, mask=None, *, backend: str = "fit", levels: str = "fine", device: Any = "auto",
                face_analysis=None, face_index: Optional[int] = None, resize_mask: bool = False,
                progress: Optional[Callable[[str], None]] = None, **options) -> Reconstruction:
    """Reconstruct one photo (path or HxWx3 uint8 RGB array).

    ``mask``: occlusion mask (path or HxW uint8 array, 255 = occluded face pixel) or None;
    ``face_analysis``: a ``FaceAnalysis`` to reuse (else the face stage runs); ``levels``: stop after
    ``coarse``, ``mid`` or ``fine``; other ``options`` go to the backend (see ``FitOptions``).
    """
    return reconstruct_multiview([image], [mask], backend=backend, levels=levels, device=device,
                                 face_analyses=[face_analysis], face_index=face_index, resize_mask=resize_mask,
                                 progress=progress, multi_view=False, **options)


def reconstruct_multiview(images: Sequence, masks: Optional[Sequence] = None, *, backend: str = "fit",
                          levels: str = "fine", device: Any = "auto", face_analyses: Optional[Sequence] = None,
                          face_index: Optional[int] = None, resize_mask: bool = False,
                          progress: Optional[Callable[[str], None]] = None, multi_view: bool = True,
                          **options) -> Reconstruction:
    """One shared shape and albedo from several photos of one person, one camera per view."""
    instance, arrays, mask_arrays, faces, call = _setup(images, masks, face_analyses, face_index, resize_mask,
                                                        backend, levels, device, progress, options)
    call["multi_view"] = multi_view and len(arrays) > 1
    if len(arrays) > 1:
        score = multi_view_disagreement([f.landmarks for f in faces])
        if score > SHAPE_DISAGREEMENT_WARN:
            log.warning("the landmark shapes of the %d views disagree strongly (%.3f > %.3f): are they photos of one "
                        "person with a similar expression?", len(arrays), score, SHAPE_DISAGREEMENT_WARN)
    recon = instance.reconstruct(arrays, mask_arrays, faces, call)
    if len(arrays) > 1:
        recon.info["view_shape_disagreement"] = round(float(score), 4)
        if score > SHAPE_DISAGREEMENT_WARN:
            recon.info.setdefault("warnings", []).append(f"landmark shapes of the views disagree ({score:.3f})")
    return recon


def _setup(images, masks, face_analyses, face_index, resize_mask, backend, levels, device, progress, options):
    """Checks and loads the inputs, splits per-call options from backend settings, gets the backend."""
    images = list(images)
    if not images:
        raise InputError("no images to reconstruct")
    if levels not in LEVELS:
        raise InputError(f"unknown level {levels!r}; choose one of: {', '.join(LEVELS)}")
    arrays, paths, mask_arrays, faces = _prepare(images, masks, face_analyses, face_index, resize_mask)
    call = {"levels": levels, "progress": progress, "image_paths": paths}
    for key in CALL_OPTIONS:
        if key in options:
            call[key] = options.pop(key)
    instance = get_backend(backend, device, **{k: v for k, v in options.items() if v is not None})
    return instance, arrays, mask_arrays, faces, call


def reconstruct_batch(images: Sequence, masks: Optional[Sequence] = None, *, backend: str = "fit",
                      levels: str = "fine", device: Any = "auto", face_analyses: Optional[Sequence] = None,
                      face_index: Optional[int] = None, resize_mask: bool = False,
                      progress: Optional[Callable[[str], None]] = None, **options) -> list[Reconstruction]:
    """Independent reconstructions of several photos in one batched fit (faster on a GPU)."""
    instance, arrays, mask_arrays, faces, call = _setup(images, masks, face_analyses, face_index, resize_mask,
                                                        backend, levels, device, progress, options)
    if not hasattr(instance, "reconstruct_batch"):
        return [instance.reconstruct([a], [m], [f], dict(call, image_paths=[p]))
                for a, m, f, p in zip(arrays, mask_arrays, faces, call["image_paths"])]
    return instance.reconstruct_batch(arrays, mask_arrays, faces, call)


def _prepare(images, masks, face_analyses, face_index, resize_mask):
    from ..formats.image import read_image

    masks = list(masks) if masks is not None else [None] * len(images)
    analyses = list(face_analyses) if face_analyses is not None else [None] * len(images)
    if not (len(masks) == len(analyses) == len(images)):
        raise InputError(f"{len(images)} images but {len(masks)} masks and {len(analyses)} face analyses")
    arrays, paths, mask_arrays, faces = [], [], [], []
    for image, mask, analysis in zip(images, masks, analyses):
        path = str(image) if isinstance(image, (str, Path)) else ""
        array = read_image(image) if isinstance(image, (str, Path)) else _check_image_array(image)
        arrays.append(array)
        paths.append(path)
        mask_arrays.append(load_mask(mask, array.shape[:2], resize_mask, path))
        faces.append(_face_of(array, path, analysis, face_index))
    return arrays, paths, mask_arrays, faces


def write_reconstruction(recon: Reconstruction, out_dir, stem: str, formats=("obj",),
                         view_stems: Optional[list[str]] = None) -> dict[str, Path]:
    """Write every output of a reconstruction (docs/formats.md); returns {name: path}."""
    from ..formats.mesh import write_reconstruction_files

    for name, mesh in recon.levels.items():
        if not np.isfinite(mesh.vertices).all():
            raise NumericalError(f"{name} mesh contains NaN/inf; nothing written")
    if view_stems is None and len(recon.views) > 1:
        from ..formats.core import image_stem

        view_stems = [image_stem(v.image_path) if v.image_path else f"{stem}_view{i}" for i, v in enumerate(recon.views)]
    return write_reconstruction_files(recon, out_dir, stem, formats, view_stems)


def load_mask(mask, shape: tuple[int, int], resize: bool = False, image_path: str = "") -> Optional[np.ndarray]:
    """An occlusion mask as HxW uint8 (255 = occluded), checked against the photo size."""
    if mask is None:
        return None
    if isinstance(mask, (str, Path)):
        from ..formats.image import read_gray

        source = str(mask)
        array = read_gray(mask)
    else:
        source = "mask array"
        array = np.asarray(mask)
        if array.ndim == 3:
            array = array[..., 0]
        if array.ndim != 2:
            raise InputError(f"mask must be a single-channel HxW array, got shape {array.shape}")
        if array.dtype == bool:
            array = array.astype(np.uint8) * 255
        elif array.dtype != np.uint8:
            array = np.clip(array, 0, 255).astype(np.uint8)
    if array.shape[:2] != tuple(shape):
        if not resize:
            raise InputError(f"mask is {array.shape[1]}x{array.shape[0]} but the photo is {shape[1]}x{shape[0]} "
                             "(use --resize-mask to scale it)", source)
        import cv2

        array = cv2.resize(array, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
    return np.where(array > 127, 255, 0).astype(np.uint8)


def multi_view_disagreement(landmarks: Sequence[np.ndarray]) -> float:
    """Largest pairwise RMS distance between the views' 3D landmark shapes after similarity
    alignment, in units of the outer-eye-corner distance. Views of one person measure 0.02-0.04 on
    the shared test photos, different people 0.02-0.10: a warning sign, not a test of identity."""
    from ..geometry.transforms import umeyama

    shapes = [np.asarray(l, dtype=np.float64)[:468] * np.array([1.0, -1.0, -1.0]) for l in landmarks]
    worst = 0.0
    for i in range(len(shapes)):
        for j in range(i + 1, len(shapes)):
            a, b = shapes[i], shapes[j]
            residual = umeyama(a, b).apply(a) - b
            scale = np.linalg.norm(b[33] - b[263])
            worst = max(worst, float(np.sqrt((residual ** 2).sum(1).mean()) / max(scale, 1e-9)))
    return worst


def _check_image_array(image) -> np.ndarray:
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise InputError(f"image must be an HxWx3 uint8 RGB array, got {array.dtype} {array.shape}")
    return array


def _face_of(array: np.ndarray, path: str, analysis, face_index: Optional[int]):
    """The selected ``Face``: from the given analysis, else run the face stage."""
    from ..face import analyze_image

    if analysis is None:
        analysis = analyze_image(array, face_index=face_index, hands=False, image_path=path or None)
    if not analysis.faces:
        raise FaceError("no face found", path or None)
    if (analysis.width, analysis.height) != (array.shape[1], array.shape[0]):
        raise InputError(f"face analysis is for a {analysis.width}x{analysis.height} image but the photo is "
                         f"{array.shape[1]}x{array.shape[0]}", path or None)
    face = analysis.face
    if not np.isfinite(face.landmarks).all():
        raise NumericalError("face landmarks contain NaN/inf", path or None)
    return face


__all__ = ["RECONSTRUCT_BACKENDS", "reconstruct", "reconstruct_multiview", "reconstruct_batch", "write_reconstruction", "load_mask",
           "get_backend", "Reconstruction", "Mesh", "Camera", "ViewResult", "LEVELS"]
