"""``shrn synth``: photo-like faces of known 3D shape, clean and occluded, with their ground truth."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from .. import common


def register(app: typer.Typer) -> None:
    app.command("synth")(synth)


def synth(
    ctx: typer.Context,
    count: int = typer.Option(10, "--count", "-n", min=0, help="Number of faces (each gives <id> and <id>_occ)."),
    seed: int = typer.Option(0, "--seed", help="Run seed: sample k is the same for a given seed and options."),
    start: int = typer.Option(0, "--start", min=0, help="Index of the first sample (to extend or split a run)."),
    model: str = typer.Option("sfm", "--model", help="Ground-truth shape model: sfm (Surrey) or ict (ICT-FaceKit, 'in-model')."),
    sfm: Optional[Path] = typer.Option(None, "--sfm", help="Surrey model folder (needs eos-py) or an arrays .npz from --export-sfm [default: ../shared/data/sfm]."),
    ict: Optional[Path] = typer.Option(None, "--ict", help="ICT-FaceKit ict_face_model.npz [default: ../shared/data/ict_facekit/]."),
    yaw_max: float = typer.Option(60.0, "--yaw-max", help="Head yaw drawn uniformly in +-this (degrees)."),
    pitch_max: float = typer.Option(25.0, "--pitch-max", help="Head pitch drawn uniformly in +-this (degrees)."),
    size: str = typer.Option("256..1024", "--size", help="Image side in pixels: N or A..B (multiples of 64 in between)."),
    occluders: str = typer.Option("default", "--occluders", help="Comma-separated kinds: hand, microphone, phone, cup, glasses, sunglasses, hair, cloth_mask, paper_mask, pasted; or default (all but pasted), all, none."),
    coverage: str = typer.Option("0.05..0.6", "--coverage", help="Accepted occluded fraction of the face, A..B."),
    expression: float = typer.Option(0.5, "--expression", help="Probability of a non-neutral expression."),
    neutral: bool = typer.Option(False, "--neutral", help="Neutral expressions only."),
    no_effects: bool = typer.Option(False, "--no-effects", help="No blur, noise or JPEG round trip."),
    photos: Optional[Path] = typer.Option(None, "--photos", help="Folder of face photos to take skin and backgrounds from (needs mediapipe)."),
    bank: Optional[Path] = typer.Option(None, "--bank", help="Appearance bank .npz: read when it exists, else built from --photos and saved there."),
    export_sfm: Optional[Path] = typer.Option(None, "--export-sfm", help="Also write the Surrey model's arrays to this .npz (for machines without eos-py)."),
    pasted_dir: Optional[Path] = typer.Option(None, "--pasted-dir", help="WebFace-OCC folder for the 'pasted' kind [default: ../shared/data/occluded_webfaceocc]."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Faces rendered together (GPU: 32-64)."),
    out: Optional[Path] = common.OutOption,
    device: str = common.DeviceOption,
    config: Optional[Path] = common.ConfigOption,
    json_out: bool = common.JsonOption,
    overwrite: bool = common.OverwriteOption,
    quiet: bool = common.QuietOption,
    verbose: bool = common.VerboseOption,
) -> None:
    """Render faces of known shape: <id>.png / <id>_occ.png with <stem>.gt.obj (mm), .gt.txt (7 NoW
    landmarks), .gt_mask.png (exact occluder mask) and .gt.json (every parameter). Resumable: samples
    whose files exist are kept unless --overwrite."""
    opts, run_opts = common.begin(ctx, "synth", locals())

    from shrn_core.errors import InputError, ShrnError
    from shrn_core.synth import Generator, SynthOptions, appearance_bank, export_sfm_arrays, parse_kinds, parse_size
    from shrn_core.synth.files import sample_paths, stems
    from shrn_core.synth.generate import shape_models
    from shrn_core.synth import write_sample

    try:
        if opts["out"] is None:
            raise InputError("--out DIR is required (where the samples go)")
        options = SynthOptions(
            model=opts["model"], sfm=opts["sfm"], ict=opts["ict"], yaw_max=opts["yaw_max"],
            pitch_max=opts["pitch_max"], size=parse_size(opts["size"]), occluders=parse_kinds(opts["occluders"]),
            coverage=_range(opts["coverage"]), expression=opts["expression"], neutral=opts["neutral"],
            photo_effects=not opts["no_effects"], batch_size=opts["batch_size"], device=opts["device"],
            pasted_dir=opts["pasted_dir"]).validate()
        if opts["export_sfm"] is not None:
            source = opts["sfm"] or Path("..") / "shared" / "data" / "sfm"
            path = export_sfm_arrays(source, opts["export_sfm"])
            common.log.info("wrote the Surrey model arrays to %s", path)
            if not run_opts.json:
                sys.stdout.write(f"{path}\n")
        shape_models(options)  # a missing or unreadable model fails here, before any slow step
        look = appearance_bank(opts["bank"], opts["photos"],
                               progress=lambda p: common.log.debug("appearance bank: %s", p.name))
    except ShrnError as err:
        common.fail(err)

    out_dir = Path(opts["out"])
    occluded = bool(options.occluders)

    def complete(index: int) -> bool:
        if opts["overwrite"]:
            return False
        return all(p.is_file() for stem in stems(f"{index:06d}", occluded) for p in sample_paths(out_dir, stem).values())

    indices = range(opts["start"], opts["start"] + opts["count"])
    kept = [i for i in indices if complete(i)]
    if kept and not run_opts.quiet:
        common.log.info("%d sample(s) already written, kept (use --overwrite to redo them)", len(kept))
    if len(kept) == len(indices):
        raise typer.Exit(0)
    try:
        generator = Generator(options, look)
    except ShrnError as err:
        common.fail(err)
    failures = 0
    progress = common.make_progress("synth", disable=run_opts.quiet)
    with progress:
        task = progress.add_task("", total=opts["count"], completed=len(kept))
        try:
            for sample in generator.samples(opts["count"], opts["seed"], opts["start"], skip=complete):
                written = write_sample(sample, out_dir, look)
                _emit(sample, written, run_opts)
                progress.advance(task)
        except ShrnError as err:
            failures += 1
            common.stderr.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
            raise typer.Exit(err.exit_code)
    raise typer.Exit(0)


def _range(text) -> tuple[float, float]:
    from shrn_core.errors import InputError

    try:
        low, high = (float(v) for v in str(text).split(".."))
    except ValueError:
        raise InputError(f"--coverage must be A..B (fractions of the face), got {text!r}") from None
    return low, high


def _emit(sample, written: dict, run_opts) -> None:
    if run_opts.json:
        record = {"id": sample.id, "ok": True, "outputs": {k: str(v) for k, v in written.items()},
                  "occluder": (sample.occluder or {}).get("kind"), "coverage": round(sample.coverage, 4),
                  "size": int(sample.image.shape[0]), "yaw": round(sample.params.yaw, 2)}
        sys.stdout.write(json.dumps(record) + "\n")
    else:
        for path in written.values():
            sys.stdout.write(f"{path}\n")
    sys.stdout.flush()
