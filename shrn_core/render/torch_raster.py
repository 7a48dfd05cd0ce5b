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
    b = pixel // (height * width)
    rest = pixel - b * (height * width)
    py, px = rest // width, rest % width
    face = triangle - b * tri.shape[0]
    u, v, zw = barycentrics(pos, tri, b, face, py, px, height, width)
    ident = (face + 1).to(pos.dtype)
    rast = rast.index_copy(0, pixel, torch.stack([u, v, zw, ident], dim=-1))
    return rast.view(batch, height, width, 4)


def barycentrics(pos, tri, b, face, py, px, height, width):
    """Perspective-correct (u, v, z/w) of pixel centres (px + 0.5, py + 0.5) in triangle ``face`` of
    batch item ``b``; differentiable w.r.t. ``pos`` through u and v (z/w carries no gradient, as in
    nvdiffrast). Values are clamped like nvdiffrast's (u, v >= 0, u + v <= 1) while the gradient is
    that of the unclamped expression."""
    vertex = tri.index_select(0, face) + (b * pos.shape[1]).unsqueeze(1)
    corners = pos.reshape(-1, 4).index_select(0, vertex.reshape(-1)).view(-1, 3, 4)
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
    """Per-triangle table (T', 18) float64 of the kept triangles: edge functions (normalised so that
    inside >= 0) a_i, b_i, c_i with e_i = a_i * px + b_i * py + c_i over integer pixel indices,
    the linear forms of z and w whose ratio is z/w, the column and row range, and the flat index
    b * F + f; plus the row counts."""
    batch, faces = pos.shape[0], tri.shape[0]
    corners = pos.index_select(1, tri.reshape(-1)).reshape(batch * faces, 3, 4)  # (T, 3, 4)
    corners32 = corners.float()
    x, y, z, w = corners32.double().unbind(-1)
    in_front = w > 0
    regular = in_front.all(1)
    straddling = in_front.any(1) & ~regular

    # 2D-homogeneous edge functions e_i = (v_j x v_k) . (fx, fy, 1) with v = (x, y, w) and
    # fx = (2 px + 1) / W - 1: exact perspective-correct barycentric weights (up to 1 / sum).
    j, k = [1, 2, 0], [2, 0, 1]
    xj, xk, yj, yk, wj, wk = x[:, j], x[:, k], y[:, j], y[:, k], w[:, j], w[:, k]
    cx = yj * wk - wj * yk
    cy = wj * xk - xj * wk
    cz = xj * yk - yj * xk
    h_a = cx * (2.0 / width)
    h_b = cy * (2.0 / height)
    h_c = cx * (1.0 / width - 1.0) + cy * (1.0 / height - 1.0) + cz
    det = (w * cz).sum(1) / 3 + (x * cx).sum(1) / 3 + (y * cy).sum(1) / 3  # v_i . (v_j x v_k), same for all i
    zw_forms = torch.stack([z, w], 1) @ torch.stack([h_a, h_b, h_c], 2)  # (T, 2, 3): sum_i z_i (a, b, c)_i

    # Regular triangles: screen coordinates snapped to 1/16 pixel (computed in float32 like
    # nvdiffrast), integer edge functions with a tie-break so that a pixel centre on an edge shared
    # by two triangles goes to exactly one of them.
    half = SUBPIXEL // 2
    w32 = torch.where(in_front, corners32[..., 3], torch.ones_like(corners32[..., 3]))
    scale = corners32.new_tensor([width * half, height * half])
    snapped = torch.round((corners32[..., :2] / w32.unsqueeze(-1) * scale).clamp(-2**30, 2**30)).double()
    sx = snapped[..., 0] + width * half
    sy = snapped[..., 1] + height * half
    ex = sx[:, k] - sx[:, j]
    ey = sy[:, k] - sy[:, j]
    s_a = -SUBPIXEL * ey
    s_b = SUBPIXEL * ex
    s_c = ex * (half - sy[:, j]) - ey * (half - sx[:, j])
    area = s_c.sum(1)  # twice the signed snapped area (s_a and s_b sum to zero)

    reg = regular.unsqueeze(1)
    sign = torch.where(reg, torch.sign(area).unsqueeze(1), torch.sign(det).unsqueeze(1))
    edge_a = torch.where(reg, s_a, h_a) * sign
    edge_b = torch.where(reg, s_b, h_b) * sign
    edge_c = torch.where(reg, s_c, h_c) * sign
    top_left = (edge_a > 0) | ((edge_a == 0) & (edge_b > 0))
    edge_c = edge_c - (reg & ~top_left).double()  # integer edges: e > 0  <=>  e - 1 >= 0

    lo = (torch.stack([sx.amin(1), sy.amin(1)], 1) - half) / SUBPIXEL
    hi = (torch.stack([sx.amax(1), sy.amax(1)], 1) - half) / SUBPIXEL
    limit = lo.new_tensor([width - 1, height - 1])
    lo = torch.where(reg, torch.ceil(lo), 0.0).clamp(min=0)
    hi = torch.minimum(torch.where(reg, torch.floor(hi), limit), limit)
    keep = ((regular & (area != 0)) | (straddling & (det != 0))) & (hi >= lo).all(1)
    index = torch.nonzero(keep).squeeze(1)
    flat = torch.arange(batch * faces, device=pos.device, dtype=torch.float64)
    table = torch.cat([edge_a, edge_b, edge_c, zw_forms.reshape(-1, 6), lo, hi,
                       flat.unsqueeze(1), torch.div(flat, faces, rounding_mode="floor").unsqueeze(1)], dim=1)
    table = table.index_select(0, index)
    rows = (table[:, 18] - table[:, 16] + 1).long()
    return table, rows


# columns of the triangle table built by _triangle_setup
_EDGE_A, _EDGE_B, _EDGE_C = slice(0, 3), slice(3, 6), slice(6, 9)
_Z_A, _Z_B, _Z_C, _W_A, _W_B, _W_C = 9, 10, 11, 12, 13, 14
_COL0, _ROW0, _COL1, _ROW1, _FLAT, _BATCH = 15, 16, 17, 18, 19, 20


def _expand(counts: torch.Tensor):
    """For counts (N,) -> (owner, start) over sum(counts) items: owner i repeated counts[i] times and
    the first item index of each owner (item offset within its owner = arange - start[owner])."""
    total = int(counts.sum())
    owner = torch.repeat_interleave(torch.arange(counts.numel(), device=counts.device), counts, output_size=total)
    starts = torch.cumsum(counts, 0) - counts
    return owner, starts


def _fragments(setup, height, width):
    """Yield (flat pixel index, packed depth|triangle key) for all covered pixels, in chunks."""
    table, rows = setup
    if table.shape[0] == 0:
        return
    owner, starts = _expand(rows)
    pair = table.index_select(0, owner)  # one row per (triangle, image row)
    py = pair[:, _ROW0] + (torch.arange(owner.numel(), device=owner.device) - starts.index_select(0, owner)).double()
    a = pair[:, _EDGE_A]
    d = pair[:, _EDGE_B] * py.unsqueeze(1) + pair[:, _EDGE_C]  # e_i = a_i * px + d_i on this row
    bound = -d / a
    inf = torch.tensor(float("inf"), dtype=bound.dtype, device=bound.device)
    lower = torch.maximum(torch.where(a > 0, torch.ceil(bound), -inf).amax(1), pair[:, _COL0])
    upper = torch.minimum(torch.where(a < 0, torch.floor(bound), inf).amin(1), pair[:, _COL1])
    counts = (upper - lower + 1).clamp(min=0)
    counts = torch.where(((a == 0) & (d < 0)).any(1), 0.0, counts).long()

    keep = torch.nonzero(counts).squeeze(1)
    counts = counts.index_select(0, keep)
    # per span: z and w forms along the row, first column, first pixel's flat index, triangle
    span = torch.stack([
        pair[:, _Z_A], pair[:, _Z_B] * py + pair[:, _Z_C],
        pair[:, _W_A], pair[:, _W_B] * py + pair[:, _W_C],
        lower, pair[:, _BATCH] * (height * width) + py * width + lower, pair[:, _FLAT],
    ], 1).index_select(0, keep)
    ends = torch.cumsum(counts, 0)
    first = 0
    while first < keep.numel():
        done = int(ends[first - 1]) if first else 0
        last = max(int(torch.searchsorted(ends, done + MAX_FRAGMENTS_PER_CHUNK, right=True)), first + 1)
        span_owner, span_start = _expand(counts[first:last])
        frag = span[first:last].index_select(0, span_owner)
        offset = (torch.arange(span_owner.numel(), device=span_owner.device) - span_start.index_select(0, span_owner)).double()
        px = frag[:, 4] + offset
        zw = ((frag[:, 0] * px + frag[:, 1]) / (frag[:, 2] * px + frag[:, 3])).float()
        inside = (zw >= -1) & (zw <= 1)
        bits = zw.view(torch.int32)
        sortable = bits ^ ((bits >> 31) & 0x7FFFFFFF)
        key = (sortable.long() << 32) | frag[:, 6].long()
        pixel = (frag[:, 5] + offset).long()
        if not bool(inside.all()):
            pixel, key = pixel[inside], key[inside]
        yield pixel, key
        first = last
