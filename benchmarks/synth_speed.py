"""Speed of ``shrn synth``: samples per second of the generator (each sample = a clean and an
occluded image with masks and ground truth), on the CPU or a GPU.

    python benchmarks/synth_speed.py [--device cpu|cuda] [--count 64] [--batch-size 8] [--size 256..1024]
        [--mode samples|tensors|files] [--sfm DIR|arrays.npz] [--ict FILE] [--bank FILE] [--json-out F]

``samples``: ``Generator.samples`` (rendered, post-processed, copied to numpy; no files);
``tensors``: ``Generator.tensors`` (training batches left on the device, one size); ``files``: also
writes every file (needs OpenCV). Needs neither mediapipe nor eos-py when ``--sfm`` is an arrays
``.npz`` (``shrn synth --export-sfm``) and ``--bank`` a bank file. The first batch (warm-up: model
loading, rig building) is timed separately.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--count", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--size", default="256..1024")
    parser.add_argument("--mode", default="samples", choices=("samples", "tensors", "files"))
    parser.add_argument("--model", default="sfm")
    parser.add_argument("--sfm")
    parser.add_argument("--ict")
    parser.add_argument("--bank")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--json-out")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from shrn_core.synth import Generator, SynthOptions, load_bank, parse_size
    from shrn_core.synth.bank import cached_procedural_bank
    from shrn_core.render import nvdiffrast_module

    started = time.perf_counter()
    bank = load_bank(args.bank) if args.bank else cached_procedural_bank()
    options = SynthOptions(model=args.model, sfm=Path(args.sfm) if args.sfm else None,
                           ict=Path(args.ict) if args.ict else None, size=parse_size(args.size),
                           batch_size=args.batch_size, device=args.device)
    generator = Generator(options, bank)
    setup = time.perf_counter() - started

    out_dir = Path(tempfile.mkdtemp(prefix="synth_speed_")) if args.mode == "files" else None

    def run(start: int, count: int) -> None:
        if args.mode == "tensors":
            for first in range(start, start + count, args.batch_size):
                batch = generator.tensors(0, range(first, min(first + args.batch_size, start + count)))
                if batch.images.is_cuda:
                    torch.cuda.synchronize()
            return
        from shrn_core.synth import write_sample

        for sample in generator.samples(count, seed=0, start=start):
            if out_dir is not None:
                write_sample(sample, out_dir, bank)

    warm = time.perf_counter()
    run(0, args.batch_size)
    warmup = time.perf_counter() - warm
    timed = time.perf_counter()
    run(args.batch_size, args.count)
    seconds = time.perf_counter() - timed
    backend = generator.renderer.ctx.backend
    result = {
        "mode": args.mode, "device": str(generator.device), "render_backend": backend,
        "nvdiffrast": nvdiffrast_module() is not None, "model": args.model, "size": args.size,
        "batch_size": args.batch_size, "count": args.count, "seconds": round(seconds, 2),
        "samples_per_s": round(args.count / seconds, 2), "images_per_s": round(2 * args.count / seconds, 2),
        "setup_s": round(setup, 2), "warmup_batch_s": round(warmup, 2), "bank": "procedural" if bank.procedural else "photos",
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None, "torch": torch.__version__,
    }
    print(json.dumps(result))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
