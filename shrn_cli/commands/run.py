"""``shrn run``: face -> segment -> inpaint -> reconstruct for every photo, resumable and shardable."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer

from shrn_core.segment.api import DEFAULT_BACKEND

from .. import common


def register(app: typer.Typer) -> None:
    app.command("run")(run)


def run(
    ctx: typer.Context,
    inputs: List[Path] = typer.Argument(..., help="Image files, folders or glob patterns."),
    segment_backend: str = typer.Option(DEFAULT_BACKEND, "--segment-backend", help="auto, learned or deeplabv3."),
    segment_weights: Optional[Path] = typer.Option(None, "--segment-weights",
                                                   help="learned: a retrained model folder; deeplabv3: a checkpoint."),
    inpaint_backend: str = typer.Option("face", "--inpaint-backend", help="face, telea, ns or repaint."),
    inpaint_weights: Optional[Path] = typer.Option(None, "--inpaint-weights", help="DDPM model folder for repaint."),
    reconstruct_backend: str = typer.Option("fit", "--reconstruct-backend", help="fit or hrn."),
    assets: Optional[Path] = typer.Option(None, "--assets", help="HRN asset folder (reconstruct backend hrn)."),
    levels: str = typer.Option("fine", "--levels", help="Stop reconstruction after coarse, mid or fine."),
    no_inpaint: bool = typer.Option(False, "--no-inpaint", help="Reconstruct from the photo with the mask, skip inpainting."),
    mask: Optional[Path] = typer.Option(None, "--mask", help="Use this mask instead of running segment (one input)."),
    from_stage: Optional[str] = typer.Option(None, "--from-stage", help="Recompute from this stage on: face, segment, inpaint, reconstruct."),
    shard: Optional[str] = typer.Option(None, "--shard", help="I/N: process a deterministic 1/N of the inputs (cluster arrays)."),
    batch_size: int = typer.Option(1, "--batch-size", help="Images per forward pass on CUDA where a stage supports it."),
    face_index: Optional[int] = typer.Option(None, "--face", help="Which face to use (0 = largest)."),
    option: List[str] = typer.Option([], "--option", "-O", help="STAGE.KEY=VALUE backend option, e.g. reconstruct.render_size=192 (repeatable)."),
    summary: bool = typer.Option(True, "--summary/--no-summary", help="Write <stem>.summary.png per photo (on by default)."),

    max_pixels: Optional[int] = common.MaxPixelsOption,
    out: Optional[Path] = common.OutOption,
    device: str = common.DeviceOption,
    config: Optional[Path] = common.ConfigOption,
    json_out: bool = common.JsonOption,
    overwrite: bool = common.OverwriteOption,
    quiet: bool = common.QuietOption,
    verbose: bool = common.VerboseOption,
) -> None:
    """Run every stage; one output folder per photo (all intermediates + manifest.json)."""
    opts, _ = common.begin(ctx, "run", locals())

    from shrn_core.errors import ShrnError
    from shrn_core.pipeline import PipelineOptions, parse_shard, run as run_pipeline
    from shrn_core.pipeline.api import refresh_gallery
    from shrn_core.pipeline.plan import check_unique_stems, select_shard

    try:
        paths = common.expand_inputs(opts["inputs"])
        shard_spec = parse_shard(opts["shard"])
        selected = select_shard(paths, shard_spec)
        check_unique_stems(selected)
        options = _pipeline_options(opts, PipelineOptions)
    except ShrnError as err:
        common.fail(err)
    if not selected:
        common.stderr.print(f"shard {opts['shard']} holds none of the {len(paths)} inputs; nothing to do")
        raise typer.Exit(0)

    progress = common.make_progress("run", disable=opts["quiet"])
    outcomes = []
    with progress:
        task = progress.add_task("", total=len(selected))

        def on_stage(path: Path, stage: str) -> None:
            progress.update(task, description=f"{path.name}: {stage}")

        def on_item(path: Path, report) -> None:
            outcomes.append(report)
            _emit(report, opts["json_out"])
            if not report.ok:
                common.stderr.print(f"[bold red]error:[/] {report.error}", highlight=False, soft_wrap=True)
            progress.advance(task)

        out_root = opts["out"]
        try:
            if out_root is None:  # default: next to each input; one gallery per folder, written once
                options.gallery = False
                for path in selected:
                    run_pipeline([path], Path(path).parent, options, on_item=on_item, on_stage=on_stage)
            else:
                run_pipeline(selected, out_root, options, on_item=on_item, on_stage=on_stage)
        except ShrnError as err:
            common.fail(err)
    if out_root is None:
        galleries = [refresh_gallery(folder) for folder in dict.fromkeys(Path(p).parent for p in selected)]
    else:
        galleries = [Path(out_root) / "index.html"]
    _note_galleries([g for g in galleries if g is not None and g.is_file()], opts["quiet"])
    _summary(outcomes, opts["quiet"])
    failed = [r for r in outcomes if not r.ok]
    if failed:
        raise typer.Exit(failed[0].exit_code if len(outcomes) == 1 else 1)


def _pipeline_options(opts: dict, options_cls):
    from shrn_core.pipeline.options import parse_stage_options

    extra = parse_stage_options(opts["option"] or [])
    segment_options = {**extra["segment"], **({"weights": opts["segment_weights"]} if opts["segment_weights"] else {})}
    inpaint_options = {**extra["inpaint"], **({"weights": opts["inpaint_weights"]} if opts["inpaint_weights"] else {})}
    reconstruct_options = {**extra["reconstruct"], "levels": opts["levels"]}
    if opts["assets"]:
        reconstruct_options["assets"] = opts["assets"]
    return options_cls(
        segment_backend=opts["segment_backend"], inpaint_backend=opts["inpaint_backend"],
        reconstruct_backend=opts["reconstruct_backend"], segment_options=segment_options,
        inpaint_options=inpaint_options, reconstruct_options=reconstruct_options, device=opts["device"],
        face_index=opts["face_index"], mask=opts["mask"], from_stage=opts["from_stage"], overwrite=opts["overwrite"],
        skip_inpaint=opts["no_inpaint"], batch_size=opts["batch_size"], summary=opts["summary"])


def _emit(report, as_json: bool) -> None:
    if as_json:
        record = {"input": str(report.input), "ok": report.ok, "resumed": report.resumed, "out_dir": str(report.out_dir),
                  "seconds": report.seconds(), "outputs": report.outputs, "warnings": report.warnings}
        if not report.ok:
            record.update(error=report.error, exit_code=report.exit_code)
        sys.stdout.write(json.dumps(record) + "\n")
    elif report.ok:
        sys.stdout.write(f"{report.out_dir}\n")
    sys.stdout.flush()


def _note_galleries(paths: list[Path], quiet: bool) -> None:
    """On stderr: stdout keeps one line (or JSON object) per input."""
    if not quiet:
        for path in paths:
            common.stderr.print(f"gallery: {path}", highlight=False, soft_wrap=True)


def _summary(outcomes, quiet: bool) -> None:
    from rich.table import Table

    if quiet or not outcomes:
        return
    stages = ("face", "segment", "inpaint", "reconstruct")
    table = Table(title=f"shrn run: {sum(r.ok for r in outcomes)} of {len(outcomes)} inputs ok", title_justify="left")
    table.add_column("input")
    for stage in stages:
        table.add_column(f"{stage} s", justify="right")
    table.add_column("status")
    for report in outcomes:
        by_stage = {s.name: s for s in report.stages}
        cells = []
        for stage in stages:
            record = by_stage.get(stage)
            cells.append("-" if record is None else f"{record.seconds:.2f}" if record.status == "computed" else record.status)
        status = "resumed" if report.resumed else "ok" if report.ok else f"[red]{report.error}[/]"
        table.add_row(report.input.name, *cells, status)
    common.stderr.print(table)
