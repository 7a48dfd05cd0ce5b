"""SegmentationHRN's claim, tested: does segment (+ inpaint) make reconstruction robust to occluders?

For each clean photo in ../shared/data/faces_*, one of the 12 WebFace-OCC occluders is pasted at a
landmark-guided position (exact mask known). The reconstruction of the clean photo is the
reference; each setting reconstructs the occluded photo, and the error is the mean surface distance
(mm) from its final mesh's vertices to the reference mesh's surface after a rigid alignment over the
shared topology's vertex pairs:

  plain         reconstruct(occluded)                          no mask
  masked        reconstruct(occluded, mask=segment(occluded))
  inpainted     reconstruct(inpaint(occluded, mask), mask)     (what `shrn run` does by default)
  inpaint_only  reconstruct(inpaint(occluded, mask))           mask not used by the fit
  relandmarked  like inpainted, but the landmarks come from a face analysis of the inpainted photo
  oracle        reconstruct(occluded, mask=exact pasted mask)  upper bound for the segment stage

    python benchmarks/occlusion.py [--limit N] [--device cpu|cuda] [--batch-size 16] [--json-out F] [--figure F]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import clean_photos, commit, machine, shared_data_dir, write_json  # noqa: E402
from shrn_core.errors import ShrnError  # noqa: E402
from shrn_core.evaluate.occluders import load_occluders, paste_occluder  # noqa: E402
from shrn_core.face import analyze_image, load_models  # noqa: E402
from shrn_core.formats.image import read_image  # noqa: E402
from shrn_core.geometry import surface_distance, umeyama  # noqa: E402
from shrn_core.inpaint import inpaint  # noqa: E402
from shrn_core.reconstruct import reconstruct, reconstruct_batch  # noqa: E402
from shrn_core.segment import segment  # noqa: E402

SETTINGS = ("plain", "masked", "inpainted", "inpaint_only", "relandmarked", "oracle")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=0, help="use the first N photos (0 = all)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--levels", default="fine")
    parser.add_argument("--batch-size", type=int, default=1, help="fits per batched reconstruction (GPU: 16)")
    parser.add_argument("--json-out")
    parser.add_argument("--figure")
    args = parser.parse_args()

    load_models()
    occluders = load_occluders(shared_data_dir() / "occluded_webfaceocc")
    photos = clean_photos()[: args.limit or None]
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    cases, skipped = [], []
    for index, path in enumerate(photos):
        occluder = occluders[index % len(occluders)]
        try:
            cases.append(prepare_case(path, occluder, rng))
        except ShrnError as err:
            skipped.append({"image": path.name, "reason": str(err)})
            print(f"skip {path.name}: {err}", file=sys.stderr)
    jobs = [(case, name) for case in cases for name in ("reference",) + SETTINGS]
    meshes = fit_all([case["fits"][name] for case, name in jobs], args.device, args.levels, args.batch_size)
    rows = []
    for case in cases:
        results = {name: mesh for (c, name), mesh in zip(jobs, meshes) if c is case}
        row = {"image": case["image"], "occluder": case["occluder"], "occluded_fraction": case["occluded_fraction"]}
        for name in SETTINGS:
            row[name] = mesh_error(results[name], results["reference"])
        rows.append(row)
        print(f"{row['image']:58s} {row['occluder']:11s} " + " ".join(f"{s}={row[s]:.2f}" for s in SETTINGS),
              file=sys.stderr)
    summary = summarise(rows)
    print(f"machine: {machine()}  commit: {commit()}  device: {args.device}  photos: {len(rows)} "
          f"(skipped {len(skipped)})  wall: {time.perf_counter() - started:.0f} s")
    print(f"{'setting':14s} {'mean mm':>8s} {'median mm':>10s} {'vs plain':>9s}")
    for setting in SETTINGS:
        stats = summary[setting]
        print(f"{setting:14s} {stats['mean']:8.3f} {stats['median']:10.3f} {stats['reduction_vs_plain']:8.1%}")
    write_json(args.json_out, {"device": args.device, "rows": rows, "skipped": skipped, "summary": summary})
    if args.figure:
        plot(rows, summary, args.figure)


def prepare_case(path: Path, occluder, rng) -> dict:
    """The occluded photo, the segment and inpaint outputs, and the fit inputs of every setting."""
    photo = read_image(path)
    clean_analysis = analyze_image(photo, hands=False)
    occluded, true_mask = paste_occluder(photo, clean_analysis.face, occluder, rng)
    analysis = analyze_image(occluded)  # the pipeline only ever sees the occluded photo
    mask = segment(occluded, analysis).mask
    filled = inpaint(occluded, mask, analysis)
    try:
        filled_analysis = analyze_image(filled)
    except ShrnError:
        filled_analysis = analysis
    fits = {
        "reference": (photo, None, clean_analysis),
        "plain": (occluded, None, analysis),
        "masked": (occluded, mask, analysis),
        "inpainted": (filled, mask, analysis),
        "inpaint_only": (filled, None, analysis),
        "relandmarked": (filled, mask, filled_analysis),
        "oracle": (occluded, true_mask, analysis),
    }
    return {"image": path.name, "occluder": occluder.name, "occluded_fraction": float((true_mask > 0).mean()),
            "fits": fits}


def fit_all(fits: list, device: str, levels: str, batch_size: int) -> list:
    """Final meshes of all fits, several per batched reconstruction when ``batch_size`` > 1."""
    meshes = []
    for start in range(0, len(fits), batch_size):
        chunk = fits[start:start + batch_size]
        images, masks, analyses = (list(part) for part in zip(*chunk))
        if len(chunk) == 1:
            recons = [reconstruct(images[0], mask=masks[0], face_analysis=analyses[0], device=device, levels=levels,
                                  render_outputs=False)]
        else:
            recons = reconstruct_batch(images, masks, face_analyses=analyses, device=device, levels=levels,
                                       render_outputs=False)
        meshes.extend(r.final for r in recons)
        print(f"fitted {len(meshes)}/{len(fits)}", file=sys.stderr)
    return meshes


def mesh_error(mesh, reference) -> float:
    """Mean distance (mm) from ``mesh``'s vertices to ``reference``'s surface after a rigid fit.

    Both meshes share shrn's topology, so the rigid fit uses every vertex pair (Umeyama); an ICP
    refinement would only move it by what correspondence already fixes, at 100x the cost."""
    fit = umeyama(mesh.vertices, reference.vertices, with_scale=False)
    aligned = (fit.apply(mesh.vertices), mesh.faces)
    return float(surface_distance(aligned, reference, align="none").mean)


def summarise(rows: list[dict]) -> dict:
    summary = {}
    plain = statistics.mean(r["plain"] for r in rows) if rows else float("nan")
    for setting in SETTINGS:
        values = [r[setting] for r in rows]
        mean = statistics.mean(values) if values else float("nan")
        summary[setting] = {"mean": mean, "median": statistics.median(values) if values else float("nan"),
                            "reduction_vs_plain": 1.0 - mean / plain if plain else float("nan")}
    return summary


def plot(rows: list[dict], summary: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    means = [summary[s]["mean"] for s in SETTINGS]
    left.bar(SETTINGS, means, color=["#999", "#4a90d9", "#2a9d5c", "#8fbf6f", "#d9a64a"])
    left.set_ylabel("mean surface distance to the clean reconstruction (mm)")
    left.set_title("occluded vs clean photo")
    left.tick_params(axis="x", rotation=20)
    plain = [r["plain"] for r in rows]
    for setting, marker in (("masked", "o"), ("inpainted", "s")):
        right.scatter(plain, [r[setting] for r in rows], label=setting, marker=marker, s=18)
    top = max(plain + [r["inpainted"] for r in rows] + [1.0])
    right.plot([0, top], [0, top], "k--", lw=0.8)
    right.set_xlabel("plain reconstruct error (mm)")
    right.set_ylabel("error with segmentation (mm)")
    right.legend()
    right.set_title("per photo (below the diagonal = better)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


if __name__ == "__main__":
    main()
