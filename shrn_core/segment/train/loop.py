"""The training loop: time-budgeted, resumable, data generated on the device as it trains.

One run trains for at most ``minutes`` of wall-clock time (from process start), then writes
``checkpoint.pt`` (model, optimiser, counters, options; < 16 MB), ``curves.json`` (loss, learning
rate, throughput and validation IoU over time) and the installable model folder ``occlusion_net/``.
``--resume checkpoint.pt`` continues: the learning-rate schedule (warm-up, then cosine decay) runs
over ``budget_minutes`` of training time in all, so two runs of 8.5 minutes with a budget of 17
anneal exactly once; the last run shortens the schedule to finish when its own time runs out.
"""
from __future__ import annotations

import json
import logging
import math
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from ..occnet import CHECKPOINT_FORMAT, OccNet, OccNetConfig, normalise, parameter_count, save_folder
from .augment import FaceBank
from .data import Batch, CompositeSource, MixedSource, Recipe, load_extra_source
from .pack import load_pack

log = logging.getLogger("shrn.segment.train")

WARMUP_STEPS = 300
FINAL_LR_FRACTION = 0.02
SAVE_EVERY_S = 120.0  # a checkpoint also lands every two minutes (a killed run loses little)
MODEL_NOTICE = """Occlusion-segmentation network of shrn (backend `learned`)

Copyright the shrn authors. Licensed under the Apache License, Version 2.0, like the rest of shrn
(https://www.apache.org/licenses/LICENSE-2.0).

These weights were trained from scratch by `python -m shrn_core.segment.train` (command, seed, data
recipe and commit in config.json) on procedurally drawn occluders composited onto aligned crops of
the 245 photos of shrn's test-data folder `faces_extra` (third-party photos collected from public
open-source repositories for research use; see its PROVENANCE.md). No image is stored in the
weights, no pretrained network was used, and no model under a non-commercial licence (such as the
Surrey Face Model) or its renders contributed to them. Check that this provenance suits your use.
"""


@dataclass
class TrainOptions:
    pack: Path
    out: Path
    minutes: float = 8.5
    budget_minutes: float = 17.0
    seed: int = 0
    resume: Path | None = None
    batch: int = 256
    data_batch: int = 1024  # faces generated per generator call (served in training batches)
    reuse: int = 2  # passes over each generated chunk (the second one mirrored)
    lr: float = 3e-3
    weight_decay: float = 5e-5
    iou_weight: float = 0.5
    region_margin: float = 0.2
    device: str = "auto"
    heldout_pack: Path | None = None
    validate_every_s: float = 60.0
    validation_batches: int = 4
    extra_source: str | None = None
    extra_share: float = 0.25
    compile: bool = False
    max_steps: int | None = None  # for tests: stop after this many steps in this run
    commit: str | None = None
    architecture: dict = field(default_factory=lambda: OccNetConfig().to_dict())


def lr_factor(step: int, train_s: float, schedule_s: float) -> float:
    warm = min(1.0, (step + 1) / WARMUP_STEPS)
    progress = min(max(train_s / max(schedule_s, 1e-6), 0.0), 1.0)
    return warm * (FINAL_LR_FRACTION + (1 - FINAL_LR_FRACTION) * 0.5 * (1 + math.cos(math.pi * progress)))


def loss_fn(logits: torch.Tensor, batch: Batch, iou_weight: float) -> torch.Tensor:
    """Weighted BCE + ``iou_weight`` x (1 - soft IoU over the batch), both inside ``batch.weight``."""
    w = batch.weight
    bce = F.binary_cross_entropy_with_logits(logits, batch.label, weight=w, reduction="sum") / w.sum().clamp_min(1.0)
    p = torch.sigmoid(logits) * w
    y = batch.label * w
    inter = (p * y).sum()
    union = (p + y - p * y).sum()
    return bce + iou_weight * (1.0 - (inter + 1.0) / (union + 1.0))


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


class Trainer:
    def __init__(self, options: TrainOptions):
        from ...device import resolve_device

        self.started = time.time()
        self.options = options
        self.device = resolve_device(options.device)
        self.cuda = self.device.type == "cuda"
        if self.cuda:
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        checkpoint = self._load_checkpoint(options.resume) if options.resume else None
        self.history = checkpoint["history"] if checkpoint else {"runs": [], "curves": []}
        self.step = checkpoint["step"] if checkpoint else 0
        self.samples = checkpoint["samples"] if checkpoint else 0
        self.train_s = checkpoint["train_s"] if checkpoint else 0.0
        architecture = checkpoint["architecture"] if checkpoint else options.architecture
        self.run_index = len(self.history["runs"])
        pack = load_pack(options.pack)
        self.pack_meta = pack.meta
        self.size, self.crop_scale = int(pack.meta["net_size"]), float(pack.meta["crop_scale"])
        bank = FaceBank(pack, self.device, options.region_margin)
        self.recipe = Recipe()
        # A different data stream per run (seed, run) so a resumed run does not replay the first one.
        source = CompositeSource(bank, seed=options.seed * 1000 + self.run_index, crop_scale=self.crop_scale,
                                 recipe=self.recipe, chunk=options.data_batch, reuse=options.reuse)
        if options.extra_source:
            extra = load_extra_source(options.extra_source, self.size, self.device, options.seed * 1000 + self.run_index)
            source = MixedSource(source, extra, options.extra_share)
        self.source = source
        self.validation = self._validation_sets(bank, pack)
        self.model = OccNet(OccNetConfig.from_dict(architecture)).to(self.device).to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=options.lr, weight_decay=options.weight_decay)
        if checkpoint:
            self.model.load_state_dict(checkpoint["model"])
            state = checkpoint["optimizer"]
            for values in state["state"].values():
                for key, value in values.items():
                    if torch.is_tensor(value) and value.is_floating_point() and key != "step":
                        values[key] = value.float()
            self.optimizer.load_state_dict(state)
        self.forward = torch.compile(self.model) if options.compile else self.model
        log.info("model: %s, %d parameters; device %s; pack %s (%d faces); run %d", architecture.get("name"),
                 parameter_count(self.model), self.device, options.pack, len(bank), self.run_index + 1)

    # ------------------------------------------------------------------------------------ data
    def _validation_sets(self, bank: FaceBank, pack) -> dict[str, list[Batch]]:
        """Fixed batches (same on every run): new occluders on the training faces, and on held-out
        faces when a second pack is given (never trained on; for the curves only)."""
        sets = {}
        n = min(self.options.batch, 64)
        with torch.no_grad():
            source = CompositeSource(bank, seed=987_654_321, crop_scale=self.crop_scale, recipe=self.recipe)
            sets["val"] = [source.next_batch(n) for _ in range(self.options.validation_batches)]
            if self.options.heldout_pack:
                held = load_pack(self.options.heldout_pack)
                if (held.meta["net_size"], held.meta["crop_scale"]) != (self.size, self.crop_scale):
                    from ...errors import InputError

                    raise InputError(f"held-out pack made for {held.meta['net_size']} px / crop scale "
                                     f"{held.meta['crop_scale']}, training pack for {self.size} px / {self.crop_scale}",
                                     self.options.heldout_pack)
                held_bank = FaceBank(held, self.device, self.options.region_margin)
                source = CompositeSource(held_bank, seed=424_242, crop_scale=self.crop_scale, recipe=self.recipe)
                sets["heldout"] = [source.next_batch(n) for _ in range(self.options.validation_batches)]
        return sets

    # -------------------------------------------------------------------------------- training
    def run(self) -> dict:
        opts = self.options
        deadline = self.started + opts.minutes * 60.0
        budget_s = opts.budget_minutes * 60.0
        final_run = self.train_s + (deadline - time.time()) >= budget_s - 60.0
        run_record = {"run": self.run_index + 1, "seed": opts.seed, "started_step": self.step,
                      "argv": ["python -m shrn_core.segment.train"] + sys.argv[1:], "device": str(self.device), "gpu": _gpu_name(), "python": platform.python_version(),
                      "torch": str(torch.__version__), "final": final_run}
        last_validation = last_save = time.time()
        window = {"loss": 0.0, "n": 0, "t": time.time(), "samples": 0, "data_s": 0.0}
        stop_reason = "budget"
        self.model.train()
        while True:
            now = time.time()
            if self.train_s >= budget_s:
                stop_reason = "budget"
                break
            if now >= deadline:
                stop_reason = "minutes"
                break
            if opts.max_steps is not None and self.step - run_record["started_step"] >= opts.max_steps:
                stop_reason = "max_steps"
                break
            schedule_s = min(budget_s, self.train_s + (deadline - now)) if final_run else budget_s
            lr = opts.lr * lr_factor(self.step, self.train_s, schedule_s)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            tick = time.time()
            with torch.no_grad():
                batch = self.source.next_batch(opts.batch)
            if self.cuda:
                torch.cuda.synchronize()
            data_s = time.time() - tick
            loss = self._train_step(batch)
            step_s = time.time() - tick
            self.train_s += step_s
            self.step += 1
            self.samples += opts.batch
            window["loss"] += loss
            window["n"] += 1
            window["samples"] += opts.batch
            window["data_s"] += data_s
            if time.time() - last_validation >= opts.validate_every_s or self.step == 1:
                self._log_point(window, lr)
                window = {"loss": 0.0, "n": 0, "t": time.time(), "samples": 0, "data_s": 0.0}
                last_validation = time.time()
            if time.time() - last_save >= SAVE_EVERY_S:
                self.save(run_record, stop_reason="periodic")
                last_save = time.time()
        if window["n"]:
            self._log_point(window, lr)
        run_record.update({"steps": self.step - run_record["started_step"], "stop": stop_reason,
                           "wall_s": round(time.time() - self.started, 1)})
        self.save(run_record, stop_reason)
        return run_record

    def _train_step(self, batch: Batch) -> float:
        images = normalise(batch.image).contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.cuda):
            logits = self.forward(images)
        loss = loss_fn(logits.float(), batch, self.options.iou_weight)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 5.0)
        self.optimizer.step()
        if not torch.isfinite(loss):
            from ...errors import NumericalError

            raise NumericalError(f"training loss became {loss.item()} at step {self.step}")
        return float(loss.detach())

    @torch.no_grad()
    def evaluate(self) -> dict:
        self.model.eval()
        out = {}
        for name, batches in self.validation.items():
            inter = union = fp = clean = 0.0
            per_image = []
            for batch in batches:
                images = normalise(batch.image).contiguous(memory_format=torch.channels_last)
                with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.cuda):
                    pred = (self.model(images).float() >= 0.0).float() * batch.weight
                truth = batch.label * batch.weight
                i = (pred * truth).sum(dim=(1, 2, 3))
                u = torch.maximum(pred, truth).sum(dim=(1, 2, 3))
                inter += float(i.sum())
                union += float(u.sum())
                has = truth.sum(dim=(1, 2, 3)) > 0
                per_image += (i[has] / u[has].clamp_min(1)).tolist()
                empty = ~has
                fp += float(pred[empty].sum())
                clean += float(batch.weight[empty].sum())
            out[name] = {"iou_pooled": inter / max(union, 1.0), "iou_mean": sum(per_image) / max(len(per_image), 1),
                         "fp_clean": fp / max(clean, 1.0)}
        self.model.train()
        return out

    def _log_point(self, window: dict, lr: float) -> None:
        elapsed = time.time() - window["t"]
        point = {"step": self.step, "samples": self.samples, "train_s": round(self.train_s, 1),
                 "wall_s": round(time.time() - self.started, 1), "run": self.run_index + 1, "lr": lr,
                 "loss": window["loss"] / max(window["n"], 1),
                 "samples_per_s": window["samples"] / max(elapsed, 1e-6),
                 "data_share": window["data_s"] / max(elapsed, 1e-6)}
        point.update({f"{k}_{m}": v for k, r in self.evaluate().items() for m, v in r.items()})
        self.history["curves"].append(point)
        log.info("step %d  samples %d  loss %.4f  lr %.2e  %.0f samples/s (data %.0f%%)  %s", self.step, self.samples,
                 point["loss"], lr, point["samples_per_s"], 100 * point["data_share"],
                 "  ".join(f"{k} {v:.3f}" for k, v in point.items() if k.endswith(("iou_pooled", "fp_clean"))))

    # ---------------------------------------------------------------------------- checkpoints
    def save(self, run_record: dict, stop_reason: str) -> None:
        from ...formats.core import atomic_write

        out = Path(self.options.out)
        out.mkdir(parents=True, exist_ok=True)
        history = {"runs": self.history["runs"] + ([dict(run_record, stop=stop_reason)] if stop_reason != "periodic" else []),
                   "curves": self.history["curves"]}
        state = self.optimizer.state_dict()
        # Moments in bfloat16 keep the checkpoint small (copies: the live optimiser state stays float32).
        optimizer = {"param_groups": state["param_groups"],
                     "state": {index: {key: value.to(torch.bfloat16) if torch.is_tensor(value) and value.numel() > 1
                                       and value.is_floating_point() else value for key, value in values.items()}
                               for index, values in state["state"].items()}}
        checkpoint = {"format": CHECKPOINT_FORMAT, "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
                      "optimizer": _to_cpu(optimizer), "step": self.step, "samples": self.samples,
                      "train_s": self.train_s, "architecture": self.model.config.to_dict(), "history": history,
                      "input": self.input_spec(), "output": self.output_spec(),
                      "options": _jsonable(asdict(self.options))}
        with atomic_write(out / "checkpoint.pt", "wb") as handle:
            torch.save(checkpoint, handle)
        with atomic_write(out / "curves.json", "w") as handle:
            handle.write(json.dumps(history, indent=1) + "\n")
        if stop_reason != "periodic":
            self.history = history
            folder = save_folder(out / "occlusion_net", self.model, self.model_config(history))
            with atomic_write(folder / "LICENSE", "w") as handle:
                handle.write(MODEL_NOTICE)

    def input_spec(self) -> dict:
        return {"size": self.size, "crop_scale": self.crop_scale, "template": "arcface_112", "channels": "RGB",
                "normalisation": {"mean": 0.5, "std": 0.25, "range": "[0, 1] before normalising"}}

    def output_spec(self) -> dict:
        return {"threshold": 0.5, "region_margin": self.options.region_margin}

    def model_config(self, history: dict) -> dict:
        opts = self.options
        last = history["curves"][-1] if history["curves"] else {}
        return {
            "input": self.input_spec(),
            "output": self.output_spec(),
            "training": {
                "command": [" ".join(r["argv"]) for r in history["runs"]],
                "seed": opts.seed, "steps": self.step, "samples": self.samples,
                "train_minutes": round(self.train_s / 60.0, 2), "batch": opts.batch, "lr": opts.lr,
                "weight_decay": opts.weight_decay, "loss": f"BCE + {opts.iou_weight} x (1 - soft IoU), weighted",
                "commit": opts.commit or os.environ.get("SHRN_COMMIT") or _git_commit(),
                "runs": [{k: r.get(k) for k in ("run", "steps", "wall_s", "gpu", "torch", "stop")} for r in history["runs"]],
                "data": {"pack": {k: self.pack_meta.get(k) for k in ("faces", "photos", "source", "pack_size")},
                         "recipe": self.recipe.to_dict(),
                         "extra_source": opts.extra_source, "extra_share": opts.extra_share if opts.extra_source else 0.0},
                "final_validation": {k: v for k, v in last.items() if "iou" in k or "fp" in k},
            },
            "license": "Apache-2.0 (see LICENSE in this folder)",
        }

    def _load_checkpoint(self, path: Path) -> dict:
        from ...errors import WeightsError

        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # unreadable or unsafe: all mean "cannot resume from this"
            raise WeightsError(f"cannot load the checkpoint to resume from: {str(exc).splitlines()[0][:200]}", path) from None
        if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
            raise WeightsError(f"not a training checkpoint (expected format {CHECKPOINT_FORMAT!r})", path)
        return checkpoint


def _to_cpu(value):
    if torch.is_tensor(value):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_cpu(v) for v in value]
    return value


def _jsonable(value):
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _gpu_name() -> str | None:
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
