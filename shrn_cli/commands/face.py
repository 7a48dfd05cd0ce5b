"""``shrn face``: face analysis alone (detection, 478 landmarks, hands), for debugging."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .. import common


def register(app: typer.Typer) -> None:
    app.command("face")(face)


def face(
    ctx: typer.Context,
    inputs: List[Path] = typer.Argument(..., help="Image files, folders or glob patterns."),
    face_index: Optional[int] = typer.Option(None, "--face", help="Which face to select (0 = largest)."),
    no_hands: bool = typer.Option(False, "--no-hands", help="Skip hand landmark detection."),
    max_pixels: Optional[int] = common.MaxPixelsOption,
    out: Optional[Path] = common.OutOption,
    device: str = common.DeviceOption,
    config: Optional[Path] = common.ConfigOption,
    json_out: bool = common.JsonOption,
    overwrite: bool = common.OverwriteOption,
    quiet: bool = common.QuietOption,
    verbose: bool = common.VerboseOption,
) -> None:
    """Detect faces and landmarks; write <stem>.face.json."""
    opts, run_opts = common.begin(ctx, "face", locals())

    from shrn_core.errors import ShrnError
    from shrn_core.face import analyze_image, face_json_path
    from shrn_core.formats.face import face_to_dict, write_face_json

    try:
        paths = common.expand_inputs(inputs)
    except ShrnError as err:
        common.fail(err)

    def work(path: Path) -> common.ItemResult:
        target = face_json_path(path, run_opts.out_dir_for(path))
        if common.outputs_exist([target], opts["overwrite"]):
            return common.ItemResult(outputs={"face": target}, skipped=True)
        analysis = analyze_image(path, opts["face_index"], hands=not opts["no_hands"])
        write_face_json(target, analysis)
        summary = face_to_dict(analysis)
        return common.ItemResult(outputs={"face": target}, info={
            "faces": len(analysis.faces), "hands": len(analysis.hands), "selected_face": analysis.selected,
            "bbox": summary["faces"][analysis.selected]["bbox"]})

    raise typer.Exit(common.process_inputs(paths, work, run_opts, "face"))
