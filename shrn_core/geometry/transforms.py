"""Similarity transforms (scale, rotation, translation) and their closed-form fit (Umeyama 1991)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError, NumericalError


@dataclass(frozen=True)
class Similarity:
    """``x -> scale * R @ x + t`` applied to row vectors: ``scale * x @ R.T + t``."""

    scale: float = 1.0
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))
    translation: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def apply(self, points: np.ndarray) -> np.ndarray:
        return self.scale * np.asarray(points, dtype=np.float64) @ self.rotation.T + self.translation

    def inverse(self) -> "Similarity":
        rot_inv = self.rotation.T
        return Similarity(1.0 / self.scale, rot_inv, -(rot_inv @ self.translation) / self.scale)

    def then(self, other: "Similarity") -> "Similarity":
        """The transform that applies ``self`` first, then ``other``."""
        return Similarity(
            other.scale * self.scale,
            other.rotation @ self.rotation,
            other.scale * other.rotation @ self.translation + other.translation,
        )

    def matrix(self) -> np.ndarray:
        """4x4 homogeneous matrix (column-vector convention)."""
        out = np.eye(4)
        out[:3, :3] = self.scale * self.rotation
        out[:3, 3] = self.translation
        return out

    def to_dict(self) -> dict:
        return {"scale": float(self.scale), "rotation": self.rotation.tolist(), "translation": self.translation.tolist()}


def umeyama(source: np.ndarray, target: np.ndarray, with_scale: bool = True,
            weights: np.ndarray | None = None) -> Similarity:
    """Least-squares similarity (or rigid, ``with_scale=False``) mapping ``source`` rows onto ``target`` rows.

    Proper rotations only (det = +1): a reflected prediction is an error to be measured, not hidden.
    """
    src = np.asarray(source, dtype=np.float64)
    dst = np.asarray(target, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 3:
        raise InputError(f"point sets for alignment must both be (N, 3); got {src.shape} and {dst.shape}")
    if len(src) < 3:
        raise InputError(f"alignment needs at least 3 point pairs, got {len(src)}")
    if not (np.isfinite(src).all() and np.isfinite(dst).all()):
        raise NumericalError("alignment points contain NaN or inf")
    w = np.ones(len(src)) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    mu_src = w @ src
    mu_dst = w @ dst
    src_c = src - mu_src
    dst_c = dst - mu_dst
    var_src = float(w @ (src_c**2).sum(axis=1))
    if var_src <= 1e-20:
        raise NumericalError("alignment points are all at one place (degenerate)")
    cov = (dst_c * w[:, None]).T @ src_c
    u, sing, vt = np.linalg.svd(cov)
    if np.linalg.matrix_rank(cov, tol=1e-12 * max(sing[0], 1e-300)) < 2:
        raise NumericalError("alignment points are collinear; the rotation is undetermined")
    d = np.ones(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[2] = -1.0
    rotation = u @ np.diag(d) @ vt
    scale = float((sing * d).sum() / var_src) if with_scale else 1.0
    translation = mu_dst - scale * rotation @ mu_src
    return Similarity(scale, rotation, translation)
