"""Segment-stage benchmark: occluder IoU / precision / recall, false positives on clean photos, speed.

Three sets, all from ../shared/data:
  labelled   the 12 WebFace-OCC crops against their ground-truth masks (resized, threshold 128)
  synthetic  the 12 occluders pasted onto the clean photos of faces_* (landmark-guided, seeded)
  clean      the same clean photos untouched: share of the face region marked occluded

Metrics are computed against the full ground truth (which includes occluder parts hanging outside
the face) and, as "face-only", with prediction and truth both restricted to the face region.
Timing covers the segmenter call only; model loading and face analysis are timed separately.

    python benchmarks/segment.py                       # auto backend, CPU
    python benchmarks/segment.py --json-out seg.json
    python benchmarks/segment.py --backend deeplabv3 --weights occ.pth --device cuda
    python benchmarks/segment.py --backend deeplabv3 --random-weights deeplabv3_resnet101 --device cuda --only speed
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from shrn_core.errors import FaceError  # noqa: E402
from shrn_core.evaluate.occluders import load_occluders, make_synthetic_set  # noqa: E402
from shrn_core.formats.image import read_image  # noqa: E402

CLEAN_FOLDERS = ("faces_hrn", "faces_deca", "faces_3ddfa")


def scores(pred: np.ndarray, truth: np.ndarray) -> dict:
    p, t = pred > 0, truth > 0
    inter, union = float((p & t).sum()), float((p | t).sum())
    return {"iou": inter / union if union else 1.0, "precision": inter / p.sum() if p.sum() else float(t.sum() == 0),
            "recall": inter / t.sum() if t.sum() else 1.0}


def face_only(pred: np.ndarray, truth: np.ndarray, region: np.ndarray) -> dict:
    inside = region > 0
    return scores((pred > 0) & inside, (truth > 0) & inside)


def mean_of(rows: list[dict], key: str) -> dict:
    values = [r[key] for r in rows]
    return {m: float(np.mean([v[m] for v in values])) for m in ("iou", "precision", "recall")} if values else {}


class Timed:
    def __init__(self, segmenter):
        self.segmenter = segmenter
        self.seconds: list[float] = []

    def __call__(self, rgb, analysis):
        start = time.perf_counter()
        result = self.segmenter(rgb, analysis)
        self.seconds.append(time.perf_counter() - start)
        return result


def make_backend(args):
    from shrn_core.segment import create_backend

    start = time.perf_counter()
    if args.backend == "deeplabv3" and args.random_weights:
        import torch
        import torchvision.models.segmentation as seg

        path = Path(args.json_out or "segment_bench").with_suffix(".random.pth")
        model = getattr(seg, args.random_weights)(weights=None, weights_backbone=None, num_classes=2)
        torch.save(model.state_dict(), path)
        backend = create_backend("deeplabv3", device=args.device, weights=path, input_size=args.input_size)
        path.unlink()
    elif args.backend == "deeplabv3":
        backend = create_backend("deeplabv3", device=args.device, weights=args.weights, input_size=args.input_size)
    else:
        backend = create_backend(args.backend, device=args.device)
    return backend, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--random-weights", choices=("deeplabv3_resnet50", "deeplabv3_resnet101",
                                                     "deeplabv3_mobilenet_v3_large"),
                        help="deeplabv3 speed only: a randomly initialised model of this architecture")
    parser.add_argument("--input-size", type=int, default=512, help="deeplabv3 crop side")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--per-photo", type=int, default=2, help="synthetic samples per clean photo")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=("labelled", "synthetic", "clean", "speed"), action="append")
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("-v", "--verbose", action="store_true", help="print every image")
    args = parser.parse_args()
    sets = set(args.only or ("labelled", "synthetic", "clean"))

    import torch
    from shrn_core.face import analyze_image, load_models

    torch.set_num_threads(max(torch.get_num_threads(), 1))
    load_models()
    backend, load_seconds = make_backend(args)
    segmenter = Timed(backend)
    report = {"backend": args.backend, "device": args.device, "machine": platform.platform(),
              "python": platform.python_version(), "torch": torch.__version__, "model_load_s": load_seconds,
              "random_weights": args.random_weights, "input_size": args.input_size if args.backend == "deeplabv3" else None}

    occluders = load_occluders(args.data)
    photos = [p for folder in CLEAN_FOLDERS for p in sorted((args.data / folder).iterdir())]
    analysis_seconds: list[float] = []
    analyses = {}
    missed = []

    def analyse(path, rgb=None):
        """Face analysis of a photo (or of ``rgb`` named ``path``), once per input."""
        key = str(path)
        if key not in analyses:
            start = time.perf_counter()
            try:
                analyses[key] = analyze_image(rgb if rgb is not None else path)
            except FaceError:
                analyses[key] = None
            analysis_seconds.append(time.perf_counter() - start)
        if analyses[key] is None:
            raise FaceError("no face found", path)
        return analyses[key]

    if "labelled" in sets:
        rows = []
        for occ in occluders:
            try:
                analysis = analyse(occ.name, occ.rgb)
            except FaceError:
                missed.append(occ.name)
                rows.append({"image": occ.name, "kind": occ.kind, "face_found": False,
                             "full": scores(np.zeros_like(occ.gt_mask), occ.gt_mask)})
                continue
            result = segmenter(occ.rgb, analysis)
            rows.append({"image": occ.name, "kind": occ.kind, "face_found": True,
                         "full": scores(result.mask, occ.gt_mask),
                         "face_only": face_only(result.mask, occ.gt_mask, result.face_region)})
        report["labelled"] = {"rows": rows, "mean": mean_of(rows, "full"),
                              "mean_face_only": mean_of([r for r in rows if r["face_found"]], "face_only")}

    if "synthetic" in sets:
        rows = []
        for sample in make_synthetic_set(photos, occluders, seed=args.seed, per_photo=args.per_photo, analyze=analyse):
            rgb = sample.image
            result = segmenter(rgb, sample.analysis)
            rows.append({"image": sample.photo.name, "occluder": sample.occluder, "kind": sample.kind,
                         "full": scores(result.mask, sample.mask),
                         "face_only": face_only(result.mask, sample.mask, result.face_region)})
        report["synthetic"] = {"rows": rows, "mean": mean_of(rows, "full"), "mean_face_only": mean_of(rows, "face_only"),
                               "by_kind": {k: mean_of([r for r in rows if r["kind"] == k], "full")
                                           for k in ("mask", "glasses")}}

    if "clean" in sets or "speed" in sets:
        rows = []
        for photo in photos:
            try:
                analysis = analyse(photo)
            except FaceError:
                missed.append(photo.name)
                continue
            rgb = read_image(photo)
            result = segmenter(rgb, analysis)
            region = result.face_region > 0
            rows.append({"image": photo.name, "size": list(rgb.shape[:2]),
                         "false_positive": float((result.mask[region] > 0).mean()) if region.any() else 0.0,
                         "seconds": segmenter.seconds[-1]})
        fp = [r["false_positive"] for r in rows]
        report["clean"] = {"rows": rows, "mean_false_positive": float(np.mean(fp)), "max_false_positive": float(np.max(fp)),
                           "photos_over_3pct": int(sum(f > 0.03 for f in fp))}

    report["faces_missed"] = sorted(set(missed))
    report["seconds_per_image"] = {"mean": statistics.mean(segmenter.seconds), "median": statistics.median(segmenter.seconds),
                                   "max": max(segmenter.seconds), "n": len(segmenter.seconds)}
    report["face_analysis_seconds"] = {"mean": statistics.mean(analysis_seconds) if analysis_seconds else None}
    print_report(report, args.verbose)
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=1))


def print_report(report: dict, verbose: bool) -> None:
    out = sys.stdout
    out.write(f"segment benchmark: backend={report['backend']} device={report['device']}\n\n")
    out.write("| set | n | IoU | precision | recall | face-only IoU |\n|---|---|---|---|---|---|\n")
    for name in ("labelled", "synthetic"):
        part = report.get(name)
        if not part:
            continue
        m, f = part["mean"], part.get("mean_face_only") or {}
        out.write(f"| {name} | {len(part['rows'])} | {m['iou']:.3f} | {m['precision']:.3f} | {m['recall']:.3f} | "
                  f"{f.get('iou', float('nan')):.3f} |\n")
    syn = report.get("synthetic")
    if syn:
        for kind, m in syn["by_kind"].items():
            if m:
                out.write(f"| synthetic: {kind} | {sum(r['kind'] == kind for r in syn['rows'])} | {m['iou']:.3f} | "
                          f"{m['precision']:.3f} | {m['recall']:.3f} | |\n")
    clean = report.get("clean")
    if report.get("random_weights"):
        out.write(f"\nrandomly initialised {report['random_weights']} (input {report['input_size']} px): timing only, "
                  "masks are meaningless\n")
    elif clean:
        out.write(f"\nclean photos: {len(clean['rows'])}, false positives: mean {100 * clean['mean_false_positive']:.2f}% "
                  f"of the face region, max {100 * clean['max_false_positive']:.1f}%, "
                  f"{clean['photos_over_3pct']} photo(s) over 3%\n")
    s = report["seconds_per_image"]
    out.write(f"segmenter time per image: mean {s['mean']:.3f} s, median {s['median']:.3f} s, max {s['max']:.3f} s "
              f"(n={s['n']}; model load {report['model_load_s']:.2f} s excluded; face analysis mean "
              f"{report['face_analysis_seconds']['mean'] or 0:.3f} s excluded)\n")
    if report["faces_missed"]:
        out.write(f"faces missed by face analysis: {', '.join(report['faces_missed'])}\n")
    if verbose:
        for name in ("labelled", "synthetic"):
            for row in (report.get(name) or {}).get("rows", []):
                f = row["full"]
                out.write(f"  {name:9s} {row['image'][:40]:40s} {row.get('occluder', row['kind']):10s} "
                          f"IoU {f['iou']:.3f} P {f['precision']:.3f} R {f['recall']:.3f}\n")
        for row in (report.get("clean") or {}).get("rows", []):
            out.write(f"  clean     {row['image'][:40]:40s} FP {100 * row['false_positive']:.2f}%  {row['seconds']:.3f} s\n")


if __name__ == "__main__":
    main()
