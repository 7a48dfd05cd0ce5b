"""Where the time of `shrn run` goes: the torch profiler over one photo and over one batch.

Models are loaded and a warm-up photo is run first. For each case it prints the wall time, the
stage breakdown the pipeline records, the number of GPU kernels launched, the busy share of the GPU,
and the operators that cost most host time and most device time.

    python benchmarks/profile_run.py --device cuda --batch-size 32 [--limit 32] [--json-out F]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import clean_photos, commit, machine, write_json  # noqa: E402
from shrn_core.pipeline import Engines, PipelineOptions, run  # noqa: E402


def _profile(photos, out, options, use_cuda: bool, top: int) -> dict:
    import torch
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if use_cuda else [])
    start = time.perf_counter()
    with profile(activities=activities) as prof:
        reports = run(photos, out, options)
        if use_cuda:
            torch.cuda.synchronize()
    wall = time.perf_counter() - start
    events = prof.key_averages()
    kernels = sum(e.count for e in events if getattr(e, "device_type", None) is not None
                  and str(e.device_type).endswith("CUDA") and e.self_device_time_total > 0)
    device_busy_s = sum(e.self_device_time_total for e in events) / 1e6 if use_cuda else 0.0
    stage = {}
    for report in reports:
        for name, seconds in report.seconds().items():
            stage.setdefault(name, []).append(seconds)
    by_cpu = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:top]
    by_dev = sorted(events, key=lambda e: e.self_device_time_total, reverse=True)[:top] if use_cuda else []
    return {
        "photos": len(photos), "wall_s": wall, "ok": sum(r.ok for r in reports),
        "stage_seconds_mean": {k: statistics.mean(v) for k, v in stage.items()},
        "gpu_kernels": kernels, "gpu_busy_s": device_busy_s,
        "top_host_ops": [(e.key, e.count, e.self_cpu_time_total / 1e6) for e in by_cpu],
        "top_device_ops": [(e.key, e.count, e.self_device_time_total / 1e6) for e in by_dev],
    }


def _print(name: str, result: dict) -> None:
    print(f"\n## {name}: {result['photos']} photo(s), {result['wall_s']:.2f} s wall "
          f"({result['wall_s'] / result['photos']:.2f} s per photo), {result['ok']} ok")
    print("stages (mean s per photo): " + ", ".join(f"{k} {v:.3f}" for k, v in result["stage_seconds_mean"].items()))
    if result["gpu_kernels"]:
        print(f"GPU kernels launched: {result['gpu_kernels']}, GPU busy {result['gpu_busy_s']:.2f} s "
              f"({100 * result['gpu_busy_s'] / result['wall_s']:.0f}% of the wall time)")
    print("| host op | calls | self s |\n|---|---|---|")
    for key, count, seconds in result["top_host_ops"]:
        print(f"| {key[:60]} | {count} | {seconds:.3f} |")
    if result["top_device_ops"]:
        print("| device op | calls | self s |\n|---|---|---|")
        for key, count, seconds in result["top_device_ops"]:
            print(f"| {key[:60]} | {count} | {seconds:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--limit", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--json-out")
    args = parser.parse_args()

    photos = [p for p in clean_photos() if "trump" not in p.name and "emma" not in p.name][: args.limit]
    use_cuda = args.device.startswith("cuda")
    single = PipelineOptions(device=args.device, overwrite=True)
    Engines(single).load()
    result = {"device": args.device}
    with tempfile.TemporaryDirectory() as out:
        run(photos[:1], out, single)  # warm-up
        result["one_photo"] = _profile(photos[1:2], out, single, use_cuda, args.top)
        batched = PipelineOptions(device=args.device, overwrite=True, batch_size=args.batch_size)
        result["batch"] = _profile(photos, out, batched, use_cuda, args.top)
    print(f"machine: {machine()}  commit: {commit()}")
    _print("one photo", result["one_photo"])
    _print(f"batch of {args.batch_size}", result["batch"])
    write_json(args.json_out, result)


if __name__ == "__main__":
    main()
