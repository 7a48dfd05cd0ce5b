"""Losses of MV-HRN's multi-view fitting (weights as in the HRN release)."""
from __future__ import annotations

import torch

W_COLOR = 1.92
W_REG, W_ID, W_EXP, W_TEX = 3.0e-4, 1.0, 0.8, 1.7e-2
W_GAMMA = 10.0
W_LM = 1.6e-3 * 0.1
W_DEFORM_TV, W_DEFORM_TV_STD = 1000.0, 10000.0
W_DISP_REG, W_DISP_TV, W_DISP_TV_STD = 1.0, 10000.0, 10000.0
W_CONTOUR = 20.0


def photo_loss(rendered: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Mean per-pixel RGB distance over ``mask`` (B, 1, H, W)."""
    dist = torch.sqrt(eps + ((rendered - target) ** 2).sum(1, keepdim=True)) * mask
    return dist.sum() / mask.sum().clamp(min=1.0)


def landmark_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Weighted squared distance of (B, 68, 2) landmarks; nose ridge (28-30) and inner lips x20."""
    weight = torch.ones(68, dtype=predicted.dtype, device=predicted.device)
    weight[28:31] = 20
    weight[-8:] = 20
    return (((predicted - target) ** 2).sum(-1) * weight).sum() / (predicted.shape[0] * predicted.shape[1])


def coefficient_loss(parts: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(weighted L2 of id/exp/tex, spread of the SH light across colour channels)."""
    batch = parts["id"].shape[0]
    reg = (W_ID * parts["id"].pow(2).sum() + W_EXP * parts["exp"].pow(2).sum() + W_TEX * parts["tex"].pow(2).sum()) / batch
    gamma = parts["gamma"].reshape(-1, 3, 9)
    return reg, ((gamma - gamma.mean(1, keepdim=True)) ** 2).mean()


def total_variation(x: torch.Tensor) -> torch.Tensor:
    dh = (x[:, :, 1:] - x[:, :, :-1]).pow(2)
    dw = (x[:, :, :, 1:] - x[:, :, :, :-1]).pow(2)
    return 2 * (dh.sum() / dh[0].numel() + dw.sum() / dw[0].numel()) / x.shape[0]


def total_variation_spread(x: torch.Tensor) -> torch.Tensor:
    """How unevenly the squared gradients are spread (HRN's ``TVLoss_std``)."""
    dh = (x[:, :, 1:] - x[:, :, :-1]).pow(2)
    dw = (x[:, :, :, 1:] - x[:, :, :, :-1]).pow(2)
    return 2 * (((dh - dh.mean()) ** 2).sum() + ((dw - dw.mean()) ** 2).sum()) / x.shape[0]


def face_edges(face_mask: torch.Tensor, threshold: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row of a (B, 1, H, W) mask: first (+1) and last column above ``threshold``; rows without
    face get (0, W - 1)."""
    inside = face_mask[:, 0] > threshold  # (B, H, W)
    width = inside.shape[-1]
    cols = torch.arange(width, device=face_mask.device)
    any_row = inside.any(-1)
    first = torch.where(inside, cols, width).min(-1).values + 1
    last = torch.where(inside, cols, -1).max(-1).values
    return torch.where(any_row, first, 0), torch.where(any_row, last, width - 1)


def contour_loss(points_2d: torch.Tensor, left: torch.Tensor, right: torch.Tensor, width: int = 224) -> torch.Tensor:
    """Penalise projected vertices (B, V, 2; x right, y down) that fall outside the face mask's
    horizontal extent on their row (HRN's contour-aware loss)."""
    # HRN indexes rows from the bottom with a y-up projection; with y down that row is width-1-ceil(y_up)
    y_up = width - points_2d[..., 1].detach()
    rows = width - 1 - torch.ceil(y_up).long().clamp(0, width - 1)
    b = torch.arange(points_2d.shape[0], device=points_2d.device)[:, None].expand_as(rows)
    lo, hi = left[b, rows].to(points_2d.dtype), right[b, rows].to(points_2d.dtype)
    x = points_2d[..., 0]
    dist = (lo - x) / width * (hi - x) / width
    dist = dist / torch.maximum((lo - x).abs(), (hi - x).abs()).clamp(min=1e-12) * width
    return torch.relu(dist + 0.01).sub(0.01).abs().mean()
