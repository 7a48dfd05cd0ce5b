"""Compare the torch rasterizer with nvdiffrast on 35k- and 82k-triangle perspective scenes and time both.

    python benchmarks/render_parity.py --device cuda --json-out FILE

Reports, among pixels covered by either backend: the share with the same coverage, the same
triangle id, and the same depth (|dz/w| < 1e-5, or the same id), the max abs difference of an
interpolated attribute and of a textured image on pixels both cover with the same triangle, and
the forward and forward+backward times of each backend (CUDA synchronised, after warm-up). Without
nvdiffrast (or on the CPU) it says so and times the torch backend only.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from render_scene import SCENES  # noqa: E402

from shrn_core.render import create_context, interpolate, nvdiffrast_module, rasterize, texture  # noqa: E402


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def render(ctx, backend, pos, tri, colours, tex, resolution):
    rast, _ = rasterize(ctx, pos, tri, (resolution, resolution))
    image, _ = interpolate(colours, rast, tri, backend=backend)
    shaded = texture(tex, image[..., :2], backend=backend)
    return rast, image, shaded


def timed(fn, device, repeats):
    for _ in range(3):
        fn()
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync(device)
    return 1000 * (time.perf_counter() - start) / repeats


def time_backend(ctx, backend, pos, tri, colours, tex, resolution, repeats):
    pos = pos.detach().requires_grad_(True)
    colours = colours.detach().requires_grad_(True)

    def forward():
        with torch.no_grad():
            render(ctx, backend, pos, tri, colours, tex, resolution)

    def forward_backward():
        _, image, shaded = render(ctx, backend, pos, tri, colours, tex, resolution)
        (image.square().sum() + shaded.sum()).backward()

    return {"forward_ms": round(timed(forward, ctx.device, repeats), 3),
            "fwd_bwd_ms": round(timed(forward_backward, ctx.device, repeats), 3),
            "images_per_s_fwd_bwd": None}


def compare(results_torch, results_nv):
    (rt, it, st), (rn, inv, sn) = results_torch, results_nv
    cov_t, cov_n = rt[..., 3] > 0, rn[..., 3] > 0
    union = cov_t | cov_n
    both = cov_t & cov_n
    same_id = both & (rt[..., 3] == rn[..., 3])
    same_depth = both & (((rt[..., 2] - rn[..., 2]).abs() < 1e-5) | same_id)
    n = max(int(union.sum()), 1)
    return {
        "covered_pixels": int(union.sum()),
        "same_coverage_pct": round(100 * float((cov_t == cov_n)[union].float().mean()), 4),
        "same_triangle_pct": round(100 * int(same_id.sum()) / n, 4),
        "same_depth_pct": round(100 * int(same_depth.sum()) / n, 4),
        "max_abs_diff_uv": float((rt[..., :2] - rn[..., :2])[same_id].abs().max()) if same_id.any() else None,
        "max_abs_diff_interpolated": float((it - inv)[same_id].abs().max()) if same_id.any() else None,
        "max_abs_diff_interpolated_all_covered": float((it - inv)[both].abs().max()) if both.any() else None,
        "mean_abs_diff_interpolated_all_covered": float((it - inv)[both].abs().mean()) if both.any() else None,
        "max_abs_diff_textured": float((st - sn)[same_id].abs().max()) if same_id.any() else None,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--scenes", nargs="+", default=["surface35k", "sphere82k"], choices=sorted(SCENES))
    parser.add_argument("--resolution", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json-out")
    args = parser.parse_args()
    device = torch.device(args.device)
    have_nv = device.type == "cuda" and nvdiffrast_module() is not None
    report = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu", "torch": torch.__version__,
              "nvdiffrast": getattr(sys.modules.get("nvdiffrast"), "__version__", None) if have_nv else None, "cases": []}
    if not have_nv:
        print("nvdiffrast is not available here: timing the torch backend only", file=sys.stderr)
    ctx_torch = create_context("torch", device)
    ctx_nv = create_context("nvdiffrast", device) if have_nv else None
    gen = torch.Generator().manual_seed(0)
    tex = torch.rand(1, 256, 256, 3, generator=gen).to(device)
    for scene in args.scenes:
        for resolution in args.resolution:
            for batch in args.batch:
                pos, tri, colours = SCENES[scene](resolution, batch, device)
                case = {"scene": scene, "triangles": int(tri.shape[0]), "resolution": resolution, "batch": batch}
                backends = [("torch", ctx_torch)] + ([("nvdiffrast", ctx_nv)] if have_nv else [])
                with torch.no_grad():
                    outputs = {name: render(ctx, name, pos, tri, colours, tex, resolution) for name, ctx in backends}
                if have_nv:
                    case["parity"] = compare(outputs["torch"], outputs["nvdiffrast"])
                for name, ctx in backends:
                    timing = time_backend(ctx, name, pos, tri, colours, tex, resolution, args.repeats)
                    timing["images_per_s_fwd_bwd"] = round(1000 * batch / timing["fwd_bwd_ms"], 1)
                    case[name] = timing
                report["cases"].append(case)
                print(json.dumps(case), flush=True)
    print(f"\n{'tris':>6} {'res':>4} {'B':>2} | {'torch fwd':>9} {'torch f+b':>9} | {'nv fwd':>7} {'nv f+b':>7} | {'same id%':>8} {'same z%':>8} {'max|d attr|':>11}")
    for c in report["cases"]:
        nv, par = c.get("nvdiffrast", {}), c.get("parity", {})
        print(f"{c['triangles']:>6} {c['resolution']:>4} {c['batch']:>2} | {c['torch']['forward_ms']:>9} {c['torch']['fwd_bwd_ms']:>9} | "
              f"{nv.get('forward_ms', '-'):>7} {nv.get('fwd_bwd_ms', '-'):>7} | {par.get('same_triangle_pct', '-'):>8} "
              f"{par.get('same_depth_pct', '-'):>8} {par.get('max_abs_diff_interpolated', '-'):>11}")
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
