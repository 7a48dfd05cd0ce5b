"""Files an evaluation writes: metrics JSON, per-point errors, heatmap PLY and PNG, folder summaries.

PNGs are drawn with matplotlib's Agg canvas directly (no global backend state, no display needed).
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from ..formats.core import output_path, write_bytes
from ..formats.metrics import write_errors, write_heatmap_ply, write_metrics
from .result import EvalResult

COLORMAP = "turbo"
DEFAULT_HEATMAP_MAX_MM = 4.0
MAX_RENDER_POINTS = 60000
OUTPUT_KINDS = {"metrics": ("metrics", "json"), "errors": ("errors", "npy"),
                "heatmap_ply": ("error_heatmap", "ply"), "heatmap_png": ("error_heatmap", "png"),
                "error_sheet": ("error_sheet", "png")}
OUTSIDE_GREY = 0.62  # prediction surface outside the evaluated face crop


def item_paths(out_dir: str | Path, stem: str) -> dict[str, Path]:
    return {name: output_path(out_dir, stem, kind, ext) for name, (kind, ext) in OUTPUT_KINDS.items()}


def metrics_payload(result: EvalResult, pred_path: str | Path, scan_path: str | Path) -> dict[str, Any]:
    summary = result.summary()
    payload: dict[str, Any] = {
        "protocol": result.protocol,
        "prediction": str(pred_path),
        "scan": str(scan_path),
        "units": "mm",
        "median_mm": summary["median"], "mean_mm": summary["mean"], "std_mm": summary["std"],
        "rmse_mm": summary["rmse"], "p90_mm": summary["p90"], "max_mm": summary["max"],
        "points": summary["count"],
        "transform": result.transform.to_dict(),
        "details": _jsonable(result.info),
    }
    if result.regions:
        payload["regions"] = summary["regions"]
        payload["region_mean_error_mm"] = summary["region_mean_error"]
    return payload


def write_item_outputs(result: EvalResult, out_dir: str | Path, stem: str, pred_path: str | Path,
                       scan_path: str | Path, heatmap_max: float = DEFAULT_HEATMAP_MAX_MM) -> dict[str, Path]:
    paths = item_paths(out_dir, stem)
    errors = result.stats.distances
    colors = error_colors(errors, heatmap_max)
    write_errors(paths["errors"], errors)
    write_heatmap_ply(paths["heatmap_ply"], result.scan_points, colors, errors, result.scan_faces)
    title = f"{stem} ({result.protocol}): median {result.stats.median:.2f} mm, mean {result.stats.mean:.2f} mm"
    write_bytes(paths["heatmap_png"], render_heatmap_png(result.scan_points, errors, result.view_rotation,
                                                         heatmap_max, title, result.scan_faces))
    from ..formats.image import write_image

    write_image(paths["error_sheet"], render_error_sheet(result, heatmap_max, stem))
    write_metrics(paths["metrics"], metrics_payload(result, pred_path, scan_path))  # last: marks completion
    return paths


def error_colors(errors: np.ndarray, vmax: float) -> np.ndarray:
    from matplotlib import colormaps

    values = np.clip(np.asarray(errors, dtype=np.float64) / max(vmax, 1e-12), 0.0, 1.0)
    return (colormaps[COLORMAP](values)[:, :3] * 255 + 0.5).astype(np.uint8)


def splat(points: np.ndarray, values: np.ndarray, rotation: np.ndarray, size: int = 512) -> np.ndarray:
    """Orthographic front view: (H, W) array of ``values`` (NaN = background), nearest point wins.

    Each point is drawn as a small disc whose radius follows the typical point spacing, so a scan
    reads as a surface rather than dots.
    """
    from scipy.spatial import cKDTree

    points = np.asarray(points, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if len(points) > MAX_RENDER_POINTS:  # plenty for a 512-pixel picture; bounds memory and time
        keep = np.random.default_rng(0).choice(len(points), MAX_RENDER_POINTS, replace=False)
        points, values = points[keep], values[keep]
    local = points @ np.asarray(rotation).T
    lo, hi = local[:, :2].min(axis=0), local[:, :2].max(axis=0)
    extent = max(float((hi - lo).max()), 1e-9)
    px = extent / (size - 1)
    width, height = (np.ceil((hi - lo) / px).astype(int) + 1)
    sample = local[:: max(1, len(local) // 2000)]
    # Spacing where the scan is sparse (95th percentile), so sparse areas still look closed.
    spacing = float(np.percentile(cKDTree(local[:, :2]).query(sample[:, :2], k=2)[0][:, 1], 95)) if len(local) > 1 else px
    radius = int(np.clip(np.ceil(spacing / px), 1, 5))
    col = np.round((local[:, 0] - lo[0]) / px).astype(int)
    row = np.round((hi[1] - local[:, 1]) / px).astype(int)
    offsets = [(dy, dx) for dy in range(-radius + 1, radius) for dx in range(-radius + 1, radius)
               if dy * dy + dx * dx < radius * radius] or [(0, 0)]
    rr = np.concatenate([row + dy for dy, dx in offsets])
    cc = np.concatenate([col + dx for dy, dx in offsets])
    depth = np.tile(local[:, 2], len(offsets))
    vals = np.tile(values, len(offsets))
    ok = (rr >= 0) & (rr < height) & (cc >= 0) & (cc < width)
    rr, cc, depth, vals = rr[ok], cc[ok], depth[ok], vals[ok]
    order = np.argsort(-depth, kind="stable")  # nearest to the viewer (largest z) first
    pixel = rr[order] * width + cc[order]
    _, first = np.unique(pixel, return_index=True)
    image = np.full(height * width, np.nan)
    image[pixel[first]] = vals[order][first]
    return image.reshape(height, width)


def render_heatmap_png(points: np.ndarray, errors: np.ndarray, rotation: np.ndarray, vmax: float,
                       title: str = "", faces: np.ndarray | None = None) -> bytes:
    """Front view coloured by error with a colour bar. Triangles (when the scan has them) are
    painted far-to-near, each with its corners' mean error; a point cloud is splatted."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    local = np.asarray(points, dtype=np.float64) @ np.asarray(rotation).T
    extent = np.ptp(local[:, :2], axis=0) if len(local) else np.ones(2)
    aspect = float(extent[1] / max(extent[0], 1e-9))
    fig = Figure(figsize=(6.4, min(max(6.4 * aspect * 0.9 + 0.6, 3.0), 12.0)), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(111)
    if faces is not None and len(faces):
        faces = np.asarray(faces)
        order = np.argsort(local[faces, 2].mean(axis=1))  # far first, near painted over
        tri = faces[order]
        shown = ax.tripcolor(local[:, 0], local[:, 1], tri, facecolors=np.asarray(errors)[tri].mean(axis=1),
                             cmap=COLORMAP, vmin=0.0, vmax=vmax, edgecolors="none", antialiased=False)
        ax.set_aspect("equal")
    else:
        image = splat(points, errors, rotation)
        shown = ax.imshow(np.ma.masked_invalid(image), cmap=COLORMAP, vmin=0.0, vmax=vmax, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
    bar = fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04, extend="max")
    bar.set_label("scan-to-prediction error (mm)")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


def prediction_errors(result: EvalResult) -> tuple[np.ndarray, np.ndarray]:
    """Per vertex of the aligned prediction: distance (mm) to the evaluated scan surface (or its
    nearest point, for a point cloud), and whether the vertex lies inside the evaluated region
    (NoW's crop ball; everywhere without a crop)."""
    from ..geometry.distance import point_index

    vertices = np.asarray(result.pred_vertices, np.float64)
    distances = point_index(result.scan_points, result.scan_faces).query(vertices).distances
    crop = result.info.get("crop") or {}
    inside = np.ones(len(vertices), bool)
    if crop.get("method") == "now":
        inside = np.linalg.norm(vertices - np.asarray(crop["centre"], np.float64), axis=1) <= float(crop["radius_mm"])
    return distances, inside


def render_error_sheet(result: EvalResult, vmax: float = DEFAULT_HEATMAP_MAX_MM, stem: str = "") -> np.ndarray:
    """``<stem>.error_sheet.png``: the aligned prediction coloured by its distance to the scan, and
    the scan coloured by its distance to the prediction, side by side from the front of the face at
    one scale, with one colour bar and the summary numbers (HxWx3 uint8 RGB)."""
    from ..report import draw
    from ..report.views import composite, orbit_cameras, render_clay, splat_points

    width, gutter, header, footer = 1600, 8, 74, 64
    panel = (width - 3 * gutter) // 2
    rotation = np.asarray(result.view_rotation, np.float64)  # scan frame -> face frame (front = +z)
    scan = np.asarray(result.scan_points, np.float64) @ rotation.T
    pred = np.asarray(result.pred_vertices, np.float64) @ rotation.T
    camera = orbit_cameras(scan, [0.0], panel, fill=0.8)[0]
    pred_error, inside = prediction_errors(result)
    pred_colours = np.where(inside[:, None], error_colors(pred_error, vmax) / 255.0, OUTSIDE_GREY)
    [(pred_rgb, pred_mask)] = render_clay(pred, result.pred_faces, [camera], colours=pred_colours)
    scan_colours = error_colors(result.stats.distances, vmax) / 255.0
    if len(result.scan_faces):
        [(scan_rgb, scan_mask)] = render_clay(scan, result.scan_faces, [camera], colours=scan_colours)
    else:
        scan_rgb, scan_mask = splat_points(scan, scan_colours, camera)
    panels = [draw.label(composite(pred_rgb, pred_mask, draw.PANEL_BG),
                         f"prediction: distance to the scan (median {np.median(pred_error[inside]):.2f} mm)"
                         if inside.any() else "prediction: distance to the scan"),
              draw.label(composite(scan_rgb, scan_mask, draw.PANEL_BG),
                         f"scan: distance to the prediction (median {result.stats.median:.2f} mm)")]
    sheet = np.empty((header + panel + 2 * gutter + footer, width, 3), np.uint8)
    sheet[:] = (250, 250, 250)
    for i, image in enumerate(panels):
        x = gutter + i * (panel + gutter)
        sheet[header + gutter:header + gutter + panel, x:x + panel] = image
    top = sheet[:header].copy()
    stats = result.stats
    draw.draw_text(top, [(stem or "evaluation", draw.INK), (f"  {result.protocol}", draw.MUTED)], (gutter + 4, 10), 28,
                   bold=True)
    numbers = (f"scan points {stats.count}  ·  median {stats.median:.3f} mm  ·  mean {stats.mean:.3f} mm  ·  "
               f"std {stats.std:.3f} mm  ·  scale {result.transform.scale:.4f}")
    draw.draw_text(top, [(numbers, draw.INK)], (gutter + 4, 46), 18, max_width=width - 2 * gutter)
    sheet[:header] = top
    y0 = header + panel + 2 * gutter
    sheet[y0:] = _colour_bar(width, footer, vmax)
    return sheet


def _colour_bar(width: int, height: int, vmax: float) -> np.ndarray:
    from ..report import draw

    strip = np.empty((height, width, 3), np.uint8)
    strip[:] = (250, 250, 250)
    left, bar_width, top, bar_height = 160, 640, 6, 18
    ramp = error_colors(np.linspace(0, vmax, bar_width), vmax)
    strip[top:top + bar_height, left:left + bar_width] = ramp[None]
    draw.draw_text(strip, [("error", draw.MUTED)], (8, top), 16)
    for k in range(5):
        x = left + round(k * (bar_width - 1) / 4)
        strip[top + bar_height:top + bar_height + 5, x] = draw.INK
        text = f"{vmax * k / 4:g}" + (" mm" if k == 4 else "")
        draw.draw_text(strip, [(text, draw.INK)], (x - draw.text_width(text, 15) // 2, top + bar_height + 7), 15)
    grey = left + bar_width + 40
    strip[top:top + bar_height, grey:grey + 24] = int(OUTSIDE_GREY * 255)
    draw.draw_text(strip, [(f"prediction outside the evaluated face crop; colours saturate at {vmax:g} mm",
                            draw.MUTED)], (grey + 32, top + 1), 15, max_width=width - grey - 40)
    return strip


def cumulative_plot_png(curves: dict[str, np.ndarray], title: str = "Cumulative error") -> bytes:
    """Percentage of scan points with error below x, one line per entry (NoW's plot, own code)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.8), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(111)
    x_max = 8.0
    for label, distances in curves.items():
        d = np.sort(np.asarray(distances, dtype=np.float64))
        if d.size == 0:
            continue
        x_max = max(x_max, float(np.percentile(d, 99))) if label == "all" else x_max
        y = np.arange(1, d.size + 1) * 100.0 / d.size
        ax.plot(d, y, label=f"{label} (median {np.median(d):.2f} mm)", linewidth=2.2 if label == "all" else 1.0)
    ax.set_xlim(0, x_max)
    ax.set_ylim(0, 100)
    ax.set_xlabel("Error [mm]")
    ax.set_ylabel("Percentage of scan points [%]")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(curves) <= 12:
        ax.legend(loc="lower right", fontsize=8)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


def csv_row(stem: str, payload: dict[str, Any] | None, pred: str = "", gt: str = "", message: str = "") -> dict:
    row: dict[str, Any] = {"stem": stem, "pred": pred, "gt": gt, "status": "ok" if payload else "failed",
                           "message": message}
    if payload:
        row.update({"protocol": payload["protocol"], "median_mm": payload["median_mm"], "mean_mm": payload["mean_mm"],
                    "std_mm": payload["std_mm"], "rmse_mm": payload.get("rmse_mm"), "p90_mm": payload.get("p90_mm"),
                    "max_mm": payload.get("max_mm"), "points": payload.get("points"),
                    "scale": payload.get("transform", {}).get("scale"),
                    "overlap_fraction": payload.get("details", {}).get("overlap_fraction")})
        for name, region in (payload.get("regions") or {}).items():
            row[f"{name}_mm"] = region.get("error")
    return row


def aggregate_row(distances: list[np.ndarray], protocol: str) -> dict:
    """NoW aggregates by pooling every scan point of every item, then taking median/mean/std."""
    d = np.concatenate(distances) if distances else np.zeros(0)
    if d.size == 0:
        return {"stem": "ALL", "status": "failed", "message": "no item succeeded"}
    return {"stem": "ALL", "status": "ok", "protocol": protocol, "median_mm": float(np.median(d)),
            "mean_mm": float(d.mean()), "std_mm": float(d.std()), "rmse_mm": float(np.sqrt((d**2).mean())),
            "p90_mm": float(np.percentile(d, 90)), "max_mm": float(d.max()), "points": int(d.size)}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
