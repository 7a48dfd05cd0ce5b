"""Where the clean error of the ground-truth benchmark comes from: the face model's own limit, what
sparse landmarks can give, and what the landmark fit gets, on one folder of ``shrn synth`` Surrey faces.

For each clean face of ``DIR/samples`` (as written by ``benchmarks/groundtruth.py``), the identity-only
mesh of the packaged model is scored with the NoW protocol against the true neutral face:

  mean        the model's mean face, no fitting
  fit         the coarse landmark fit (mediapipe's 478 points, ``ModelFitOptions`` defaults); the mid
              and fine levels barely change the neutral mesh, so this is the benchmark's clean setting
  landmarks3d identity fitted to the true face's 49 inner iBUG points in 3D (perfect sparse landmarks,
              depth included; Surrey ``ibug_to_sfm.txt`` -> the model's iBUG vertices; ridge weight 10)
  surface3d   identity fitted to the whole true surface in 3D (closest points, 8 rounds): roughly what
              the model's identity space can reach under this metric (not an exact optimum: the fit
              minimises point distances over the whole overlap, the metric scores the NoW crop)

    python benchmarks/fit_limits.py out/gt [--limit 40] [--json-out F]

Needs the Surrey model folder (``--sfm``, default ../shared/data/sfm) for its iBUG mapping.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import commit, machine, shared_data_dir, write_json  # noqa: E402

METHODS = ("mean", "fit", "landmarks3d", "surface3d")
YAW_BINS = ((0, 20), (20, 40), (40, 90))


def ibug_pairs(sfm_dir: Path) -> list[tuple[int, int]]:
    """(iBUG index 0-based, Surrey vertex) for the 49 inner points (the jaw outline is no fixed vertex)."""
    from shrn_core.synth.models import read_ibug_mapping

    mapping = read_ibug_mapping(sfm_dir / "ibug_to_sfm.txt")
    return [(i, int(v)) for i, v in enumerate(mapping) if i >= 17 and v >= 0]


def ridge_identity(basis: np.ndarray, neutral: np.ndarray, ids: np.ndarray, targets: np.ndarray, weight: float):
    """Identity coefficients moving the model's ``ids`` vertices onto ``targets`` (model frame)."""
    A = basis[:, ids].reshape(len(basis), -1).T
    b = (targets - neutral[ids]).reshape(-1)
    return np.linalg.solve(A.T @ A + weight * np.eye(len(basis)), A.T @ b)


def fit_landmarks3d(model, basis, neutral, pairs, truth_vertices, weight=10.0, rounds=5):
    from shrn_core.geometry.transforms import umeyama

    ids = model.landmarks68[[i for i, _ in pairs]]
    target = truth_vertices[[v for _, v in pairs]]
    a = np.zeros(len(basis))
    for _ in range(rounds):
        shape = neutral + np.einsum("kvc,k->vc", basis, a)
        sim = umeyama(shape[ids], target)
        a = ridge_identity(basis, neutral, ids, sim.inverse().apply(target), weight)
    return neutral + np.einsum("kvc,k->vc", basis, a)


def fit_surface3d(model, basis, neutral, truth_vertices, truth_faces, truth_now7, weight=1.0, rounds=8):
    from shrn_core.geometry.proximity import SurfaceIndex
    from shrn_core.geometry.transforms import umeyama

    surface = SurfaceIndex(truth_vertices, truth_faces)
    a = np.zeros(len(basis))
    sim = umeyama(neutral[model.now7], truth_now7)
    for _ in range(rounds):
        posed = sim.apply(neutral + np.einsum("kvc,k->vc", basis, a))
        near = surface.query(posed)
        close = np.linalg.norm(near.points - posed, axis=1) < 10.0  # parts the true face covers
        ids = np.flatnonzero(close)
        a = ridge_identity(basis, neutral, ids, sim.inverse().apply(near.points[close]), weight)
        shape = neutral + np.einsum("kvc,k->vc", basis, a)
        sim = umeyama(shape[ids], near.points[close])
    return neutral + np.einsum("kvc,k->vc", basis, a)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", type=Path, help="a groundtruth.py --out folder (its samples/ are used)")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--sfm", type=Path, default=None)
    parser.add_argument("--json-out")
    args = parser.parse_args()
    run_commit = commit()

    import torch
    import trimesh

    from shrn_core.errors import ShrnError
    from shrn_core.evaluate import evaluate
    from shrn_core.face import analyze_image
    from shrn_core.facemodel import load_face_model
    from shrn_core.formats.image import read_image
    from shrn_core.formats.mesh import write_obj
    from shrn_core.reconstruct.fit.camera import default_intrinsics
    from shrn_core.reconstruct.fit.model_fit import ViewObservation, fit_model

    torch.set_num_threads(1)
    samples = args.folder / "samples"
    ids = sorted(p.name[: -len(".gt_neutral.obj")] for p in samples.glob("*.gt_neutral.obj"))
    ids = [i for i in ids if "_" not in i]  # clean faces only (not the occluded twins or sweep variants)
    ids = ids[: args.limit] if args.limit else ids
    pairs = ibug_pairs(args.sfm or shared_data_dir() / "sfm")
    model = load_face_model()
    tensors = model.tensors("cpu", torch.float64)
    neutral = tensors["neutral"].numpy().reshape(-1, 3)
    basis = tensors["identity"].numpy().reshape(model.num_identity, -1, 3)
    distances = {m: [] for m in METHODS}
    yaws = []
    skipped = []
    with tempfile.TemporaryDirectory() as scratch:
        for n, sample_id in enumerate(ids):
            truth_path = samples / f"{sample_id}.gt_neutral.obj"
            truth = trimesh.load(truth_path, process=False)
            meta = json.loads((samples / f"{sample_id}.gt.json").read_text())
            image = read_image(samples / f"{sample_id}.png")
            try:
                landmarks = analyze_image(image, hands=False).face.landmarks
            except ShrnError as err:
                skipped.append(f"{sample_id}: {err}")
                continue
            h, w = image.shape[:2]
            view = ViewObservation(landmarks, default_intrinsics(w, h), w, h, np.zeros(len(landmarks), bool))
            meshes = {
                "mean": neutral,
                "fit": fit_model([view], model).neutral[0],
                "landmarks3d": fit_landmarks3d(model, basis, neutral, pairs, np.asarray(truth.vertices)),
                "surface3d": fit_surface3d(model, basis, neutral, np.asarray(truth.vertices), np.asarray(truth.faces),
                                       np.loadtxt(samples / f"{sample_id}.gt_neutral.txt")),
            }
            yaws.append(abs(meta["pose_deg"]["yaw"]))
            for method, vertices in meshes.items():
                path = write_obj(Path(scratch) / f"{method}.obj", np.asarray(vertices, np.float32), model.triangles,
                                 topology=model.name)
                distances[method].append(evaluate(path, truth_path).stats.distances)
            print(f"{n + 1}/{len(ids)} {sample_id} yaw {meta['pose_deg']['yaw']:+.0f}: " + ", ".join(
                f"{m} {np.median(distances[m][-1]):.3f}" for m in METHODS), file=sys.stderr, flush=True)
    rows = {}
    for method in METHODS:
        pooled = np.concatenate(distances[method])
        rows[method] = {"median_mm": float(np.median(pooled)), "mean_mm": float(pooled.mean()),
                        "median_of_face_medians": float(np.median([np.median(d) for d in distances[method]]))}
    print(f"{len(distances['fit'])} faces of {args.folder} (skipped {len(skipped)}); commit {run_commit}; {machine()}")
    print("| identity from | median mm | mean | median of per-face medians |\n|---|---|---|---|")
    for method, row in rows.items():
        print(f"| {method} | {row['median_mm']:.3f} | {row['mean_mm']:.3f} | {row['median_of_face_medians']:.3f} |")
    by_yaw = {}
    for low, high in YAW_BINS:
        chosen = [k for k, yaw in enumerate(yaws) if low <= yaw < high]
        if chosen:
            by_yaw[f"{low}-{high}"] = {m: float(np.median([np.median(distances[m][k]) for k in chosen])) for m in METHODS}
            by_yaw[f"{low}-{high}"]["faces"] = len(chosen)
    print("\nmedian of per-face medians by |yaw| (deg):")
    for label, row in by_yaw.items():
        print(f"  {label} ({row['faces']} faces): " + ", ".join(f"{m} {row[m]:.3f}" for m in METHODS))
    write_json(args.json_out, {"run_commit": run_commit, "benchmark": "fit_limits", "faces": len(distances["fit"]),
                               "skipped": skipped, "rows": rows, "by_yaw": by_yaw})


if __name__ == "__main__":
    main()
