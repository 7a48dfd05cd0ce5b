"""A per-image model of the visible skin's colour, learned from the patches most likely unoccluded.

Colour is described by shading-invariant chromaticity (r, g) = (R, G) / (R + G + B) plus the log of
the intensity, whose spread is widened: a face lit from one side keeps its chromaticity on the
shadowed side while its brightness halves.

Skin patches (forehead, cheeks, nose bridge, chin) are compared with one another: a face mask, a hand
or hair over some of them makes those patches disagree with the rest. The patches that agree with the
most reliable, most skin-like patch form the seed; a Gaussian fitted to the seed pixels (and refitted
on the pixels of the face region it accepts) describes the skin.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Generic skin chromaticity (r, g): a weak prior that breaks ties between groups of patches, e.g. a
# blue mask covering as much of the face as the visible skin. Broad enough for all skin tones and
# for the colour casts of old photos.
SKIN_RG_MEAN = np.array([0.45, 0.32])
SKIN_RG_STD = np.array([0.07, 0.03])
WARMTH_MIN, WARMTH_SOFTNESS = 0.08, 0.03  # skin has r - b above ~0.08 (chromaticity units)
MIN_STD = np.array([0.012, 0.008, 0.15, 0.8])  # floor of the skin spread in r, g, log intensity, log texture
TEXTURE_FLOOR = 0.02  # log-intensity spread treated as flat (sensor noise, JPEG)
INTENSITY_WIDEN = 2.0  # the seeds see only part of the face's shading range
PATCH_SCALE = np.array([0.03, 0.02, 0.35, 0.5])  # one agreement unit in r, g, log intensity, log texture
AGREEMENT = 1.0  # patches closer than this (in agreement units) to the best patch are seeds
DARK_PATCH = 0.4  # patches darker than this share of the brightest are probably hair or shadow


def colour_features(rgb: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 RGB -> HxWx4 float32 (r, g, log intensity, log texture).

    Texture is the local standard deviation of log intensity (5x5): printed or woven masks, hair
    and frames are busier than skin at the working resolution, whatever their colour.
    """
    values = np.asarray(rgb, np.float32)
    total = values.sum(axis=-1) + 3.0
    log_intensity = np.log(total / 3.0)
    mean = cv2.blur(log_intensity, (5, 5))
    spread = np.sqrt(np.maximum(cv2.blur(log_intensity * log_intensity, (5, 5)) - mean * mean, 0.0))
    return np.stack([values[..., 0] / total, values[..., 1] / total, log_intensity, np.log(spread + TEXTURE_FLOOR)],
                    axis=-1).astype(np.float32)


@dataclass
class SkinModel:
    mean: np.ndarray  # (4,) in colour_features space
    inv_cov: np.ndarray  # (4, 4)
    seed_patches: list[int]  # indices of the patches taken as skin
    mean_rgb: np.ndarray  # (3,) uint8, typical skin colour

    def distance(self, features: np.ndarray) -> np.ndarray:
        """Mahalanobis distance of every pixel's colour features from the skin colour."""
        diff = features.reshape(-1, features.shape[-1]) - self.mean.astype(np.float32)
        d2 = np.einsum("ij,jk,ik->i", diff, self.inv_cov.astype(np.float32), diff)
        return np.sqrt(np.maximum(d2, 0.0)).reshape(features.shape[:-1])


def skin_likeness(r: np.ndarray, g: np.ndarray) -> np.ndarray:
    """0..1: how plausible a chromaticity is for skin. Skin is warm (red well above blue) whatever the
    skin tone; grey, white, blue and green occluders are not. Broad, to survive colour casts."""
    warmth = r - (1.0 - r - g)
    plausible = np.exp(-0.5 * (((np.stack([r, g], -1) - SKIN_RG_MEAN) / SKIN_RG_STD) ** 2).sum(axis=-1))
    return plausible / (1.0 + np.exp(-(warmth - WARMTH_MIN) / WARMTH_SOFTNESS))


def patch_distance(a: np.ndarray, b: np.ndarray) -> float:
    """How different two patch descriptors (r, g, log intensity, log texture) are, in agreement units."""
    return float(np.sqrt((((a - b) / PATCH_SCALE) ** 2).sum()))


def choose_seed_patches(patch_masks: list[np.ndarray], weights: list[float], colour: np.ndarray) -> list[int]:
    """Indices of the patches taken as skin.

    Each patch is described by its median chromaticity, brightness and texture (local contrast).
    The patches that agree with the best-scoring patch form the seed, where a patch scores by the
    prior reliability of the patches agreeing with it, how skin-like its chromaticity is, and
    whether it is bright enough not to be hair or deep shadow.
    """
    usable = [i for i, m in enumerate(patch_masks) if m.sum() >= 3]
    if not usable:
        return []
    descriptors = np.array([np.median(colour[patch_masks[i]], axis=0) for i in usable])
    n = len(usable)
    distance = np.array([[patch_distance(descriptors[a], descriptors[b]) for b in range(n)] for a in range(n)])
    w = np.asarray([weights[i] for i in usable])
    support = (np.exp(-0.5 * distance ** 2) * w[None, :]).sum(axis=1)
    skin_like = skin_likeness(descriptors[:, 0], descriptors[:, 1])
    bright_enough = np.where(np.exp(descriptors[:, 2] - descriptors[:, 2].max()) >= DARK_PATCH, 1.0, 0.2)
    score = support * (0.3 + 0.7 * skin_like) * bright_enough * w
    best = int(np.argmax(score))
    return [usable[k] for k in range(n) if distance[best, k] < AGREEMENT]


def fit_gaussian(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = samples.mean(axis=0)
    dims = samples.shape[1]
    cov = np.cov(samples, rowvar=False) if len(samples) > dims else np.zeros((dims, dims))
    cov = cov + np.diag(MIN_STD[:dims] ** 2)
    widen = np.diag([1.0, 1.0, INTENSITY_WIDEN, 1.0][:dims])
    return mean, np.linalg.inv(widen @ cov @ widen)


def learn_skin_model(colour: np.ndarray, rgb: np.ndarray, seed_pixels: np.ndarray, candidates: np.ndarray,
                     seed_patches: list[int], refine_threshold: float = 2.5, iterations: int = 2) -> SkinModel | None:
    """Fit the skin model on ``seed_pixels`` and refit on the ``candidates`` it accepts; ``None``
    when there are no seed pixels."""
    if seed_pixels.sum() < 3:
        return None
    mean_rgb = np.median(rgb[seed_pixels], axis=0).astype(np.uint8)
    model = SkinModel(*fit_gaussian(colour[seed_pixels]), seed_patches, mean_rgb)
    pixels = colour[candidates]
    for _ in range(iterations):
        accepted = pixels[model.distance(pixels) < refine_threshold]
        if len(accepted) < 10:
            break
        model = SkinModel(*fit_gaussian(accepted), seed_patches, mean_rgb)
    return model
