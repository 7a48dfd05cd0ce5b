"""A batch of aligned faces being composited, and the face geometry occluders are placed by."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .textures import Random, on_device

# mediapipe face-mesh landmark ids used to place occluders (subject's right = image left when frontal).
RIGHT_EYE_CORNERS = (33, 133)  # outer, inner
LEFT_EYE_CORNERS = (263, 362)
NOSE_TIP, SUBNASALE, NOSE_BRIDGE, BETWEEN_EYES = 1, 2, 6, 168
UPPER_LIP, LOWER_LIP, MOUTH_RIGHT, MOUTH_LEFT = 13, 14, 61, 291
CHIN, FOREHEAD_TOP, FOREHEAD = 152, 10, 151
RIGHT_EDGE, LEFT_EDGE = 234, 454  # face outline at ear level
RIGHT_CHEEK, LEFT_CHEEK = 50, 280
RIGHT_BROW_TOP, LEFT_BROW_TOP = 105, 334
SKIN_SAMPLES = (FOREHEAD, RIGHT_CHEEK, LEFT_CHEEK, 4, 197)  # forehead, cheeks, nose ridge
# Face-mask outline: top edge right -> left (face side, under the eye, nose bridge, ...), then the jaw
# from the left side back round the chin to the right side.
MASK_TOP = (93, 118, 197, 347, 323)
MASK_TOP_LOW = (132, 205, 2, 425, 361)  # where the top edge sits when a mask is worn under the nose
MASK_JAW = (361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176, 149, 150, 136, 172, 58, 132)
OUTER_LIPS = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)
# Anchors for hand-held things and hands: mouth, chin, cheeks, nose, eyes, forehead.
ANCHORS = (13, 152, 50, 280, 205, 425, 1, 159, 386, 151, 61, 291)


@dataclass
class Scene:
    """``image`` (n, 3, S, S) in [0, 1]; ``landmarks`` (n, 478, 2) crop pixels; ``region`` (n, 1, S, S)
    face-mesh union; ``skin`` (n, 3) the face's skin colour; ``bank`` (N, 3, P, P) uint8 photos for
    textures (other faces, clothes, backgrounds); ``X``/``Y`` the pixel-centre grids (1, S, S)."""

    image: torch.Tensor
    landmarks: torch.Tensor
    region: torch.Tensor
    skin: torch.Tensor
    bank: torch.Tensor | None
    X: torch.Tensor
    Y: torch.Tensor
    rng: Random

    @property
    def n(self) -> int:
        return self.image.shape[0]

    @property
    def size(self) -> int:
        return self.image.shape[-1]

    def subset(self, index: torch.Tensor) -> "Scene":
        return Scene(self.image[index], self.landmarks[index], self.region[index], self.skin[index], self.bank,
                     self.X, self.Y, self.rng)

    def point(self, ids) -> torch.Tensor:
        """Landmark(s): an int -> (n, 2); a sequence -> (n, K, 2)."""
        if isinstance(ids, int):
            return self.landmarks[:, ids]
        return self.landmarks[:, on_device(list(ids), self.landmarks.device, torch.long)]

    def eye_centres(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.point(RIGHT_EYE_CORNERS).mean(1), self.point(LEFT_EYE_CORNERS).mean(1)

    def axes(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Unit vectors (n, 2): across the face (subject's right eye -> left eye) and down it."""
        right, left = self.eye_centres()
        across = F.normalize(left - right, dim=-1)
        down = F.normalize(self.point(CHIN) - self.point(FOREHEAD_TOP), dim=-1)
        # Keep "down" perpendicular-ish to "across" (the mesh points can be skewed in profile views;
        # mirrored faces have "across" pointing the other way).
        perpendicular = torch.stack([-across[:, 1], across[:, 0]], -1)
        perpendicular = perpendicular * torch.sign((perpendicular * down).sum(-1, keepdim=True) + 1e-6)
        down = F.normalize(down + perpendicular, dim=-1)
        return across, down

    def face_height(self) -> torch.Tensor:
        return (self.point(CHIN) - self.point(FOREHEAD_TOP)).norm(dim=-1).clamp_min(4.0)

    def face_width(self) -> torch.Tensor:
        return (self.point(LEFT_EDGE) - self.point(RIGHT_EDGE)).norm(dim=-1).clamp_min(4.0)

    def eye_distance(self) -> torch.Tensor:
        right, left = self.eye_centres()
        return (left - right).norm(dim=-1).clamp_min(2.0)

    def anchor(self, ids=ANCHORS, jitter: float = 0.1) -> torch.Tensor:
        """A random landmark from ``ids`` per sample, moved by up to ``jitter`` x face height."""
        choice = on_device(list(ids), self.landmarks.device, torch.long)[self.rng.integers((self.n,), len(ids))]
        point = self.landmarks[torch.arange(self.n, device=choice.device), choice]
        return point + self.rng.normal((self.n, 2), 0.0, jitter) * self.face_height()[:, None]


def estimate_skin(image: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
    """Skin colour (n, 3): median over small blurred patches at forehead, cheeks and nose ridge."""
    size = image.shape[-1]
    blurred = F.avg_pool2d(image, 7, stride=1, padding=3, count_include_pad=False)
    points = landmarks[:, on_device(list(SKIN_SAMPLES), landmarks.device, torch.long)]  # (n, K, 2)
    grid = (points / size * 2.0 - 1.0)[:, None]  # (n, 1, K, 2)
    samples = F.grid_sample(blurred, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return samples[:, :, 0].median(dim=-1).values  # (n, 3)
