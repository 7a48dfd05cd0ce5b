"""What an evaluation returns; reports and the CLI read only this."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..geometry import DistanceStats, Similarity


@dataclass
class RegionResult:
    """REALY-style errors of one face region (mm)."""

    scan_to_pred: DistanceStats | None
    pred_to_scan: DistanceStats | None
    transform: Similarity  # the region's own rigid refinement, prediction -> scan

    @property
    def error(self) -> float | None:
        """Mean of the two directions' mean distances (either alone when the other is empty)."""
        means = [s.mean for s in (self.scan_to_pred, self.pred_to_scan) if s is not None]
        return float(np.mean(means)) if means else None

    def summary(self) -> dict:
        return {
            "error": self.error,
            "scan_to_pred": self.scan_to_pred.summary() if self.scan_to_pred else None,
            "pred_to_scan": self.pred_to_scan.summary() if self.pred_to_scan else None,
        }


@dataclass
class EvalResult:
    protocol: str
    stats: DistanceStats  # scan -> prediction distances (mm) of the evaluated scan points
    scan_points: np.ndarray  # (N, 3) evaluated scan points, scan frame (mm); stats.distances[i] is point i's error
    scan_faces: np.ndarray  # (M, 3) scan triangles among those points (may be empty)
    transform: Similarity  # prediction -> scan frame
    pred_vertices: np.ndarray  # aligned prediction (scan frame, mm)
    pred_faces: np.ndarray
    view_rotation: np.ndarray  # (3, 3) scan frame -> face frame (x subject's left, y up, z out of the face)
    regions: dict[str, RegionResult] = field(default_factory=dict)
    info: dict = field(default_factory=dict)  # crop, iterations, counts, warnings

    def summary(self) -> dict:
        out = {"protocol": self.protocol, **{k: v for k, v in self.stats.summary().items()}}
        if self.regions:
            out["regions"] = {name: region.summary() for name, region in self.regions.items()}
            errors = [r.error for r in self.regions.values() if r.error is not None]
            out["region_mean_error"] = float(np.mean(errors)) if errors else None
        return out
