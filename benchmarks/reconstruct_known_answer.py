"""Known-answer test of the fit backend: reconstruct a photo, render the textured result under a new
head pose and new lighting, reconstruct that render, and compare the two meshes (mean surface
distance in mm after rigid alignment, over the vertices of the re-reconstructed face). Target < 1.5 mm.

    python benchmarks/reconstruct_known_answer.py [--photos N] [--device cpu] [--json-out FILE]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from reconstruct_common import commit, machine, print_table, render_textured, shared_data_dir, write_json

DEFAULT_PHOTOS = ("faces_hrn/single_view_image__00016.png", "faces_hrn/single_view_image__00034.png",
                  "faces_hrn/single_view_image__00133.png", "faces_hrn/single_view_image__00437.png",
                  "faces_hrn/single_view_image__00521.png", "faces_3ddfa/JianzhuGuo.jpg",
                  "faces_deca/examples__IMG_0392_inputs.jpg", "faces_deca/exp__5.jpg")
NEW_POSE_DEG = (18.0, -8.0, 4.0)  # yaw, pitch, roll added to the fitted head pose


def new_lighting(lighting: np.ndarray) -> np.ndarray:
    """Brighter, with the key light moved to the other side and from below."""
    out = lighting.copy() * 1.15
    out[3] *= -1  # x-linear term: the light crosses to the other side
    out[1] = -0.5 * out[1] + 0.15 * out[0]  # y-linear term
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--photos", type=int, default=len(DEFAULT_PHOTOS))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json-out")
    parser.add_argument("--save-renders", type=Path, help="folder for the synthetic renders")
    args = parser.parse_args()
    run_commit = commit()  # the code that runs, even if HEAD moves meanwhile

    from shrn_core.errors import ShrnError
    from shrn_core.formats.image import read_image, write_image
    from shrn_core.geometry import surface_distance
    from shrn_core.reconstruct import reconstruct

    rows = []
    for name in DEFAULT_PHOTOS[: args.photos]:
        path = shared_data_dir() / name
        photo = read_image(path)
        first = reconstruct(photo, device=args.device, render_outputs=False)
        view = first.views[0]
        R_new = Rotation.from_euler("YXZ", NEW_POSE_DEG, degrees=True).as_matrix() @ view.camera.R
        background = np.full_like(photo, 110)
        render = render_textured(first, R_new, view.camera.t, view.camera.K, new_lighting(view.sh_lighting),
                                 view.camera.width, view.camera.height, background)
        if args.save_renders:
            args.save_renders.mkdir(parents=True, exist_ok=True)
            write_image(args.save_renders / f"{path.stem}.render.png", render)
        started = time.perf_counter()
        try:
            second = reconstruct(render, device=args.device, render_outputs=False)
        except ShrnError as err:
            rows.append({"photo": name, "error": str(err)})
            continue
        elapsed = time.perf_counter() - started
        row = {"photo": name, "seconds": elapsed}
        for level in ("coarse", "fine"):
            stats = surface_distance(second.levels[level], first.levels[level], align="rigid",
                                     landmarks_a=second.levels[level].vertices[:468],
                                     landmarks_b=first.levels[level].vertices[:468])
            row[f"{level}_mean_mm"] = stats.mean
            row[f"{level}_p90_mm"] = stats.p90
        rows.append(row)
        print(f"{name}: fine {row['fine_mean_mm']:.3f} mm", flush=True)
    print_table(rows, ["photo", "coarse_mean_mm", "fine_mean_mm", "fine_p90_mm", "seconds", "error"])
    ok = [r for r in rows if "fine_mean_mm" in r]
    summary = {"photos": len(rows), "failed": len(rows) - len(ok),
               "fine_mean_mm": float(np.mean([r["fine_mean_mm"] for r in ok])) if ok else None,
               "coarse_mean_mm": float(np.mean([r["coarse_mean_mm"] for r in ok])) if ok else None,
               "target_mm": 1.5}
    print(f"mean over {len(ok)} photos: fine {summary['fine_mean_mm']:.3f} mm, coarse {summary['coarse_mean_mm']:.3f} mm "
          f"(target < 1.5 mm); machine: {machine()}; commit {run_commit}")
    write_json(args.json_out, {"run_commit": run_commit, "benchmark": "reconstruct_known_answer", "new_pose_deg": NEW_POSE_DEG,
                               "rows": rows, "summary": summary})


if __name__ == "__main__":
    main()
