"""Inpainting quality and speed on synthetic occlusions of the unoccluded test photos.

Each clean photo in ``shared/data/faces_*`` gets real occluders (face masks, glasses) from
``occluded_webfaceocc`` pasted at landmark-guided positions (``shrn_core.evaluate.occluders``, fixed
seed). Every backend then fills the pasted occluder's mask, and the result is compared with the
clean photo inside the mask: PSNR (all channels) and SSIM (mean of the SSIM map over masked pixels).

The face-aware backends get the landmarks that the real pipeline would have: those found on the
*occluded* photo (``--landmarks clean`` uses the clean photo's instead). Time is the inpainting call
alone, as wall clock and as this process's CPU time (on a shared, busy machine the CPU time is the
fairer measure); face analysis is timed separately because the pipeline shares it with other stages.

    python benchmarks/inpaint_quality.py --json-out inpaint_quality.json
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
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
PHOTO_FOLDERS = ("faces_hrn", "faces_deca", "faces_3ddfa")


def psnr_in_mask(result: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    diff = result[mask].astype(np.float64) - truth[mask].astype(np.float64)
    return float(10 * np.log10(255.0**2 / max(np.mean(diff**2), 1e-10)))


def ssim_in_mask(result: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    # only the masked area's bounding box (plus the window) matters: crop for speed
    ys, xs = np.nonzero(mask)
    pad = 8
    y0, y1 = max(ys.min() - pad, 0), min(ys.max() + pad + 1, mask.shape[0])
    x0, x1 = max(xs.min() - pad, 0), min(xs.max() + pad + 1, mask.shape[1])
    _, ssim_map = structural_similarity(truth[y0:y1, x0:x1], result[y0:y1, x0:x1], data_range=255, channel_axis=2,
                                        gaussian_weights=True, sigma=1.5, use_sample_covariance=False, full=True)
    return float(ssim_map.mean(axis=2)[mask[y0:y1, x0:x1]].mean())


def one_sided(occluded: np.ndarray, clean: np.ndarray, mask: np.ndarray, landmarks: np.ndarray,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Keep the occluder on one side of the face's midline only (a hand, hair, a phone...)."""
    from shrn_core.face.topology import load_topology

    mirror = load_topology().mirror
    midline = np.asarray(landmarks)[np.flatnonzero(mirror == np.arange(len(mirror))), :2]
    centre = midline.mean(axis=0)
    _, _, vt = np.linalg.svd(midline - centre)
    normal = np.array([-vt[0, 1], vt[0, 0]])
    yy, xx = np.mgrid[0:mask.shape[0], 0:mask.shape[1]]
    side = ((xx + 0.5 - centre[0]) * normal[0] + (yy + 0.5 - centre[1]) * normal[1]) > 0
    if rng.random() < 0.5:
        side = ~side
    half = (mask > 0) & side
    image = np.where(half[:, :, None], occluded, clean)
    return image, np.where(half, 255, 0).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--backends", nargs="+", default=["telea", "ns", "face", "face-nomirror"],
                        help="face-nomirror: the face backend without mirroring (an ablation)")
    parser.add_argument("--per-photo", type=int, default=2, help="occluded versions of each photo")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--landmarks", choices=("occluded", "clean"), default="occluded")
    parser.add_argument("--scenarios", nargs="+", choices=("full", "one-sided"), default=["full", "one-sided"],
                        help="full: the occluder as pasted; one-sided: only its part on one side of the face")
    parser.add_argument("--weights", type=Path, help="repaint: model folder (adds 'repaint' to the backends)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--limit", type=int, help="only the first N photos (smoke runs)")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)

    from shrn_core.errors import FaceError
    from shrn_core.evaluate.occluders import load_occluders, make_synthetic_set
    from shrn_core.face import analyze_image
    from shrn_core.formats.image import read_image
    from shrn_core.inpaint import create_backend, inpaint_with_report

    photos = [p for folder in PHOTO_FOLDERS for p in sorted((args.data / folder).iterdir()) if p.is_file()]
    photos = photos[: args.limit] if args.limit else photos
    occluders = load_occluders(args.data)
    names = list(args.backends) + (["repaint"] if args.weights and "repaint" not in args.backends else [])
    engines = {}
    for name in names:
        options = {"weights": args.weights, "device": args.device} if name == "repaint" else {}
        if name == "face-nomirror":  # ablation: the face backend's diffusion alone (ring + face barrier)
            engines[name] = create_backend("face", mirror=False)
            continue
        engines[name] = create_backend(name, **options)

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO).stdout.strip()
    records = []
    for sample in make_synthetic_set(photos, occluders, seed=args.seed, per_photo=args.per_photo):
        truth = read_image(sample.photo)
        for scenario in args.scenarios:
            image, mask8 = sample.image, sample.mask
            if scenario == "one-sided":
                rng = np.random.default_rng([args.seed, len(records)])
                image, mask8 = one_sided(sample.image, truth, sample.mask, sample.analysis.face.landmarks, rng)
            mask = mask8 > 0
            if not mask.any():
                continue
            start = time.perf_counter()
            try:
                analysis = sample.analysis if args.landmarks == "clean" else analyze_image(image, hands=False)
                face = analysis.face
            except FaceError:
                face = None  # the face backends fall back to diffusion, RePaint cannot run
            analysis_seconds = time.perf_counter() - start
            row = {"photo": f"{sample.photo.parent.name}/{sample.photo.name}", "occluder": sample.occluder,
                   "kind": sample.kind, "scenario": scenario, "size": f"{truth.shape[1]}x{truth.shape[0]}",
                   "masked_pixels": int(mask.sum()), "face_found": face is not None,
                   "analysis_seconds": round(analysis_seconds, 3)}
            for name, engine in engines.items():
                if name == "repaint" and face is None:
                    continue
                cpu_start = time.process_time()
                report = inpaint_with_report(image, mask8, face, engine, analyse_if_missing=False)
                cpu_seconds = time.process_time() - cpu_start
                row[name] = {"psnr": round(psnr_in_mask(report.image, truth, mask), 3),
                             "ssim": round(ssim_in_mask(report.image, truth, mask), 4),
                             "seconds": round(report.seconds, 3), "cpu_seconds": round(cpu_seconds, 3),
                             **({"mirror_fraction": report.info.get("mirror_fraction")} if name == "face" else {})}
            records.append(row)
            print(f"{row['photo']:50s} {sample.occluder:11s} {scenario:9s} " + " ".join(
                f"{n}={row[n]['psnr']:.2f}dB/{row[n]['seconds']:.2f}s" for n in engines if n in row)
                + (f" mirror={row['face']['mirror_fraction']}" if "face" in row else ""), flush=True)

    summary = summarise(records, list(engines))
    print_table(summary, records)
    if args.json_out:
        machine = {"python": platform.python_version(), "platform": platform.platform(), "commit": commit,
                   "cpus": os.cpu_count(), "load_average_at_end": os.getloadavg(),
                   "landmarks": args.landmarks, "per_photo": args.per_photo, "seed": args.seed}
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps({"machine": machine, "summary": summary, "samples": records}, indent=1) + "\n")


def summarise(records: list[dict], backends: list[str]) -> dict:
    summary: dict = {}
    groups = {"all": records, "full": [r for r in records if r["scenario"] == "full"],
              "one-sided": [r for r in records if r["scenario"] == "one-sided"],
              "masks": [r for r in records if r["kind"] == "mask"],
              "glasses": [r for r in records if r["kind"] == "glasses"],
              "1024x1024": [r for r in records if r["size"] == "1024x1024"]}
    for group, rows in groups.items():
        stats = defaultdict(dict)
        for name in backends:
            values = [r[name] for r in rows if name in r]
            if not values:
                continue
            seconds = np.array([v["seconds"] for v in values])
            cpu = np.array([v["cpu_seconds"] for v in values])
            stats[name] = {"n": len(values), "psnr": round(float(np.mean([v["psnr"] for v in values])), 3),
                           "ssim": round(float(np.mean([v["ssim"] for v in values])), 4),
                           "seconds_mean": round(float(seconds.mean()), 3),
                           "seconds_max": round(float(seconds.max()), 3),
                           "cpu_seconds_mean": round(float(cpu.mean()), 3),
                           "cpu_seconds_max": round(float(cpu.max()), 3)}
        if "face" in stats and "telea" in stats:
            paired = [r["face"]["psnr"] - r["telea"]["psnr"] for r in rows if "face" in r and "telea" in r]
            stats["face_minus_telea_db"] = round(float(np.mean(paired)), 3)
        summary[group] = dict(stats)
    return summary


def print_table(summary: dict, records: list[dict]) -> None:
    print(f"\n{len(records)} occluded samples; PSNR/SSIM inside the mask against the clean photo; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'group':10s} {'backend':13s} {'n':>4s} {'PSNR dB':>8s} {'SSIM':>7s} {'s mean':>7s} {'s max':>7s} "
          f"{'cpu mean':>8s} {'cpu max':>8s}")
    for group, stats in summary.items():
        for name, s in stats.items():
            if isinstance(s, dict):
                print(f"{group:10s} {name:13s} {s['n']:>4d} {s['psnr']:>8.2f} {s['ssim']:>7.4f} "
                      f"{s['seconds_mean']:>7.3f} {s['seconds_max']:>7.3f} {s['cpu_seconds_mean']:>8.3f} "
                      f"{s['cpu_seconds_max']:>8.3f}")
        if "face_minus_telea_db" in stats:
            print(f"{group:10s} face - telea: {stats['face_minus_telea_db']:+.2f} dB")


if __name__ == "__main__":
    main()
