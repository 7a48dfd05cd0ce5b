"""``shrn reconstruct``: a textured 3D face from each photo (or one face from several photos)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .. import common


def register(app: typer.Typer) -> None:
    app.command("reconstruct")(reconstruct)


def reconstruct(
    ctx: typer.Context,
    inputs: List[Path] = typer.Argument(..., help="Image files, folders or glob patterns."),
    backend: str = typer.Option("fit", "--backend", help="fit (embedded fitting, no weights) or hrn (needs --assets)."),
    levels: str = typer.Option("fine", "--levels", help="Stop after coarse, mid or fine."),
    multi_view: bool = typer.Option(False, "--multi-view", help="All inputs are views of one person: one shared face."),
    mask: Optional[Path] = typer.Option(None, "--mask", help="Occlusion mask (default: <stem>.mask.png beside the input or in --out, if present)."),
    no_mask: bool = typer.Option(False, "--no-mask", help="Ignore any occlusion mask."),
    resize_mask: bool = typer.Option(False, "--resize-mask", help="Scale a mask of another size to the photo."),
    formats: List[str] = typer.Option(["obj"], "--format", help="Mesh formats: obj (always written) and glb."),
    face_index: Optional[int] = typer.Option(None, "--face", help="Which face to reconstruct (0 = largest)."),
    name: Optional[str] = typer.Option(None, "--name", help="Output stem for --multi-view (default: the first input's)."),
    render_size: Optional[int] = typer.Option(None, "--render-size", help="fit: face crop side in pixels (256)."),
    texture_size: Optional[int] = typer.Option(None, "--texture-size", help="fit: albedo texture side (512)."),
    assets: Optional[Path] = typer.Option(None, "--assets", help="Backend assets folder (hrn)."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Backend weights file (hrn)."),
    summary: bool = typer.Option(False, "--summary", help="Also write <stem>.summary.png (photo, mask, mesh views)."),

    max_pixels: Optional[int] = common.MaxPixelsOption,
    out: Optional[Path] = common.OutOption,
    device: str = common.DeviceOption,
    config: Optional[Path] = common.ConfigOption,
    json_out: bool = common.JsonOption,
    overwrite: bool = common.OverwriteOption,
    quiet: bool = common.QuietOption,
    verbose: bool = common.VerboseOption,
) -> None:
    """Reconstruct a textured face mesh; write <stem>.obj/.mtl/.albedo.png, <stem>.params.npz and renders."""
    opts, run_opts = common.begin(ctx, "reconstruct", locals())

    from shrn_core.errors import InputError, ShrnError
    from shrn_core.formats.core import image_stem, output_path
    from shrn_core.formats.mesh import FORMATS, reconstruction_outputs
    from shrn_core.reconstruct.types import LEVELS

    formats_list = [str(f).lower() for f in (opts["formats"] if isinstance(opts["formats"], (list, tuple)) else [opts["formats"]])]
    try:
        paths = common.expand_inputs(inputs)
        if opts["levels"] not in LEVELS:
            raise InputError(f"unknown --levels {opts['levels']!r}; choose one of: {', '.join(LEVELS)}")
        bad = [f for f in formats_list if f not in FORMATS]
        if bad:
            raise InputError(f"unknown --format {', '.join(bad)}; choose from {', '.join(FORMATS)}")
        if opts["mask"] is not None and (len(paths) > 1 and not opts["multi_view"] or opts["no_mask"]):
            raise InputError("--mask names one mask for one input (and cannot be combined with --no-mask)")
        if opts["mask"] is not None and opts["multi_view"]:
            raise InputError("--mask cannot be used with --multi-view; put <stem>.mask.png beside each view")
        if opts["multi_view"] and len(paths) < 2:
            raise InputError("--multi-view needs at least two images")
    except ShrnError as err:
        common.fail(err)
    formats_list = list(dict.fromkeys(["obj", *formats_list]))
    backend_options = {k: opts[k] for k in ("render_size", "texture_size") if opts[k] is not None}
    for key in ("assets", "weights"):
        if opts[key] is not None:
            backend_options[key] = str(opts[key])

    def mask_for(path: Path, out_dir: Path):
        if opts["no_mask"]:
            return None
        if opts["mask"] is not None:
            return Path(opts["mask"])
        for candidate in (output_path(out_dir, image_stem(path), "mask", "png"),
                          output_path(path.parent, image_stem(path), "mask", "png")):
            if candidate.is_file():
                return candidate
        return None

    def analysis_for(path: Path, out_dir: Path):
        from shrn_core.face.reuse import load_or_analyze
        from shrn_core.formats.image import read_image

        image = read_image(path)
        analysis, _ = load_or_analyze(path, out_dir, opts["face_index"], width=image.shape[1], height=image.shape[0])
        return image, analysis

    def expected(out_dir: Path, stem: str, view_stems=None):
        upto = LEVELS[: LEVELS.index(opts["levels"]) + 1]
        return reconstruction_outputs(out_dir, stem, upto, formats_list, view_stems,
                                      neutral=opts["backend"] == "fit").values()

    def finish(recon, out_dir: Path, stem: str, view_stems=None, photo=None, mask=None, source=None) -> common.ItemResult:
        from shrn_core.reconstruct import write_reconstruction

        written = write_reconstruction(recon, out_dir, stem, formats_list, view_stems)
        if opts["summary"]:
            from shrn_core.report.summary import write_reconstruction_summary

            written["summary"] = write_reconstruction_summary(recon, out_dir, stem, photo, mask_path=mask,
                                                              image_path=str(source))
        info = {"backend": recon.backend, "levels": list(recon.levels), "vertices": int(len(recon.final.vertices)),
                **{k: v for k, v in recon.info.items() if k in ("timings", "landmark_rms_px", "warnings",
                                                                "view_shape_disagreement")}}
        return common.ItemResult(outputs=written, info=info)

    def work(path: Path) -> common.ItemResult:
        from shrn_core.reconstruct import reconstruct as run_reconstruct

        out_dir = run_opts.out_dir_for(path)
        stem = image_stem(path)
        if common.outputs_exist(expected(out_dir, stem), opts["overwrite"]):
            return common.ItemResult(outputs=kept(out_dir, stem, path), skipped=True)
        image, analysis = analysis_for(path, out_dir)
        mask = mask_for(path, out_dir)
        recon = run_reconstruct(image, mask, backend=opts["backend"], levels=opts["levels"],
                                device=opts["device"], face_analysis=analysis, resize_mask=opts["resize_mask"],
                                image_paths=[str(path)], **backend_options)
        return finish(recon, out_dir, stem, photo=image, mask=mask, source=path)

    def kept(out_dir: Path, stem: str, photo: Path) -> dict:
        """Outputs that exist; ``--summary`` draws a missing sheet from those files."""
        outputs = {"mesh": output_path(out_dir, stem, "", "obj")}
        if opts["summary"]:
            from shrn_core.report.summary import summary_for_folder, summary_path

            sheet = summary_path(out_dir, stem)
            outputs["summary"] = sheet if sheet.is_file() else summary_for_folder(out_dir, stem, photo_path=photo)
        return outputs

    if not opts["multi_view"]:
        raise typer.Exit(common.process_inputs(paths, work, run_opts, "reconstruct"))

    def work_multi(first: Path) -> common.ItemResult:
        from shrn_core.reconstruct import reconstruct_multiview

        out_dir = run_opts.out_dir_for(first)
        stem = opts["name"] or image_stem(first)
        view_stems = [image_stem(p) for p in paths]
        if len(set(view_stems)) != len(view_stems):
            raise InputError("multi-view inputs must have different file names (their renders are named by stem)")
        if common.outputs_exist(expected(out_dir, stem, view_stems), opts["overwrite"]):
            return common.ItemResult(outputs=kept(out_dir, stem, first), skipped=True)
        loaded = [analysis_for(p, out_dir) for p in paths]
        masks = [mask_for(p, out_dir) for p in paths]
        recon = reconstruct_multiview([img for img, _ in loaded], masks, backend=opts["backend"], levels=opts["levels"],
                                      device=opts["device"], face_analyses=[a for _, a in loaded],
                                      resize_mask=opts["resize_mask"], image_paths=[str(p) for p in paths],
                                      **backend_options)
        return finish(recon, out_dir, stem, view_stems, photo=loaded[0][0], mask=masks[0], source=first)

    raise typer.Exit(common.process_inputs([paths[0]], work_multi, run_opts, "reconstruct"))
