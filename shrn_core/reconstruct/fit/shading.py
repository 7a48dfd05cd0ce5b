"""Second-order spherical-harmonics lighting of a Lambertian surface.

shading_c(n) = sum_k L[k, c] * Y_k(n) with the 9 real orthonormal SH functions in the order
Y00, Y1-1 (y), Y10 (z), Y11 (x), Y2-2 (xy), Y2-1 (yz), Y20 (3z^2-1), Y21 (xz), Y22 (x^2-y^2), n a unit
normal in camera coordinates. The colour of a pixel is albedo * shading.
"""
from __future__ import annotations

import math

import torch

_C0 = 0.5 / math.sqrt(math.pi)
_C1 = math.sqrt(3 / (4 * math.pi))
_C2 = 0.5 * math.sqrt(15 / math.pi)
_C3 = 0.25 * math.sqrt(5 / math.pi)
_C4 = 0.25 * math.sqrt(15 / math.pi)


def sh_basis(normals: torch.Tensor) -> torch.Tensor:
    """(..., 3) unit normals -> (..., 9) basis values."""
    x, y, z = normals.unbind(-1)
    return torch.stack([
        torch.full_like(x, _C0), _C1 * y, _C1 * z, _C1 * x,
        _C2 * x * y, _C2 * y * z, _C3 * (3 * z * z - 1), _C2 * x * z, _C4 * (x * x - y * y),
    ], -1)


def shade(normals: torch.Tensor, lighting: torch.Tensor) -> torch.Tensor:
    """(..., 3) normals, (9, 3) lighting -> (..., 3) shading."""
    return sh_basis(normals) @ lighting


def solve_lighting(normals: torch.Tensor, colors: torch.Tensor, albedo: torch.Tensor | None = None,
                   ridge: float = 1e-3) -> torch.Tensor:
    """Least-squares (9, 3) lighting from (N, 3) normals and observed (N, 3) colours, given a (N, 3)
    albedo (default: 1, so the lighting absorbs the mean skin colour)."""
    basis = sh_basis(normals).double()
    target = colors.double()
    if albedo is None:
        albedo = torch.ones_like(target)
    out = []
    eye = torch.eye(9, dtype=torch.float64, device=basis.device)
    for c in range(3):
        a = basis * albedo[:, c:c + 1].double()
        out.append(torch.linalg.solve(a.T @ a + ridge * len(a) * eye, a.T @ target[:, c]))
    return torch.stack(out, 1).to(normals.dtype)


def frontal_light(device=None, dtype=torch.float32) -> torch.Tensor:
    """A neutral white key light from the upper left front plus ambient, for shaded-geometry renders."""
    direction = torch.tensor([-0.4, 0.5, 0.77], dtype=dtype, device=device)
    direction = direction / direction.norm()
    lighting = torch.zeros(9, 3, dtype=dtype, device=device)
    lighting[0] = 0.45 / _C0
    lighting[[3, 1, 2]] = (0.55 * direction / _C1)[:, None]
    return lighting
