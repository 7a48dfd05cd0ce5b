"""Speed of the fit backend at default settings: seconds per image (face analysis done beforehand and
reported apart; model loads and a warm-up run excluded), batched throughput, peak memory.
Targets: < 20 s per image on the 2-core dev CPU; on a GPU with nvdiffrast < 1 s per image and a
batched mode reaching >= 8 images/s; peak memory < 4 GB on CPU.

    python benchmarks/reconstruct_speed.py [--device cpu|cuda] [--limit 10] [--batch 8] [--json-out FILE]
"""
from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from reconstruct_common import clean_photos, commit, machine, print_table, write_json


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--limit", type=int, default=10, help="number of photos (0 = all clean photos)")
    parser.add_argument("--batch", type=int, default=0, help="also time reconstruct_batch with this batch size")
    parser.add_argument("--levels", default="fine")
    parser.add_argument("--no-renders", action="store_true", help="skip the overlay/shading renders")
    parser.add_argument("--json-out")
    args = parser.parse_args()
    run_commit = commit()  # the code that runs, even if HEAD moves meanwhile

    import torch

    from shrn_core.errors import ShrnError
    from shrn_core.face import analyze_image, load_models
    from shrn_core.formats.image import read_image
    from shrn_core.reconstruct import reconstruct, reconstruct_batch
    from shrn_core.render import nvdiffrast_module

    photos = clean_photos()
    photos = photos[: args.limit] if args.limit else photos
    options = {"render_outputs": not args.no_renders}
    load_models()
    items = []
    for path in photos:
        image = read_image(path)
        t0 = time.perf_counter()
        try:
            analysis = analyze_image(image, hands=False)
        except ShrnError as err:
            print(f"skip {path.name}: {err}")
            continue
        items.append((path, image, analysis, time.perf_counter() - t0))
    cuda = args.device.startswith("cuda")
    renderer = "nvdiffrast" if cuda and nvdiffrast_module() is not None else "torch"
    # warm-up (allocations, kernel compilation, first-call imports)
    reconstruct(items[0][1], face_analysis=items[0][2], device=args.device, levels=args.levels, **options)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()

    rows = []
    for path, image, analysis, face_s in items:
        t0 = time.perf_counter()
        recon = reconstruct(image, face_analysis=analysis, device=args.device, levels=args.levels, **options)
        if cuda:
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - t0
        t = recon.info["timings"]
        rows.append({"photo": path.name, "size": f"{image.shape[1]}x{image.shape[0]}", "face_s": face_s,
                     "fit_s": elapsed, "coarse_s": t.get("coarse_s"), "mid_s": t.get("mid_s"), "fine_s": t.get("fine_s"),
                     "albedo_s": t.get("albedo_s"), "render_s": t.get("render_s")})
        print(f"{path.name}: {elapsed:.2f} s", flush=True)
    print_table(rows, ["photo", "size", "face_s", "fit_s", "coarse_s", "mid_s", "fine_s", "albedo_s", "render_s"])
    fit_times = [r["fit_s"] for r in rows]
    summary = {"device": args.device, "renderer": renderer, "levels": args.levels, "images": len(rows),
               "mean_fit_s": float(np.mean(fit_times)), "max_fit_s": float(np.max(fit_times)),
               "mean_face_s": float(np.mean([r["face_s"] for r in rows]))}

    if args.batch:
        images = [i[1] for i in items]
        analyses = [i[2] for i in items]
        reconstruct_batch(images[: args.batch], face_analyses=analyses[: args.batch], device=args.device,
                          levels=args.levels, **options)  # warm-up at this batch size
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        done, parts = 0, []
        for start in range(0, len(images), args.batch):
            chunk = slice(start, start + args.batch)
            recons = reconstruct_batch(images[chunk], face_analyses=analyses[chunk], device=args.device,
                                       levels=args.levels, **options)
            done += len(recons)
            parts.append(recons[0].info["timings"])  # per-photo averages over the batch
        summary["batch_timings_per_photo"] = {key: float(np.mean([p[key] for p in parts if key in p]))
                                              for key in parts[0]}
        print("batched, per photo: " + ", ".join(f"{k} {v:.3f}" for k, v in summary["batch_timings_per_photo"].items()))
        if cuda:
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - t0
        summary.update(batch=args.batch, batch_images=done, batch_seconds=elapsed, batch_images_per_s=done / elapsed)
        print(f"batched (batch {args.batch}): {done} images in {elapsed:.2f} s = {done / elapsed:.2f} images/s")

    summary["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if cuda:
        summary["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    print(f"mean {summary['mean_fit_s']:.2f} s per image (max {summary['max_fit_s']:.2f}), face analysis "
          f"{summary['mean_face_s']:.3f} s; peak RSS {summary['peak_rss_mb']:.0f} MB; renderer {renderer}; "
          f"machine: {machine()}; commit {run_commit}")
    write_json(args.json_out, {"run_commit": run_commit, "benchmark": "reconstruct_speed", "rows": rows, "summary": summary})


if __name__ == "__main__":
    main()
