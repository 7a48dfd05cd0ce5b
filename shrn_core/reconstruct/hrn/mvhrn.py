"""MV-HRN: joint fitting of several views of one person, starting from per-view HRN predictions.

Shared: the identity coefficients (initialised to the views' mean) and one canonical deformation
map (the views' mean). Per view: expression, texture, pose, lighting and the displacement map.
Adam (lr 1e-3) minimises, summed over views, the photometric error of the mid- and high-level
renders inside the rendered face, 68-landmark error, coefficient and lighting regularisers,
smoothness of the deformation and displacement maps and the contour-aware term that keeps the
projected mesh inside the face mask's horizontal extent (HRN's weights, ``losses.py``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from . import losses as L
from .bfm import project, rotation_matrix
from .model import MID_SIZE, HRNInputs, HRNModel, HRNState


@dataclass
class MVFitResult:
    state: HRNState  # batched over views, after fitting
    history: list[float]  # total loss per iteration


def _view_state(model: HRNModel, base: HRNState, i: int, id_coeff, exp, tex, angle, gamma, trans,
                deformation, displacement) -> HRNState:
    coeffs = {"id": id_coeff, "exp": exp[i:i + 1], "tex": tex[i:i + 1], "angle": angle[i:i + 1],
              "gamma": gamma[i:i + 1], "trans": trans[i:i + 1]}
    valid = base.valid_mask[i:i + 1]
    state = HRNState(coeffs=coeffs, rotation=rotation_matrix(coeffs["angle"]),
                     shape_coarse=model.bfm.shape(id_coeff, coeffs["exp"]), position_map=base.position_map[i:i + 1],
                     texture_map=base.texture_map[i:i + 1], albedo_3dmm=base.albedo_3dmm[i:i + 1],
                     albedo=base.albedo[i:i + 1], valid_mask=valid)
    state.deformation = deformation * F.interpolate(valid, size=(MID_SIZE, MID_SIZE), mode="bilinear")
    state.shape_mid = model.bfm.add_deformation(state.shape_coarse, state.deformation)
    state.displacement = displacement[i:i + 1] * valid
    return state


def _view_loss(model: HRNModel, state: HRNState, inputs: HRNInputs, i: int, edges) -> torch.Tensor:
    normals_mid = model.normal_maps(state, state.shape_mid, None)
    normals_high = model.normal_maps(state, state.shape_mid, state.displacement)
    colours = torch.cat([model.shade(state, normals_mid, state.albedo), model.shade(state, normals_high, state.albedo)], 1)
    mask, image = model.render(state, state.shape_mid, colours, inputs.image.shape[-1])
    mask = mask.detach()
    target = inputs.image[i:i + 1]
    loss = L.W_COLOR * (L.photo_loss(image[:, 3:], target, mask) + L.photo_loss(image[:, :3], target, mask))
    reg, gamma = L.coefficient_loss(state.coeffs)
    loss = loss + L.W_REG * reg + L.W_GAMMA * gamma
    points = project(state.posed(state.shape_mid), inputs.image.shape[-1])
    if inputs.landmarks is not None:
        loss = loss + L.W_LM * L.landmark_loss(model.bfm.landmarks(points), inputs.landmarks[i:i + 1])
    loss = loss + L.W_DEFORM_TV * L.total_variation(state.deformation) + L.W_DEFORM_TV_STD * L.total_variation_spread(state.deformation)
    disp = state.displacement
    loss = loss + L.W_DISP_REG * disp.abs().mean() + L.W_DISP_TV * L.total_variation(disp) + L.W_DISP_TV_STD * L.total_variation_spread(disp)
    left, right = edges
    return loss + L.W_CONTOUR * L.contour_loss(points, left[i:i + 1], right[i:i + 1], inputs.image.shape[-1])


def fit_multi_view(model: HRNModel, inputs: HRNInputs, base: HRNState, iterations: int = 50, lr: float = 1e-3) -> MVFitResult:
    """``base``: the per-view HRN forward pass (batched over views) on ``inputs``."""
    c = base.coeffs
    id_coeff = c["id"].detach().mean(0, keepdim=True).clone().requires_grad_(True)
    per_view = [c[k].detach().clone().requires_grad_(True) for k in ("exp", "tex", "angle", "gamma", "trans")]
    deformation = base.deformation.detach().mean(0, keepdim=True).clone().requires_grad_(True)
    displacement = base.displacement.detach().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([deformation, id_coeff, displacement, *per_view], lr=lr)
    edges = L.face_edges(inputs.face_mask)
    n_views = inputs.image.shape[0]
    history = []
    for _ in range(iterations):
        optimizer.zero_grad()
        total = sum(_view_loss(model, _view_state(model, base, i, id_coeff, *per_view, deformation, displacement),
                               inputs, i, edges) for i in range(n_views))
        total.backward()
        optimizer.step()
        history.append(float(total.detach()))
    with torch.no_grad():
        views = [_view_state(model, base, i, id_coeff, *per_view, deformation, displacement) for i in range(n_views)]
        if iterations:
            history.append(float(sum(_view_loss(model, v, inputs, i, edges) for i, v in enumerate(views))))
    return MVFitResult(state=_stack(views), history=history)


def _stack(views: list[HRNState]) -> HRNState:
    cat = lambda name: torch.cat([getattr(v, name) for v in views]).detach()  # noqa: E731
    coeffs = {k: torch.cat([v.coeffs[k].expand(1, -1) for v in views]).detach() for k in views[0].coeffs}
    return HRNState(coeffs=coeffs, rotation=cat("rotation"), shape_coarse=cat("shape_coarse"),
                    position_map=cat("position_map"), texture_map=cat("texture_map"), albedo_3dmm=cat("albedo_3dmm"),
                    albedo=cat("albedo"), valid_mask=cat("valid_mask"), deformation=cat("deformation"),
                    displacement=cat("displacement"), shape_mid=cat("shape_mid"))
