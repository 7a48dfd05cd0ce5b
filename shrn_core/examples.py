"""A face photo that ships inside a dependency, so every command can be tried with no download.

scikit-image bundles NASA's public-domain portrait of astronaut Eileen Collins (512x512)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .formats.image import write_image


def example_image() -> np.ndarray:
    """The bundled astronaut portrait as HxWx3 uint8 RGB."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut())


def write_example_image(path: str | Path) -> Path:
    return write_image(path, example_image())
