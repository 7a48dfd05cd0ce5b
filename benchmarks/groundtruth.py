"""Ground-truth benchmark: shrn on rendered faces of known shape, clean and occluded (issue 12).

Faces come from ``shrn synth`` (the Surrey model by default: a different model from the fit's
prior, so the benchmark is not circular; ``--model ict`` gives the "in-model" set). For each face:

  clean    reconstruct(clean photo)                                   no mask
  plain    reconstruct(occluded photo)                                no mask, no inpainting
  chain    shrn run on the occluded photo (segment + inpaint + masked fit, the defaults)
  oracle   shrn run with the exact mask (--mask <id>_occ.gt_mask.png): inpaint + masked fit

and the NoW protocol (``shrn_core.evaluate``: 7-landmark similarity + ICP, scan-to-mesh distances in
the NoW face crop) against the true surface. The mesh compared is ``Reconstruction.neutral`` (vs the
true neutral face) when the reconstruct backend provides one, else the final mesh (vs the face as
rendered, expression included); the report says which. Everything is cached per sample and
setting under ``--out``; rerun to resume.

    python benchmarks/groundtruth.py --count 300 --seed 0 --out gt_bench/ [--workers 4] [--model sfm|ict]
        [--settings clean,plain,chain,oracle] [--photos DIR | --bank FILE] [--size 512] [--device cpu]
    python benchmarks/groundtruth.py --expression-sweep --count 20 --out sweep/   # neutral meshes vs expression

Writes ``groundtruth.json``, ``groundtruth.md`` and ``cumulative_error.png`` in ``--out``.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import commit, machine, shared_data_dir  # noqa: E402

SETTINGS = ("clean", "plain", "chain", "oracle")
NOW_ANCHORS = {"MICA": 0.90, "FOCUS": 1.04, "DECA": 1.09, "Deep3DFaceRecon": 1.11, "3DDFA-V2": 1.23}
YAW_BINS = ((0, 20), (20, 40), (40, 90))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="sfm", choices=("sfm", "ict"))
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--out", required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--size", type=int, default=512, help="image side of the rendered photos")
    parser.add_argument("--yaw-max", type=float, default=60.0)
    parser.add_argument("--photos", help="face photos for the appearance bank (default: ../shared/data/faces_extra/images)")
    parser.add_argument("--bank", help="appearance bank .npz (built from --photos when missing)")
    parser.add_argument("--sfm", help="Surrey model folder or arrays .npz")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--fit-option", action="append", default=[], metavar="KEY=VALUE",
                        help="a reconstruct option for every setting (e.g. mid_iterations=40); results are cached "
                             "apart, under cache/<setting>@<options>")
    parser.add_argument("--expression-sweep", action="store_true",
                        help="same identity, 7 expressions each: how much the neutral mesh depends on expression")
    args = parser.parse_args()
    settings = tuple(s for s in args.settings.split(",") if s)
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown:
        parser.error(f"unknown setting(s) {unknown}; choose from {SETTINGS}")
    out = Path(args.out)
    (out / "samples").mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    revision = commit()  # the code that renders and reconstructs (HEAD may move while this runs)
    if args.expression_sweep:
        ids = make_sweep(args, out)
        settings = ("clean",)
    else:
        ids = make_samples(args, out)
    fit_options = dict(_parse_option(text) for text in args.fit_option)
    global _CACHE_TAG
    _CACHE_TAG = _tag(fit_options)
    tasks = [(sample_id, settings, str(out), args.device, args.expression_sweep, fit_options) for sample_id in ids]
    if args.workers > 1:
        # spawn, not fork: the parent already runs torch and mediapipe threads, and a forked child
        # can inherit one of their locks held (the workers then wait forever)
        with ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            rows = list(pool.map(evaluate_sample, tasks))
    else:
        rows = [evaluate_sample(task) for task in tasks]
    report = sweep_report(rows, out) if args.expression_sweep else summarise(out, rows, settings)
    report.update({"machine": machine(), "commit": revision, "command": " ".join(sys.argv), "model": args.model,
                   "count": len(rows), "seed": args.seed, "size": args.size, "wall_s": round(time.perf_counter() - started, 1),
                   "rows": rows})
    suffix = f"@{_CACHE_TAG}" if _CACHE_TAG else ""
    report["fit_options"] = fit_options
    (out / f"groundtruth{suffix}.json").write_text(json.dumps(report, indent=1))
    markdown = sweep_markdown(report) if args.expression_sweep else to_markdown(report, settings)
    (out / f"groundtruth{suffix}.md").write_text(markdown)
    if not args.expression_sweep:
        plot(out, rows, settings, out / f"cumulative_error{suffix}.png")
    print(markdown)


# ------------------------------------------------------------------ samples


def _generator(args, **changes):
    import torch

    from shrn_core.synth import Generator, SynthOptions, appearance_bank

    torch.set_num_threads(max(1, (os.cpu_count() or 2) // max(args.workers, 1)))
    photos = args.photos or (None if args.bank else shared_data_dir() / "faces_extra" / "images")
    bank = appearance_bank(args.bank, photos)
    options = dict(model=args.model, size=(args.size, args.size), yaw_max=args.yaw_max, device=args.device,
                   batch_size=4, sfm=Path(args.sfm) if args.sfm else shared_data_dir() / "sfm",
                   ict=shared_data_dir() / "ict_facekit" / "ict_face_model.npz")
    options.update(changes)
    return Generator(SynthOptions(**options), bank), bank


def make_samples(args, out: Path) -> list[str]:
    """Render the faces (kept when already there) and write each face's true neutral surface."""
    from shrn_core.synth import write_sample
    from shrn_core.synth.files import sample_paths

    samples = out / "samples"
    ids = [f"{i:06d}" for i in range(args.count)]
    missing = [i for i, sample_id in enumerate(ids)
               if not all(p.is_file() for stem in (sample_id, f"{sample_id}_occ") for p in sample_paths(samples, stem).values())]
    if missing:
        generator, bank = _generator(args)
        for sample in generator.samples(args.count, args.seed, skip=lambda i: i not in missing):
            write_sample(sample, samples, bank)
            write_neutral(generator, sample, samples)
            print(f"rendered {sample.id} ({(sample.occluder or {}).get('kind')}, coverage {sample.coverage:.2f})",
                  file=sys.stderr)
    return ids


def write_neutral(generator, sample, folder: Path, stem: str | None = None) -> None:
    """``<id>.gt_neutral.obj`` / ``.txt``: the same identity with a neutral expression."""
    from shrn_core.formats.core import atomic_write

    model = generator.model
    neutral = model.vertices(sample.params.identity, np.zeros(model.num_expression))
    vertices, triangles = model.surface(neutral)
    stem = stem or sample.id
    lines = [f"# shrn synth ground truth model={model.name} units=mm neutral"]
    lines += [f"v {x:.4f} {y:.4f} {z:.4f}" for x, y, z in vertices] + [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in triangles]
    with atomic_write(folder / f"{stem}.gt_neutral.obj", "w") as handle:
        handle.write("\n".join(lines) + "\n")
    with atomic_write(folder / f"{stem}.gt_neutral.txt", "w") as handle:
        handle.write("\n".join(" ".join(f"{c:.5f}" for c in row) for row in neutral[model.now7]) + "\n")


def make_sweep(args, out: Path) -> list[str]:
    """``--count`` identities, each clean, near-frontal, with the neutral face and every expression of
    the model at weight 0.8 (Surrey: 6; ICT: 6 common ARKit groups)."""
    from dataclasses import replace

    from shrn_core.synth import write_sample

    samples = out / "samples"
    generator, bank = _generator(args, occluders=(), yaw_max=min(args.yaw_max, 25.0), pitch_max=10.0)
    model = generator.model
    expressions = _sweep_expressions(model)
    ids = []
    for identity in range(args.count):
        base = generator.params(args.seed, identity)
        variants = []
        for name, weights in expressions:
            sample_id = f"{identity:04d}_{name}"
            ids.append(sample_id)
            if not (samples / f"{sample_id}.gt.json").is_file():
                variants.append((sample_id, replace(base, expression=weights.astype(np.float32))))
        if variants:
            for (sample_id, _), sample in zip(variants, generator.render([p for _, p in variants])):
                sample.id = sample_id
                write_sample(sample, samples, bank)
                write_neutral(generator, sample, samples, sample_id)
            print(f"rendered identity {identity}", file=sys.stderr)
    return ids


def _sweep_expressions(model) -> list[tuple[str, np.ndarray]]:
    names = model.expression_names
    out = [("neutral", np.zeros(len(names)))]
    if model.name == "sfm":
        for index, name in enumerate(names):
            weights = np.zeros(len(names))
            weights[index] = 0.8
            out.append((name, weights))
        return out
    groups = {"smile": ("mouthSmile_L", "mouthSmile_R"), "jaw_open": ("jawOpen",), "brows_up": ("browInnerUp_L", "browInnerUp_R"),
              "frown": ("mouthFrown_L", "mouthFrown_R"), "pucker": ("mouthPucker",), "squint": ("eyeSquint_L", "eyeSquint_R")}
    for label, members in groups.items():
        weights = np.zeros(len(names))
        for member in members:
            weights[names.index(member)] = 0.8 if member != "jawOpen" else 0.4
        out.append((label, weights))
    return out


# ------------------------------------------------------------------ reconstruction + eval (one worker task)


_CACHE_TAG = ""  # the fit options of this run, as named in cache folder names (reporting side)


def _tag(fit_options: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(fit_options.items()))


def _cache(out: Path, setting: str, tag: str | None = None) -> Path:
    tag = _CACHE_TAG if tag is None else tag
    return Path(out) / "cache" / (f"{setting}@{tag}" if tag else setting)


def _parse_option(text: str) -> tuple[str, object]:
    key, _, value = text.partition("=")
    if not key or not value:
        raise SystemExit(f"--fit-option takes KEY=VALUE, got {text!r}")
    import yaml

    return key, yaml.safe_load(value)


def evaluate_sample(task) -> dict:
    sample_id, settings, out, device, against_neutral, fit_options = task
    import torch

    torch.set_num_threads(1)
    out = Path(out)
    samples = out / "samples"
    meta = json.loads((samples / f"{sample_id}.gt.json").read_text())
    occ_meta = json.loads((samples / f"{sample_id}_occ.gt.json").read_text()) if (samples / f"{sample_id}_occ.gt.json").is_file() else {}
    row = {"id": sample_id, "yaw": meta["pose_deg"]["yaw"], "pitch": meta["pose_deg"]["pitch"],
           "occluder": (occ_meta.get("occluder") or {}).get("kind"), "coverage": occ_meta.get("coverage"),
           "expression": any(abs(v) > 0 for v in meta["params"]["expression"])}
    for setting in settings:
        try:
            row[setting] = run_setting(sample_id, setting, out, device, against_neutral, fit_options)
        except Exception as err:  # a failing photo is reported and the benchmark goes on
            row[setting] = {"error": f"{type(err).__name__}: {err}"}
        print(f"{sample_id} {setting}: {row[setting].get('median_mm', row[setting].get('error'))}", file=sys.stderr)
    return row


def run_setting(sample_id: str, setting: str, out: Path, device: str, against_neutral: bool = False,
                fit_options: dict | None = None) -> dict:
    """Reconstruct one photo of one setting and score it; ``against_neutral``: always against the
    true neutral face (the expression sweep), else the neutral mesh against it and the final mesh
    against the face as rendered."""
    fit_options = fit_options or {}
    cache = _cache(out, setting, _tag(fit_options))
    cache.mkdir(parents=True, exist_ok=True)
    result_path = cache / f"{sample_id}.json"
    if result_path.is_file():
        return json.loads(result_path.read_text())
    samples = out / "samples"
    started = time.perf_counter()
    if setting in ("clean", "plain"):
        mesh_path, neutral_path = _reconstruct_direct(samples / (f"{sample_id}.png" if setting == "clean" else
                                                                 f"{sample_id}_occ.png"), cache, sample_id, device, fit_options)
    else:
        mesh_path, neutral_path = _run_pipeline(samples, sample_id, cache, setting, device, fit_options)
    compared = "neutral" if neutral_path is not None else "final"
    pred = neutral_path or mesh_path
    neutral_truth = against_neutral or compared == "neutral"
    truth = samples / (f"{sample_id}.gt_neutral.obj" if neutral_truth else f"{sample_id}.gt.obj")
    from shrn_core.evaluate import evaluate

    result = evaluate(pred, truth)
    np.save(cache / f"{sample_id}.errors.npy", result.stats.distances.astype(np.float32))
    record = {"median_mm": result.stats.median, "mean_mm": result.stats.mean, "std_mm": result.stats.std,
              "points": result.stats.count, "compared": compared,
              "truth": "neutral" if neutral_truth else "as rendered", "seconds": round(time.perf_counter() - started, 1)}
    result_path.write_text(json.dumps(record))
    return record


def _reconstruct_direct(photo: Path, cache: Path, sample_id: str, device: str, fit_options: dict):
    from shrn_core.face import analyze_image
    from shrn_core.formats.image import read_image
    from shrn_core.formats.mesh import write_obj
    from shrn_core.reconstruct import reconstruct

    image = read_image(photo)
    recon = reconstruct(image, mask=None, face_analysis=analyze_image(image, hands=False), device=device,
                        **{"render_outputs": False, **fit_options})
    final = recon.final
    # the topology id in the header tells the evaluator where the model's NoW landmarks are
    mesh_path = write_obj(cache / f"{sample_id}.obj", final.vertices, final.faces, topology=final.topology)
    neutral = getattr(recon, "neutral", None)
    neutral_path = (write_obj(cache / f"{sample_id}.neutral.obj", neutral.vertices, neutral.faces, topology=neutral.topology)
                    if neutral is not None else None)
    return mesh_path, neutral_path


def _run_pipeline(samples: Path, sample_id: str, cache: Path, setting: str, device: str, fit_options: dict):
    from shrn_core.pipeline import PipelineOptions, run

    # no summary sheets or overlay renders: they do not change the meshes scored here
    options = PipelineOptions(device=device, summary=False, reconstruct_options={"render_outputs": False, **fit_options})
    if setting == "oracle":
        options.mask = samples / f"{sample_id}_occ.gt_mask.png"
    reports = run([samples / f"{sample_id}_occ.png"], cache / "runs", options)
    report = reports[0]
    if not report.ok:
        raise RuntimeError(report.error)
    folder = cache / "runs" / f"{sample_id}_occ"
    neutral = folder / f"{sample_id}_occ.neutral.obj"
    return folder / f"{sample_id}_occ.obj", neutral if neutral.is_file() else None


# ------------------------------------------------------------------ reporting


def _stats(values) -> dict:
    values = np.asarray([v for v in values if v is not None and np.isfinite(v)], np.float64)
    if values.size == 0:
        return {"n": 0}
    return {"n": int(values.size), "median": float(np.median(values)), "mean": float(values.mean()),
            "std": float(values.std()), "max": float(values.max())}


def _ok(row, setting):
    return isinstance(row.get(setting), dict) and "median_mm" in row[setting]


def summarise(out: Path, rows: list[dict], settings: tuple[str, ...]) -> dict:
    report = {"settings": {}, "penalty": {}, "by_kind": {}, "by_yaw": {}, "anchors_now_median_mm": NOW_ANCHORS}
    complete = [r for r in rows if all(_ok(r, s) for s in settings)]
    report["complete_samples"] = len(complete)
    report["failures"] = {s: [r["id"] for r in rows if not _ok(r, s)] for s in settings}
    for setting in settings:
        pooled = _pooled(out, complete, setting)
        report["settings"][setting] = {
            "pooled": {"median_mm": float(np.median(pooled)), "mean_mm": float(pooled.mean()), "std_mm": float(pooled.std())}
            if pooled.size else {},
            "per_sample_median_mm": _stats([r[setting]["median_mm"] for r in complete]),
            "per_sample_mean_mm": _stats([r[setting]["mean_mm"] for r in complete]),
            "compared": sorted({r[setting]["compared"] for r in complete})}
    if "clean" in settings:
        for setting in settings:
            if setting == "clean":
                continue
            report["penalty"][setting] = _stats([r[setting]["mean_mm"] - r["clean"]["mean_mm"] for r in complete])
        plain = report["penalty"].get("plain", {}).get("mean")
        for setting in ("chain", "oracle"):
            if setting in report["penalty"] and plain:
                report["penalty"][setting]["removed_fraction"] = 1 - report["penalty"][setting]["mean"] / plain
        if "chain" in settings:
            clean_median = report["settings"]["clean"]["per_sample_median_mm"].get("median")
            chain_median = report["settings"]["chain"]["per_sample_median_mm"].get("median")
            if clean_median:
                report["chain_median_vs_clean"] = chain_median / clean_median - 1
    for key, groups in (("by_kind", _group(complete, lambda r: r["occluder"] or "none")),
                        ("by_yaw", _group(complete, _yaw_bin))):
        for name, members in sorted(groups.items()):
            entry = {"n": len(members)}
            for setting in settings:
                entry[setting] = _stats([r[setting]["mean_mm"] for r in members]).get("mean")
            if "clean" in settings:
                for setting in ("plain", "chain", "oracle"):
                    if setting in settings:
                        entry[f"penalty_{setting}"] = float(np.mean([r[setting]["mean_mm"] - r["clean"]["mean_mm"]
                                                                     for r in members]))
            report[key][name] = entry
    return report


def _pooled(out: Path, rows, setting) -> np.ndarray:
    """Every scan point's error of every face (NoW pools all points before taking statistics)."""
    arrays = [np.load(_cache(out, setting) / f"{r['id']}.errors.npy") for r in rows]
    return np.concatenate(arrays) if arrays else np.zeros(0)


def _group(rows, key):
    groups: dict = {}
    for r in rows:
        groups.setdefault(key(r), []).append(r)
    return groups


def _yaw_bin(row) -> str:
    yaw = abs(row["yaw"])
    for low, high in YAW_BINS:
        if low <= yaw < high:
            return f"yaw {low}-{high} deg"
    return "other"


def to_markdown(report: dict, settings) -> str:
    lines = [f"NoW-protocol errors (mm) on {report['complete_samples']} of {report['count']} synthetic "
             f"{report['model'].upper()} faces, {report['size']} px, seed {report['seed']}; commit {report['commit']}; "
             f"{report['machine']}; {report['wall_s']} s", "",
             "| setting | median (pooled) | mean | std | median of per-face medians | mesh compared |",
             "|---|---|---|---|---|---|"]
    for setting in settings:
        s = report["settings"][setting]
        pooled = s["pooled"]
        lines.append(f"| {setting} | {pooled.get('median_mm', float('nan')):.3f} | {pooled.get('mean_mm', float('nan')):.3f} | "
                     f"{pooled.get('std_mm', float('nan')):.3f} | {s['per_sample_median_mm'].get('median', float('nan')):.3f} | "
                     f"{', '.join(s['compared'])} |")
    if report["penalty"]:
        lines += ["", "| occlusion penalty (setting - clean, per-face mean error) | mean mm | median mm | share of plain's penalty removed |",
                  "|---|---|---|---|"]
        for setting, p in report["penalty"].items():
            removed = f"{100 * p['removed_fraction']:.0f}%" if "removed_fraction" in p else ""
            lines.append(f"| {setting} | {p.get('mean', float('nan')):.3f} | {p.get('median', float('nan')):.3f} | {removed} |")
    failed = {s: ids for s, ids in report["failures"].items() if ids}
    if failed:
        lines.append("\nNot in the tables (no result; e.g. no face found in the occluded photo): " +
                     "; ".join(f"{s}: {', '.join(ids)}" for s, ids in failed.items()))
    if "chain_median_vs_clean" in report:
        lines.append(f"\nchain median vs clean median: {100 * report['chain_median_vs_clean']:+.1f}% (target: within 10%)")
    for key, title in (("by_kind", "occluder"), ("by_yaw", "yaw")):
        header = [title, "n"] + [f"{s} mean" for s in settings] + [f"penalty {s}" for s in ("plain", "chain", "oracle") if s in settings]
        lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for name, entry in report[key].items():
            cells = [name, str(entry["n"])] + [f"{entry.get(s, float('nan')):.3f}" for s in settings]
            cells += [f"{entry.get('penalty_' + s, float('nan')):+.3f}" for s in ("plain", "chain", "oracle") if s in settings]
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Published NoW test-set medians (other data: real scans, not these faces): " +
              ", ".join(f"{k} {v:.2f}" for k, v in NOW_ANCHORS.items()) + " mm."]
    return "\n".join(lines) + "\n"


def plot(out: Path, rows, settings, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    complete = [r for r in rows if all(_ok(r, s) for s in settings)]
    for setting in settings:
        errors = [np.load(_cache(out, setting) / f"{r['id']}.errors.npy") for r in complete]
        if not errors:
            continue
        d = np.sort(np.concatenate(errors))
        ax.plot(d, np.arange(1, d.size + 1) / d.size, label=f"{setting} (median {np.median(d):.2f})")
    for index, (name, value) in enumerate(NOW_ANCHORS.items()):
        ax.plot([value], [0.5], marker="x", color="grey")
        ax.annotate(name, (value, 0.5), xytext=(3, -10 - 9 * index), textcoords="offset points", fontsize=7, color="grey")
    ax.axhline(0.5, color="grey", lw=0.5, ls=":")
    ax.set_xlim(0, 6)
    ax.set_xlabel("scan-to-mesh error (mm)")
    ax.set_ylabel("fraction of points")
    ax.set_title("synthetic faces, NoW protocol\n(x: published NoW medians on real scans - other data)", fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def sweep_report(rows: list[dict], out: Path | None = None) -> dict:
    """Per identity: error of each expression's mesh vs the true neutral, and its spread; and, where
    the backend gives neutral meshes, how far each expressive photo's neutral mesh lies from the
    neutral photo's (median vertex distance, mm, same topology, no alignment: both are in the model's
    head frame)."""
    by_identity: dict = {}
    for r in rows:
        if _ok(r, "clean"):
            identity, expression = r["id"].split("_", 1)
            by_identity.setdefault(identity, {})[expression] = r["clean"]
    expressions = sorted({e for v in by_identity.values() for e in v})
    per_expression = {e: _stats([v[e]["mean_mm"] for v in by_identity.values() if e in v]) for e in expressions}
    spread = [float(np.std([x["mean_mm"] for x in v.values()])) for v in by_identity.values() if len(v) > 1]
    gap = [float(np.mean([x["mean_mm"] for k, x in v.items() if k != "neutral"]) - v["neutral"]["mean_mm"])
           for v in by_identity.values() if "neutral" in v and len(v) > 1]
    compared = sorted({x["compared"] for v in by_identity.values() for x in v.values()})
    report = {"identities": len(by_identity), "per_expression": per_expression, "spread_within_identity": _stats(spread),
              "expressive_minus_neutral": _stats(gap), "compared": compared}
    if out is not None and compared == ["neutral"]:
        report["neutral_mesh_distance"] = _neutral_mesh_distances(_cache(out, "clean"), by_identity)
    return report


def _neutral_mesh_distances(cache: Path, by_identity: dict) -> dict:
    from shrn_core.formats.mesh import read_obj

    per_expression: dict = {}
    for identity, expressions in by_identity.items():
        reference = cache / f"{identity}_neutral.neutral.obj"
        if not reference.is_file():
            continue
        base = read_obj(reference)[0]
        for expression in expressions:
            path = cache / f"{identity}_{expression}.neutral.obj"
            if expression == "neutral" or not path.is_file():
                continue
            vertices = read_obj(path)[0]
            if vertices.shape == base.shape:
                per_expression.setdefault(expression, []).append(float(np.median(np.linalg.norm(vertices - base, axis=1))))
    pooled = [d for values in per_expression.values() for d in values]
    return {"per_expression": {e: _stats(v) for e, v in per_expression.items()}, "all": _stats(pooled)}


def sweep_markdown(report: dict) -> str:
    lines = [f"Expression sweep: {report['identities']} {report['model'].upper()} identities, mesh compared: "
             f"{', '.join(report['compared'])} (vs the true neutral face); commit {report['commit']}; {report['machine']}", "",
             "| expression | n | mean error mm (mean over identities) | std |", "|---|---|---|---|"]
    for name, s in report["per_expression"].items():
        lines.append(f"| {name} | {s.get('n', 0)} | {s.get('mean', float('nan')):.3f} | {s.get('std', float('nan')):.3f} |")
    spread, gap = report["spread_within_identity"], report["expressive_minus_neutral"]
    lines += ["", f"Spread of one identity's error over its expressions: mean {spread.get('mean', float('nan')):.3f} mm; "
              f"expressive minus neutral-photo error: mean {gap.get('mean', float('nan')):+.3f} mm."]
    distances = report.get("neutral_mesh_distance")
    if distances:
        lines += ["", "Neutral mesh of each expressive photo vs the neutral photo's, same identity (median vertex "
                  "distance, mm; target <= 0.3):", "", "| expression | n | mean | max |", "|---|---|---|---|"]
        for name, s in distances["per_expression"].items():
            lines.append(f"| {name} | {s['n']} | {s['mean']:.3f} | {s['max']:.3f} |")
        total = distances["all"]
        if total.get("n"):
            lines.append(f"| all | {total['n']} | {total['mean']:.3f} | {total['max']:.3f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
