"""Face-analysis time per image (model load excluded). Target: < 50 ms for a 1024x1024 photo.

    python benchmarks/face_speed.py [--repeats 5] [--json-out FILE]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import clean_photos, commit, machine, write_json  # noqa: E402
from shrn_core.face import analyze_image, load_models  # noqa: E402
from shrn_core.formats.image import read_image  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json-out")
    args = parser.parse_args()
    load_models()
    rows = []
    for path in clean_photos():
        rgb = read_image(path)
        analyze_image(rgb)  # warm-up: first call of each graph allocates
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            analysis = analyze_image(rgb)
            times.append(time.perf_counter() - start)
        rows.append({"image": path.name, "size": f"{rgb.shape[1]}x{rgb.shape[0]}", "faces": len(analysis.faces),
                     "median_ms": 1000 * statistics.median(times)})
    print(f"machine: {machine()}  commit: {commit()}")
    print(f"{'image':58s} {'size':>10s} {'faces':>5s} {'ms':>7s}")
    for row in rows:
        print(f"{row['image']:58s} {row['size']:>10s} {row['faces']:5d} {row['median_ms']:7.1f}")
    big = [r["median_ms"] for r in rows if r["size"] == "1024x1024"]
    summary = {"median_ms_all": statistics.median(r["median_ms"] for r in rows),
               "median_ms_1024": statistics.median(big) if big else None}
    print(f"median over all photos: {summary['median_ms_all']:.1f} ms; 1024x1024 photos: {summary['median_ms_1024']:.1f} ms")
    write_json(args.json_out, {"rows": rows, **summary})


if __name__ == "__main__":
    main()
