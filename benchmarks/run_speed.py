"""Seconds per image of the whole pipeline (`shrn run`), model loading excluded, with the
per-stage breakdown; optionally a batched pass (--batch-size) reporting images per second.
Targets: < 30 s per image on the 2-core CPU; on the GPU < 1.5 s single, >= 5 images/s batched.

    python benchmarks/run_speed.py [--limit 8] [--device cpu|cuda] [--batch-size 16] [--json-out F]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import clean_photos, commit, machine, write_json  # noqa: E402
from shrn_core.pipeline import Engines, PipelineOptions, run  # noqa: E402

STAGES = ("face", "segment", "inpaint", "reconstruct")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=0, help="also time a batched pass (0 = skip)")
    parser.add_argument("--dataset-mode", action="store_true",
                        help="also time the batched pass without summary sheets and overlay/shading renders "
                             "(--no-summary --no-renders, as for a dataset run)")
    parser.add_argument("--repeat", type=int, default=1, help="process each photo this many times (copies)")
    parser.add_argument("--json-out")
    args = parser.parse_args()

    photos = [p for p in clean_photos() if "trump" not in p.name and "emma" not in p.name][: args.limit]
    singles = photos
    options = PipelineOptions(device=args.device, overwrite=True)
    Engines(options).load()
    with tempfile.TemporaryDirectory() as out, tempfile.TemporaryDirectory(prefix="shrn-run-speed-") as copies:
        if args.repeat > 1:  # a longer dataset (several chunks) from copies of the photos under new names
            photos = [Path(shutil.copy(p, Path(copies) / f"{p.stem}_{r}{p.suffix}"))
                      for r in range(args.repeat) for p in photos]
        run(photos[:1], out, options)  # warm-up: first CUDA kernels / graph allocations
        per_image, stage_times, failures = [], {s: [] for s in STAGES}, 0
        for photo in singles:
            start = time.perf_counter()
            [report] = run([photo], out, options)
            elapsed = time.perf_counter() - start
            if not report.ok:
                failures += 1
                print(f"failed {photo.name}: {report.error}", file=sys.stderr)
                continue
            per_image.append(elapsed)
            for name, seconds in report.seconds().items():
                stage_times[name].append(seconds)
        result = {"device": args.device, "photos": len(photos), "failures": failures,
                  "seconds_per_image_mean": statistics.mean(per_image),
                  "seconds_per_image_median": statistics.median(per_image),
                  "stage_seconds_mean": {k: statistics.mean(v) for k, v in stage_times.items() if v}}
        if args.batch_size:
            batched = PipelineOptions(device=args.device, overwrite=True, batch_size=args.batch_size)
            start = time.perf_counter()
            reports = run(photos, out, batched)
            wall = time.perf_counter() - start
            result["batched"] = {"batch_size": args.batch_size, "images": len(photos), "wall_s": wall,
                                 "images_per_s": len(photos) / wall, "ok": sum(r.ok for r in reports)}
        if args.batch_size and args.dataset_mode:
            lean = PipelineOptions(device=args.device, overwrite=True, batch_size=args.batch_size, summary=False,
                                   reconstruct_options={"render_outputs": False})
            start = time.perf_counter()
            [report] = run(photos[:1], out, PipelineOptions(device=args.device, overwrite=True, summary=False,
                                                            reconstruct_options={"render_outputs": False}))
            result["dataset_mode_single_s"] = time.perf_counter() - start
            start = time.perf_counter()
            reports = run(photos, out, lean)
            wall = time.perf_counter() - start
            result["dataset_mode"] = {"batch_size": args.batch_size, "images": len(photos), "wall_s": wall,
                                      "images_per_s": len(photos) / wall, "ok": sum(r.ok for r in reports)}
    print(f"machine: {machine()}  commit: {commit()}")
    print(f"run, {len(per_image)} photos on {args.device}: {result['seconds_per_image_mean']:.2f} s/image mean "
          f"({result['seconds_per_image_median']:.2f} median)")
    print("stages (mean s): " + ", ".join(f"{k} {v:.3f}" for k, v in result["stage_seconds_mean"].items()))
    if "batched" in result:
        b = result["batched"]
        print(f"batched (batch {b['batch_size']}): {b['images_per_s']:.2f} images/s over {b['images']} images")
    if "dataset_mode" in result:
        d = result["dataset_mode"]
        print(f"dataset mode (no summary, no renders): {result['dataset_mode_single_s']:.2f} s for one photo; "
              f"batch {d['batch_size']}: {d['images_per_s']:.2f} images/s")
    write_json(args.json_out, result)


if __name__ == "__main__":
    main()
