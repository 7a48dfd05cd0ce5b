"""Time the pure-PyTorch rasterizer: rasterize + interpolate, forward and backward.

    python benchmarks/render_speed.py [--device cpu] [--json-out FILE]
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from render_scene import sphere_scene  # noqa: E402

from shrn_core.render import create_context, interpolate, rasterize  # noqa: E402

CASES = [  # (icosphere subdivisions -> triangles, resolution, batch)
    (4, 256, 1),   # 5k triangles
    (5, 256, 1),   # 20k
    (5, 512, 1),
    (6, 512, 1),   # 82k
    (5, 512, 4),
]


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_case(ctx, subdivisions, resolution, batch, repeats):
    pos, tri, colours = sphere_scene(subdivisions, resolution, batch, device=ctx.device)
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

    rast = step()
    forward_only()
    timings = {}
    for name, fn in (("forward_ms", forward_only), ("fwd_bwd_ms", step)):
        sync(ctx.device)
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        sync(ctx.device)
        timings[name] = 1000 * (time.perf_counter() - start) / repeats
    covered = float((rast[..., 3] > 0).float().mean())
    return {"triangles": int(tri.shape[0]), "resolution": resolution, "batch": batch,
            "covered_fraction": round(covered, 3), **{k: round(v, 2) for k, v in timings.items()}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--json-out")
    args = parser.parse_args()
    ctx = create_context("torch", args.device)
    rows = [time_case(ctx, *case, args.repeats) for case in CASES]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"torch backend on {ctx.device} ({torch.get_num_threads()} threads, torch {torch.__version__}, Python {platform.python_version()})")
    print(f"{'triangles':>9} {'res':>5} {'B':>2} {'covered':>8} {'fwd ms':>8} {'fwd+bwd ms':>11}")
    for r in rows:
        print(f"{r['triangles']:>9} {r['resolution']:>5} {r['batch']:>2} {r['covered_fraction']:>8} {r['forward_ms']:>8} {r['fwd_bwd_ms']:>11}")
    print(f"peak RSS {peak_mb:.0f} MB")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"device": str(ctx.device), "threads": torch.get_num_threads(),
                                                   "torch": torch.__version__, "cases": rows, "peak_rss_mb": round(peak_mb)}, indent=2))


if __name__ == "__main__":
    main()
