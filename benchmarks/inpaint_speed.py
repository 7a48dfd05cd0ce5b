"""Seconds per 1024x1024 photo of the CPU inpainting backends, robust to a busy machine.

The 1024x1024 photos of ``shared/data/faces_hrn`` get the quality benchmark's synthetic occluders
(two per photo, fixed seed); each backend fills each one ``--repeat`` times. Reported per backend:
the median over photos of the fastest repeat (what the code costs when it has the CPU), of the
median repeat (what it cost here), and of the CPU time of this process. Face analysis is not
included (the pipeline shares it with other stages).

    python benchmarks/inpaint_speed.py --json-out inpaint_speed.json
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--backends", nargs="+", default=["telea", "ns", "face"])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)

    from shrn_core.evaluate.occluders import load_occluders, make_synthetic_set
    from shrn_core.face import analyze_image
    from shrn_core.inpaint import create_backend, inpaint_with_report

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO).stdout.strip()
    photos = sorted((args.data / "faces_hrn").iterdir())
    engines = {name: create_backend(name) for name in args.backends}
    timings: dict[str, list[dict]] = {name: [] for name in engines}
    for sample in make_synthetic_set(photos, load_occluders(args.data), seed=0, per_photo=2):
        if sample.image.shape[:2] != (1024, 1024):
            continue
        face = analyze_image(sample.image, hands=False).face
        for name, engine in engines.items():
            walls, cpus = [], []
            for _ in range(args.repeat):
                wall, cpu = time.perf_counter(), time.process_time()
                inpaint_with_report(sample.image, sample.mask, face, engine, analyse_if_missing=False)
                walls.append(time.perf_counter() - wall)
                cpus.append(time.process_time() - cpu)
            timings[name].append({"photo": sample.photo.name, "occluder": sample.occluder,
                                  "masked_pixels": int((sample.mask > 0).sum()), "wall_min": min(walls),
                                  "wall_median": float(np.median(walls)), "cpu_median": float(np.median(cpus))})

    summary = {}
    for name, rows in timings.items():
        summary[name] = {key: round(float(np.median([r[key] for r in rows])), 3) for key in ("wall_min", "wall_median", "cpu_median")}
        summary[name]["wall_min_max"] = round(float(max(r["wall_min"] for r in rows)), 3)
        summary[name]["n"] = len(rows)
    load = os.getloadavg()
    print(f"1024x1024 photos, {len(next(iter(timings.values())))} occluded samples, {args.repeat} repeats; "
          f"load average {load[0]:.1f} on {os.cpu_count()} CPUs; commit {commit}")
    print(f"{'backend':8s} {'fastest (median)':>17s} {'fastest (worst photo)':>22s} {'median repeat':>14s} {'CPU time':>9s}")
    for name, s in summary.items():
        print(f"{name:8s} {s['wall_min']:>17.3f} {s['wall_min_max']:>22.3f} {s['wall_median']:>14.3f} {s['cpu_median']:>9.3f}")
    if args.json_out:
        machine = {"python": platform.python_version(), "cpus": os.cpu_count(), "load_average": load, "commit": commit}
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps({"machine": machine, "summary": summary, "samples": timings}, indent=1) + "\n")


if __name__ == "__main__":
    main()
