"""Time the hrn backend at HRN's real sizes with random weights (official initialisation).

The BFM stand-in is generated in memory at BFM size (189^2 = 35721 vertices, 70688 triangles,
512x512x3x80 albedo basis); the photo is a synthetic 1024x1024 image with mediapipe-style
landmarks of shrn's mean face, so no downloads, photos or face models are needed. Timed per image:
alignment, the four networks, texture unwrapping, de-retouching, deformation/displacement,
rendering the textured and shaded overlays and building the output meshes.

    python benchmarks/hrn_speed.py --device cuda --json-out hrn_speed.json
    python benchmarks/hrn_speed.py --device cpu --iterations 1 --batch-sizes 1 --mv-iterations 0
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # the repo, when shrn is not installed
from common import commit, machine, write_json  # noqa: E402

from shrn_core.device import resolve_device  # noqa: E402
from shrn_core.face.topology import load_topology  # noqa: E402
from shrn_core.face.types import Face, FaceAnalysis  # noqa: E402
from shrn_core.reconstruct.hrn.backend import HRNBackend  # noqa: E402
from shrn_core.reconstruct.hrn.bfm import BFMModel  # noqa: E402
from shrn_core.reconstruct.hrn.model import HRNModel  # noqa: E402
from shrn_core.reconstruct.hrn.networks import HRNNetworks  # noqa: E402
from shrn_core.reconstruct.hrn.synthetic import grid_arrays  # noqa: E402


def synthetic_photo(size: int = 1024, seed: int = 0, yaw: float = 0.0) -> tuple[np.ndarray, FaceAnalysis]:
    """A textured noise photo with the mean face's 478 landmarks (face ~45% of the width)."""
    rng = np.random.default_rng(seed)
    image = (rng.random((size // 8, size // 8, 3)) * 255).astype(np.uint8).repeat(8, 0).repeat(8, 1)
    shape = load_topology().mean_shape.astype(np.float64)
    c, s = np.cos(yaw), np.sin(yaw)
    shape = shape @ np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]).T
    px_per_mm = 0.45 * size / np.ptp(shape[:, 0])
    points = np.stack([size / 2 + shape[:, 0] * px_per_mm, size / 2 - shape[:, 1] * px_per_mm, -shape[:, 2] * px_per_mm], 1)
    face = Face(bbox=np.array([*points[:, :2].min(0), *points[:, :2].max(0)]), score=1.0, landmarks=points.astype(np.float32))
    return image, FaceAnalysis(image_path=f"<synthetic {seed}>", width=size, height=size, faces=[face])


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device, fn, iterations: int) -> list[float]:
    times = []
    for _ in range(iterations):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return times


@torch.no_grad()
def render_parity(backend: HRNBackend) -> dict:
    """Render one prediction with both rasterizer backends: coverage agreement and colour difference."""
    from shrn_core.reconstruct.hrn.render import HRNRenderer  # noqa: PLC0415

    model = backend.model
    image, analysis = synthetic_photo(seed=3)
    views = backend._prepare([image], None, [analysis], {})
    state = model(backend._inputs(views))
    normals = model.normal_maps(state, state.shape_mid, state.displacement)
    colour = model.shade(state, normals, state.albedo)
    posed = state.posed(state.shape_mid)
    results = {}
    for name in ("nvdiffrast", "torch"):
        renderer = HRNRenderer(posed.device, name)
        results[name] = renderer.render_uv_texture(posed, model.bfm.tri, model.bfm.uvs, colour, 512)
    (mask_a, img_a), (mask_b, img_b) = results["nvdiffrast"], results["torch"]
    both = (mask_a * mask_b).sum()
    return {"mask_iou": float(both / ((mask_a + mask_b).clamp(max=1).sum())),
            "mean_abs_colour_diff_in_both": float(((img_a - img_b).abs().mean(1, keepdim=True) * mask_a * mask_b).sum() / both)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch-sizes", default="1,4,8")
    parser.add_argument("--mv-iterations", type=int, default=50, help="MV-HRN fitting iterations for 2 views (0: skip)")
    parser.add_argument("--json-out")
    args = parser.parse_args()
    device = resolve_device(args.device)
    torch.manual_seed(0)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    build = time.perf_counter()
    model = HRNModel(BFMModel(grid_arrays(side=189, tex_side=512)), HRNNetworks())
    backend = HRNBackend(model=model, device=device)
    build = time.perf_counter() - build
    photos = [synthetic_photo(seed=i) for i in range(max(int(b) for b in args.batch_sizes.split(",")))]
    rows = []

    def run(batch: int, renders: bool):
        images, faces = [p[0] for p in photos[:batch]], [p[1] for p in photos[:batch]]
        return backend.reconstruct_batch(images, None, faces, {"renders": renders})

    for batch in (int(b) for b in args.batch_sizes.split(",")):
        for renders in (True, False):
            timed(device, lambda: run(batch, renders), args.warmup)
            times = timed(device, lambda: run(batch, renders), args.iterations)
            per_image = float(np.median(times)) / batch
            rows.append({"case": f"single-view, batch {batch}" + ("" if renders else ", no overlays"), "batch": batch,
                         "renders": renders, "median_s_per_batch": float(np.median(times)), "s_per_image": per_image,
                         "images_per_s": 1.0 / per_image})

    info = run(1, True)[0].info["timings"]
    if args.mv_iterations:
        images, faces = zip(*[synthetic_photo(seed=10, yaw=-0.3), synthetic_photo(seed=11, yaw=0.3)])
        options = {"multi_view": True, "mv_iterations": args.mv_iterations, "renders": True}
        times = timed(device, lambda: backend.reconstruct(list(images), None, list(faces), options), 1)
        rows.append({"case": f"MV-HRN, 2 views, {args.mv_iterations} fitting iterations", "batch": 2, "renders": True,
                     "median_s_per_batch": times[0], "s_per_image": times[0] / 2, "images_per_s": 2 / times[0]})

    render_backend = backend.model.renderer.ctx.backend
    parity = render_parity(backend) if render_backend == "nvdiffrast" else None
    print(f"hrn backend, random weights at real sizes on {device} ({machine()}), render backend {render_backend}, commit {commit()}")
    print(f"model build (BFM-size assets in memory): {build:.1f} s; one image breakdown (s): "
          + ", ".join(f"{k} {v:.3f}" for k, v in info.items()))
    print(f"{'case':<48} {'s/batch':>9} {'s/image':>9} {'images/s':>9}")
    for row in rows:
        print(f"{row['case']:<48} {row['median_s_per_batch']:>9.3f} {row['s_per_image']:>9.3f} {row['images_per_s']:>9.2f}")
    if parity:
        print("HRN render, nvdiffrast vs torch backend: " + ", ".join(f"{k} {v:.4f}" for k, v in parity.items()))
    write_json(args.json_out, {"benchmark": "hrn_speed", "device": str(device), "render_backend": render_backend,
                               "render_parity": parity,
                               "iterations": args.iterations, "build_s": build, "breakdown_one_image_s": info,
                               "rows": rows, "target": "under 0.5 s per image including rendering"})


if __name__ == "__main__":
    main()
