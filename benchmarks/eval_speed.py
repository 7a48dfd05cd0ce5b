"""Speed of `shrn eval` (NoW protocol): a 100k-point scan against a ~30k-vertex predicted mesh.

The pair is synthetic (shrn_core.evaluate.synthetic): the mean face subdivided 3 times as the
prediction, 100k points sampled on it under a random similarity plus 0.5 mm noise as the scan.
Times the whole `evaluate()` call (reading both files, landmarks, crop, Umeyama, ICP, exact
point-to-triangle distances) and, separately, one exact distance query. Target: < 10 s on the
dev CPU.

    python benchmarks/eval_speed.py [--points 100000] [--subdivisions 3] [--repeats 3] [--json-out FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from shrn_core.evaluate import evaluate
from shrn_core.evaluate.landmarks import NOW7_MEDIAPIPE
from shrn_core.evaluate.realy import sample_surface
from shrn_core.evaluate.synthetic import HALF_NORMAL, face_mesh, random_similarity, write_obj
from shrn_core.geometry import SurfaceIndex


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--subdivisions", type=int, default=3)
    parser.add_argument("--sigma", type=float, default=0.5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()

    vertices, faces = face_mesh(args.subdivisions)
    transform = random_similarity(7)
    rng = np.random.default_rng(0)
    scan = transform.apply(sample_surface(vertices, faces, args.points, seed=1))
    scan += rng.normal(scale=args.sigma, size=scan.shape)
    landmarks = transform.apply(vertices[NOW7_MEDIAPIPE])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        pred_path = write_obj(Path(tmp) / "pred.obj", vertices, faces, topology="mediapipe468")
        scan_path = write_obj(Path(tmp) / "scan.obj", scan, np.zeros((0, 3), np.int64))
        np.savetxt(Path(tmp) / "scan.txt", landmarks)
        for repeat in range(args.repeats):
            load = os.getloadavg()[0]
            start, cpu_start = time.perf_counter(), time.process_time()
            result = evaluate(pred_path, scan_path)
            total, cpu = time.perf_counter() - start, time.process_time() - cpu_start
            start = time.perf_counter()
            SurfaceIndex(result.pred_vertices, faces).query(result.scan_points)
            query = time.perf_counter() - start
            rows.append({"repeat": repeat, "evaluate_s": total, "evaluate_cpu_s": cpu, "load_avg_1min": load,
                         "exact_query_s": query,
                         "scan_points": len(scan), "evaluated_points": result.stats.count,
                         "mesh_vertices": len(vertices), "mesh_faces": len(faces),
                         "icp_iterations": result.info["icp"]["iterations"],
                         "median_mm": result.stats.median, "mean_mm": result.stats.mean,
                         "expected_median_mm": HALF_NORMAL["median"] * args.sigma,
                         "expected_mean_mm": HALF_NORMAL["mean"] * args.sigma})
    print(f"{'repeat':>6} {'evaluate s':>10} {'cpu s':>6} {'load':>5} {'query s':>8} {'scan pts':>9} {'eval pts':>9} {'verts':>6} "
          f"{'faces':>6} {'icp it':>6} {'median':>7} {'(exp)':>6} {'mean':>6} {'(exp)':>6}")
    for r in rows:
        print(f"{r['repeat']:>6} {r['evaluate_s']:>10.2f} {r['evaluate_cpu_s']:>6.2f} {r['load_avg_1min']:>5.1f} {r['exact_query_s']:>8.2f} {r['scan_points']:>9} "
              f"{r['evaluated_points']:>9} {r['mesh_vertices']:>6} {r['mesh_faces']:>6} {r['icp_iterations']:>6} "
              f"{r['median_mm']:>7.4f} {r['expected_median_mm']:>6.4f} {r['mean_mm']:>6.4f} {r['expected_mean_mm']:>6.4f}")
    best = min(r["evaluate_s"] for r in rows)
    print(f"best evaluate: {best:.2f} s (target < 10 s)")
    if args.json_out:
        args.json_out.write_text(json.dumps({"rows": rows, "best_evaluate_s": best}, indent=1))


if __name__ == "__main__":
    main()
