"""Time the pure-PyTorch rasterizer: rasterize + interpolate, forward and backward.

    python benchmarks/render_speed.py [--device cpu] [--json-out FILE]
"""
from __future__ import annotations

import argparse
import json
import platform
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from render_scene import SCENES  # noqa: E402

from shrn_core.render import create_context, interpolate, rasterize, refresh_rast  # noqa: E402

CASES = [  # (scene, resolution, batch)
    ("sphere20k", 256, 1),
    ("sphere20k", 512, 1),
    ("surface35k", 256, 1),
    ("surface35k", 512, 1),
    ("sphere82k", 512, 1),
    ("surface35k", 256, 4),
]


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_case(ctx, scene, resolution, batch, repeats):
    pos, tri, colours = SCENES[scene](resolution, batch, ctx.device)
    pos.requires_grad_(True)
    colours.requires_grad_(True)

    def step():
        rast, _ = rasterize(ctx, pos, tri, (resolution, resolution))
        image, _ = interpolate(colours, rast, tri)
        image.square().sum().backward()
        return rast

    def forward_only():
        with torch.no_grad():
            rast, _ = rasterize(ctx, pos, tri, (resolution, resolution))
            interpolate(colours, rast, tri)

    def refresh_step(rast):
        image, _ = interpolate(colours, refresh_rast(ctx, pos, tri, rast), tri)
        image.square().sum().backward()

    rast = step()
    forward_only()
    timings = {}
    for name, fn in (("forward", forward_only), ("fwd_bwd", step), ("refresh_fwd_bwd", lambda: refresh_step(rast))):
        samples, cpu = [], []
        for _ in range(repeats):
            sync(ctx.device)
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            sync(ctx.device)
            samples.append(1000 * (time.perf_counter() - start))
            cpu.append(1000 * (time.process_time() - start_cpu))
        timings[f"{name}_ms_median"] = round(statistics.median(samples), 2)
        timings[f"{name}_ms_min"] = round(min(samples), 2)
        # CPU time of the process (all threads): with --threads 1 a proxy for the wall time on an idle
        # machine when other jobs share the cores
        timings[f"{name}_cpu_ms_median"] = round(statistics.median(cpu), 2)
    covered = float((rast[..., 3] > 0).float().mean())
    return {"scene": scene, "triangles": int(tri.shape[0]), "resolution": resolution, "batch": batch,
            "covered_fraction": round(covered, 3), **timings}


def time_photo(ctx, resolution, repeats=3):
    """Forward-only render (no gradients) of the 35k-triangle surface at photo resolution."""
    pos, tri, colours = SCENES["surface35k"](resolution, 1, ctx.device)
    best_wall, best_cpu = float("inf"), float("inf")
    for _ in range(repeats):
        sync(ctx.device)
        start, start_cpu = time.perf_counter(), time.process_time()
        with torch.no_grad():
            rast, _ = rasterize(ctx, pos, tri, (resolution, resolution))
            interpolate(colours, rast, tri)
        sync(ctx.device)
        best_wall = min(best_wall, time.perf_counter() - start)
        best_cpu = min(best_cpu, time.process_time() - start_cpu)
    return {"resolution": resolution, "wall_s_min": round(best_wall, 3), "cpu_s_min": round(best_cpu, 3),
            "peak_rss_mb_so_far": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's choice)")
    parser.add_argument("--photo-sizes", type=int, nargs="*", default=[1024, 2048],
                        help="also time forward-only renders at these square resolutions")
    parser.add_argument("--json-out")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    ctx = create_context("torch", args.device)
    load_before = os.getloadavg()[0]
    rows = [time_case(ctx, *case, args.repeats) for case in CASES]
    photo = [time_photo(ctx, size) for size in args.photo_sizes]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    load = round(max(load_before, os.getloadavg()[0]), 2)
    print(f"torch backend on {ctx.device} ({torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"Python {platform.python_version()}, load average {load}); ms per call: wall median (min) / process CPU median; "
          f"{args.repeats} repeats")
    print(f"{'scene':>11} {'tris':>6} {'res':>4} {'B':>2} {'cover':>6} {'forward':>22} {'fwd+bwd':>22} {'refresh+bwd':>22}")
    for r in rows:
        cells = [f"{r[f'{k}_ms_median']} ({r[f'{k}_ms_min']}) / {r[f'{k}_cpu_ms_median']}" for k in ("forward", "fwd_bwd", "refresh_fwd_bwd")]
        print(f"{r['scene']:>11} {r['triangles']:>6} {r['resolution']:>4} {r['batch']:>2} {r['covered_fraction']:>6} "
              f"{cells[0]:>22} {cells[1]:>22} {cells[2]:>22}")
    for p in photo:
        print(f"photo-resolution render (no grad) surface35k {p['resolution']}x{p['resolution']}: "
              f"{p['wall_s_min']} s wall, {p['cpu_s_min']} s CPU (min of 3), peak RSS so far {p['peak_rss_mb_so_far']} MB")
    print(f"peak RSS {peak_mb:.0f} MB")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"device": str(ctx.device), "threads": torch.get_num_threads(), "load_average": load,
                                                   "torch": torch.__version__, "cases": rows, "photo": photo,
                                                   "peak_rss_mb": round(peak_mb)}, indent=2))


if __name__ == "__main__":
    main()
