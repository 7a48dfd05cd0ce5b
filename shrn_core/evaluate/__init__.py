"""Evaluation stage: errors of a reconstructed mesh against a 3D scan (NoW and REALY style).

Python API: :func:`evaluate` (one pair -> :class:`EvalResult`); reports in ``evaluate.report``.
Protocols are registered by name in :data:`PROTOCOLS` (``now``, ``realy``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..registry import Registry
from .landmarks import NOW7_MEDIAPIPE, NOW7_NAMES
from .now import evaluate_now
from .pair import EvalPair, load_pair
from .realy import REGIONS, evaluate_realy
from .result import EvalResult, RegionResult

PROTOCOLS: Registry[Callable[..., EvalResult]] = Registry("eval protocol")
PROTOCOLS.register("now")(lambda: evaluate_now)
PROTOCOLS.register("realy")(lambda: evaluate_realy)


def evaluate(pred_path: str | Path, scan_path: str | Path, protocol: str = "now",
             pred_landmarks: str | Path | None = "auto", scan_landmarks: str | Path | None = "auto",
             pred_scale: float = 1.0, scan_scale: float = 1.0, metrical: bool = False, crop: bool = True,
             icp_iterations: int = 30) -> EvalResult:
    """Compare a predicted mesh with a ground-truth scan; distances in mm.

    ``pred_landmarks``/``scan_landmarks``: a landmark file, a folder with ``<stem>.<ext>`` files, or
    ``"auto"`` (shrn meshes: topology vertices; others: a sidecar file next to the mesh).
    ``pred_scale``/``scan_scale`` multiply coordinates into mm. ``metrical``: no scale estimation
    (the prediction must be in mm). ``crop``: NoW face crop (needs the 7 NoW landmarks).
    """
    run = PROTOCOLS.create(protocol)
    pair = load_pair(pred_path, scan_path, pred_landmarks, scan_landmarks, pred_scale, scan_scale)
    return run(pair, metrical=metrical, crop=crop, icp_iterations=icp_iterations)


__all__ = ["EvalPair", "EvalResult", "NOW7_MEDIAPIPE", "NOW7_NAMES", "PROTOCOLS", "REGIONS", "RegionResult",
           "evaluate", "evaluate_now", "evaluate_realy", "load_pair"]
