"""The embedded ``fit`` backend: coarse landmark fit -> mid per-vertex deformation -> fine UV
displacement map, with SH lighting, per-texel albedo and occlusion-mask handling (see docs)."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, fields
from typing import Callable, Optional

import cv2
import numpy as np
import torch

from ...errors import InputError, NumericalError
from ...facemodel import load_face_model
from ..types import LEVELS, Camera, Mesh, ModelParameters, Reconstruction, ViewResult
from .camera import default_intrinsics
from .model_fit import ModelFitOptions, ViewObservation, fit_model
from .mesh_ops import subdivide, subdivided_mirror, unique_edges, vertex_normals
from .photometric import CropView, PhotometricOptions, batched_faces, build_pixels, fit_level, pixel_normals
from .raster import create_context, crop_intrinsics, interpolate, rasterize_view, texture
from .shading import frontal_light, sh_basis, shade, solve_lighting
from .texture import TextureView, complete, unwrap

log = logging.getLogger("shrn.reconstruct")


@dataclass
class FitOptions:
    """Tunable settings of the ``fit`` backend (all may be passed as ``reconstruct(..., name=value)``)."""

    render_size: int = 256  # side of the square face crop the photometric fit renders
    texture_size: int = 512  # output albedo / displacement map side
    subdivisions: int = 0  # mid level: 0 keeps the model's 9.4k vertices, 1 -> ~37k (measured: no accuracy gain, 1.6x slower)
    coarse_iterations: int = 8  # Levenberg-Marquardt iterations of the face-model fit
    identity_components: int = 100  # leading identity components of the face model fitted
    mid_iterations: int = 20
    fine_iterations: int = 15
    displacement_size: int = 128  # fine-level UV displacement map resolution during fitting
    focal_px: Optional[float] = None  # default: 2 x the longer image side
    render_outputs: bool = True  # overlay and shading renders at photo resolution
    max_render_side: int = 1024  # renders of larger photos are made at this size and upscaled
    cpu_threads: int = 1  # torch threads on CPU during the fit (0 = leave torch's setting); the
    # tensors are small, and more threads mostly add synchronisation cost (10x slower on a busy 2-core machine)

    @classmethod
    def from_options(cls, options: dict) -> "FitOptions":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise InputError(f"unknown option(s) for the fit backend: {', '.join(unknown)}")
        return cls(**options)


@dataclass
class FitInput:
    image: np.ndarray  # (H, W, 3) uint8
    landmarks: np.ndarray  # (478, 3)
    image_path: str = ""
    mask: Optional[np.ndarray] = None  # (H, W) uint8, 255 = occluded


def reconstruct_views(inputs: list[FitInput], levels: str = "fine", device: torch.device | str = "cpu",
                      options: FitOptions | None = None,
                      progress: Callable[[str], None] | None = None) -> Reconstruction:
    """One face from one photo, or from several views of one person (shared shape and albedo)."""
    return reconstruct_subjects(inputs, [0] * len(inputs), levels, device, options, progress)[0]


def reconstruct_batch(inputs: list[FitInput], levels: str = "fine", device: torch.device | str = "cpu",
                      options: FitOptions | None = None,
                      progress: Callable[[str], None] | None = None) -> list[Reconstruction]:
    """Independent faces from several photos, fitted together (one set of batched tensors)."""
    return reconstruct_subjects(inputs, list(range(len(inputs))), levels, device, options, progress)


def reconstruct_subjects(inputs: list[FitInput], subject_of_view: list[int], levels: str = "fine",
                         device: torch.device | str = "cpu", options: FitOptions | None = None,
                         progress: Callable[[str], None] | None = None) -> list[Reconstruction]:
    options = options or FitOptions()
    saved_threads = torch.get_num_threads()
    if torch.device(device).type == "cpu" and options.cpu_threads > 0:
        torch.set_num_threads(options.cpu_threads)
    try:
        return _reconstruct(inputs, subject_of_view, levels, device, options, progress)
    finally:
        torch.set_num_threads(saved_threads)


def _reconstruct(inputs, subject_of_view, levels, device, options: FitOptions, progress) -> list[Reconstruction]:
    if levels not in LEVELS:
        raise InputError(f"unknown level {levels!r}; choose one of: {', '.join(LEVELS)}")
    stop = LEVELS.index(levels)
    device = torch.device(device)
    model = load_face_model()
    ctx = create_context("auto", device)
    subjects = max(subject_of_view) + 1
    views_of = [[i for i, s in enumerate(subject_of_view) if s == k] for k in range(subjects)]
    timings: dict[str, float] = {}
    started = time.perf_counter()

    def note(message: str) -> None:
        log.info(message)
        if progress:
            progress(message)

    # ---- coarse: landmarks -> pose, camera, smooth shape
    observations = []
    for item in inputs:
        h, w = item.image.shape[:2]
        K = default_intrinsics(w, h, options.focal_px)
        occluded = _landmarks_occluded(item.landmarks, item.mask)
        observations.append(ViewObservation(item.landmarks, K, w, h, occluded))
    # The model fit is a few small dense solves: launch-bound on a GPU, so it always runs on the CPU.
    saved_threads = torch.get_num_threads()
    torch.set_num_threads(max(options.cpu_threads, 1))
    try:
        coarse = fit_model(observations, model, ModelFitOptions(iterations=options.coarse_iterations,
                                                                identity_components=options.identity_components),
                           subject_of_view)
    finally:
        torch.set_num_threads(saved_threads)
    timings["coarse_s"] = time.perf_counter() - started
    note(f"coarse level: landmark RMS {', '.join(f'{e:.1f}' for e in coarse.reprojection_px)} px")

    dtype = torch.float32
    faces_np = model.triangles
    vertices = torch.as_tensor(coarse.vertices, dtype=dtype, device=device)  # (S, V, 3)
    neutral_np = coarse.neutral.astype(np.float64)  # (S, V, 3): follows the posed mesh through subdivision
    uvs = torch.as_tensor(model.uvs, dtype=dtype, device=device)
    faces = torch.as_tensor(faces_np, dtype=torch.int32, device=device)
    levels_out = [{"coarse": Mesh(coarse.vertices[k].copy(), faces_np.copy(), model.uvs.copy(), topology=model.name)}
                  for k in range(subjects)]

    images = [torch.as_tensor(item.image, device=device).to(dtype) / 255 for item in inputs]
    valid_full = [torch.as_tensor(_valid(item.mask, item.image.shape[:2]), device=device) for item in inputs]
    crop_views = [_crop_view(images[i], valid_full[i], observations[i].K, coarse.rotations[i], coarse.translations[i],
                             vertices[subject_of_view[i]], options.render_size, subject_of_view[i])
                  for i in range(len(inputs))]
    lighting = _initial_lighting(ctx, vertices, faces, uvs, crop_views)
    def texture_views(subject: int) -> list[TextureView]:
        """The views of one subject, with the current lighting estimate."""
        return [TextureView(images[i], valid_full[i], observations[i].K, coarse.rotations[i], coarse.translations[i],
                            lighting[i]) for i in views_of[subject]]

    albedo_small = torch.stack([_albedo(ctx, vertices[k], faces, uvs, texture_views(k), PhotometricOptions().albedo_size)[0]
                                for k in range(subjects)])
    displacement_map = None
    mirror = model.mirror

    subdivided_coarse = coarse.vertices.astype(np.float64)  # (S, V, 3) coarse fit at the final resolution
    corners = model.triangles[model.mediapipe_triangles]
    landmark_ids = corners[np.arange(len(corners)), model.mediapipe_barycentric.argmax(1)]  # nearest corner
    if stop >= 1:
        t0 = time.perf_counter()
        for _ in range(options.subdivisions):
            sub = subdivide(faces_np, vertices.shape[1])
            mirror = subdivided_mirror(sub, mirror)
            points = vertices.cpu().numpy().astype(np.float64)
            vertices = torch.as_tensor(np.stack([sub.smooth_points(p) for p in points]), dtype=dtype, device=device)
            neutral_np = np.stack([sub.smooth_points(p) for p in neutral_np])
            subdivided_coarse = np.stack([sub.smooth_points(p) for p in subdivided_coarse])
            uvs = sub.midpoints(uvs)
            faces_np = sub.faces
        faces = torch.as_tensor(faces_np, dtype=torch.int32, device=device)
        edges = torch.as_tensor(unique_edges(faces_np), device=device)
        mirror_t = torch.as_tensor(mirror, device=device)
        popt = PhotometricOptions(iterations=options.mid_iterations)

        def mid_regulariser(d, observed):
            smooth = ((d[:, edges[:, 0]] - d[:, edges[:, 1]]) ** 2).mean(1)
            sym_w = torch.where(observed, popt.symmetry_weight, popt.unobserved_symmetry_weight)
            symmetry = (sym_w * (d - d[:, mirror_t]) ** 2).mean(1)
            return (popt.laplacian_weight * smooth * 10 + popt.magnitude_weight * (d ** 2).mean(1) + symmetry).sum()

        vertices, _, albedo_small, lighting = fit_level(
            ctx, vertices, faces, uvs, crop_views, lighting, albedo_small,
            lambda d: d, torch.zeros(vertices.shape[:2], dtype=dtype, device=device), mid_regulariser, popt, "mid", note)
        for k in range(subjects):
            levels_out[k]["mid"] = Mesh(vertices[k].cpu().numpy().copy(), faces_np.copy(), uvs.cpu().numpy().copy(), topology=model.name)
        timings["mid_s"] = time.perf_counter() - t0

    if stop >= 2:
        t0 = time.perf_counter()
        size = options.displacement_size
        popt = PhotometricOptions(iterations=options.fine_iterations, lr=0.03, max_offset_mm=2.0,
                                  laplacian_weight=0.5, magnitude_weight=0.05)
        vertex_uv_grid = (uvs * 2 - 1).view(1, 1, -1, 2).expand(subjects, -1, -1, -1)

        def displacement_at_vertices(D):  # (S, size, size) -> (S, V); texel row 0 at v = 0 like the albedo
            return torch.nn.functional.grid_sample(D[:, None], vertex_uv_grid, mode="bilinear",
                                                   padding_mode="border", align_corners=False)[:, 0, 0]

        def fine_regulariser(D, observed):
            dx = ((D[:, :, 1:] - D[:, :, :-1]) ** 2).mean((1, 2))
            dy = ((D[:, 1:] - D[:, :-1]) ** 2).mean((1, 2))
            symmetry = ((D - D.flip(2)) ** 2).mean((1, 2))
            return (popt.laplacian_weight * (dx + dy) + popt.magnitude_weight * (D ** 2).mean((1, 2))
                    + popt.symmetry_weight * symmetry).sum()

        vertices, displacement, albedo_small, lighting = fit_level(
            ctx, vertices, faces, uvs, crop_views, lighting, albedo_small, displacement_at_vertices,
            torch.zeros(subjects, size, size, dtype=dtype, device=device), fine_regulariser, popt, "fine", note)
        displacement_map = popt.max_offset_mm * torch.tanh(displacement / popt.max_offset_mm)
        for k in range(subjects):
            levels_out[k]["fine"] = Mesh(vertices[k].cpu().numpy().copy(), faces_np.copy(), uvs.cpu().numpy().copy(), topology=model.name)
        timings["fine_s"] = time.perf_counter() - t0

    # ---- per-texel albedo at output resolution from the final geometry and lighting
    t0 = time.perf_counter()
    albedos = []
    for k in range(subjects):
        albedo_np = _albedo(ctx, vertices[k], faces, uvs, texture_views(k), options.texture_size)[1]
        albedos.append(albedo_np)
    timings["albedo_s"] = time.perf_counter() - t0

    # ---- per-view results and renders
    t0 = time.perf_counter()
    view_results = []
    for i, item in enumerate(inputs):
        k = subject_of_view[i]
        obs = observations[i]
        camera = Camera(obs.K.copy(), np.asarray(coarse.rotations[i], np.float32),
                        np.asarray(coarse.translations[i], np.float32), obs.width, obs.height)
        overlay = shading_img = None
        if options.render_outputs:
            albedo_tex = torch.as_tensor(albedos[k], dtype=dtype, device=device)
            overlay, shading_img = _render_outputs(ctx, vertices[k], faces, uvs, albedo_tex, lighting[i], camera,
                                                   item.image, options.max_render_side)
        view_results.append(ViewResult(item.image_path, camera, lighting[i].cpu().numpy().astype(np.float32),
                                       item.landmarks[:, :2].astype(np.float32), overlay, shading_img, item.mask,
                                       landmarks_68=coarse.landmarks_68[i].copy(),
                                       expression=coarse.expression[i].astype(np.float32)))
    timings["render_s"] = time.perf_counter() - t0
    timings["total_s"] = time.perf_counter() - started
    results = []
    for k in range(subjects):
        for mesh in levels_out[k].values():
            if not np.isfinite(mesh.vertices).all():
                raise NumericalError("reconstructed mesh contains NaN/inf")
        disp = None
        if displacement_map is not None:
            disp = cv2.resize(displacement_map[k].cpu().numpy(), (options.texture_size, options.texture_size),
                              interpolation=cv2.INTER_LINEAR).astype(np.float32)
        info = {"timings": {key: round(v / subjects, 3) for key, v in timings.items()},
                "landmark_rms_px": [round(float(coarse.reprojection_px[i]), 3) for i in views_of[k]],
                "focal_px": float(observations[views_of[k][0]].K[0, 0]), "warnings": [], "batch_size": subjects}
        albedo_u8 = np.clip(albedos[k] * 255 + 0.5, 0, 255).astype(np.uint8)
        final = levels_out[k][list(levels_out[k])[-1]]
        # identity-only face: the final level's offsets from the (subdivided) coarse fit, on the neutral
        offsets = final.vertices.astype(np.float64) - subdivided_coarse[k]
        neutral = Mesh((neutral_np[k] + offsets).astype(np.float32), final.faces.copy(), final.uvs.copy(),
                       topology=model.name)
        results.append(Reconstruction(levels=levels_out[k], albedo=albedo_u8, views=[view_results[i] for i in views_of[k]],
                                      backend="fit", landmark_vertex_ids=landmark_ids.copy(),
                                      displacement=disp, info=info, neutral=neutral,
                                      model=ModelParameters(model.name, coarse.identity[k].astype(np.float32),
                                                            model.expression_names)))
    return results


# ---------------------------------------------------------------- helpers


def _landmarks_occluded(landmarks: np.ndarray, mask: Optional[np.ndarray]) -> np.ndarray:
    if mask is None:
        return np.zeros(len(landmarks), bool)
    h, w = mask.shape[:2]
    col = np.clip(landmarks[:, 0].astype(int), 0, w - 1)
    row = np.clip(landmarks[:, 1].astype(int), 0, h - 1)
    return mask[row, col] > 127


def _valid(mask: Optional[np.ndarray], shape) -> np.ndarray:
    if mask is None:
        return np.ones(shape, bool)
    return mask <= 127


def _crop_box(vertices: torch.Tensor, K, R, t) -> tuple[float, float, float]:
    cam = vertices.cpu().numpy() @ np.asarray(R).T + np.asarray(t)
    u = K[0, 0] * cam[:, 0] / -cam[:, 2] + K[0, 2]
    v = K[1, 1] * -cam[:, 1] / -cam[:, 2] + K[1, 2]
    side = 1.1 * max(np.ptp(u), np.ptp(v))
    return float((u.max() + u.min()) / 2 - side / 2), float((v.max() + v.min()) / 2 - side / 2), float(side)


def _crop_view(image: torch.Tensor, valid: torch.Tensor, K, R, t, vertices, size: int, subject: int) -> CropView:
    x0, y0, side = _crop_box(vertices, K, R, t)
    s = size / side
    affine = np.array([[s, 0, -x0 * s], [0, s, -y0 * s]], dtype=np.float64)
    img = cv2.warpAffine(image.cpu().numpy(), affine, (size, size), flags=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
    val = cv2.warpAffine(valid.cpu().numpy().astype(np.uint8), affine, (size, size), flags=cv2.INTER_NEAREST,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0) > 0
    device = image.device
    return CropView(torch.as_tensor(img, device=device), torch.as_tensor(val, device=device),
                    crop_intrinsics(K, (x0, y0, side), size), np.asarray(R), np.asarray(t), subject)


def _initial_lighting(ctx, vertices, faces, uvs, views: list[CropView]) -> torch.Tensor:
    """(n_views, 9, 3) SH lighting by least squares on the coarse mesh with a constant albedo,
    normalised so the mean shading over the visible face is 1 per channel (the skin colour goes to
    the albedo)."""
    pixels = build_pixels(ctx, vertices, faces, uvs, views)
    subjects, num_vertices = vertices.shape[:2]
    rotations = torch.as_tensor(np.stack([v.R for v in views]), dtype=vertices.dtype, device=vertices.device)
    normals = pixel_normals(vertices, batched_faces(faces, subjects, num_vertices), pixels, rotations)
    out = []
    for index in range(len(views)):
        chosen = pixels.select(index)
        if len(chosen) < 50:
            raise InputError("too little of the face is visible and unoccluded to estimate the lighting")
        n = normals[chosen]
        light = solve_lighting(n, pixels.target[chosen])
        mean = (sh_basis(n) @ light).mean(0).clamp(min=1e-3)
        out.append(light / mean)
    return torch.stack(out).detach()


def _albedo(ctx, vertices, faces, uvs, views: list[TextureView], size: int) -> tuple[torch.Tensor, np.ndarray]:
    """(albedo tensor, albedo array) of one subject, unseen texels completed."""
    albedo, weight, chart = unwrap(ctx, vertices, faces, uvs, views, size)
    filled = complete(albedo.cpu().numpy(), weight.cpu().numpy(), chart.cpu().numpy())
    if not np.isfinite(filled).all():
        raise NumericalError("albedo contains NaN/inf")
    return torch.as_tensor(filled, dtype=vertices.dtype, device=vertices.device), filled


def _render_outputs(ctx, vertices, faces, uvs, albedo_tex, lighting, camera: Camera, photo: np.ndarray, max_side: int):
    """(overlay, shading) HxWx3 uint8: the textured, lit render and the grey shaded geometry over the photo."""
    h, w = photo.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    rw, rh = max(1, round(w * scale)), max(1, round(h * scale))
    K = camera.K.copy()
    K[:2] *= np.array([[rw / w], [rh / h]], dtype=np.float32)
    with torch.no_grad():
        rast, _ = rasterize_view(ctx, vertices, faces, K, camera.R, camera.t, rw, rh)
        R = torch.as_tensor(camera.R, dtype=vertices.dtype, device=vertices.device)
        normals, _ = interpolate(vertex_normals(vertices, faces.long())[None], rast, faces)
        n = torch.nn.functional.normalize(normals[0], dim=-1, eps=1e-12) @ R.T
        uv, _ = interpolate(uvs[None], rast, faces)
        colour = texture(albedo_tex[None], uv, boundary_mode="clamp")[0] * shade(n, lighting)
        grey = 0.8 * shade(n, frontal_light(vertices.device, vertices.dtype))
        covered = (rast[0, ..., 3] > 0).cpu().numpy()
    if scale != 1.0:
        covered = cv2.resize(covered.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
    results = []
    for layer in (colour, grey):
        img = np.clip(layer.cpu().numpy() * 255 + 0.5, 0, 255).astype(np.uint8)
        if scale != 1.0:
            img = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
        results.append(np.where(covered[..., None], img, photo))
    return results[0], results[1]
