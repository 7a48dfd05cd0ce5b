"""Segment-stage benchmark: occluder IoU / precision / recall, false positives on clean photos, speed;
several backends side by side on the same sets.

Sets, all from ../shared/data (none of them is trained on):
  labelled   the 12 WebFace-OCC crops against their ground-truth masks (resized, threshold 128)
  synthetic  the 12 WebFace-OCC occluders pasted onto the 37 clean photos of faces_* (seeded)
  heldout    procedural occluders of every kind (shrn_core.segment.train.heldout; seeds the training
             never uses) on the same 37 clean photos, at photo resolution
  clean      the 37 clean photos untouched: share of the face region marked occluded

Metrics are computed against the full ground truth (which includes occluder parts hanging outside
the face) and, as "face-only", with prediction and truth both restricted to the face region. The
segmenter call is timed per face (model loading and face analysis excluded, reported separately).
``--only gpu`` measures batched throughput of the learned backend without face analysis (so it runs
where mediapipe is missing): the network alone on aligned crops, and the whole backend
(``segment_batch``: crop warps, network, paste back, face region) on the pack's crops as photos.

    python benchmarks/segment.py                                   # auto and learned, CPU
    python benchmarks/segment.py --backends auto,learned --json-out seg.json -v
    python benchmarks/segment.py --backends learned --weights .gpu/run2/occlusion_net
    python benchmarks/segment.py --backends learned --only gpu --device cuda --pack .gpu/segnet_heldout_pack.npz
    python benchmarks/segment.py --backends deeplabv3 --weights occ.pth --device cuda
    python benchmarks/segment.py --backends deeplabv3 --random-weights deeplabv3_resnet101 --device cuda --only speed
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

CLEAN_FOLDERS = ("faces_hrn", "faces_deca", "faces_3ddfa")
SETS = ("labelled", "synthetic", "heldout", "clean")
TARGETS = {"labelled": "≥ 0.85", "heldout": "≥ 0.85", "fp": "≤ 1.5%", "cpu": "≤ 0.06 s", "gpu": "≥ 300 faces/s"}


def scores(pred: np.ndarray, truth: np.ndarray) -> dict:
    p, t = pred > 0, truth > 0
    inter, union = float((p & t).sum()), float((p | t).sum())
    return {"iou": inter / union if union else 1.0, "precision": inter / p.sum() if p.sum() else float(t.sum() == 0),
            "recall": inter / t.sum() if t.sum() else 1.0}


def face_only(pred: np.ndarray, truth: np.ndarray, region: np.ndarray) -> dict:
    inside = region > 0
    return scores((pred > 0) & inside, (truth > 0) & inside)


def mean_of(rows: list[dict], key: str) -> dict:
    values = [r[key] for r in rows if key in r]
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


def make_backend(name: str, args):
    from shrn_core.segment import create_backend

    start = time.perf_counter()
    if name == "deeplabv3" and args.random_weights:
        import torch
        import torchvision.models.segmentation as seg

        path = Path(args.json_out or "segment_bench").with_suffix(".random.pth")
        model = getattr(seg, args.random_weights)(weights=None, weights_backbone=None, num_classes=2)
        torch.save(model.state_dict(), path)
        backend = create_backend("deeplabv3", device=args.device, weights=path, input_size=args.input_size)
        path.unlink()
    elif name == "deeplabv3":
        backend = create_backend("deeplabv3", device=args.device, weights=args.weights, input_size=args.input_size)
    elif name == "learned":
        backend = create_backend("learned", device=args.device, weights=args.weights, use_hands=args.hands)
    else:
        backend = create_backend(name, device=args.device)
    return backend, time.perf_counter() - start


class Inputs:
    """The benchmark's images and their face analyses (computed once, shared by all backends)."""

    def __init__(self, data: Path, sets: set[str], per_photo: int, seed: int):
        from shrn_core.errors import FaceError
        from shrn_core.evaluate.occluders import load_occluders, make_synthetic_set
        from shrn_core.face import analyze_image, load_models
        from shrn_core.formats.image import read_image
        from shrn_core.segment.train.heldout import make_heldout_set

        load_models()
        self.analysis_seconds: list[float] = []
        self.missed: list[str] = []
        cache: dict = {}

        def analyse(path, rgb=None):
            key = str(path)
            if key not in cache:
                start = time.perf_counter()
                try:
                    cache[key] = analyze_image(rgb if rgb is not None else path)
                except FaceError:
                    cache[key] = None
                self.analysis_seconds.append(time.perf_counter() - start)
            if cache[key] is None:
                raise FaceError("no face found", path)
            return cache[key]

        photos = [p for folder in CLEAN_FOLDERS for p in sorted((data / folder).iterdir())]
        self.labelled, self.synthetic, self.heldout, self.clean = [], [], [], []
        if "labelled" in sets:
            for occ in load_occluders(data):
                try:
                    analysis = analyse(occ.name, occ.rgb)
                except FaceError:
                    analysis = None
                    self.missed.append(occ.name)
                self.labelled.append({"image": occ.name, "kind": occ.kind, "rgb": occ.rgb, "truth": occ.gt_mask,
                                      "analysis": analysis})
        if "synthetic" in sets:
            occluders = load_occluders(data)
            for s in make_synthetic_set(photos, occluders, seed=seed, per_photo=per_photo, analyze=analyse):
                self.synthetic.append({"image": s.photo.name, "kind": s.kind, "occluder": s.occluder, "rgb": s.image,
                                       "truth": s.mask, "analysis": s.analysis})
        if "heldout" in sets:
            for s in make_heldout_set(photos, analyse, per_photo=per_photo):
                self.heldout.append({"image": s.photo.name, "kind": "+".join(s.kinds), "first_kind": s.kinds[0],
                                     "rgb": s.image, "truth": s.mask, "analysis": s.analysis})
        if "clean" in sets or "speed" in sets:
            for photo in photos:
                try:
                    analysis = analyse(photo)
                except FaceError:
                    self.missed.append(photo.name)
                    continue
                self.clean.append({"image": photo.name, "rgb": read_image(photo), "analysis": analysis})


def run_backend(name: str, inputs: Inputs, args) -> dict:
    import torch

    backend, load_seconds = make_backend(name, args)
    segmenter = Timed(backend)
    report = {"backend": name, "model_load_s": load_seconds,
              "model": getattr(getattr(backend, "spec", None), "source", None)}
    for set_name in ("labelled", "synthetic", "heldout"):
        items = getattr(inputs, set_name)
        if not items:
            continue
        rows = []
        for item in items:
            row = {"image": item["image"], "kind": item["kind"], "face_found": item["analysis"] is not None}
            if item["analysis"] is None:
                row["full"] = scores(np.zeros_like(item["truth"]), item["truth"])
            else:
                result = segmenter(item["rgb"], item["analysis"])
                row["full"] = scores(result.mask, item["truth"])
                row["face_only"] = face_only(result.mask, item["truth"], result.face_region)
            row.update({k: item[k] for k in ("occluder", "first_kind") if k in item})
            rows.append(row)
        kinds = sorted({r.get("first_kind", r["kind"]) for r in rows})
        report[set_name] = {"rows": rows, "mean": mean_of(rows, "full"), "mean_face_only": mean_of(rows, "face_only"),
                            "by_kind": {k: mean_of([r for r in rows if r.get("first_kind", r["kind"]) == k], "full")
                                        for k in kinds}}
    if inputs.clean:
        rows = []
        for item in inputs.clean:
            result = segmenter(item["rgb"], item["analysis"])
            region = result.face_region > 0
            rows.append({"image": item["image"], "size": list(item["rgb"].shape[:2]),
                         "false_positive": float((result.mask[region] > 0).mean()) if region.any() else 0.0,
                         "seconds": segmenter.seconds[-1]})
        fp = [r["false_positive"] for r in rows]
        report["clean"] = {"rows": rows, "mean_false_positive": float(np.mean(fp)), "max_false_positive": float(np.max(fp)),
                           "photos_over_3pct": int(sum(f > 0.03 for f in fp)),
                           "seconds_per_face": _seconds(segmenter.seconds[-len(rows):])}
    report["seconds_per_face"] = _seconds(segmenter.seconds)
    del backend
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return report


def _seconds(values: list[float]) -> dict:
    if not values:
        return {}
    return {"mean": statistics.mean(values), "median": statistics.median(values), "max": max(values), "n": len(values)}


def gpu_throughput(args) -> dict:
    """Batched faces/s of the learned backend without face analysis: the network on aligned crops, and
    ``segment_batch`` on the pack's crops used as photos (their stored landmarks as the analysis)."""
    import torch

    from shrn_core.face.types import Face, FaceAnalysis
    from shrn_core.segment.crop import aligned_crop
    from shrn_core.segment.train.pack import load_pack

    backend, load_seconds = make_backend("learned", args)
    pack = load_pack(args.pack)
    size = backend.spec.size
    analyses = []
    for landmarks in pack.landmarks:
        points = np.concatenate([landmarks, np.zeros((len(landmarks), 1), np.float32)], 1)
        box = np.array([*points[:, :2].min(0), *points[:, :2].max(0)], np.float32)
        analyses.append(FaceAnalysis("pack", pack.size, pack.size, [Face(box, 1.0, points)]))
    photos = list(pack.images)
    crops = np.stack([aligned_crop(p, backend.crop_transform(a), size) for p, a in zip(photos, analyses)])
    reps = int(np.ceil(args.gpu_batch / len(crops)))
    batch = np.concatenate([crops] * reps)[:args.gpu_batch]
    backend.batch_size = args.gpu_batch
    sync = torch.cuda.synchronize if backend.device.type == "cuda" else (lambda: None)
    for _ in range(3):
        backend.probability_crops(batch)
    sync()
    start = time.perf_counter()
    for _ in range(args.gpu_repeats):
        backend.probability_crops(batch)
    sync()
    network = args.gpu_repeats * len(batch) / (time.perf_counter() - start)
    many = (photos * reps)[:args.gpu_batch]
    many_analyses = (analyses * reps)[:args.gpu_batch]
    backend.segment_batch(many[:8], many_analyses[:8])
    start = time.perf_counter()
    backend.segment_batch(many, many_analyses)
    whole = len(many) / (time.perf_counter() - start)
    return {"device": str(backend.device), "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "batch": args.gpu_batch, "network_faces_per_s": network, "segment_batch_faces_per_s": whole,
            "photo_size": pack.size, "model_load_s": load_seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--backends", "--backend", default="auto,learned", help="comma-separated backend names")
    parser.add_argument("--weights", type=Path, help="learned: model folder (default: shipped); deeplabv3: checkpoint")
    parser.add_argument("--random-weights", choices=("deeplabv3_resnet50", "deeplabv3_resnet101",
                                                     "deeplabv3_mobilenet_v3_large"),
                        help="deeplabv3 speed only: a randomly initialised model of this architecture")
    parser.add_argument("--input-size", type=int, default=512, help="deeplabv3 crop side")
    parser.add_argument("--hands", action="store_true", help="learned: add the hands found by face analysis")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--per-photo", type=int, default=2, help="synthetic / held-out samples per clean photo")
    parser.add_argument("--seed", type=int, default=0, help="seed of the pasted (synthetic) set")
    parser.add_argument("--only", choices=SETS + ("speed", "gpu"), action="append")
    parser.add_argument("--pack", type=Path, default=REPO / ".gpu" / "segnet_heldout_pack.npz",
                        help="--only gpu: aligned faces to run on (python -m shrn_core.segment.train pack ...)")
    parser.add_argument("--gpu-batch", type=int, default=256)
    parser.add_argument("--gpu-repeats", type=int, default=20)
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("-v", "--verbose", action="store_true", help="print every image")
    args = parser.parse_args()
    sets = set(args.only or SETS)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]

    import torch

    meta = {"device": args.device, "machine": platform.platform(), "cpu_threads": torch.get_num_threads(),
            "python": platform.python_version(), "torch": str(torch.__version__)}
    if sets == {"gpu"}:
        report = {**meta, "gpu_throughput": gpu_throughput(args)}
        g = report["gpu_throughput"]
        print(f"learned backend on {g['device']} ({g['gpu']}), batch {g['batch']}: network {g['network_faces_per_s']:.0f} "
              f"faces/s; segment_batch (warps + paste back on {g['photo_size']} px photos) "
              f"{g['segment_batch_faces_per_s']:.0f} faces/s")
    else:
        inputs = Inputs(args.data, sets, args.per_photo, args.seed)
        report = {**meta, "faces_missed": sorted(set(inputs.missed)),
                  "face_analysis_seconds": _seconds(inputs.analysis_seconds),
                  "random_weights": args.random_weights, "backends": {}}
        from shrn_core.errors import WeightsError

        for name in backends:
            try:
                report["backends"][name] = run_backend(name, inputs, args)
            except WeightsError as err:  # e.g. no trained network installed: report the others
                print(f"skipping backend {name}: {err}", file=sys.stderr)
        if "gpu" in sets and "learned" in backends and torch.cuda.is_available():
            report["gpu_throughput"] = gpu_throughput(args)
        print_report(report, args.verbose)
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=1))


def print_report(report: dict, verbose: bool) -> None:
    out = sys.stdout
    names = list(report["backends"])
    runs = report["backends"]
    out.write(f"segment benchmark: device={report['device']}, backends {', '.join(names)}\n\n")
    out.write("| measure | n | " + " | ".join(names) + " | target |\n|---|---|" + "---|" * len(names) + "---|\n")

    def row(label, n, values, target=""):
        out.write(f"| {label} | {n} | " + " | ".join(values) + f" | {target} |\n")

    first = runs[names[0]]
    for set_name, label in (("labelled", "labelled WebFace-OCC"), ("synthetic", "pasted WebFace-OCC occluders"),
                            ("heldout", "held-out procedural occluders")):
        if set_name not in first:
            continue
        n = len(first[set_name]["rows"])
        target = TARGETS.get(set_name, "")
        row(f"IoU, {label}", n, [f"**{runs[b][set_name]['mean']['iou']:.3f}**" for b in names], target)
        row(f"face-only IoU, {label}", n, [f"{runs[b][set_name]['mean_face_only'].get('iou', float('nan')):.3f}" for b in names])
        row(f"precision / recall, {label}", n, [f"{runs[b][set_name]['mean']['precision']:.2f} / "
                                                  f"{runs[b][set_name]['mean']['recall']:.2f}" for b in names])
        for kind in first[set_name]["by_kind"]:
            row(f"  {label}: {kind}", sum(r.get("first_kind", r["kind"]) == kind for r in first[set_name]["rows"]),
                [f"{runs[b][set_name]['by_kind'][kind]['iou']:.3f}" for b in names])
    if "clean" in first:
        n = len(first["clean"]["rows"])
        row("false positives, clean photos (mean share of face)", n,
            [f"**{100 * runs[b]['clean']['mean_false_positive']:.2f}%**" for b in names], TARGETS["fp"])
        row("clean photos over 3% / max", n, [f"{runs[b]['clean']['photos_over_3pct']} / "
                                              f"{100 * runs[b]['clean']['max_false_positive']:.1f}%" for b in names])
    row("segmenter s/face, median (mean)", first["seconds_per_face"].get("n", 0),
        [f"**{runs[b]['seconds_per_face']['median']:.3f}** ({runs[b]['seconds_per_face']['mean']:.3f})" for b in names],
        TARGETS["cpu"] if report["device"] == "cpu" else "")
    row("model load s", "", [f"{runs[b]['model_load_s']:.2f}" for b in names])
    g = report.get("gpu_throughput")
    if g:
        out.write(f"\nGPU ({g['gpu']}), batch {g['batch']}: network {g['network_faces_per_s']:.0f} faces/s, "
                  f"segment_batch {g['segment_batch_faces_per_s']:.0f} faces/s (target {TARGETS['gpu']})\n")
    if report.get("random_weights"):
        out.write(f"\nrandomly initialised {report['random_weights']}: timing only, masks are meaningless\n")
    fa = report["face_analysis_seconds"]
    out.write(f"\nface analysis (excluded): mean {fa.get('mean', 0):.3f} s over {fa.get('n', 0)} images\n")
    if report["faces_missed"]:
        out.write(f"faces missed by face analysis: {', '.join(report['faces_missed'])}\n")
    if verbose:
        for b in names:
            for set_name in ("labelled", "synthetic", "heldout"):
                for r in (runs[b].get(set_name) or {}).get("rows", []):
                    f = r["full"]
                    out.write(f"  {b:8s} {set_name:9s} {r['image'][:36]:36s} {r.get('occluder', r['kind'])[:20]:20s} "
                              f"IoU {f['iou']:.3f} P {f['precision']:.3f} R {f['recall']:.3f}\n")
            for r in (runs[b].get("clean") or {}).get("rows", []):
                out.write(f"  {b:8s} clean     {r['image'][:36]:36s} FP {100 * r['false_positive']:.2f}%  {r['seconds']:.3f} s\n")


if __name__ == "__main__":
    main()
