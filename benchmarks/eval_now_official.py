"""shrn's NoW protocol side by side with the official NoW evaluation code on synthetic pairs.

Each pair: the mean face (2 subdivisions) as prediction; as scan, the same surface (optionally with
smooth bumps, a real shape difference) under a random similarity, subdivided once, with Gaussian
noise, plus the scan's 7 landmarks (optionally noisy, like manual annotation). Both sides get the
same files. The official side runs in its own venv through eval_now_official_runner.py.

Setup (outside the repo):
    git clone https://github.com/soubhiksanyal/now_evaluation /tmp/now_cmp/official
    python3.11 -m venv /tmp/now_cmp/venv
    /tmp/now_cmp/venv/bin/pip install "numpy<2" scipy trimesh rtree wheel
    /tmp/now_cmp/venv/bin/pip install --no-build-isolation chumpy
Run:
    python benchmarks/eval_now_official.py --official-dir /tmp/now_cmp/official \
        --official-python /tmp/now_cmp/venv/bin/python [--work /tmp/now_cmp/pairs] [--json-out FILE]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

import numpy as np

from shrn_core.evaluate import evaluate
from shrn_core.evaluate.landmarks import NOW7_MEDIAPIPE
from shrn_core.evaluate.synthetic import face_mesh, noisy_scan, random_similarity, write_obj

RUNNER = Path(__file__).with_name("eval_now_official_runner.py")
CASES = [  # name, noise sigma mm, bump amplitude mm, landmark noise mm, seed
    ("noise0.5", 0.5, 0.0, 0.0, 1),
    ("noise1.0_lmk2", 1.0, 0.0, 2.0, 2),
    ("bumps2_noise0.3_lmk1", 0.3, 2.0, 1.0, 3),
    ("bumps4_noise0.5_lmk3", 0.5, 4.0, 3.0, 4),
]


def make_case(folder: Path, sigma: float, bump: float, lmk_sigma: float, seed: int) -> tuple[Path, Path, Path]:
    vertices, faces = face_mesh(2)
    shape = vertices.copy()
    if bump:
        shape[:, 2] += bump * np.sin(shape[:, 0] / 14.0) * np.cos(shape[:, 1] / 17.0)
    transform = random_similarity(seed)
    scan_v, scan_f = noisy_scan(shape, faces, transform, sigma, subdivisions=1, seed=seed)
    landmarks = transform.apply(shape[NOW7_MEDIAPIPE]) + np.random.default_rng(seed).normal(scale=lmk_sigma, size=(7, 3))
    pred = write_obj(folder / "pred.obj", vertices, faces, topology="mediapipe468")
    scan = write_obj(folder / "scan.obj", scan_v, scan_f)
    np.savetxt(folder / "scan.txt", landmarks)
    return pred, scan, folder / "scan.txt"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official-dir", type=Path, required=True, help="checkout of soubhiksanyal/now_evaluation")
    parser.add_argument("--official-python", type=Path, required=True, help="python of a venv with chumpy")
    parser.add_argument("--work", type=Path, default=Path("/tmp/now_cmp/pairs"))
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    rows = []
    for name, sigma, bump, lmk_sigma, seed in CASES:
        folder = args.work / name
        pred, scan, lmk = make_case(folder, sigma, bump, lmk_sigma, seed)
        start = time.perf_counter()
        ours = evaluate(pred, scan)
        ours_s = time.perf_counter() - start
        subprocess.run([str(args.official_python), str(RUNNER), str(args.official_dir), str(pred), str(scan), str(lmk),
                        str(folder / "official.json")], check=True, capture_output=True)
        official = json.loads((folder / "official.json").read_text())
        row = {"case": name, "points": official["count"], "shrn_points": ours.stats.count,
               **{f"official_{k}": official[k] for k in ("median", "mean", "std")},
               "shrn_median": ours.stats.median, "shrn_mean": ours.stats.mean, "shrn_std": ours.stats.std,
               "official_s": official["seconds"], "shrn_s": ours_s}
        for key in ("median", "mean", "std"):
            row[f"{key}_diff_pct"] = 100 * (row[f"shrn_{key}"] - row[f"official_{key}"]) / row[f"official_{key}"]
        rows.append(row)
    print("| case | scan points | official median / mean / std (mm) | shrn median / mean / std (mm) | median diff | mean diff | official s | shrn s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['case']} | {r['points']} | {r['official_median']:.4f} / {r['official_mean']:.4f} / {r['official_std']:.4f} | "
              f"{r['shrn_median']:.4f} / {r['shrn_mean']:.4f} / {r['shrn_std']:.4f} | {r['median_diff_pct']:+.2f}% | "
              f"{r['mean_diff_pct']:+.2f}% | {r['official_s']:.1f} | {r['shrn_s']:.1f} |")
    if args.json_out:
        args.json_out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
