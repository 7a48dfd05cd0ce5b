"""Pure-PyTorch triangle rasterizer with nvdiffrast's output layout.

Visibility is resolved without gradients in three vectorised passes:

1. triangle setup: snap each projected vertex to a 1/16-pixel grid (as nvdiffrast's CUDA
   rasterizer does), build three integer edge functions per triangle and its row range;
2. scanline spans: for every (triangle, row) pair the covered pixel columns follow in closed form
   from the three edge half-planes, so only covered pixels ever become fragments;
3. z-buffer: each fragment's perspective-correct z/w is packed above its triangle index into one
   int64 and ``scatter_reduce(amin)`` keeps the nearest fragment per pixel.

Triangles with some vertex behind the eye (w <= 0) are not clipped geometrically; their coverage
uses 2D-homogeneous edge functions (Olano & Greer 1997), which are exact for such triangles, and
every fragment whose z/w falls outside [-1, 1] is discarded, which equals clipping against the near
and far planes. Triangles entirely behind the eye and zero-area triangles are dropped.

Barycentrics of the winning pixels are then recomputed from ``pos`` with autograd, so gradients
reach the vertex positions through (u, v) exactly like nvdiffrast's rasterize backward.
"""
from __future__ import annotations

import torch

SUBPIXEL = 16  # grid positions per pixel used for coverage (nvdiffrast: CR_SUBPIXEL_LOG2 = 4)
MAX_FRAGMENTS_PER_CHUNK = 1 << 22  # bounds peak memory of the span -> fragment expansion
_KEY_EMPTY = torch.iinfo(torch.int64).max


def rasterize(pos: torch.Tensor, tri: torch.Tensor, resolution: tuple[int, int]) -> torch.Tensor:
    """(B, V, 4) clip-space ``pos``, (F, 3) ``tri`` -> (B, H, W, 4) of (u, v, z/w, triangle_id + 1)."""
    height, width = resolution
    batch = pos.shape[0]
    tri = tri.long()
    pixel, triangle = visible_triangles(pos, tri, height, width)
    rast = torch.zeros(batch * height * width, 4, dtype=pos.dtype, device=pos.device)
    if pixel.numel():
        b = pixel // (height * width)
        rest = pixel - b * (height * width)
        py, px = rest // width, rest % width
        face = triangle - b * tri.shape[0]
        u, v, zw = barycentrics(pos, tri, b, face, py, px, height, width)
        ident = (face + 1).to(pos.dtype)
        rast = rast.index_put((pixel,), torch.stack([u, v, zw, ident], dim=-1))
    return rast.view(batch, height, width, 4)


def barycentrics(pos, tri, b, face, py, px, height, width):
    """Perspective-correct (u, v, z/w) of pixel centres (px + 0.5, py + 0.5) in triangle ``face`` of
    batch item ``b``; differentiable w.r.t. ``pos`` through u and v (z/w carries no gradient, as in
    nvdiffrast). Values are clamped like nvdiffrast's (u, v >= 0, u + v <= 1) while the gradient is
    that of the unclamped expression."""
    corners = pos[b.unsqueeze(1), tri[face]]  # (N, 3, 4)
    fx = ((2 * px + 1).to(pos.dtype) / width - 1).unsqueeze(1)
    fy = ((2 * py + 1).to(pos.dtype) / height - 1).unsqueeze(1)
    x, y, z, w = corners.unbind(-1)
    dx = x - fx * w
    dy = y - fy * w
    dx0, dx1, dx2 = dx.unbind(1)
    dy0, dy1, dy2 = dy.unbind(1)
    a0 = dx1 * dy2 - dy1 * dx2
    a1 = dx2 * dy0 - dy2 * dx0
    a2 = dx0 * dy1 - dy0 * dx1
    total = a0 + a1 + a2
    total = total + torch.where(total < 0, -1e-12, 1e-12) if pos.dtype == torch.float64 else total
    u = a0 / total
    v = a1 / total
    with torch.no_grad():
        a = torch.stack([a0, a1, a2], dim=1).detach()
        zd = z.detach()
        wd = w.detach()
        zw = ((zd * a).sum(1) / (wd * a).sum(1)).clamp(-1, 1)
        uc = u.detach().clamp(0, 1)
        vc = v.detach().clamp(0, 1)
        scale = 1 / torch.clamp(uc + vc, min=1)
        uc, vc = uc * scale, vc * scale
    u = u + (uc - u.detach())
    v = v + (vc - v.detach())
    return u, v, zw


@torch.no_grad()
def visible_triangles(pos: torch.Tensor, tri: torch.Tensor, height: int, width: int):
    """Flat pixel indices (b * H * W + y * W + x) that some triangle covers and the flat index
    (b * F + f) of the nearest triangle there."""
    setup = _triangle_setup(pos.detach(), tri, height, width)
    keys = torch.full((pos.shape[0] * height * width,), _KEY_EMPTY, dtype=torch.int64, device=pos.device)
    for fragments in _fragments(setup, height, width):
        pixel, key = fragments
        keys.scatter_reduce_(0, pixel, key, reduce="amin", include_self=True)
    pixel = torch.nonzero(keys != _KEY_EMPTY).squeeze(1)
    triangle = keys[pixel] & 0xFFFFFFFF
    return pixel, triangle


def _triangle_setup(pos, tri, height, width):
    """Per-triangle edge functions (normalised so inside >= 0), linear forms of z and w for depth,
    and row ranges; every coefficient is a function of integer pixel indices (px, py)."""
    batch, faces = pos.shape[0], tri.shape[0]
    corners = pos[:, tri].reshape(batch * faces, 3, 4)  # (T, 3, 4), T = B * F
    x, y, z, w = (c.double() for c in corners.float().unbind(-1))
    in_front = w > 0
    regular = in_front.all(1)
    straddling = in_front.any(1) & ~regular

    # 2D-homogeneous edge functions e_i = (v_j x v_k) . (fx, fy, 1) with v = (x, y, w) and
    # fx = (2 px + 1) / W - 1: exact perspective-correct barycentric weights (up to 1 / sum).
    xs, xo = 2.0 / width, 1.0 / width - 1.0
    ys, yo = 2.0 / height, 1.0 / height - 1.0
    j, k = [1, 2, 0], [2, 0, 1]
    cx = y[:, j] * w[:, k] - w[:, j] * y[:, k]
    cy = w[:, j] * x[:, k] - x[:, j] * w[:, k]
    cz = x[:, j] * y[:, k] - y[:, j] * x[:, k]
    h_a, h_b, h_c = cx * xs, cy * ys, cx * xo + cy * yo + cz  # (T, 3) each
    det = (x[:, 0] * cx[:, 0] + y[:, 0] * cy[:, 0] + w[:, 0] * cz[:, 0])

    # depth z/w = (sum z_i e_i) / (sum w_i e_i), linear forms in (px, py)
    depth = torch.stack([(z * h_a).sum(1), (z * h_b).sum(1), (z * h_c).sum(1),
                         (w * h_a).sum(1), (w * h_b).sum(1), (w * h_c).sum(1)], dim=1)

    # Regular triangles: snapped screen coordinates in 1/16 pixel units, integer edge functions
    # with a tie-break so a pixel centre on an edge shared by two triangles goes to exactly one.
    wr = torch.where(in_front, corners[..., 3].float(), torch.ones_like(corners[..., 3].float()))
    half = SUBPIXEL // 2
    sx = torch.round((corners[..., 0].float() / wr * (width * half)).clamp(-2**30, 2**30)).double() + width * half
    sy = torch.round((corners[..., 1].float() / wr * (height * half)).clamp(-2**30, 2**30)).double() + height * half
    ex = sx[:, k] - sx[:, j]
    ey = sy[:, k] - sy[:, j]
    s_a = -SUBPIXEL * ey
    s_b = SUBPIXEL * ex
    s_c = ex * (half - sy[:, j]) - ey * (half - sx[:, j])
    area = s_c.sum(1)  # twice the signed snapped area (s_a, s_b sum to zero)

    sign_s = torch.sign(area).unsqueeze(1)
    sign_h = torch.sign(det).unsqueeze(1)
    reg = regular.unsqueeze(1)
    edge_a = torch.where(reg, s_a * sign_s, h_a * sign_h)
    edge_b = torch.where(reg, s_b * sign_s, h_b * sign_h)
    edge_c = torch.where(reg, s_c * sign_s, h_c * sign_h)
    top_left = (edge_a > 0) | ((edge_a == 0) & (edge_b > 0))
    edge_c = edge_c - (reg & ~top_left).double()  # integer edges: e > 0  <=>  e - 1 >= 0

    keep = (regular & (area != 0)) | (straddling & (det != 0))
    row0 = torch.where(regular, torch.ceil((sy.min(1).values - half) / SUBPIXEL), torch.zeros_like(det))
    row1 = torch.where(regular, torch.floor((sy.max(1).values - half) / SUBPIXEL), torch.full_like(det, height - 1))
    col0 = torch.where(regular, torch.ceil((sx.min(1).values - half) / SUBPIXEL), torch.zeros_like(det))
    col1 = torch.where(regular, torch.floor((sx.max(1).values - half) / SUBPIXEL), torch.full_like(det, width - 1))
    row0, row1 = row0.clamp(0, height - 1), row1.clamp(-1, height - 1)
    col0, col1 = col0.clamp(0, width - 1), col1.clamp(-1, width - 1)
    keep = keep & (row1 >= row0) & (col1 >= col0)
    index = torch.nonzero(keep).squeeze(1)
    return {
        "index": index,
        "edge_a": edge_a[index], "edge_b": edge_b[index], "edge_c": edge_c[index],
        "depth": depth[index],
        "row0": row0[index].long(), "row1": row1[index].long(),
        "col0": col0[index], "col1": col1[index],
        "faces": faces,
    }


def _expand(counts: torch.Tensor):
    """For counts (N,) -> (owner, offset) over sum(counts) items: owner i repeated counts[i] times,
    offset 0..counts[i]-1 within each owner."""
    total = int(counts.sum())
    owner = torch.repeat_interleave(torch.arange(counts.numel(), device=counts.device), counts, output_size=total)
    starts = torch.cumsum(counts, 0) - counts
    offset = torch.arange(total, device=counts.device) - starts[owner]
    return owner, offset


def _fragments(setup, height, width):
    """Yield (flat pixel index, packed depth|triangle key) for all covered pixels, in chunks."""
    index = setup["index"]
    if index.numel() == 0:
        return
    owner, offset = _expand(setup["row1"] - setup["row0"] + 1)
    py = setup["row0"][owner] + offset
    pyd = py.double().unsqueeze(1)
    a = setup["edge_a"][owner]
    d = setup["edge_b"][owner] * pyd + setup["edge_c"][owner]  # e_i = a_i * px + d_i on this row
    bound = -d / a
    lower = torch.where(a > 0, torch.ceil(bound), torch.full_like(bound, -float("inf"))).amax(1)
    upper = torch.where(a < 0, torch.floor(bound), torch.full_like(bound, float("inf"))).amin(1)
    blocked = ((a == 0) & (d < 0)).any(1)
    lower = torch.maximum(lower, setup["col0"][owner])
    upper = torch.minimum(upper, setup["col1"][owner])
    counts = torch.where(blocked, torch.zeros_like(upper), (upper - lower + 1).clamp(min=0)).long()
    lower = lower.clamp(min=0).long()
    depth = setup["depth"][owner]
    row_num = depth[:, 1] * pyd[:, 0] + depth[:, 2]
    row_den = depth[:, 4] * pyd[:, 0] + depth[:, 5]
    slope_num, slope_den = depth[:, 0], depth[:, 3]
    triangle = setup["index"][owner]
    batch_of = triangle // setup["faces"]
    row_base = batch_of * (height * width) + py * width

    keep = torch.nonzero(counts).squeeze(1)
    counts = counts[keep]
    ends = torch.cumsum(counts, 0)
    first = 0
    while first < keep.numel():
        done = int(ends[first - 1]) if first else 0
        last = int(torch.searchsorted(ends, done + MAX_FRAGMENTS_PER_CHUNK, right=True))
        last = max(last, first + 1)
        rows = keep[first:last]
        span_owner, span_offset = _expand(counts[first:last])
        row = rows[span_owner]
        px = lower[row] + span_offset
        pxd = px.double()
        zw = ((slope_num[row] * pxd + row_num[row]) / (slope_den[row] * pxd + row_den[row])).float()
        inside = (zw >= -1) & (zw <= 1)
        bits = zw.view(torch.int32)
        sortable = bits ^ ((bits >> 31) & 0x7FFFFFFF)
        key = (sortable.long() << 32) | triangle[row]
        pixel = row_base[row] + px
        if not bool(inside.all()):
            pixel, key = pixel[inside], key[inside]
        yield pixel, key
        first = last
