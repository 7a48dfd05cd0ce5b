"""Derive shrn's packaged face model from ICT-FaceKit (run once; the result ships as package data).

    python -m shrn_core.facemodel.derive --ict ../shared/data/ict_facekit --out shrn_core/data/face_model

What it does, in order (all deterministic):

1. Keeps ICT-FaceKit's full face area (vertices 0..9408: face, forehead, ears, jaw sides), splits each
   quad into two triangles and converts centimetres to millimetres.
2. Per-vertex UVs: ICT's own layout is one chart over the face area; the few vertices with two UV
   indices (a material seam) have two nearly equal UVs, so their mean is used.
3. Keeps the first ``--identity`` identity components (variance captured is printed and stored) and
   all 53 expression blendshapes, stored as float16 (their largest rounding error is printed).
4. Mirror map: each vertex's counterpart is the nearest vertex of the x-mirrored neutral (ICT's
   topology is symmetric, so distances are ~0; the largest is stored).
5. mediapipe's 478 points are embedded in the surface once: mediapipe's mean face (shrn's
   ``face_topology.npz``) is aligned to the neutral by a similarity on the 51 inner iBUG points, then
   alternately (a) every mediapipe point is projected onto the closest point of the current model
   surface and (b) identity/expression coefficients and the similarity are re-fitted to those points
   (ridge-regularised least squares), until the embedding stops moving. The final (triangle,
   barycentric) pair of each point is stored, so a fitted face carries mediapipe's points with it.
6. Contour candidates: mediapipe's face-oval points and iBUG jaw points change vertex with the head
   pose (the image outline is the surface's silhouette). For each such point the candidates are the
   narrow-face vertices in a horizontal band at its height on its side of the face; at fit time the
   candidate that lies furthest outwards in the image is used.
7. NoW's 7 landmarks and named regions (labels by position on the neutral face).
"""
from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from ..face.landmark_sets import LANDMARKS_68
from ..face.topology import load_topology
from ..geometry.proximity import nearest_on_surface
from ..geometry.transforms import umeyama
from .model import FACE_OVAL, MODEL_DIR, REGION_NAMES

CM_TO_MM = 10.0
FACE_AREA = 9409  # ICT: vertices 0..9408 are the full face area incl. forehead and ears
NARROW_FACE = 6706  # ICT: vertices 0..6705 are the narrow face (no ears, no neck)
NOW7_FROM_IBUG = (36, 39, 42, 45, 33, 48, 54)
CONTOUR_BAND_MM = 3.0
FIXED_CONTOUR_HALF_WIDTH_MM = 25.0  # points closer than this to the midline (the chin) stay fixed


def triangles_from_quads(quads: np.ndarray) -> np.ndarray:
    """(Q, 4) quads -> (2Q, 3) triangles, winding kept (counter-clockwise seen from outside)."""
    return np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]]).astype(np.int32)


def vertex_uvs(quads: np.ndarray, quad_uv: np.ndarray, uv: np.ndarray, num_vertices: int) -> np.ndarray:
    total = np.zeros((num_vertices, 2))
    count = np.zeros(num_vertices)
    np.add.at(total, quads.ravel(), uv[quad_uv.ravel()])
    np.add.at(count, quads.ravel(), 1)
    return (total / np.maximum(count, 1)[:, None]).astype(np.float32)


def mirror_map(neutral: np.ndarray) -> tuple[np.ndarray, float]:
    mirrored = neutral * np.array([-1.0, 1.0, 1.0])
    dist, idx = cKDTree(neutral).query(mirrored)
    return idx.astype(np.int32), float(dist.max())


def barycentric(points: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """(N, 3) barycentric weights of points (N, 3) in triangles (N, 3, 3) (points on the triangles)."""
    a, b, c = corners[:, 0], corners[:, 1], corners[:, 2]
    v0, v1, v2 = b - a, c - a, points - a
    d00, d01, d11 = (v0 * v0).sum(1), (v0 * v1).sum(1), (v1 * v1).sum(1)
    d20, d21 = (v2 * v0).sum(1), (v2 * v1).sum(1)
    denom = np.where(np.abs(d00 * d11 - d01 * d01) < 1e-18, 1e-18, d00 * d11 - d01 * d01)
    v = (d11 * d20 - d01 * d21) / denom
    w = (d00 * d21 - d01 * d20) / denom
    weights = np.stack([1 - v - w, v, w], 1)
    return np.clip(weights, 0, 1) / np.clip(weights, 0, 1).sum(1, keepdims=True)


def embed_mediapipe(neutral, identity, expression, triangles, ict68, iterations: int = 12):
    """(triangle id (478,), barycentric (478, 3), report) of mediapipe's mean face on the model."""
    mp = load_topology().mean_shape.astype(np.float64)
    inner = np.arange(17, 68)
    sim = umeyama(mp[LANDMARKS_68[inner]], neutral[ict68[inner]])
    points = sim.apply(mp)
    K, E = len(identity), len(expression)
    basis = np.concatenate([identity, expression]).reshape(K + E, -1).T  # (3V, K+E)
    ridge = np.concatenate([np.full(K, 1.0), np.full(E, 3.0)])
    coeffs = np.zeros(K + E)
    previous = None
    movement = []
    for _ in range(iterations):
        shape = neutral + (basis @ coeffs).reshape(-1, 3)
        near = nearest_on_surface(shape, triangles, points)
        tri_ids = near.faces
        bary = barycentric(near.points, shape[triangles[tri_ids]])
        if previous is not None:
            movement.append(float(np.linalg.norm(near.points - previous, axis=1).max()))
        previous = near.points
        # refit coefficients to the points at their current embedding (least squares on all points)
        corner_ids = triangles[tri_ids]  # (478, 3)
        rows = np.einsum("nk,nkcj->ncj", bary, basis.reshape(-1, 3, K + E)[corner_ids])  # (478, 3, K+E)
        base = np.einsum("nk,nkc->nc", bary, neutral[corner_ids])
        A = rows.reshape(-1, K + E)
        b = (points - base).reshape(-1)
        coeffs = np.linalg.solve(A.T @ A + np.diag(ridge * len(points) * 0.05), A.T @ b)
        coeffs[K:] = np.clip(coeffs[K:], 0, 1)
        fitted = base + (A @ coeffs).reshape(-1, 3)
        sim = umeyama(mp, fitted)
        points = sim.apply(mp)
    residual = np.linalg.norm(points - previous, axis=1)
    report = {"iterations": iterations, "last_movement_mm": movement[-1] if movement else None,
              "median_distance_mm": float(np.median(residual)), "max_distance_mm": float(residual.max())}
    return tri_ids.astype(np.int32), bary.astype(np.float32), report


def contour_candidates(neutral: np.ndarray, anchors: np.ndarray, max_candidates: int = 48) -> np.ndarray:
    """(A, C) candidate vertices per anchor vertex (-1 padded); a row of only the anchor = fixed."""
    narrow = neutral[:NARROW_FACE]
    rows = []
    for anchor in anchors:
        p = neutral[anchor]
        if abs(p[0]) < FIXED_CONTOUR_HALF_WIDTH_MM:
            rows.append([anchor])
            continue
        side = np.sign(p[0])
        band = (np.abs(narrow[:, 1] - p[1]) < CONTOUR_BAND_MM) & (narrow[:, 0] * side > FIXED_CONTOUR_HALF_WIDTH_MM / 2)
        ids = np.flatnonzero(band)
        # thin the band to at most max_candidates, keeping the anchor
        if len(ids) > max_candidates:
            order = np.argsort(np.abs(narrow[ids, 0]))
            ids = ids[order[np.linspace(0, len(ids) - 1, max_candidates).round().astype(int)]]
        rows.append([anchor] + [int(i) for i in ids if i != anchor])
    width = max(len(r) for r in rows)
    out = np.full((len(rows), width), -1, np.int32)
    for k, r in enumerate(rows):
        out[k, :len(r)] = r
    return out


def region_labels(neutral: np.ndarray, ict68: np.ndarray) -> np.ndarray:
    """(V,) uint8 index into REGION_NAMES, by position on the neutral face (rules in docs)."""
    lm = neutral[ict68]
    labels = np.full(len(neutral), REGION_NAMES.index("other"), np.uint8)
    x, y, z = neutral.T
    brow_y = lm[17:27, 1].min()
    nose_top, nose_bottom = lm[27, 1], lm[33, 1]
    mouth_top, mouth_bottom = lm[50:53, 1].max() + 5, lm[56:59, 1].min() - 8
    eye_x = np.abs(lm[36:48, 0]).max()
    front = z > lm[0, 2]  # in front of the jaw's ear-side point
    labels[front & (y > brow_y)] = REGION_NAMES.index("forehead")
    labels[front & (y <= brow_y + 3) & (y > nose_top - 12) & (np.abs(x) < eye_x + 5) & (np.abs(x) > 12)] = REGION_NAMES.index("eyes")
    nose_x = np.abs(lm[31:36, 0]).max() + 4
    labels[front & (y <= nose_top + 5) & (y > nose_bottom - 3) & (np.abs(x) <= nose_x)] = REGION_NAMES.index("nose")
    mouth_x = np.abs(lm[[48, 54], 0]).max() + 6
    labels[front & (y <= mouth_top) & (y > mouth_bottom) & (np.abs(x) <= mouth_x)] = REGION_NAMES.index("mouth")
    chin_bottom = lm[8, 1] - 8
    labels[front & (y <= mouth_bottom) & (y > chin_bottom) & (np.abs(x) <= mouth_x + 8)
           & (labels == REGION_NAMES.index("other"))] = REGION_NAMES.index("chin")
    cheek = front & (labels == REGION_NAMES.index("other")) & (y <= nose_top) & (y > lm[4, 1])
    labels[cheek] = REGION_NAMES.index("cheeks")
    ear = (~front) & (np.abs(x) > np.abs(lm[0, 0]) - 8) & (y > lm[4, 1]) & (y < brow_y + 10)
    labels[ear & (np.arange(len(neutral)) >= NARROW_FACE)] = REGION_NAMES.index("ears")
    return labels


def derive(ict_dir: Path, out_dir: Path, identity_count: int) -> dict:
    source = ict_dir / "ict_face_model.npz"
    with np.load(source, allow_pickle=False) as data:
        neutral = data["neutral"][:FACE_AREA].astype(np.float64) * CM_TO_MM
        keep = (data["quads"] < FACE_AREA).all(1)
        quads = data["quads"][keep]
        triangles = triangles_from_quads(quads)
        uvs = vertex_uvs(quads, data["quad_uv"][keep], data["uv"], FACE_AREA)
        identity_all = data["identity"][:, :FACE_AREA].astype(np.float64) * CM_TO_MM
        expression = data["expression"][:, :FACE_AREA].astype(np.float64) * CM_TO_MM
        names = [str(n) for n in data["expression_names"]]
        ict68 = data["landmarks68"].astype(np.int64)
    variance = (identity_all ** 2).sum((1, 2))
    identity = identity_all[:identity_count]
    mirror, mirror_error = mirror_map(neutral)
    tri_ids, bary, embed_report = embed_mediapipe(neutral, identity, expression, triangles.astype(np.int64), ict68)
    oval_anchor = []  # nearest corner of each face-oval point's triangle
    for point in FACE_OVAL:
        corners = triangles[tri_ids[point]]
        oval_anchor.append(int(corners[np.argmax(bary[point])]))
    payload = {
        "neutral": neutral.astype(np.float32),
        "identity_basis": identity.astype(np.float16),
        "expression_basis": expression.astype(np.float16),
        "expression_names": np.array(names),
        "triangles": triangles,
        "uvs": uvs,
        "mirror": mirror,
        "landmarks68": ict68.astype(np.int32),
        "now7": ict68[list(NOW7_FROM_IBUG)].astype(np.int32),
        "jaw_contour": contour_candidates(neutral, ict68[:17]),
        "mediapipe_triangles": tri_ids,
        "mediapipe_barycentric": bary,
        "oval_contour": contour_candidates(neutral, np.array(oval_anchor)),
        "regions": region_labels(neutral, ict68),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = out_dir / "model.npz"
    np.savez_compressed(model_path, **payload)
    float16_error = max(float(np.abs(identity.astype(np.float16).astype(np.float64) - identity).max()),
                        float(np.abs(expression.astype(np.float16).astype(np.float64) - expression).max()))
    config = {
        "format": "shrn.face_model", "schema_version": 1, "name": "ict-face-v1",
        "source": "ICT-FaceKit @ da5f95a607f5e6b37755b38d3385d7f2853732e5 (FaceXModel), MIT licence",
        "derivation": f"python -m shrn_core.facemodel.derive --ict {ict_dir} --identity {identity_count}",
        "units": "mm", "frame": "x to the subject's left, y up, z out of the face (towards a frontal camera)",
        "vertices": int(len(neutral)), "triangles": int(len(triangles)),
        "identity_components": int(identity_count),
        "identity_variance_kept": float(variance[:identity_count].sum() / variance.sum()),
        "expression_names": names,
        "float16_max_error_mm": float16_error,
        "mirror_max_error_mm": mirror_error,
        "mediapipe_embedding": embed_report,
        "regions": list(REGION_NAMES),
        "source_sha1": hashlib.sha1(source.read_bytes()).hexdigest(),
        "model_sha1": hashlib.sha1(model_path.read_bytes()).hexdigest(),
    }
    (out_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (out_dir / "LICENSE").write_text(license_notice((ict_dir / "LICENSE").read_text()))
    return config


def license_notice(ict_license: str) -> str:
    """ICT-FaceKit's MIT notice, which must ship with anything derived from it, under a line that
    says what it covers."""
    return ("shrn's face model (model.npz, config.json) is derived from ICT-FaceKit\n"
            "(https://github.com/ICT-VGL/ICT-FaceKit), distributed under the following licence:\n\n" + ict_license)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ict", type=Path, default=Path("../shared/data/ict_facekit"))
    parser.add_argument("--out", type=Path, default=MODEL_DIR)
    parser.add_argument("--identity", type=int, default=80, help="identity components to keep (of 100)")
    args = parser.parse_args(argv)
    config = derive(args.ict, args.out, args.identity)
    print(json.dumps({k: config[k] for k in ("vertices", "triangles", "identity_components", "identity_variance_kept",
                                             "float16_max_error_mm", "mirror_max_error_mm", "mediapipe_embedding")}, indent=2))
    print(f"model.npz: {(args.out / 'model.npz').stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
