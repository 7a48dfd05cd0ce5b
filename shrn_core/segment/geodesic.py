"""Geodesic (edge-aware) distance from skin seeds over the pixel grid.

Walking from pixel to pixel costs the colour change between them beyond the image's noise level,
plus a penalty for colours the skin model rejects. Smooth shading across a cheek costs almost
nothing; crossing the edge of a mask, a lens or a strand of hair costs its contrast, so everything
behind such an edge is "far" from the skin even when its colour resembles skin.
"""
from __future__ import annotations

import cv2
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

CHROMA_SCALE = 200.0  # units per unit of chromaticity (r, g)
INTENSITY_SCALE = 20.0  # units per unit of log intensity: shading steps cost less than colour steps
DARK_LEVEL = 40.0  # below this mean intensity, chromaticity is noise and is down-weighted


def edge_features(rgb: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Per-pixel vector whose Euclidean steps measure contrast: scaled chromaticity, log intensity."""
    intensity = np.asarray(rgb, np.float32).mean(axis=-1)
    chroma_weight = np.minimum(intensity / DARK_LEVEL, 1.0)[..., None]
    return np.concatenate([colour[..., :2] * CHROMA_SCALE * chroma_weight, colour[..., 2:] * INTENSITY_SCALE], axis=-1)


def gradient_magnitude(features: np.ndarray) -> np.ndarray:
    """Per-pixel contrast: norm over channels of the Sobel gradient (per pixel of distance).

    Measured over a 3x3 neighbourhood so that a soft edge spread over two or three pixels (an
    upsampled small photo) still adds up to its full contrast along a path across it.
    """
    total = np.zeros(features.shape[:2], np.float32)
    for channel in range(features.shape[2]):
        plane = np.ascontiguousarray(features[..., channel], np.float32)
        gx = cv2.Sobel(plane, cv2.CV_32F, 1, 0, ksize=3, scale=0.125)
        gy = cv2.Sobel(plane, cv2.CV_32F, 0, 1, ksize=3, scale=0.125)
        total += gx * gx + gy * gy
    return np.sqrt(total)


class PixelGraph:
    """8-connected grid graph over the ``passable`` pixels with contrast-plus-penalty step costs."""

    def __init__(self, gradient: np.ndarray, passable: np.ndarray, node_cost: np.ndarray | None = None,
                 noise: float | None = None, noise_percentile: float = 50.0, noise_factor: float = 1.5):
        height, width = passable.shape
        self.shape = (height, width)
        self.passable = passable
        index = np.arange(height * width).reshape(height, width)
        self.index = index
        if noise is None:
            inside = gradient[passable]
            noise = noise_factor * float(np.percentile(inside, noise_percentile)) if inside.size else 0.0
        self.noise = noise
        cost = np.maximum(gradient - noise, 0.0)
        if node_cost is not None:
            cost = cost + node_cost
        rows, cols, weights = [], [], []
        for dy, dx, length in [(0, 1, 1.0), (1, 0, 1.0), (1, 1, np.sqrt(2.0)), (1, -1, np.sqrt(2.0))]:
            a, b = _shifted_pairs(height, width, dy, dx)
            ok = passable[a] & passable[b]
            rows.append(index[a][ok])
            cols.append(index[b][ok])
            weights.append(length * 0.5 * (cost[a][ok] + cost[b][ok]) + 1e-6)  # a zero weight reads as no edge
        rows, cols, weights = np.concatenate(rows), np.concatenate(cols), np.concatenate(weights)
        self.graph = coo_matrix((weights, (rows, cols)), shape=(height * width, height * width)).tocsr()

    def distance_from(self, sources: np.ndarray) -> np.ndarray:
        """Distance of every pixel from the nearest pixel of the boolean map ``sources`` (inf if unreachable)."""
        nodes = self.index[sources & self.passable]
        if nodes.size == 0:
            return np.full(self.shape, np.inf)
        return dijkstra(self.graph, directed=False, indices=nodes, min_only=True).reshape(self.shape)


def _shifted_pairs(height: int, width: int, dy: int, dx: int) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """Slices selecting each pixel and its neighbour at (dy, dx), for dy >= 0."""
    ys_a = slice(0, height - dy)
    ys_b = slice(dy, height)
    if dx >= 0:
        xs_a, xs_b = slice(0, width - dx), slice(dx, width)
    else:
        xs_a, xs_b = slice(-dx, width), slice(0, width + dx)
    return (ys_a, xs_a), (ys_b, xs_b)
