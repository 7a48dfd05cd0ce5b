"""``shrn segment``: occlusion masks (``<stem>.mask.png``, ``<stem>.face_region.png``) for face photos."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from shrn_core.segment.api import DEFAULT_BACKEND

from .. import common


def register(app: typer.Typer) -> None:
    app.command("segment")(segment)


def segment(
    ctx: typer.Context,
    inputs: List[Path] = typer.Argument(..., help="Image files, folders or glob patterns."),
    backend: str = typer.Option(DEFAULT_BACKEND, "--backend",
                                help="auto (training-free), learned (shrn's own trained network) or deeplabv3."),
    weights: Optional[Path] = typer.Option(None, "--weights",
                                           help="learned: a retrained model folder (default: the shipped one); "
                                                "deeplabv3: a DeepLabV3 checkpoint."),
    face_index: Optional[int] = typer.Option(None, "--face", help="Which face to segment (0 = largest)."),
    prob: bool = typer.Option(False, "--prob", help="Also write <stem>.mask_prob.png (soft occlusion map)."),
    occluder_class: List[int] = typer.Option([1], "--occluder-class",
                                             help="deeplabv3: class index(es) that mean 'occluded' (repeatable)."),
    overhang: float = typer.Option(0.2, "--overhang", min=0.0, max=1.0,
                                   help="auto: follow occluders this far (x face size) past the face outline."),
    max_pixels: Optional[int] = common.MaxPixelsOption,
    out: Optional[Path] = common.OutOption,
    device: str = common.DeviceOption,
    config: Optional[Path] = common.ConfigOption,
    json_out: bool = common.JsonOption,
    overwrite: bool = common.OverwriteOption,
    quiet: bool = common.QuietOption,
    verbose: bool = common.VerboseOption,
) -> None:
    """Mark face pixels covered by hands, masks, glasses, hair...; write <stem>.mask.png and <stem>.face_region.png."""
    opts, run_opts = common.begin(ctx, "segment", locals())

    from shrn_core.errors import ShrnError
    from shrn_core.segment import create_backend, segment_file

    try:
        paths = common.expand_inputs(inputs)
        if opts["backend"] == "deeplabv3":
            segmenter = create_backend("deeplabv3", device=opts["device"], weights=opts["weights"],
                                       occluder_classes=list(opts["occluder_class"]))
        elif opts["backend"] == "learned":
            segmenter = create_backend("learned", device=opts["device"], weights=opts["weights"])
        else:
            if opts["weights"] is not None:
                common.log.warning("--weights is only used by --backend learned and deeplabv3; ignored")
            segmenter = create_backend(opts["backend"], device=opts["device"], overhang=float(opts["overhang"]))
    except ShrnError as err:
        common.fail(err)

    def work(path: Path) -> common.ItemResult:
        done = segment_file(path, run_opts.out_dir_for(path), backend=segmenter, face_index=opts["face_index"],
                            probability=opts["prob"], overwrite=opts["overwrite"])
        return common.ItemResult(outputs=done["outputs"], info=done["info"], skipped=done["skipped"])

    raise typer.Exit(common.process_inputs(paths, work, run_opts, "segment"))
