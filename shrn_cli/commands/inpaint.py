"""``shrn inpaint``: replace the occluded pixels of photos, writing <stem>.inpainted.png."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .. import common

BACKENDS = ("face", "telea", "ns", "repaint")


def register(app: typer.Typer) -> None:
    app.command("inpaint")(inpaint)


def inpaint(
    ctx: typer.Context,
    inputs: List[Path] = typer.Argument(..., help="Image files, folders or glob patterns."),
    mask: Optional[Path] = typer.Option(None, "--mask", "-m", help="Mask file (255 = occluded), or a folder of "
                                        "<stem>.mask.png files. Default: <stem>.mask.png beside each image."),
    backend: str = typer.Option("face", "--backend", "-b", help=f"Filling method: {', '.join(BACKENDS)}."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="repaint: local diffusers UNet2DModel (or DDPMPipeline) folder."),
    steps: int = typer.Option(250, "--steps", help="repaint: diffusion steps."),
    jump_length: int = typer.Option(10, "--jump-length", help="repaint: steps per jump back in time (j)."),
    jump_n_sample: int = typer.Option(10, "--jump-n-sample", help="repaint: resamplings per jump (r)."),
    seed: int = typer.Option(0, "--seed", help="repaint: random seed."),
    radius: float = typer.Option(3.0, "--radius", help="telea/ns: neighbourhood radius in pixels."),
    resize_mask: bool = typer.Option(False, "--resize-mask", help="Scale a mask of another size to the image."),
    face_index: Optional[int] = typer.Option(None, "--face", help="Which face to use (0 = largest)."),
    max_pixels: Optional[int] = common.MaxPixelsOption,
    out: Optional[Path] = common.OutOption,
    device: str = common.DeviceOption,
    config: Optional[Path] = common.ConfigOption,
    json_out: bool = common.JsonOption,
    overwrite: bool = common.OverwriteOption,
    quiet: bool = common.QuietOption,
    verbose: bool = common.VerboseOption,
) -> None:
    """Fill occluded face pixels (mask 255) with a plausible face; pixels outside the mask are kept exactly."""
    opts, run_opts = common.begin(ctx, "inpaint", locals())

    from shrn_core.errors import InputError, ShrnError

    name = str(opts["backend"]).lower()
    if name not in BACKENDS:
        common.fail(InputError(f"unknown inpaint backend {name!r}; choose one of: {', '.join(BACKENDS)}"))
    options = _backend_options(name, opts)
    try:
        paths = common.expand_inputs(inputs)
        from shrn_core.inpaint import create_backend
        from shrn_core.inpaint.run import inpaint_file, inpainted_path

        engine = create_backend(name, **options)  # load a model once for the whole batch
    except ShrnError as err:
        common.fail(err)

    def work(path: Path) -> common.ItemResult:
        out_dir = run_opts.out_dir_for(path)
        target = inpainted_path(path, out_dir)
        if common.outputs_exist([target], opts["overwrite"]):
            return common.ItemResult(outputs={"inpainted": target}, skipped=True)
        result = inpaint_file(path, out_dir, opts["mask"], engine, resize_mask=opts["resize_mask"],
                              face_index=opts["face_index"])
        return common.ItemResult(outputs={"inpainted": result.output}, info=result.summary())

    raise typer.Exit(common.process_inputs(paths, work, run_opts, "inpaint"))


def _backend_options(name: str, opts: dict) -> dict:
    if name in ("telea", "ns"):
        return {"radius": opts["radius"]}
    if name == "repaint":
        return {"weights": opts["weights"], "steps": opts["steps"], "jump_length": opts["jump_length"],
                "jump_n_sample": opts["jump_n_sample"], "seed": opts["seed"], "device": opts["device"],
                "progress": not opts["quiet"]}
    return {}
