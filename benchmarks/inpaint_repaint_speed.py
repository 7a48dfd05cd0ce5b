"""Seconds per image of the ``repaint`` backend's diffusion loop, with a random-weight model.

The UNet has the architecture of google/ddpm-celebahq-256 (diffusers ``UNet2DModel``, 256x256,
channels 128-128-256-256-512-512, attention at 16x16), built in memory with random weights: the
speed of RePaint depends on the architecture and the number of model evaluations, not on the
weights. The timed part is ``shrn_core.inpaint.repaint.run_repaint`` on one 256x256 crop with the
lower half masked (the per-image cost of the backend; cropping and pasting back take milliseconds).

    python benchmarks/inpaint_repaint_speed.py --device cuda --json-out repaint_speed.json
    python benchmarks/inpaint_repaint_speed.py --device cpu --model tiny --steps 10 5   # a smoke run
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CELEBAHQ_256 = dict(
    sample_size=256, in_channels=3, out_channels=3, layers_per_block=2,
    block_out_channels=(128, 128, 256, 256, 512, 512),
    down_block_types=("DownBlock2D", "DownBlock2D", "DownBlock2D", "DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "AttnUpBlock2D", "UpBlock2D", "UpBlock2D", "UpBlock2D", "UpBlock2D"),
    act_fn="silu", attention_head_dim=None, center_input_sample=False, downsample_padding=0, flip_sin_to_cos=False,
    freq_shift=1, mid_block_scale_factor=1, norm_eps=1e-6, norm_num_groups=32, time_embedding_type="positional",
)
TINY = dict(sample_size=32, in_channels=3, out_channels=3, layers_per_block=1, block_out_channels=(8, 16),
            down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"),
            norm_num_groups=4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--model", choices=("celebahq256", "tiny"), default="celebahq256")
    parser.add_argument("--steps", type=int, nargs="+", default=[250, 50])
    parser.add_argument("--jump-length", type=int, default=10)
    parser.add_argument("--jump-n-sample", type=int, default=10)
    parser.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default="float32")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()

    import torch
    from diffusers import UNet2DModel

    from shrn_core.device import resolve_device
    from shrn_core.inpaint.repaint import RePaintModel, _count_evaluations, run_repaint

    device = resolve_device(args.device)
    torch.manual_seed(0)
    unet = UNet2DModel(**(CELEBAHQ_256 if args.model == "celebahq256" else TINY))
    unet = unet.to(device).eval()
    if args.dtype != "float32":
        unet = unet.to(getattr(torch, args.dtype))
    model = RePaintModel(unet, {}, Path("<random weights>"))
    size = model.size
    rng = np.random.default_rng(0)
    image = rng.random((size, size, 3)).astype(np.float32)
    known = np.ones((size, size), bool)
    known[size // 2:] = False

    run_repaint(model, image, known, 5, 5, 1, seed=0)  # warm-up: CUDA context, kernels, allocator
    rows = []
    for steps in args.steps:
        evaluations = _count_evaluations(steps, args.jump_length, args.jump_n_sample)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        run_repaint(model, image, known, steps, args.jump_length, args.jump_n_sample, seed=0)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        rows.append({"steps": steps, "jump_length": args.jump_length, "jump_n_sample": args.jump_n_sample,
                     "model_evaluations": evaluations, "seconds_per_image": round(seconds, 3),
                     "ms_per_evaluation": round(1000 * seconds / evaluations, 2)})

    parameters = sum(p.numel() for p in unet.parameters())
    machine = {"device": str(device), "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
               "torch": torch.__version__, "python": platform.python_version(), "dtype": args.dtype,
               "model": args.model, "parameters": parameters, "crop_size": size}
    print(f"RePaint speed, {args.model} UNet ({parameters / 1e6:.1f} M parameters, {size}x{size}), {machine['gpu'] or device}, {args.dtype}")
    print(f"{'steps':>6} {'j':>3} {'r':>3} {'UNet evals':>10} {'s/image':>9} {'ms/eval':>8}")
    for row in rows:
        print(f"{row['steps']:>6} {row['jump_length']:>3} {row['jump_n_sample']:>3} {row['model_evaluations']:>10} "
              f"{row['seconds_per_image']:>9.2f} {row['ms_per_evaluation']:>8.2f}")
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps({"machine": machine, "results": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
