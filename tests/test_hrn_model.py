"""Known-answer tests of HRN's geometry pieces: rotation, UV layout, photo unwrapping, alignment,
de-retouching formula, losses."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from shrn_core.reconstruct.hrn import losses
from shrn_core.reconstruct.hrn.bfm import BFMModel, project, rotation_matrix
from shrn_core.reconstruct.hrn.model import de_retouch, smooth_valid_mask
from shrn_core.reconstruct.hrn.preprocess import apply_crop, plan_crop
from shrn_core.reconstruct.hrn.synthetic import face_mesh_arrays


@pytest.fixture(scope="module")
def bfm() -> BFMModel:
    return BFMModel(face_mesh_arrays(tex_side=16), uv_size=64)


def test_rotation_matrix_is_the_transpose_of_rz_ry_rx():
    angles = torch.tensor([[0.3, -0.5, 0.2], [0.0, 0.0, 0.0]])
    M = rotation_matrix(angles).numpy()
    expected = Rotation.from_euler("ZYX", angles[0].numpy()[::-1]).as_matrix()  # Rz @ Ry @ Rx
    assert np.allclose(M[0], expected.T, atol=1e-6)
    assert np.allclose(M[1], np.eye(3), atol=1e-7)


def test_uv_maps_interpolate_vertex_values_exactly_for_linear_attributes(bfm):
    uv = bfm.uv
    attr = torch.cat([bfm.uvs, torch.ones(len(bfm.uvs), 1)], dim=1)[None]  # (u, v, 1) per vertex
    maps = uv.to_uv(attr)[0]
    covered = uv.covered
    assert 0.2 < covered.float().mean() < 0.9
    centres = uv.texel_uvs().reshape(uv.size, uv.size, 2).permute(2, 0, 1)
    error = (maps[:2][:, covered] - centres[:, covered]).abs()
    # exact up to the rasterizer's 1/16-pixel snapping (texel centres on a triangle edge)
    assert error.max() < 0.25 / uv.size and error.median() < 1e-5
    assert torch.allclose(maps[2][covered], torch.ones(()), atol=1e-5)
    assert maps[:, ~covered].abs().max() == 0


def test_photo_unwrap_samples_where_each_surface_point_projects(bfm):
    """A 'photo' whose pixels hold their own coordinates unwraps to the projection of each texel's
    surface point (within HRN's half-pixel tap convention)."""
    size = 224
    ys, xs = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32), indexing="ij")
    photo = torch.stack([xs, ys])[None]
    posed = bfm.mean_shape.view(1, -1, 3)
    texture = bfm.texture_from_image(posed, photo)[0]
    expected = project(bfm.uv.to_uv(posed)[0].flatten(1).T[None], size)[0].T.reshape(2, bfm.uv.size, bfm.uv.size)
    covered = bfm.uv.covered
    # pixel index i holds continuous coordinate i + 0.5; HRN flips rows as h - 1 - y
    error_x = (texture[0] - (expected[0] - 0.0))[covered].abs()
    error_y = (texture[1] - (expected[1] - 1.0))[covered].abs()
    assert error_x.max() < 1.01 and error_y.max() < 1.01
    assert error_x.mean() < 0.6 and error_y.mean() < 0.6


def test_alignment_puts_the_standard_landmarks_at_hrn_crop_positions(bfm):
    lm3d = bfm.lm3d_5
    # a synthetic photo: the standard landmarks seen frontally, 3.7 px per mm, somewhere off-centre
    scale, centre = 370.0, np.array([700.0, 420.0])
    five = lm3d[:, :2] * np.array([1, -1]) * scale + centre
    crop = plan_crop(1400, 900, five, lm3d, 224)
    in_crop = crop.to_crop(five)
    expected = 112 + 102.0 * lm3d[:, :2] * np.array([1, -1])
    assert np.abs(in_crop - expected).max() < 1.6
    back = crop.to_photo(in_crop)
    assert np.allclose(back, five, atol=1e-6)
    hd = plan_crop(1400, 900, five, lm3d, 512)
    assert np.abs(hd.to_crop(five) - expected * 512 / 224).max() < 2.5
    # the crop shows the photo where the mapping says, shrinking (PIL) or enlarging (warp) alike
    for px_per_unit in (370.0, 40.0):
        five = lm3d[:, :2] * np.array([1, -1]) * px_per_unit + centre
        crop = plan_crop(1400, 900, five, lm3d, 224)
        assert (crop.scale.max() > 1) == (px_per_unit < 102)
        photo = np.zeros((900, 1400, 3), np.uint8)
        nose = np.round(five[2]).astype(int)
        photo[nose[1] - 12:nose[1] + 12, nose[0] - 12:nose[0] + 12] = 255
        cropped = apply_crop(photo, crop)
        assert cropped.shape == (224, 224, 3)
        cx, cy = np.round(crop.to_crop(nose + 0.5)).astype(int)
        assert cropped[cy, cx].min() == 255 and cropped[5, 5].max() == 0


def test_de_retouching_formula():
    albedo = torch.full((1, 3, 8, 8), 0.6)
    texture = torch.rand(1, 3, 8, 8) * 0.5 + 0.4  # away from the dark end, where HRN's stabiliser acts

    class Constant(torch.nn.Module):
        def __init__(self, value):
            super().__init__()
            self.value = value

        def forward(self, x):
            return torch.full_like(x, self.value)

    # blend 0.5 is the identity retouch: albedo unchanged
    assert torch.allclose(de_retouch(Constant(0.5), albedo, texture, 16), albedo, atol=1e-5)
    # blend 0 squares the texture: the albedo is divided by the texture
    assert torch.allclose(de_retouch(Constant(0.0), albedo, texture, 16), albedo / texture, rtol=2e-3)


def test_valid_mask_smoothing_erodes_then_blurs():
    mask = torch.zeros(1, 1, 64, 64)
    mask[:, :, 16:48, 16:48] = 1
    smooth = smooth_valid_mask(mask)
    assert smooth[0, 0, 32, 32] == pytest.approx(1.0)
    assert smooth[0, 0, 2, 2] == 0
    assert 0 < smooth[0, 0, 17, 32] < 1  # edge softened
    assert smooth.sum() < mask.sum()  # erosion removed area


def test_contour_loss_is_flat_inside_the_face_and_grows_outside():
    mask = torch.zeros(1, 1, 224, 224)
    mask[:, :, 50:170, 60:160] = 1
    left, right = losses.face_edges(mask)
    assert left[0, 100] == 61 and right[0, 100] == 159 and left[0, 10] == 0
    inside = torch.tensor([[[100.0, 100.0], [80.0, 120.0]]])
    outside = torch.tensor([[[20.0, 100.0], [200.0, 120.0]]])
    inside.requires_grad_(True)
    flat = losses.contour_loss(inside, left, right)
    flat.backward()
    assert float(flat.detach()) == pytest.approx(0.01, abs=1e-7)  # HRN's floor: constant, no gradient inside
    assert inside.grad.abs().max() == 0
    far = losses.contour_loss(outside, left, right)
    near = losses.contour_loss(outside * 0.8 + inside.detach() * 0.2, left, right)
    assert far > near > 0.01


def test_photo_loss_and_total_variation():
    a = torch.zeros(1, 3, 4, 4)
    b = torch.zeros(1, 3, 4, 4)
    b[:, 0] = 0.3
    b[:, 1] = 0.4
    mask = torch.ones(1, 1, 4, 4)
    assert losses.photo_loss(a, b, mask) == pytest.approx(0.5, abs=1e-4)
    assert losses.total_variation(torch.ones(1, 1, 5, 5)) == 0
    ramp = torch.arange(5.0).view(1, 1, 1, 5).expand(1, 1, 5, 5)
    assert losses.total_variation(ramp) == pytest.approx(2.0)
    assert losses.total_variation_spread(ramp) == pytest.approx(0.0)
