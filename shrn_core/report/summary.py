"""``<stem>.summary.png``: one picture per photo showing what every stage did.

Top row: the photo, the occlusion mask over it, the inpainted photo, the shaded mesh over the photo.
Bottom row: the untextured mesh from the front, at 3/4 and in profile, then the neutral-expression
mesh when the backend made one, else the albedo texture. A header names the photo, its status,
the backends and per-stage times; warnings and errors follow below the panels. Any missing piece
(a failed stage, ``--no-inpaint``) becomes a labelled placeholder, so failed photos get a sheet too.

``SheetInputs`` holds the pieces; ``load_inputs`` fills them from an output folder (files alone
suffice), taking what a caller already has in memory; ``render_sheet`` draws; ``write_summary``
writes the PNG atomically.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..errors import FormatError, InputError, ShrnError
from ..formats.core import output_path
from . import draw
from .views import ViewCamera, composite, crop_camera, orbit_cameras, render_clay

log = logging.getLogger("shrn.report")

WIDTH = 1600
COLUMNS = 4
GUTTER = 8
PANEL = (WIDTH - GUTTER * (COLUMNS + 1)) // COLUMNS
HEADER = 74
BACKGROUND = (250, 250, 250)
ORBIT_YAWS = {"front": 0.0, "3/4": -40.0, "profile": -90.0}
MAX_NOTES = 4  # warning/error lines under the panels


@dataclass
class SheetInputs:
    """Everything a sheet can show; every field may be missing. Arrays are HxW(x3) uint8."""

    stem: str
    photo: Optional[np.ndarray] = None
    mask: Optional[np.ndarray] = None  # 255 = occluded
    face_region: Optional[np.ndarray] = None  # 255 = the face the mask refers to
    inpainted: Optional[np.ndarray] = None
    mesh: Optional[tuple[np.ndarray, np.ndarray]] = None  # (vertices (V, 3) mm, faces (F, 3)), head frame
    neutral: Optional[tuple[np.ndarray, np.ndarray]] = None
    camera: Optional[tuple[np.ndarray, np.ndarray, np.ndarray]] = None  # (K, R, t) of the photo
    fit_render: Optional[np.ndarray] = None  # the backend's shaded mesh over the photo (photo size)
    albedo: Optional[np.ndarray] = None  # UV texture as stored in <stem>.albedo.png (top row = v 1)
    landmarks: Optional[np.ndarray] = None  # (N, 2) face landmarks, pixels: frames the crop
    manifest: dict[str, Any] = field(default_factory=dict)  # manifest.json fields (caption)


def summary_path(out_dir: str | Path, stem: str) -> Path:
    return output_path(out_dir, stem, "summary", "png")


def write_summary(path: str | Path, inputs: SheetInputs) -> Path:
    import cv2

    from ..formats.core import write_bytes

    # zlib level 1: faster and smaller (about 0.7 MB) than OpenCV's default for these sheets
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(render_sheet(inputs), cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise FormatError("could not encode the summary sheet as PNG", path)
    return write_bytes(path, encoded.tobytes())


def summary_for_folder(folder: str | Path, stem: Optional[str] = None, out: Optional[str | Path] = None,
                       photo_path: Optional[str | Path] = None) -> Path:
    """Write ``<stem>.summary.png`` for an existing output folder (``shrn run`` or ``shrn
    reconstruct`` outputs); returns its path. The photo is ``photo_path``, else manifest.json's
    ``input``."""
    inputs = load_inputs(folder, stem, photo_path=photo_path)
    return write_summary(out or summary_path(folder, inputs.stem), inputs)


def write_reconstruction_summary(recon, out_dir: str | Path, stem: str, photo: np.ndarray, *,
                                 mask_path: Optional[str | Path] = None, image_path: str = "",
                                 seconds: Optional[float] = None) -> Path:
    """``<out_dir>/<stem>.summary.png`` for a reconstruction in memory (``shrn reconstruct
    --summary``): the mask used (``mask_path``, else ``<stem>.mask.png`` in ``out_dir``), and the
    inpainted photo when ``out_dir`` holds one. A multi-view reconstruction shows its first view."""
    inputs = load_inputs(out_dir, stem, photo=photo, reconstruction=recon,
                         manifest=reconstruction_caption(recon, image_path, seconds))
    if mask_path is not None:
        inputs.mask = _quietly(_read_gray, Path(mask_path))
    return write_summary(summary_path(out_dir, stem), inputs)


def reconstruction_caption(recon, image_path: str = "", seconds: Optional[float] = None) -> dict:
    """Manifest-like caption fields for a reconstruction made outside ``shrn run``."""
    info = {"timings": dict(recon.info.get("timings") or {})}
    total = seconds if seconds is not None else info["timings"].get("total_s")  # None: not known
    return {"input": image_path, "ok": True, "backends": {"reconstruct": recon.backend},
            "stages": [{"name": "reconstruct", "status": "computed", "seconds": total, "backend": recon.backend,
                        "info": info}],
            "warnings": list(recon.info.get("warnings") or [])}


# ---------------------------------------------------------------- loading


def load_inputs(folder: str | Path, stem: Optional[str] = None, *, photo: Optional[np.ndarray] = None,
                reconstruction=None, manifest: Optional[dict] = None, photo_path: Optional[str | Path] = None,
                mask: Optional[np.ndarray] = None, inpainted: Optional[np.ndarray] = None) -> SheetInputs:
    """The sheet's pieces for ``<folder>/<stem>.*``: arrays and a ``Reconstruction`` already in
    memory are used as they are, the rest is read from the folder when present. A file that is
    there but unreadable is logged and shown as missing (a summary never fails a run)."""
    folder = Path(folder)
    if manifest is None:
        manifest = _read_json_quietly(folder / "manifest.json")
    stem = stem or _stem_of(folder, manifest)
    inputs = SheetInputs(stem=stem, manifest=manifest)
    files = {kind: output_path(folder, stem, kind, ext) for kind, ext in
             (("mask", "png"), ("face_region", "png"), ("inpainted", "png"), ("shading", "png"), ("albedo", "png"),
              ("face", "json"), ("params", "npz"), ("", "obj"), ("neutral", "obj"))}

    inputs.mask = mask if mask is not None else _quietly(_read_gray, files["mask"])
    inputs.face_region = _quietly(_read_gray, files["face_region"])
    inputs.inpainted = inpainted if inpainted is not None else _quietly(_read_rgb, files["inpainted"])
    if reconstruction is not None:
        _take_reconstruction(inputs, reconstruction)
    else:
        inputs.fit_render = _quietly(_read_rgb, files["shading"])
        inputs.albedo = _quietly(_read_rgb, files["albedo"])
        inputs.mesh = _quietly(_read_mesh, files[""])
        inputs.neutral = _quietly(_read_mesh, files["neutral"])
        params = _quietly(_read_params, files["params"])
        if params is not None:
            inputs.camera = (params["K"][0], params["R"][0], params["t"][0])
            inputs.landmarks = params["landmarks_2d"][0]
            if not manifest:  # a `shrn reconstruct` folder: name the backend and the photo at least
                inputs.manifest = {"backends": {"reconstruct": str(params["backend"])},
                                   "input": str(params["image_paths"][0])}
    if photo is None:
        photo = _quietly(_read_photo, [photo_path, inputs.manifest.get("input")])
    inputs.photo = photo
    if inputs.landmarks is None:
        inputs.landmarks = _quietly(_read_landmarks, files["face"])
    return inputs


def _take_reconstruction(inputs: SheetInputs, recon) -> None:
    final = recon.final
    inputs.mesh = (final.vertices, final.faces)
    neutral = getattr(recon, "neutral", None)
    if neutral is not None:
        inputs.neutral = (neutral.vertices, neutral.faces)
    view = recon.views[0]
    inputs.camera = (view.camera.K, view.camera.R, view.camera.t)
    inputs.fit_render = view.shading
    inputs.landmarks = view.landmarks_2d
    inputs.albedo = np.ascontiguousarray(recon.albedo[::-1])  # in memory row 0 is v = 0


def _stem_of(folder: Path, manifest: dict) -> str:
    from ..formats.core import image_stem

    if manifest.get("input"):
        return image_stem(manifest["input"])
    meshes = sorted(p for p in folder.glob("*.obj") if p.name.count(".") == 1)
    if len(meshes) == 1:
        return meshes[0].stem
    raise InputError("cannot tell which photo this folder holds (no manifest.json and not exactly one <stem>.obj)",
                     folder)


def _quietly(reader, *args):
    try:
        return reader(*args)
    except ShrnError as err:
        if not isinstance(err, InputError) or "not found" not in str(err):
            log.warning("summary: %s", err)
        return None


def _read_json_quietly(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        log.warning("summary: %s is not readable JSON; caption left without it", path)
        return {}
    return document if isinstance(document, dict) else {}


def _read_photo(candidates) -> Optional[np.ndarray]:
    from ..formats.image import read_image

    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return read_image(candidate)
    return None


def _read_rgb(path: Path):
    from ..formats.image import read_image

    return read_image(path) if path.is_file() else None


def _read_gray(path: Path):
    from ..formats.image import read_gray

    return read_gray(path) if path.is_file() else None


def _read_mesh(path: Path):
    from ..formats.mesh import read_obj

    if not path.is_file():
        return None
    vertices, faces, _ = read_obj(path)
    if not len(faces):
        raise FormatError("mesh has no faces", path)
    return vertices, faces


def _read_params(path: Path):
    from ..formats.mesh import read_params

    return read_params(path) if path.is_file() else None


def _read_landmarks(path: Path):
    from ..formats.face import read_face_json

    if not path.is_file():
        return None
    return read_face_json(path).face.landmarks[:, :2]


# ---------------------------------------------------------------- drawing


def render_sheet(inputs: SheetInputs) -> np.ndarray:
    """The summary sheet as an HxWx3 uint8 RGB array, ``WIDTH`` pixels wide."""
    box = face_box(inputs)
    top = [_photo_panel(inputs, box), _mask_panel(inputs, box), _inpainted_panel(inputs, box)]
    fit_panel, views = _mesh_panels(inputs, box)
    top.append(fit_panel)
    notes = _notes(inputs.manifest)
    footer = 12 + 26 * len(notes) if notes else 0
    height = HEADER + 2 * PANEL + 3 * GUTTER + footer
    sheet = np.empty((height, WIDTH, 3), np.uint8)
    sheet[:] = BACKGROUND
    sheet[:HEADER] = _header(inputs)
    for row, panels in enumerate((top, views)):
        y = HEADER + GUTTER + row * (PANEL + GUTTER)
        for col, panel in enumerate(panels):
            x = GUTTER + col * (PANEL + GUTTER)
            sheet[y:y + PANEL, x:x + PANEL] = panel
    if notes:
        y0 = HEADER + 2 * PANEL + 3 * GUTTER
        strip = sheet[y0:].copy()
        for i, (text, colour) in enumerate(notes):
            draw.draw_text(strip, [(text, colour)], (GUTTER + 4, 4 + 26 * i), 18, max_width=WIDTH - 2 * GUTTER - 8)
        sheet[y0:] = strip
    return sheet


def face_box(inputs: SheetInputs) -> Optional[draw.Box]:
    """The square of the photo every photo panel shows: around the face landmarks, else the mesh's
    projection (a mesh may cover the whole head), else the face region, else the whole photo (None)."""
    if inputs.landmarks is not None and len(inputs.landmarks):
        points = np.asarray(inputs.landmarks, np.float64)
        return draw.square_box(*points.min(0), *points.max(0), 1.5)
    if inputs.mesh is not None and inputs.camera is not None:
        K, R, t = (np.asarray(a, np.float64) for a in inputs.camera)
        cam = np.asarray(inputs.mesh[0], np.float64) @ R.T + t
        in_front = cam[:, 2] < -1e-6
        if in_front.any():
            cam = cam[in_front]
            u = K[0, 0] * cam[:, 0] / -cam[:, 2] + K[0, 2]
            v = K[1, 1] * -cam[:, 1] / -cam[:, 2] + K[1, 2]
            return draw.square_box(u.min(), v.min(), u.max(), v.max(), 1.25)
    if inputs.face_region is not None and (inputs.face_region > 127).any():
        rows, cols = np.nonzero(inputs.face_region > 127)
        return draw.square_box(cols.min(), rows.min(), cols.max() + 1, rows.max() + 1, 1.3)
    return None


def _show(image: np.ndarray, box: Optional[draw.Box]) -> np.ndarray:
    if box is None:
        return draw.letterbox(image, PANEL, PANEL)
    return draw.crop(image, box, PANEL)


def _photo_panel(inputs: SheetInputs, box) -> np.ndarray:
    if inputs.photo is None:
        return draw.placeholder(PANEL, "photo not found")
    h, w = inputs.photo.shape[:2]
    return draw.label(_show(inputs.photo, box), f"photo ({w}x{h})")


def _mask_panel(inputs: SheetInputs, box) -> np.ndarray:
    base = inputs.photo if inputs.photo is not None else inputs.inpainted
    if inputs.mask is None or base is None or inputs.mask.shape[:2] != base.shape[:2]:
        return draw.placeholder(PANEL, "no occlusion mask")
    panel = draw.tint(_show(base, box), _show_gray(inputs.mask, box))
    text = "occlusion mask"
    if inputs.face_region is not None and inputs.face_region.shape == inputs.mask.shape:
        panel = draw.outline(panel, _show_gray(inputs.face_region, box))
        region = inputs.face_region > 127
        if region.any():
            text += f": {100 * float((inputs.mask[region] > 127).mean()):.1f} % of the face"
    return draw.label(panel, text)


def _show_gray(image: np.ndarray, box) -> np.ndarray:
    if box is None:
        return draw.letterbox(np.repeat(image[..., None], 3, axis=2), PANEL, PANEL, fill=(0, 0, 0))[..., 0]
    return draw.crop(image, box, PANEL)


def _inpainted_panel(inputs: SheetInputs, box) -> np.ndarray:
    if inputs.inpainted is None:
        skipped = (inputs.manifest.get("options") or {}).get("skip_inpaint")
        return draw.placeholder(PANEL, "inpainting skipped (--no-inpaint)" if skipped else "not inpainted")
    backend = (inputs.manifest.get("backends") or {}).get("inpaint")
    return draw.label(_show(inputs.inpainted, box), f"inpainted ({backend})" if backend else "inpainted")


def _mesh_panels(inputs: SheetInputs, box) -> tuple[np.ndarray, list[np.ndarray]]:
    """The mesh-over-photo panel and the bottom row. The orbit views, the photo's view (when the
    backend left no render of its own) and the neutral mesh (when it shares the mesh's triangles)
    are rendered as one batch."""
    if inputs.mesh is None:
        empty = [draw.placeholder(PANEL, "no mesh")] * 3
        return draw.placeholder(PANEL, "no mesh"), empty + [_last_panel(inputs, None)]
    vertices, faces = inputs.mesh
    cameras = orbit_cameras(vertices, list(ORBIT_YAWS.values()), PANEL)
    if inputs.fit_render is not None and inputs.photo is not None and inputs.fit_render.shape != inputs.photo.shape:
        inputs.fit_render = None  # not a render of this photo
    batch = [(vertices, camera) for camera in cameras]
    if inputs.fit_render is None and inputs.camera is not None and inputs.photo is not None and box is not None:
        batch.append((vertices, crop_camera(*inputs.camera, box, PANEL)))
    neutral = inputs.neutral
    neutral_in_batch = neutral is not None and np.array_equal(np.asarray(neutral[1]), np.asarray(faces))
    if neutral_in_batch:
        batch.append((neutral[0], cameras[0]))
    renders = render_clay([v for v, _ in batch], faces, [c for _, c in batch])
    views = [draw.label(composite(colour, covered, draw.PANEL_BG), name)
             for name, (colour, covered) in zip(ORBIT_YAWS, renders)]
    if neutral_in_batch:
        colour, covered = renders.pop()
        views.append(draw.label(composite(colour, covered, draw.PANEL_BG), "neutral expression"))
    else:
        views.append(_last_panel(inputs, cameras[0]))
    if len(renders) > len(cameras):  # the photo's view
        colour, covered = renders[len(cameras)]
        fit = composite(colour, covered, _show(inputs.photo, box))
    elif inputs.fit_render is not None:
        fit = _show(inputs.fit_render, box)
    else:
        fit = draw.placeholder(PANEL, "no camera for the photo")
    backend = (inputs.manifest.get("backends") or {}).get("reconstruct")
    return draw.label(fit, f"mesh over photo ({backend})" if backend else "mesh over photo"), views


def _last_panel(inputs: SheetInputs, front: Optional[ViewCamera]) -> np.ndarray:
    """The neutral mesh (when it has triangles of its own), else the albedo texture."""
    if inputs.neutral is not None:
        vertices, faces = inputs.neutral
        camera = front or orbit_cameras(vertices, [0.0], PANEL)[0]
        [(colour, covered)] = render_clay(vertices, faces, [camera])
        return draw.label(composite(colour, covered, draw.PANEL_BG), "neutral expression")
    if inputs.albedo is not None:
        return draw.label(draw.letterbox(inputs.albedo, PANEL, PANEL), "albedo texture (UV)")
    return draw.placeholder(PANEL, "no texture")


def _header(inputs: SheetInputs) -> np.ndarray:
    strip = np.empty((HEADER, WIDTH, 3), np.uint8)
    strip[:] = BACKGROUND
    manifest = inputs.manifest
    ok = manifest.get("ok")
    status = [("  ok", draw.OK)] if ok else [("  failed", draw.ERROR)] if ok is False else []
    source = manifest.get("input") or ""
    draw.draw_text(strip, [(inputs.stem, draw.INK)] + status, (GUTTER + 4, 10), 28, bold=True,
                   max_width=WIDTH // 2)
    if source:
        right = f"{source}  ·  shrn {manifest['shrn_version']}" if manifest.get("shrn_version") else source
        width = min(draw.text_width(right, 16), WIDTH // 2 - 40)
        draw.draw_text(strip, [(right, draw.MUTED)], (WIDTH - GUTTER - 4 - width, 16), 16, max_width=width)
    draw.draw_text(strip, stage_runs(manifest), (GUTTER + 4, 46), 18, max_width=WIDTH - 2 * GUTTER - 8)
    return strip


def stage_runs(manifest: dict) -> list[tuple[str, tuple]]:
    """``face 0.07 s · segment auto 0.08 s · ...`` as (text, colour) runs."""
    runs: list[tuple[str, tuple]] = []
    for stage in manifest.get("stages") or []:
        if not isinstance(stage, dict):
            continue
        if runs:
            runs.append(("  ·  ", draw.MUTED))
        name = str(stage.get("name", "?"))
        backend = stage.get("backend")
        runs.append((f"{name} {backend}" if backend else name, draw.INK))
        runs.append((f" {stage_time(stage)}", draw.MUTED))
    return runs


def stage_time(stage: dict) -> str:
    """``0.08 s``, ``reused``, ``skipped`` or ``user mask``; the fit's levels when it reports them."""
    status = stage.get("status")
    if status != "computed":
        return {"provided": "user mask"}.get(status, str(status))
    text = f"{float(stage['seconds']):.2f} s" if stage.get("seconds") is not None else ""
    timings = (stage.get("info") or {}).get("timings") or {}
    levels = [f"{level} {timings[f'{level}_s']:.1f}" for level in ("coarse", "mid", "fine") if f"{level}_s" in timings]
    return f"{text} ({', '.join(levels)} s)".strip() if levels else text


def _notes(manifest: dict) -> list[tuple[str, tuple]]:
    notes = []
    if manifest.get("error"):
        notes.append((f"error: {manifest['error']}", draw.ERROR))
    notes += [(f"warning: {w}", draw.WARN) for w in manifest.get("warnings") or []]
    if len(notes) > MAX_NOTES:
        notes = notes[:MAX_NOTES - 1] + [(f"... and {len(notes) - MAX_NOTES + 1} more in manifest.json", draw.MUTED)]
    return notes
