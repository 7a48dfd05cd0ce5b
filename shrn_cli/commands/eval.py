"""``shrn eval``: errors of reconstructed meshes against 3D scans (NoW / REALY style)."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from .. import common

PROTOCOL_CHOICES = ("now", "realy")


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)


def eval_command(
    ctx: typer.Context,
    pred: Path = typer.Argument(..., help="Predicted mesh (.obj/.ply/.stl) or a folder of them."),
    gt: Path = typer.Argument(..., help="Ground-truth scan (mesh or point cloud) or a folder; matched by stem."),
    protocol: str = typer.Option("now", "--protocol", help="now (scan-to-mesh after landmark + ICP alignment) or realy (region-wise)."),
    pred_landmarks: str = typer.Option("auto", "--pred-landmarks", help="Landmark file or folder, or 'auto' (shrn mesh topology, else <stem>.txt/.npy/.json/.pp beside the mesh)."),
    gt_landmarks: str = typer.Option("auto", "--gt-landmarks", help="Landmark file or folder for the scans, or 'auto' (<stem>.txt/.npy/.json/.pp beside the scan)."),
    pred_scale: float = typer.Option(1.0, "--pred-scale", help="Multiply prediction coordinates by this to get mm."),
    gt_scale: float = typer.Option(1.0, "--gt-scale", help="Multiply scan coordinates by this to get mm (1000 for metres)."),
    metrical: bool = typer.Option(False, "--metrical", help="Do not estimate scale (the prediction must be in mm)."),
    no_crop: bool = typer.Option(False, "--no-crop", help="Evaluate the whole scan instead of NoW's face crop."),
    icp_iterations: int = typer.Option(30, "--icp-iterations", min=0, help="Maximum ICP refinement iterations (0: landmarks only)."),
    heatmap_max: float = typer.Option(4.0, "--heatmap-max", help="Error (mm) at the top of the heatmap colour scale."),
    out: Optional[Path] = common.OutOption,
    device: str = common.DeviceOption,
    config: Optional[Path] = common.ConfigOption,
    json_out: bool = common.JsonOption,
    overwrite: bool = common.OverwriteOption,
    quiet: bool = common.QuietOption,
    verbose: bool = common.VerboseOption,
) -> None:
    """Compare predicted meshes with ground-truth scans; write <stem>.metrics.json, <stem>.errors.npy and
    error heatmaps (<stem>.error_heatmap.ply/.png); for folders also metrics.csv and cumulative_error.png.
    Runs on the CPU (--device is accepted for uniformity)."""
    opts, run_opts = common.begin(ctx, "eval", locals())

    from shrn_core.errors import InputError, ShrnError
    from shrn_core.evaluate import evaluate
    from shrn_core.evaluate.pairing import match_folders
    from shrn_core.evaluate.report import item_paths, metrics_payload, write_item_outputs
    from shrn_core.formats.metrics import read_errors, read_metrics

    pred_path, gt_path = Path(opts["pred"]), Path(opts["gt"])
    try:
        if opts["protocol"] not in PROTOCOL_CHOICES:
            raise InputError(f"unknown protocol {opts['protocol']!r}; choose one of: {', '.join(PROTOCOL_CHOICES)}")
        for name in ("pred_scale", "gt_scale", "heatmap_max"):
            if not opts[name] > 0:
                raise InputError(f"--{name.replace('_', '-')} must be a positive number, got {opts[name]}")
        if pred_path.is_dir() != gt_path.is_dir() and pred_path.exists() and gt_path.exists():
            raise InputError("PRED and GT must both be files or both be folders")
        folder_mode = pred_path.is_dir()
        if folder_mode:
            pairs, orphans = match_folders(pred_path, gt_path)
        else:
            pairs, orphans = {pred_path: gt_path}, []
    except ShrnError as err:
        common.fail(err)

    # Per-item results for the folder summary: stem -> (metrics payload, errors, pred path, scan path).
    collected: dict[str, tuple] = {}
    failures: dict[Path, str] = {}  # input -> error message

    def work(path: Path) -> common.ItemResult:
        try:
            return evaluate_one(path)
        except ShrnError as err:
            failures[path] = str(err)
            raise

    def evaluate_one(path: Path) -> common.ItemResult:
        if path in orphans:
            raise InputError("ground-truth scan has no prediction with the same stem in the prediction folder", path)
        scan = pairs[path]
        if scan is None:
            raise InputError("no ground-truth scan with the same stem in the GT folder", path)
        stem = path.stem
        out_dir = run_opts.out_dir_for(path)
        paths = item_paths(out_dir, stem)
        if common.outputs_exist(paths.values(), opts["overwrite"]):
            payload = read_metrics(paths["metrics"])
            if payload["protocol"] == opts["protocol"]:  # else: recompute with the protocol asked for
                collected[stem] = (payload, read_errors(paths["errors"]), str(path), str(scan))
                return common.ItemResult(outputs=paths, info=_info(payload), skipped=True)
        result = evaluate(path, scan, protocol=opts["protocol"], pred_landmarks=opts["pred_landmarks"],
                          scan_landmarks=opts["gt_landmarks"], pred_scale=opts["pred_scale"],
                          scan_scale=opts["gt_scale"], metrical=opts["metrical"], crop=not opts["no_crop"],
                          icp_iterations=opts["icp_iterations"])
        write_item_outputs(result, out_dir, stem, path, scan, opts["heatmap_max"])
        payload = metrics_payload(result, path, scan)
        collected[stem] = (payload, result.stats.distances, str(path), str(scan))
        return common.ItemResult(outputs=paths, info=_info(payload))

    inputs = list(pairs) + list(orphans)
    code = common.process_inputs(inputs, work, run_opts, "eval")
    if folder_mode:
        try:
            _folder_summary(inputs, pairs, failures, collected, Path(opts["out"] or pred_path), opts, run_opts)
        except ShrnError as err:
            common.fail(err)
    raise typer.Exit(code)


def _info(payload: dict) -> dict:
    keys = ("protocol", "median_mm", "mean_mm", "std_mm", "points", "regions", "region_mean_error_mm")
    return {key: payload[key] for key in keys if key in payload}


def _folder_summary(inputs, pairs, failures, collected, out_dir: Path, opts, run_opts) -> None:
    import numpy as np
    from rich.table import Table

    from shrn_core.evaluate.report import aggregate_row, csv_row, cumulative_plot_png
    from shrn_core.formats.core import write_bytes
    from shrn_core.formats.metrics import write_metrics_csv

    rows = []
    for path in inputs:
        stem = path.stem
        if stem in collected:
            payload, _, pred, gt = collected[stem]
            rows.append(csv_row(stem, payload, pred, gt))
        else:
            orphan = path not in pairs
            pred, gt = ("", str(path)) if orphan else (str(path), str(pairs.get(path) or ""))
            rows.append(csv_row(stem, None, pred, gt, failures.get(path, "failed")))
    aggregate = aggregate_row([collected[s][1] for s in collected], opts["protocol"])
    rows.append(aggregate)
    csv_path = write_metrics_csv(out_dir / "metrics.csv", rows)
    curves = {stem: collected[stem][1] for stem in collected}
    if len(collected) > 1:
        curves = {"all": np.concatenate(list(curves.values())), **curves}
    plot_path = write_bytes(out_dir / "cumulative_error.png", cumulative_plot_png(curves)) if collected else None

    if not run_opts.quiet:
        table = Table(title=f"shrn eval ({opts['protocol']}): {len(collected)} of {len(inputs)} evaluated",
                      title_justify="left")
        for column in ("stem", "median mm", "mean mm", "std mm", "points", "status"):
            table.add_column(column, justify="left" if column in ("stem", "status") else "right")
        for row in rows:
            ok = row.get("status") == "ok"
            fmt = (lambda v: f"{v:.3f}" if isinstance(v, float) else "") if ok else (lambda v: "")
            table.add_row(row["stem"], fmt(row.get("median_mm")), fmt(row.get("mean_mm")), fmt(row.get("std_mm")),
                          str(row.get("points") or ""), "ok" if ok else "[red]failed[/]",
                          end_section=row["stem"] == rows[-2]["stem"] if len(rows) > 1 else False)
        common.stderr.print(table)
    written = [csv_path] + ([plot_path] if plot_path else [])
    if run_opts.json:
        sys.stdout.write(json.dumps({"summary": True, "outputs": {"csv": str(csv_path), "plot": str(plot_path) if plot_path else None},
                                     **{k: v for k, v in aggregate.items() if k != "stem"}}) + "\n")
    else:
        for path in written:
            sys.stdout.write(f"{path}\n")
    sys.stdout.flush()
