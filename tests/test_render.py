"""Known-answer scenes for the pure-PyTorch rasterizer (shrn_core.render, backend "torch")."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from shrn_core.errors import InputError, NumericalError
from shrn_core.render import (camera_to_clip, clip_to_pixels, create_context, interpolate, rasterize, render_mesh,
                              texture, to_image_rows, visible_faces, visible_vertices, world_to_clip)

CTX = create_context("torch", "cpu")


def ndc_triangle(points_px, size, z=0.0):
    """Clip-space (1, 3, 4) of a triangle given in rasterizer pixel coordinates (x right, row 0 at the bottom)."""
    h, w = size
    pts = np.asarray(points_px, np.float64)
    ndc = np.stack([2 * pts[:, 0] / w - 1, 2 * pts[:, 1] / h - 1], 1)
    zs = np.broadcast_to(np.asarray(z, np.float64), (3,))
    return torch.tensor(np.concatenate([ndc, zs[:, None], np.ones((3, 1))], 1)[None], dtype=torch.float32)


def inside_mask(points_px, size):
    """Independent coverage reference: pixel centres strictly inside the triangle (and none on an edge)."""
    h, w = size
    (x0, y0), (x1, y1), (x2, y2) = points_px
    py, px = np.mgrid[0:h, 0:w] + 0.5
    def edge(ax, ay, bx, by):
        return (bx - ax) * (py - ay) - (by - ay) * (px - ax)
    e = np.stack([edge(x1, y1, x2, y2), edge(x2, y2, x0, y0), edge(x0, y0, x1, y1)])
    e *= np.sign(e.sum(0, keepdims=True))
    assert np.abs(e).min() > 1e-3
    return (e > 0).all(0)


TRI = torch.tensor([[0, 1, 2]], dtype=torch.int32)


def test_single_triangle_covers_the_expected_pixels_with_nvdiffrast_layout():
    # counter-clockwise, on the 1/16-pixel grid the rasterizer snaps to, no pixel centre on an edge
    pts = [(3.125, 2.3125), (27.6875, 5.1875), (11.375, 21.875)]
    rast, db = rasterize(CTX, ndc_triangle(pts, (24, 32)), TRI, (24, 32))
    assert db is None and rast.shape == (1, 24, 32, 4) and rast.dtype == torch.float32
    expected = inside_mask(pts, (24, 32))
    assert expected.sum() > 100
    np.testing.assert_array_equal(rast[0, ..., 3].numpy() == 1, expected)
    assert (rast[0][~torch.from_numpy(expected)] == 0).all()
    # u weights vertex 0 and v vertex 1: at vertex 0's neighbourhood u ~ 1
    u, v = rast[0, ..., 0].numpy(), rast[0, ..., 1].numpy()
    assert u[2, 4] > 0.85 and v[5, 26] > 0.85 and (1 - u - v)[20, 11] > 0.85


def test_clockwise_triangle_is_not_culled():
    pts = [(3.125, 2.3125), (11.375, 21.875), (27.6875, 5.1875)]
    rast, _ = rasterize(CTX, ndc_triangle(pts, (24, 32)), TRI, (24, 32))
    np.testing.assert_array_equal(rast[0, ..., 3].numpy() == 1, inside_mask(pts, (24, 32)))


def test_nearer_triangle_wins_whatever_the_order():
    near = ndc_triangle([(0, 0), (40, 0), (0, 40)], (16, 16), z=-0.5)[0]
    far = ndc_triangle([(0, 0), (40, 0), (0, 40)], (16, 16), z=0.5)[0]
    tri = torch.tensor([[0, 1, 2], [3, 4, 5]], dtype=torch.int32)
    for first, second, winner in ((near, far, 1), (far, near, 2)):
        rast, _ = rasterize(CTX, torch.cat([first, second])[None], tri, (16, 16))
        assert (rast[0, ..., 3] == winner).all()
        np.testing.assert_allclose(rast[0, ..., 2].numpy(), -0.5, atol=1e-6)


def test_depth_outside_clip_range_is_discarded_and_degenerate_triangles_drop():
    pos = ndc_triangle([(0, 0), (40, 0), (0, 40)], (8, 8), z=1.5)
    rast, _ = rasterize(CTX, pos, TRI, (8, 8))
    assert (rast == 0).all()
    flat = ndc_triangle([(1, 1), (5, 5), (3, 3)], (8, 8))  # collinear
    rast, _ = rasterize(CTX, flat, TRI, (8, 8))
    assert (rast == 0).all()


def test_shared_edge_pixels_are_covered_exactly_once():
    # a quad split along its diagonal; pixel centres lie exactly on the diagonal
    h = w = 16
    quad = ndc_triangle([(2, 2), (14, 2), (14, 14)], (h, w))[0]
    other = ndc_triangle([(2, 2), (14, 14), (2, 14)], (h, w))[0]
    pos = torch.cat([quad, other])[None]
    tri = torch.tensor([[0, 1, 2], [3, 4, 5]], dtype=torch.int32)
    rast, _ = rasterize(CTX, pos, tri, (h, w))
    ids = rast[0, ..., 3]
    assert int((ids > 0).sum()) == 12 * 12  # no holes along the diagonal
    diagonal = torch.tensor([ids[i, i] for i in range(2, 14)])
    assert (diagonal > 0).all()


def pinhole(size=64, focal=80.0):
    return np.array([[focal, 0, size / 2], [0, focal, size / 2], [0, 0, 1]], np.float32)


def cube(half=30.0):
    corners = np.array([[x, y, z] for x in (-half, half) for y in (-half, half) for z in (-half, half)], np.float32)
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    faces = [(a, b, c) for a, b, c, d in quads] + [(a, c, d) for a, b, c, d in quads]
    return corners, np.array(faces, np.int32)


def rotation(ax, ay):
    cx, sx, cy, sy = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    return (rx @ ry).astype(np.float32)


def test_cube_depth_matches_ray_box_intersection():
    size, half = 64, 30.0
    corners, faces = cube(half)
    R = rotation(0.5, 0.7)
    t = np.array([0, 0, -150], np.float32)
    K = pinhole(size)
    pos = world_to_clip(torch.from_numpy(corners), K, R, t, size, size)
    out = render_mesh(CTX, pos, torch.from_numpy(faces), (size, size))
    # analytic: ray through each photo pixel centre, in the cube's frame, slab test
    v, u = np.mgrid[0:size, 0:size] + 0.5
    d_cam = np.stack([(u - K[0, 2]) / K[0, 0], -(v - K[1, 2]) / K[1, 1], -np.ones_like(u)], -1)
    origin = -R.T @ t
    d = d_cam @ R  # R^T d
    with np.errstate(divide="ignore"):
        t0 = (-half - origin) / d
        t1 = (half - origin) / d
    t_near = np.minimum(t0, t1).max(-1)
    t_far = np.maximum(t0, t1).min(-1)
    hit = t_near <= t_far
    depth = np.where(hit, t_near, 0)  # ray parameter = -z_camera since d_cam.z = -1
    mask = out.mask[0, ..., 0].numpy() > 0
    assert hit.sum() > 600 and (mask == hit).mean() > 0.97
    both = mask & hit
    # pixels whose centre lies just outside the exact triangle but inside the 1/16-pixel-snapped one get
    # clamped barycentrics (as in nvdiffrast), i.e. the nearest point on the triangle's edge
    error = np.abs(out.depth[0, ..., 0].numpy()[both] - depth[both]) / depth[both]
    assert np.quantile(error, 0.99) < 1e-5 and error.max() < 1e-3


def test_barycentrics_sum_to_one_and_linear_attributes_are_perspective_correct():
    size = 48
    corners, faces = cube(25.0)
    R = rotation(-0.4, 0.9)
    t = np.array([5, -3, -120], np.float32)
    K = pinhole(size, 60.0)
    points = torch.from_numpy(corners) @ torch.from_numpy(R).T + torch.from_numpy(t)
    pos = camera_to_clip(points, K, size, size)
    tri = torch.from_numpy(faces)
    rast, _ = rasterize(CTX, pos, tri, (size, size))
    covered = rast[0, ..., 3] > 0
    u, v = rast[0, ..., 0][covered], rast[0, ..., 1][covered]
    assert (u >= 0).all() and (v >= 0).all() and (u + v <= 1 + 1e-6).all()
    ones, _ = interpolate(torch.ones(1, 8, 1), rast, tri)
    np.testing.assert_allclose(ones[0, ..., 0][covered].numpy(), 1, atol=1e-6)
    # the interpolated camera-space point of a pixel projects back onto that pixel's centre
    xyz, _ = interpolate(points, rast, tri)
    photo_xyz = to_image_rows(xyz)[0][to_image_rows(rast)[0, ..., 3] > 0]
    rows, cols = torch.nonzero(to_image_rows(rast)[0, ..., 3] > 0, as_tuple=True)
    pu = K[0, 0] * photo_xyz[:, 0] / -photo_xyz[:, 2] + K[0, 2]
    pv = K[1, 1] * -photo_xyz[:, 1] / -photo_xyz[:, 2] + K[1, 2]
    error = torch.maximum((pu - (cols + 0.5)).abs(), (pv - (rows + 0.5)).abs()).numpy()
    assert np.quantile(error, 0.99) < 1e-3 and error.max() < 0.25  # see the cube test about edge pixels


def test_triangle_crossing_the_near_plane_renders_its_visible_part():
    # a floor plane y = -20 extending behind the camera: only pixels below the horizon see it
    size, focal = 32, 40.0
    K = pinhole(size, focal)
    floor = torch.tensor([[-500, -20, 100], [500, -20, 100], [500, -20, -2000], [-500, -20, -2000]], dtype=torch.float32)
    tri = torch.tensor([[0, 1, 2], [0, 2, 3]], dtype=torch.int32)
    out = render_mesh(CTX, camera_to_clip(floor, K, size, size, near=1.0, far=5000.0), tri, (size, size))
    v = np.arange(size) + 0.5
    ray_y = -(v - size / 2) / focal  # camera ray (x, ray_y, -1): hits y = -20 at distance 20 / -ray_y
    mask = out.mask[0, :, size // 2, 0].numpy() > 0
    below = ray_y < -20 / 2000
    np.testing.assert_array_equal(mask, below)
    expected = 20 / -ray_y[below]
    np.testing.assert_allclose(out.depth[0, :, size // 2, 0].numpy()[below], expected, rtol=1e-3)


def test_gradcheck_float64_tiny_scene():
    # vertices on the 1/16-pixel snapping grid, so coverage is exact and barycentrics unclamped
    size = 8
    base = torch.tensor([[[-0.75, -0.75, 0.1, 1.0], [0.75, -0.5, 0.2, 1.2], [0.0, 0.875, -0.1, 0.9], [0.875, 0.875, 0.3, 1.1]]],
                        dtype=torch.float64)
    tri = torch.tensor([[0, 1, 2], [1, 3, 2]], dtype=torch.int32)
    attr = torch.randn(1, 4, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    weights = torch.randn(1, size, size, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))

    def f(pos, attr):
        rast, _ = rasterize(CTX, pos, tri, (size, size))
        image, _ = interpolate(attr, rast, tri)
        return (image * weights).sum()

    pos = base.clone().requires_grad_(True)
    a = attr.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(f, (pos, a), eps=1e-6, atol=1e-6)
    f(pos, a).backward()
    assert pos.grad[..., :2].abs().sum() > 0 and pos.grad[..., 2].abs().sum() == 0  # z/w carries no gradient


def test_gradient_descent_on_positions_recovers_a_shift():
    # a textured quad larger than the image (no silhouette): fit its x/y offset to a target render
    size = 24
    quad = torch.tensor([[-1.5, -1.5, 0, 1], [1.5, -1.5, 0, 1], [1.5, 1.5, 0, 1], [-1.5, 1.5, 0, 1]], dtype=torch.float32)
    tri = torch.tensor([[0, 1, 2], [0, 2, 3]], dtype=torch.int32)
    uv = torch.tensor([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=torch.float32)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 32), torch.linspace(0, 1, 32), indexing="ij")
    tex = torch.stack([torch.sin(6 * xx) + torch.cos(5 * yy), torch.cos(7 * xx * yy)], -1)[None]

    def render(offset):
        pos = quad.clone()
        pos = pos + torch.cat([offset, torch.zeros(2)])
        rast, _ = rasterize(CTX, pos[None], tri, (size, size))
        coords, _ = interpolate(uv, rast, tri)
        return texture(tex, coords, boundary_mode="clamp")

    target = render(torch.tensor([0.12, -0.08]))
    offset = torch.zeros(2, requires_grad=True)
    optim = torch.optim.Adam([offset], lr=0.01)
    for _ in range(60):
        optim.zero_grad()
        loss = (render(offset) - target).square().mean()
        loss.backward()
        optim.step()
    np.testing.assert_allclose(offset.detach().numpy(), [0.12, -0.08], atol=0.02)


def test_texture_matches_grid_sample():
    g = torch.Generator().manual_seed(3)
    tex = torch.rand(2, 5, 7, 3, generator=g)
    uv = torch.rand(2, 6, 4, 2, generator=g) * 1.6 - 0.3
    image = tex.permute(0, 3, 1, 2)
    grid = uv * 2 - 1
    for mode, padding in (("clamp", "border"), ("zero", "zeros")):
        ref = F.grid_sample(image, grid, mode="bilinear", padding_mode=padding, align_corners=False).permute(0, 2, 3, 1)
        np.testing.assert_allclose(texture(tex, uv, boundary_mode=mode).numpy(), ref.numpy(), atol=1e-6)
    # wrap == sampling the centre tile of a 3 x 3 tiling
    tiled = image.repeat(1, 1, 3, 3)
    ref = F.grid_sample(tiled, (torch.remainder(uv, 1) + 1) / 3 * 2 - 1, align_corners=False).permute(0, 2, 3, 1)
    np.testing.assert_allclose(texture(tex, uv).numpy(), ref.numpy(), atol=1e-5)
    nearest = F.grid_sample(image, grid.clamp(-1, 1), mode="nearest", align_corners=False).permute(0, 2, 3, 1)
    np.testing.assert_allclose(texture(tex, uv.clamp(0.01, 0.99), filter_mode="nearest", boundary_mode="clamp").numpy(),
                               F.grid_sample(image, uv.clamp(0.01, 0.99) * 2 - 1, mode="nearest", align_corners=False).permute(0, 2, 3, 1).numpy())
    assert nearest.shape == (2, 6, 4, 3)
    t64 = tex[:1, :3, :3].double().requires_grad_(True)
    u64 = (torch.rand(1, 2, 2, 2, generator=g, dtype=torch.float64) * 0.8 + 0.1).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t, u: texture(t, u, boundary_mode="wrap"), (t64, u64), eps=1e-6, atol=1e-5)


def test_empty_image_and_backward():
    pos = ndc_triangle([(-30, -30), (-20, -30), (-25, -20)], (8, 8)).requires_grad_(True)
    rast, _ = rasterize(CTX, pos, TRI, (8, 8))
    assert (rast == 0).all()
    attr = torch.ones(1, 3, 2, requires_grad=True)
    image, _ = interpolate(attr, rast, TRI)
    assert image.shape == (1, 8, 8, 2) and (image == 0).all()
    image.sum().backward()
    assert attr.grad is not None and (attr.grad == 0).all()


def test_batch_items_match_single_renders():
    size = 40
    corners, faces = cube(20.0)
    K = pinhole(size, 50.0)
    tri = torch.from_numpy(faces)
    poses = [(rotation(0.3, 0.2), np.array([0, 0, -100], np.float32)), (rotation(-0.6, 1.1), np.array([4, 2, -90], np.float32))]
    clips = [world_to_clip(torch.from_numpy(corners), K, R, t, size, size) for R, t in poses]
    colours = torch.rand(2, 8, 3, generator=torch.Generator().manual_seed(0))
    rast, _ = rasterize(CTX, torch.cat(clips), tri, (size, size))
    image, _ = interpolate(colours, rast, tri)
    for b in range(2):
        single, _ = rasterize(CTX, clips[b], tri, (size, size))
        torch.testing.assert_close(rast[b], single[0])
        single_image, _ = interpolate(colours[b:b + 1], single, tri)
        torch.testing.assert_close(image[b], single_image[0])
    assert not torch.equal(rast[0], rast[1])
    shared, _ = interpolate(colours[0], rast, tri)  # (V, C) attributes broadcast over the batch
    torch.testing.assert_close(shared[1], interpolate(colours[:1], rast[1:], tri)[0][0])


def test_camera_helpers_agree_with_the_pinhole_formula():
    K = np.array([[500, 0, 310], [0, 480, 250], [0, 0, 1]], np.float32)
    R = rotation(0.1, -0.2)
    t = np.array([3, -4, -400], np.float32)
    points = torch.tensor([[10, 20, 30], [-40, 5, -12]], dtype=torch.float32)
    pix = clip_to_pixels(world_to_clip(points, K, R, t, 640, 480), 640, 480)[0]
    cam = points.numpy() @ R.T + t
    expected = np.stack([K[0, 0] * cam[:, 0] / -cam[:, 2] + K[0, 2], K[1, 1] * -cam[:, 1] / -cam[:, 2] + K[1, 2]], 1)
    np.testing.assert_allclose(pix.numpy(), expected, rtol=1e-5)
    # a small square around photo pixel (col 5, row 2) shows up there after to_image_rows
    size = 16
    Kp = pinhole(size, 20.0)
    z = -50.0
    cu, cv = 5.5, 2.5
    corners = [((cu + dx - size / 2) * -z / 20, -(cv + dy - size / 2) * -z / 20, z) for dx, dy in ((-.4, -.4), (.4, -.4), (.4, .4), (-.4, .4))]
    out = render_mesh(CTX, camera_to_clip(torch.tensor(corners), Kp, size, size), torch.tensor([[0, 1, 2], [0, 2, 3]], dtype=torch.int32), (size, size))
    assert out.mask[0, ..., 0].nonzero().tolist() == [[2, 5]]


def test_visibility_helpers():
    size = 16
    front = ndc_triangle([(-10, -10), (40, -10), (-10, 40)], (size, size), z=-0.5)[0]
    back = ndc_triangle([(4, 4), (8, 4), (4, 8)], (size, size), z=0.5)[0]
    pos = torch.cat([front, back])[None]
    tri = torch.tensor([[0, 1, 2], [3, 4, 5]], dtype=torch.int32)
    rast, _ = rasterize(CTX, pos, tri, (size, size))
    assert visible_faces(rast, 2).tolist() == [[True, False]]
    assert visible_vertices(rast, tri, 6).tolist() == [[True, True, True, False, False, False]]


def test_bad_inputs_raise_input_errors():
    assert create_context("auto", "cpu").backend == "torch"
    with pytest.raises(InputError, match="nvdiffrast"):
        create_context("nvdiffrast", "cpu")
    with pytest.raises(InputError, match="unknown render backend"):
        create_context("opengl", "cpu")
    with pytest.raises(InputError, match="pos of shape"):
        rasterize(CTX, torch.zeros(3, 4), TRI, (4, 4))
    with pytest.raises(InputError, match="outside"):
        rasterize(CTX, torch.zeros(1, 2, 4), TRI, (4, 4))
    with pytest.raises(NumericalError):
        rasterize(CTX, torch.full((1, 3, 4), float("nan")), TRI, (4, 4))
    with pytest.raises(InputError, match="boundary_mode"):
        texture(torch.zeros(1, 2, 2, 1), torch.zeros(1, 2, 2, 2), boundary_mode="mirror")


def test_chunked_fragments_and_refresh_match_a_plain_render(monkeypatch):
    from shrn_core.render import refresh_rast, torch_raster
    size = 40
    corners, faces = cube(20.0)
    K = pinhole(size, 50.0)
    tri = torch.from_numpy(faces)
    pos = world_to_clip(torch.from_numpy(corners), K, rotation(0.3, 0.2), np.array([0, 0, -100], np.float32), size, size)
    pos = torch.cat([pos, pos * torch.tensor([1.02, 0.97, 1, 1])])
    whole, _ = rasterize(CTX, pos, tri, (size, size))
    monkeypatch.setattr(torch_raster, "MAX_FRAGMENTS_PER_CHUNK", 151)
    chunked, _ = rasterize(CTX, pos, tri, (size, size))
    torch.testing.assert_close(chunked, whole)
    # refresh: same ids, barycentrics of the moved vertices, gradients through u, v
    moved = (pos + 0.002).requires_grad_(True)
    fresh, _ = rasterize(CTX, moved, tri, (size, size))
    again = refresh_rast(CTX, moved, tri, whole)
    same = (fresh[..., 3] == whole[..., 3]) & (whole[..., 3] > 0)
    assert same.float().mean() > 0.2
    torch.testing.assert_close(again[same], fresh[same])
    interpolate(torch.rand(8, 2), again, tri)[0].sum().backward()
    assert moved.grad.abs().sum() > 0


def reference_ids(pos, tri, size):
    """Brute force over every (pixel, triangle): the same coverage rules as the rasterizer
    (1/16-pixel snapped integer edges with the shared-edge tie rule; 2D-homogeneous edges for
    triangles reaching behind the eye) and the nearest z/w in [-1, 1]."""
    h, w = size
    p = pos[0].double().numpy()
    v = p[tri.long().numpy()]  # (F, 3, 4)
    py, px = np.mgrid[0:h, 0:w]
    fx, fy = (2 * px + 1) / w - 1, (2 * py + 1) / h - 1
    best = np.full((h, w), np.inf)
    ids = np.zeros((h, w), np.int64)
    for f, (a, b, c) in enumerate(v):
        verts = (a, b, c)
        hom = [np.cross(verts[(i + 1) % 3][[0, 1, 3]], verts[(i + 2) % 3][[0, 1, 3]]) for i in range(3)]
        e_h = np.stack([k[0] * fx + k[1] * fy + k[2] for k in hom])
        if all(vv[3] > 0 for vv in verts):
            snap = [np.array([np.round(np.float32(vv[0]) * (np.float32(1) / np.float32(vv[3])) * np.float32(w * 8)) + w * 8,
                              np.round(np.float32(vv[1]) * (np.float32(1) / np.float32(vv[3])) * np.float32(h * 8)) + h * 8]) for vv in verts]
            e = []
            for i in range(3):
                sj, sk = snap[(i + 1) % 3], snap[(i + 2) % 3]
                e.append((sk[0] - sj[0]) * (16 * py + 8 - sj[1]) - (sk[1] - sj[1]) * (16 * px + 8 - sj[0]))
            area = sum(ei.flat[0] for ei in e)  # constant over the image
            if area == 0:
                continue
            inside = np.ones((h, w), bool)
            for i in range(3):
                sj, sk = snap[(i + 1) % 3], snap[(i + 2) % 3]
                ea, eb = -(sk[1] - sj[1]) * np.sign(area), (sk[0] - sj[0]) * np.sign(area)
                top_left = ea > 0 or (ea == 0 and eb > 0)
                ei = e[i] * np.sign(area)
                inside &= (ei >= 0) if top_left else (ei > 0)
        elif any(vv[3] > 0 for vv in verts):
            det = np.dot(a[[0, 1, 3]], hom[0])
            if det == 0:
                continue
            inside = (e_h * np.sign(det) >= 0).all(0)
        else:
            continue
        zw = (sum(verts[i][2] * e_h[i] for i in range(3)) / sum(verts[i][3] * e_h[i] for i in range(3))).astype(np.float32)
        take = inside & (zw >= -1) & (zw <= 1) & (zw < best)
        best[take] = zw[take]
        ids[take] = f + 1
    return ids


def test_random_triangle_soup_matches_brute_force():
    g = torch.Generator().manual_seed(7)
    h, w = 24, 32
    n = 80
    centre = torch.rand(n, 1, 3, generator=g) * torch.tensor([2.4, 2.4, 1.6]) - torch.tensor([1.2, 1.2, 0.8])
    xyz = centre + torch.randn(n, 3, 3, generator=g) * 0.25
    wcoord = 0.6 + torch.rand(n, 3, 1, generator=g)
    wcoord[:6, 0] = -0.3  # a few triangles reach behind the eye
    wcoord[6:9] = -0.5  # and a few lie wholly behind it
    xyz[9:12, :, 2] = 1.4  # beyond the far plane
    pos = torch.cat([xyz * wcoord, wcoord], -1).reshape(1, n * 3, 4).float()
    tri = torch.arange(n * 3, dtype=torch.int32).reshape(n, 3)
    rast, _ = rasterize(CTX, pos, tri, (h, w))
    expected = reference_ids(pos, tri, (h, w))
    got = rast[0, ..., 3].long().numpy()
    assert (expected > 0).mean() > 0.5 and len(np.unique(expected)) > 30
    assert (got != expected).sum() <= 2  # float rounding of near-equal depths may swap a pixel or two


def test_batched_cameras_and_render_mesh_orientation():
    from shrn_core.render import antialias, projection_matrix
    K = np.stack([pinhole(32, 40.0), pinhole(32, 50.0)])
    R = np.stack([rotation(0.1, 0.2), rotation(-0.3, 0.4)])
    t = np.array([[0, 0, -90], [2, 1, -100]], np.float32)
    corners, faces = cube(15.0)
    points = torch.from_numpy(corners).expand(2, -1, -1)
    batched = world_to_clip(points, K, R, t, 32, 32)
    assert projection_matrix(K, 32, 32).shape == (2, 4, 4)
    for b in range(2):  # the batched camera path equals one camera at a time
        torch.testing.assert_close(batched[b:b + 1], world_to_clip(points[0], K[b], R[b], t[b], 32, 32))
    tri = torch.from_numpy(faces)
    colours = torch.rand(8, 3, generator=torch.Generator().manual_seed(2))
    photo = render_mesh(CTX, batched, tri, (32, 32), {"c": colours}, antialias=True)
    raw = render_mesh(CTX, batched, tri, (32, 32), {"c": colours}, image_rows=False)
    torch.testing.assert_close(photo.attrs["c"], raw.attrs["c"].flip(1))
    torch.testing.assert_close(photo.mask, raw.mask.flip(1))
    assert torch.equal(antialias(raw.attrs["c"], raw.rast, batched, tri), raw.attrs["c"])  # torch: no-op
