"""What every inpainting backend implements, and the registry they are found in."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..face.types import Face
from ..registry import Registry


@dataclass
class FillResult:
    """A backend's output: the filled float RGB image plus facts worth reporting."""

    rgb: np.ndarray  # HxWx3 float32 in [0, 1]; only masked pixels are used
    info: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


class Inpainter:
    """Fills the masked pixels of a float RGB image. ``needs_face``: wants the face landmarks."""

    name = "base"
    needs_face = False
    generative = False  # can invent pixels with no known pixel around (a fully masked image)

    def fill(self, rgb: np.ndarray, mask: np.ndarray, face: Face | None, bit_depth: int) -> FillResult:
        raise NotImplementedError


INPAINTERS: Registry[Inpainter] = Registry("inpaint")
