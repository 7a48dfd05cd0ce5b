"""``python -m shrn_core.segment.train {pack,fit,preview}``: build the training pack, train, look at data.

    # here (needs mediapipe): aligned crops of the training photos, and of the held-out clean photos
    python -m shrn_core.segment.train pack ../shared/data/faces_extra/images --out .gpu/segnet_pack.npz
    python -m shrn_core.segment.train pack ../shared/data/faces_hrn ../shared/data/faces_deca \\
        ../shared/data/faces_3ddfa --out .gpu/segnet_heldout_pack.npz
    # on the GPU machine (torch, numpy, OpenCV only): run 1, then run 2 resuming from run 1
    python -m shrn_core.segment.train fit --pack .gpu/segnet_pack.npz --heldout-pack .gpu/segnet_heldout_pack.npz \\
        --out OUT/run1 --minutes 8.5 --budget-minutes 17 --seed 0
    python -m shrn_core.segment.train fit ... --out OUT/run2 --resume OUT/run1/checkpoint.pt --minutes 9 --budget-minutes 17
    # a contact sheet of training samples (image over label)
    python -m shrn_core.segment.train preview --pack .gpu/segnet_pack.npz --out preview.png

See docs/segmentation.md (backend ``learned``) for the recipe and the results.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shrn_core.segment.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    pack = commands.add_parser("pack", help="align the faces of photo folders into a training pack (needs mediapipe)")
    pack.add_argument("folders", nargs="+", type=Path)
    pack.add_argument("--out", type=Path, required=True)
    pack.add_argument("--net-size", type=int, default=256)
    pack.add_argument("--crop-scale", type=float, default=1.25)
    pack.add_argument("--pack-size", type=int, default=320)
    pack.add_argument("--max-faces", type=int, default=4)

    fit = commands.add_parser("fit", help="train (or resume training) the occlusion network")
    fit.add_argument("--pack", type=Path, required=True)
    fit.add_argument("--out", type=Path, required=True, help="folder for checkpoint.pt, curves.json, occlusion_net/")
    fit.add_argument("--minutes", type=float, default=8.5, help="wall-clock limit of this run (from process start)")
    fit.add_argument("--budget-minutes", type=float, default=17.0, help="training time of all runs together")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--resume", type=Path, help="checkpoint.pt of the previous run")
    fit.add_argument("--batch", type=int, default=256)
    fit.add_argument("--data-batch", type=int, default=1024, help="faces generated per generator call")
    fit.add_argument("--reuse", type=int, default=2, help="passes over each generated chunk (later ones mirrored)")
    fit.add_argument("--lr", type=float, default=3e-3)
    fit.add_argument("--device", default="auto")
    fit.add_argument("--heldout-pack", type=Path, help="faces never trained on, for the validation curves only")
    fit.add_argument("--validate-every", type=float, default=60.0, help="seconds between validation points")
    fit.add_argument("--extra-source", help="a second data source, package.module:factory (see data.load_extra_source)")
    fit.add_argument("--extra-share", type=float, default=0.25, help="share of each batch from --extra-source")
    fit.add_argument("--compile", action="store_true", help="torch.compile the model (about a minute of start-up)")
    fit.add_argument("--max-steps", type=int, help="stop this run after so many steps (tests)")
    fit.add_argument("--commit", help="the code's commit, recorded in config.json (default: git, else unknown)")

    preview = commands.add_parser("preview", help="write a contact sheet of training samples")
    preview.add_argument("--pack", type=Path, required=True)
    preview.add_argument("--out", type=Path, required=True)
    preview.add_argument("--count", type=int, default=24)
    preview.add_argument("--seed", type=int, default=0)
    preview.add_argument("--kinds", help="comma-separated occluder kinds (default: the recipe's mix)")
    preview.add_argument("--device", default="auto")

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    from ...errors import ShrnError

    try:
        if args.command == "pack":
            from .pack import build_pack

            meta = build_pack(args.folders, args.out, net_size=args.net_size, crop_scale=args.crop_scale,
                              pack_size=args.pack_size, max_faces=args.max_faces)
            print(args.out)
            logging.getLogger("shrn.segment.train").info("%d faces from %d photos", meta["faces"], meta["photos"])
        elif args.command == "fit":
            from .loop import Trainer, TrainOptions

            options = TrainOptions(pack=args.pack, out=args.out, minutes=args.minutes, budget_minutes=args.budget_minutes,
                                   seed=args.seed, resume=args.resume, batch=args.batch, data_batch=args.data_batch, reuse=args.reuse,
                                   lr=args.lr, device=args.device,
                                   heldout_pack=args.heldout_pack, validate_every_s=args.validate_every,
                                   extra_source=args.extra_source, extra_share=args.extra_share, compile=args.compile,
                                   max_steps=args.max_steps, commit=args.commit)
            Trainer(options).run()
            print(args.out / "occlusion_net")
        else:
            from .preview import write_preview

            print(write_preview(args.pack, args.out, args.count, args.seed, args.kinds, args.device))
    except ShrnError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
