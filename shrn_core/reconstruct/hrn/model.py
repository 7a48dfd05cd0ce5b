"""HRN's forward pass: coarse 3DMM -> de-retouched albedo -> mid-frequency deformation map ->
high-frequency displacement map, batched, on aligned crops (see ``preprocess``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .bfm import BFMModel, project, rotation_matrix, sh_shading, split_coeffs
from .networks import HRNNetworks
from .render import HRNRenderer

MID_SIZE = 64
GRAY_ALBEDO = 0.8


@dataclass
class HRNInputs:
    image: torch.Tensor  # (B, 3, 224, 224) RGB in [0, 1]
    image_hd: torch.Tensor  # (B, 3, S, S) the same crop at texture resolution (S = 512 in HRN)
    face_mask: torch.Tensor  # (B, 1, 224, 224) 1 = visible face, 0 = occluded / background
    landmarks: Optional[torch.Tensor] = None  # (B, 68, 2) in the 224 crop, y down (MV-HRN only)


@dataclass
class HRNState:
    """Everything one forward pass produces (batched tensors)."""

    coeffs: dict[str, torch.Tensor]
    rotation: torch.Tensor  # (B, 3, 3), posed = shape @ rotation + trans
    shape_coarse: torch.Tensor  # (B, V, 3) head frame, dm
    position_map: torch.Tensor  # (B, 3, S, S) UV map of the coarse head-frame shape
    texture_map: torch.Tensor  # (B, 3, S, S) photo unwrapped on the coarse mesh, [0, 1]
    albedo_3dmm: torch.Tensor  # (B, 3, S, S) parametric albedo
    albedo: torch.Tensor  # (B, 3, S, S) de-retouched albedo
    valid_mask: torch.Tensor  # (B, 1, S, S) visible-face texels
    deformation: Optional[torch.Tensor] = None  # (B, 3, 64, 64) dm
    displacement: Optional[torch.Tensor] = None  # (B, 1, S, S) dm along the normal
    shape_mid: Optional[torch.Tensor] = None
    extras: dict = field(default_factory=dict)

    def posed(self, shape: torch.Tensor) -> torch.Tensor:
        return shape @ self.rotation + self.coeffs["trans"].unsqueeze(1)


def smooth_valid_mask(mask: torch.Tensor) -> torch.Tensor:
    """HRN's smoothing of the visible-texel mask before use: 3x3 erosion, then an 11x11 box blur."""
    eroded = -F.max_pool2d(-mask, 3, stride=1, padding=1)
    padded = F.pad(eroded, (5, 5, 5, 5), mode="reflect")
    return F.avg_pool2d(padded, 11, stride=1)


def de_retouch(net: nn.Module, albedo: torch.Tensor, texture: torch.Tensor, size: int = 512) -> torch.Tensor:
    """Remove make-up/retouching highlights from the parametric albedo using the photo texture:
    the U-Net predicts a soft-light blend layer that would 'retouch' the texture; the albedo is
    scaled by (texture / retouched texture) with HRN's stabiliser."""
    uv_size = texture.shape[-2:]
    blend = net(F.interpolate(texture * 2 - 1, size=(size, size), mode="bilinear"))
    blend = F.interpolate(blend, size=uv_size, mode="bilinear")
    retouched = (1 - 2 * blend) * texture * texture + 2 * blend * texture
    phi = 1e6 * retouched ** 3 + 1e-6
    return albedo * (texture + 1 / phi) / (retouched + 1 / phi)


class HRNModel(nn.Module):
    def __init__(self, bfm: BFMModel, nets: HRNNetworks, render_backend: str = "auto", retouch_size: int = 512):
        super().__init__()
        self.retouch_size = retouch_size
        self.bfm = bfm
        self.nets = nets.eval()
        self._render_backend = render_backend
        self._renderer: Optional[HRNRenderer] = None
        self.cache: dict = {}  # derived constants of the fixed layout (e.g. landmark vertex ids)

    @property
    def renderer(self) -> HRNRenderer:
        device = self.bfm.mean_shape.device
        if self._renderer is None or self._renderer.ctx.device != device:
            self._renderer = HRNRenderer(device, self._render_backend)
        return self._renderer

    # -- stages -------------------------------------------------------------------------------
    def coarse(self, inputs: HRNInputs, coeffs: Optional[torch.Tensor] = None, smooth_mask: bool = True) -> HRNState:
        """3DMM regression, photo texture, de-retouched albedo and visible-texel mask."""
        bfm = self.bfm
        if coeffs is None:
            coeffs = self.nets.net_recon(inputs.image)
        parts = split_coeffs(coeffs)
        rotation = rotation_matrix(parts["angle"])
        shape = bfm.shape(parts["id"], parts["exp"])
        posed = shape @ rotation + parts["trans"].unsqueeze(1)
        albedo_3dmm = bfm.albedo_map(parts["tex"])
        texture = bfm.texture_from_image(posed, inputs.image_hd)
        valid = bfm.texture_from_image(posed, inputs.face_mask)
        if smooth_mask:
            valid = smooth_valid_mask(valid)
        return HRNState(coeffs=parts, rotation=rotation, shape_coarse=shape,
                        position_map=bfm.uv.to_uv(shape), texture_map=texture, albedo_3dmm=albedo_3dmm,
                        albedo=de_retouch(self.nets.de_retouch, albedo_3dmm, texture, self.retouch_size),
                        valid_mask=valid)

    def mid_level(self, state: HRNState) -> torch.Tensor:
        """Deformation map (B, 3, 64, 64) from position and texture maps (masked to visible texels)."""
        size = (MID_SIZE, MID_SIZE)
        net_in = torch.cat([F.interpolate(state.position_map, size=size, mode="bilinear"),
                            F.interpolate(state.texture_map * 2 - 1, size=size, mode="bilinear")], dim=1)
        valid = F.interpolate(state.valid_mask, size=size, mode="bilinear")
        return self.nets.mid_net(net_in) * 0.1 * self.nets.alpha * valid

    def high_level(self, state: HRNState, image_hd: torch.Tensor) -> torch.Tensor:
        """Displacement map (B, 1, S, S) from position, re-aligned texture and deformation maps."""
        size = state.position_map.shape[-2:]
        texture = self.bfm.texture_from_image(state.posed(state.shape_mid), image_hd)
        state.extras["texture_mid"] = texture
        net_in = torch.cat([state.position_map, texture * 2 - 1,
                            F.interpolate(state.deformation, size=size, mode="bilinear")], dim=1)
        return self.nets.high_net(net_in) * 0.1 * self.nets.beta * state.valid_mask

    def forward(self, inputs: HRNInputs, smooth_mask: bool = True) -> HRNState:
        state = self.coarse(inputs, smooth_mask=smooth_mask)
        state.deformation = self.mid_level(state)
        state.shape_mid = self.bfm.add_deformation(state.shape_coarse, state.deformation)
        state.displacement = self.high_level(state, inputs.image_hd)
        return state

    # -- shading and rendering ----------------------------------------------------------------
    def normal_maps(self, state: HRNState, shape: torch.Tensor, displacement: Optional[torch.Tensor]) -> torch.Tensor:
        """Posed-frame normal map (B, 3, S, S) of ``shape``, with displacement detail when given
        (HRN's ``displacement2normal``: the detail normals' change is added to the smooth ones)."""
        uv = self.bfm.uv
        posed = state.posed(shape)
        normals = self.bfm.vertex_normals(shape) @ state.rotation
        smooth = uv.to_uv(normals)
        if displacement is None:
            return smooth
        positions = uv.to_uv(posed)
        flat = uv.grid_normals(positions)
        return uv.grid_normals(positions + displacement * smooth) + (smooth - flat)

    def shade(self, state: HRNState, normal_map: torch.Tensor, albedo: torch.Tensor) -> torch.Tensor:
        light = sh_shading(normal_map.permute(0, 2, 3, 1), state.coeffs["gamma"]).permute(0, 3, 1, 2)
        return light * albedo

    def render(self, state: HRNState, shape: torch.Tensor, uv_maps: torch.Tensor, size: int):
        """Render ``shape`` posed with UV maps (B, C, S, S) into a ``size`` crop -> (mask, image)."""
        return self.renderer.render_uv_texture(state.posed(shape), self.bfm.tri, self.bfm.uvs, uv_maps, size)

    def landmarks_2d(self, state: HRNState, shape: torch.Tensor, size: int = 224) -> torch.Tensor:
        return self.bfm.landmarks(project(state.posed(shape), size))
