"""Occlusion consistency of the fit backend: each unoccluded photo in ../shared/data/faces_* is
reconstructed as is and with a synthetic WebFace-OCC occluder pasted on (with its exact mask given);
reported is the mean surface distance in mm between the two meshes after rigid alignment. Target < 1.0 mm.

Two columns: ``occluded_landmarks`` runs the face analysis on the occluded photo (what a user gets);
``clean_landmarks`` reuses the clean photo's landmarks, isolating the photometric levels' part.

    python benchmarks/reconstruct_consistency.py [--limit N] [--device cpu] [--json-out FILE]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from reconstruct_common import clean_photos, commit, machine, print_table, shared_data_dir, write_json


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=0, help="only the first N photos (0 = all)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-clean-landmarks", action="store_true", help="skip the clean-landmark column")
    parser.add_argument("--json-out")
    args = parser.parse_args()
    run_commit = commit()  # the code that runs, even if HEAD moves meanwhile

    from shrn_core.errors import ShrnError
    from shrn_core.evaluate.occluders import load_occluders, make_synthetic_set
    from shrn_core.face import analyze_image
    from shrn_core.geometry import surface_distance
    from shrn_core.reconstruct import reconstruct

    photos = clean_photos()
    if args.limit:
        photos = photos[: args.limit]
    occluders = load_occluders(shared_data_dir() / "occluded_webfaceocc")
    rows = []
    started = time.perf_counter()
    for sample in make_synthetic_set(photos, occluders, seed=0):
        name = f"{sample.photo.parent.name}/{sample.photo.name}"
        row = {"photo": name, "occluder": sample.occluder,
               "occluded_fraction": float((sample.mask > 0).mean())}
        try:
            clean = reconstruct(sample.photo, face_analysis=sample.analysis, device=args.device, render_outputs=False)
            analysis = analyze_image(sample.image)
            occluded = reconstruct(sample.image, sample.mask, face_analysis=analysis, device=args.device,
                                   render_outputs=False)
            row["occluded_landmarks_mm"] = _distance(surface_distance, occluded, clean)
            if not args.no_clean_landmarks:
                same = reconstruct(sample.image, sample.mask, face_analysis=sample.analysis, device=args.device,
                                   render_outputs=False)
                row["clean_landmarks_mm"] = _distance(surface_distance, same, clean)
        except ShrnError as err:
            row["error"] = str(err)
        rows.append(row)
        print(f"{name} + {sample.occluder}: {row.get('occluded_landmarks_mm', row.get('error'))}", flush=True)
    columns = ["photo", "occluder", "occluded_landmarks_mm", "clean_landmarks_mm", "error"]
    print_table(rows, columns)
    summary = {"photos": len(rows), "seconds": time.perf_counter() - started, "target_mm": 1.0}
    for key in ("occluded_landmarks_mm", "clean_landmarks_mm"):
        values = [r[key] for r in rows if key in r]
        if values:
            summary[key] = {"mean": float(np.mean(values)), "median": float(np.median(values)),
                            "max": float(np.max(values)), "count": len(values)}
            print(f"{key}: mean {np.mean(values):.3f} mm, median {np.median(values):.3f} mm over {len(values)} photos")
    print(f"machine: {machine()}; commit {run_commit}")
    write_json(args.json_out, {"run_commit": run_commit, "benchmark": "reconstruct_consistency", "rows": rows, "summary": summary})


def _distance(surface_distance, a, b) -> float:
    """Mean distance from the final mesh of ``a`` to that of ``b`` after rigid alignment (ICP started
    from the 468 corresponding landmark vertices)."""
    mesh_a, mesh_b = a.final, b.final
    stats = surface_distance(mesh_a, mesh_b, align="rigid", landmarks_a=mesh_a.vertices[:468],
                             landmarks_b=mesh_b.vertices[:468])
    return stats.mean


if __name__ == "__main__":
    main()
