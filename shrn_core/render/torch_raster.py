"""Pure-PyTorch triangle rasterizer with nvdiffrast's output layout.

Visibility is resolved without gradients in three vectorised passes:

1. triangle setup: snap each projected vertex to a 1/16-pixel grid (as nvdiffrast's CUDA
   rasterizer does), build three integer edge functions per triangle and its row range;
2. scanline spans: for every (triangle, row) pair the covered pixel columns follow in closed form
   from the three edge half-planes, so only covered pixels ever become fragments;
3. z-buffer: each fragment's z/w (affine in screen space over a triangle's plane, so one linear form
   per triangle) is packed above its triangle index into one int64 and ``scatter_reduce(amin)``
   keeps the nearest fragment per pixel.

Triangles with some vertex behind the eye (w <= 0) are not clipped geometrically; their coverage
uses 2D-homogeneous edge functions (Olano & Greer 1997), which are exact for such triangles, and
every fragment whose z/w falls outside [-1, 1] is discarded, which equals clipping against the near
and far planes. Triangles entirely behind the eye and zero-area triangles are dropped.

Barycentrics of the winning pixels are then computed from ``pos`` with nvdiffrast's pixel-shader
formula in a custom autograd function whose backward is that of nvdiffrast's rasterize: gradients
reach the vertex positions through (u, v); z/w carries none.
"""
from __future__ import annotations

import torch

SUBPIXEL = 16  # grid positions per pixel used for coverage (nvdiffrast: CR_SUBPIXEL_LOG2 = 4)
MAX_FRAGMENTS_PER_CHUNK = 1 << 21  # bounds peak memory of the span -> fragment expansion
_KEY_EMPTY = torch.iinfo(torch.int64).max


def rasterize(pos: torch.Tensor, tri: torch.Tensor, resolution: tuple[int, int]) -> torch.Tensor:
    """(B, V, 4) clip-space ``pos``, (F, 3) ``tri`` -> (B, H, W, 4) of (u, v, z/w, triangle_id + 1)."""
    height, width = resolution
    tri = tri.long()
    pixel, triangle = visible_triangles(pos, tri, height, width)
    face = triangle - torch.div(pixel, height * width, rounding_mode="floor") * tri.shape[0]
    return _rast_for(pos, tri, pixel, face, height, width)


def refresh(pos: torch.Tensor, tri: torch.Tensor, rast: torch.Tensor) -> torch.Tensor:
    """Recompute (u, v, z/w) of an earlier ``rast`` for new vertex positions, keeping its pixel ->
    triangle map (no visibility pass); differentiable w.r.t. ``pos`` like ``rasterize``."""
    ident = rast[..., 3].detach().reshape(-1)
    pixel = torch.nonzero(ident > 0).squeeze(1)
    face = ident.index_select(0, pixel).long() - 1
    return _rast_for(pos, tri.long(), pixel, face, rast.shape[1], rast.shape[2])


def _rast_for(pos, tri, pixel, face, height, width):
    """Dense (B, H, W, 4) rast with triangle ``face`` at flat pixel indices ``pixel``."""
    batch, verts = pos.shape[:2]
    b = torch.div(pixel, height * width, rounding_mode="floor")
    rest = pixel - b * (height * width)
    py = torch.div(rest, width, rounding_mode="floor")
    px = rest - py * width
    vertex = tri.index_select(0, face) + (b * verts).unsqueeze(1)
    fx = (2 * px + 1).to(pos.dtype) / width - 1
    fy = (2 * py + 1).to(pos.dtype) / height - 1
    ident = (face + 1).to(pos.dtype)
    rast = _Barycentrics.apply(pos, vertex, fx, fy, pixel, ident, batch * height * width)
    return rast.view(batch, height, width, 4)


class _Barycentrics(torch.autograd.Function):
    """Dense (B*H*W, 4) rast from the winning pixels: perspective-correct (u, v, z/w) of pixel centres
    (fx, fy) in their triangles (vertex rows ``vertex`` of the flattened ``pos``), computed with the
    formula of nvdiffrast's pixel shader. Values are clamped like nvdiffrast's (u, v >= 0,
    u + v <= 1); the gradient is that of the unclamped u, v, and z/w gets none (as in nvdiffrast).
    Pixels are processed in chunks to bound memory at large resolutions."""

    @staticmethod
    def forward(ctx, pos, vertex, fx, fy, pixel, ident, size):
        table = pos.reshape(-1, 4)
        out = torch.zeros(size, 4, dtype=pos.dtype, device=pos.device)
        for part in _chunks(pixel.numel()):
            corners = table.index_select(0, vertex[part].reshape(-1)).view(-1, 3, 4)
            _, _, a, total = _edge_terms(corners, fx[part], fy[part])
            z, w = corners[..., 2], corners[..., 3]
            zw = ((z[:, 0] * a[0] + z[:, 1] * a[1] + z[:, 2] * a[2]) / (w[:, 0] * a[0] + w[:, 1] * a[1] + w[:, 2] * a[2]))
            iw = _safe_reciprocal(total)  # 0 for a (numerically) edge-on triangle: u = v = 0, not NaN
            u = (a[0] * iw).clamp_(0, 1)
            v = (a[1] * iw).clamp_(0, 1)
            scale = 1 / torch.clamp(u + v, min=1)
            zw = torch.nan_to_num_(zw, nan=0.0).clamp_(-1, 1)
            out.index_copy_(0, pixel[part], torch.stack([u * scale, v * scale, zw, ident[part]], dim=1))
        ctx.save_for_backward(pos, vertex, fx, fy, pixel)
        return out

    @staticmethod
    def backward(ctx, grad):
        pos, vertex, fx, fy, pixel = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return (None,) * 7
        table = pos.detach().reshape(-1, 4)
        g_pos = torch.zeros(pos.numel(), dtype=grad.dtype, device=grad.device)
        for part in _chunks(pixel.numel()):
            corners = table.index_select(0, vertex[part].reshape(-1)).view(-1, 3, 4)
            p_x, p_y, a, total = _edge_terms(corners, fx[part], fy[part])
            g = grad.index_select(0, pixel[part])
            iw = _safe_reciprocal(total)
            b0, b1 = a[0] * iw, a[1] * iw
            gb0, gb1 = g[:, 0] * iw, g[:, 1] * iw
            gbb = gb0 * b0 + gb1 * b1
            p0x, p1x, p2x = p_x.unbind(1)
            p0y, p1y, p2y = p_y.unbind(1)
            gx = (gbb * (p2y - p1y) - gb1 * p2y,
                  gbb * (p0y - p2y) + gb0 * p2y,
                  gbb * (p1y - p0y) - gb0 * p1y + gb1 * p0y)
            gy = (gbb * (p1x - p2x) + gb1 * p2x,
                  gbb * (p2x - p0x) - gb0 * p2x,
                  gbb * (p0x - p1x) + gb0 * p1x - gb1 * p0x)
            # 1D scatter_add_ is several times faster on the CPU than index_add_ of (N, 4) rows
            for i in range(3):
                target = vertex[part, i] * 4
                g_pos.scatter_add_(0, target, gx[i])
                g_pos.scatter_add_(0, target + 1, gy[i])
                g_pos.scatter_add_(0, target + 3, -fx[part] * gx[i] - fy[part] * gy[i])  # d/dw
        return g_pos.view(pos.shape), None, None, None, None, None, None


def _safe_reciprocal(t):
    return torch.where(t == 0, 0.0, 1 / torch.where(t == 0, 1.0, t))


def _chunks(count: int, size: int = 1 << 20):
    """Slices covering range(count) in pieces of at most ``size`` (at least one, possibly empty)."""
    return [slice(start, start + size) for start in range(0, max(count, 1), size)]


def _edge_terms(corners, fx, fy):
    """nvdiffrast's pixel-relative vertex terms p_i = (x_i - fx w_i, y_i - fy w_i), the three
    homogeneous edge functions a_i and their sum."""
    p_x = corners[..., 0] - fx.unsqueeze(1) * corners[..., 3]
    p_y = corners[..., 1] - fy.unsqueeze(1) * corners[..., 3]
    p0x, p1x, p2x = p_x.unbind(1)
    p0y, p1y, p2y = p_y.unbind(1)
    a = (p1x * p2y - p1y * p2x, p2x * p0y - p2y * p0x, p0x * p1y - p0y * p1x)
    return p_x, p_y, a, a[0] + a[1] + a[2]


def interpolate(attr: torch.Tensor, rast: torch.Tensor, tri: torch.Tensor) -> torch.Tensor:
    """attr (B, V, C), (1, V, C) or (V, C) over rast (B, H, W, 4) -> (B, H, W, C), zero where empty."""
    return _Interpolate.apply(attr, rast, tri.long())


class _Interpolate(torch.autograd.Function):
    @staticmethod
    def forward(ctx, attr, rast, tri):
        batch, height, width, _ = rast.shape
        channels = attr.shape[-1]
        flat = rast.reshape(-1, 4)
        pixel = torch.nonzero(flat[:, 3] > 0).squeeze(1)
        values = flat.index_select(0, pixel)
        vertex = tri.index_select(0, values[:, 3].long() - 1)  # (N, 3)
        batched = attr.dim() == 3 and attr.shape[0] > 1
        if batched:
            vertex = vertex + (torch.div(pixel, height * width, rounding_mode="floor") * attr.shape[1]).unsqueeze(1)
        corners = attr.reshape(-1, channels).index_select(0, vertex.reshape(-1)).view(-1, 3, channels)
        u = values[:, 0:1].to(attr.dtype)
        v = values[:, 1:2].to(attr.dtype)
        mixed = corners[:, 2] + u * (corners[:, 0] - corners[:, 2]) + v * (corners[:, 1] - corners[:, 2])
        out = torch.zeros(batch * height * width, channels, dtype=attr.dtype, device=attr.device)
        out.index_copy_(0, pixel, mixed)
        ctx.save_for_backward(attr, pixel, vertex, u, v)
        ctx.rast_meta = (rast.shape, rast.dtype)
        return out.view(batch, height, width, channels)

    @staticmethod
    def backward(ctx, grad):
        attr, pixel, vertex, u, v = ctx.saved_tensors
        rast_shape, rast_dtype = ctx.rast_meta
        channels = attr.shape[-1]
        g = grad.reshape(-1, channels).index_select(0, pixel)  # (N, C)
        g_attr = g_rast = None
        if ctx.needs_input_grad[0]:
            weights = torch.stack([g * u, g * v, g * (1 - u - v)], dim=1)  # (N, 3, C)
            target = vertex.unsqueeze(2) * channels + torch.arange(channels, device=vertex.device)
            g_attr = torch.zeros(attr.numel(), dtype=attr.dtype, device=attr.device)
            g_attr.scatter_add_(0, target.reshape(-1), weights.reshape(-1))
            g_attr = g_attr.view(attr.shape)
        if ctx.needs_input_grad[1]:
            corners = attr.reshape(-1, channels).index_select(0, vertex.reshape(-1)).view(-1, 3, channels)
            g_u = (g * (corners[:, 0] - corners[:, 2])).sum(1)
            g_v = (g * (corners[:, 1] - corners[:, 2])).sum(1)
            zeros = torch.zeros_like(g_u)
            g_rast = torch.zeros(rast_shape.numel() // 4, 4, dtype=rast_dtype, device=grad.device)
            g_rast.index_copy_(0, pixel, torch.stack([g_u, g_v, zeros, zeros], dim=1).to(rast_dtype))
            g_rast = g_rast.view(rast_shape)
        return g_attr, g_rast, None


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
    triangle = keys.index_select(0, pixel) & 0xFFFFFFFF
    return pixel, triangle


def _triangle_setup(pos, tri, height, width):
    """Columns (1D float64 tensors over the kept triangles, indices below) of the triangle table:
    edge functions e_i = a_i * px + b_i * py + c_i over integer pixel indices, normalised so that the
    inside is e_i >= 0; z/w = z_a * px + z_b * py + z_c; the first row; the flat triangle index
    b * F + f and the flat index of the item's first pixel. Also each kept triangle's row count."""
    batch, faces, verts = pos.shape[0], tri.shape[0], pos.shape[1]
    # corner (i, t) = vertex i of flat triangle t = b * F + f, as a row of the flattened (B * V) vertices
    corner = (tri.T.unsqueeze(1) + (torch.arange(batch, device=pos.device) * verts).view(1, -1, 1)).reshape(3, -1)

    # Per vertex (cheaper than per corner): NDC position and z/w, and the screen position snapped to
    # 1/16 pixel exactly as nvdiffrast does it (float32 x * (1 / w) * W * 8, rounded to nearest even).
    half = SUBPIXEL // 2
    vx, vy, vz, vw = pos.detach().reshape(-1, 4).float().unbind(1)
    front = vw > 0
    rcp = 1 / torch.where(front, vw, 1.0)
    snapped_x = torch.round((vx * rcp * (width * half)).clamp_(-2**30, 2**30)).double() + width * half
    snapped_y = torch.round((vy * rcp * (height * half)).clamp_(-2**30, 2**30)).double() + height * half
    rcp64 = 1 / torch.where(front, vw, 1.0).double()
    ndc = [vx.double() * rcp64, vy.double() * rcp64, vz.double() * rcp64]

    def per_corner(values):  # (B * V,) -> (3, T)
        return values.index_select(0, corner.reshape(-1)).view(3, -1)

    in_front = per_corner(front)
    regular = in_front[0] & in_front[1] & in_front[2]
    straddling = (in_front[0] | in_front[1] | in_front[2]) & ~regular
    sx, sy = per_corner(snapped_x), per_corner(snapped_y)

    # z/w is affine in screen space over a triangle's plane: z/w = A X + B Y + C at NDC (X, Y), from
    # the three (unsnapped) projected vertices; as a linear form in pixel indices (px, py).
    X, Y, Z = (per_corner(c) for c in ndc)
    dx1, dx2, dy1, dy2, dz1, dz2 = X[1] - X[0], X[2] - X[0], Y[1] - Y[0], Y[2] - Y[0], Z[1] - Z[0], Z[2] - Z[0]
    ndc_area = dx1 * dy2 - dx2 * dy1
    inv = 1 / torch.where(ndc_area == 0, 1.0, ndc_area)
    slope_x = torch.where(ndc_area == 0, 0.0, (dz1 * dy2 - dz2 * dy1) * inv)
    slope_y = torch.where(ndc_area == 0, 0.0, (dx1 * dz2 - dx2 * dz1) * inv)
    offset = Z[0] - slope_x * X[0] - slope_y * Y[0]
    forms = [slope_x * (2.0 / width), slope_y * (2.0 / height),
             offset + slope_x * (1.0 / width - 1.0) + slope_y * (1.0 / height - 1.0)]  # z/w = z_a px + z_b py + z_c

    # Regular triangles: exact integer edge functions of the snapped vertices, with a tie-break so
    # that a pixel centre on an edge shared by two triangles goes to exactly one of them.
    s_a, s_b, s_c = [], [], []
    for i in range(3):
        j, k = (i + 1) % 3, (i + 2) % 3
        ex, ey = sx[k] - sx[j], sy[k] - sy[j]
        s_a.append(ey * -SUBPIXEL)
        s_b.append(ex * SUBPIXEL)
        s_c.append(ex * (half - sy[j]) - ey * (half - sx[j]))
    area = s_c[0] + s_c[1] + s_c[2]  # twice the signed snapped area

    any_straddling = bool(straddling.any())
    det = torch.zeros_like(area)
    if any_straddling:
        # triangles reaching behind the eye: the plane and the coverage come from the clip-space
        # vertices v = (x, y, z, w) (2D-homogeneous rasterization, Olano & Greer 1997)
        x, y, z, w = (per_corner(c.double()) for c in (vx, vy, vz, vw))
        minor_zw = [z[(i + 1) % 3] * w[(i + 2) % 3] - z[(i + 2) % 3] * w[(i + 1) % 3] for i in range(3)]
        minor_xy = [x[(i + 1) % 3] * y[(i + 2) % 3] - x[(i + 2) % 3] * y[(i + 1) % 3] for i in range(3)]
        n_x = y[0] * minor_zw[0] + y[1] * minor_zw[1] + y[2] * minor_zw[2]
        n_y = -(x[0] * minor_zw[0] + x[1] * minor_zw[1] + x[2] * minor_zw[2])
        det = w[0] * minor_xy[0] + w[1] * minor_xy[1] + w[2] * minor_xy[2]  # det[x, y, w]
        n_w = -(z[0] * minor_xy[0] + z[1] * minor_xy[1] + z[2] * minor_xy[2])
        scale = -1 / torch.where(det == 0, 1.0, det)  # plane n . v = 0  ->  z/w = -(n_x X + n_y Y + n_w) / n_z
        homogeneous = [n_x * (scale * (2.0 / width)), n_y * (scale * (2.0 / height)),
                       (n_x * (1.0 / width - 1.0) + n_y * (1.0 / height - 1.0) + n_w) * scale]
        forms = [torch.where(regular, f, h) for f, h in zip(forms, homogeneous)]
    sign = torch.where(regular, torch.sign(area), torch.sign(det)) if any_straddling else torch.sign(area)
    edges_a, edges_b, edges_c = [], [], []
    for i in range(3):
        ea, eb, ec = s_a[i] * sign, s_b[i] * sign, s_c[i] * sign
        top_left = (ea > 0) | ((ea == 0) & (eb > 0))
        ec = ec - (~top_left).double()  # integer edges: e > 0  <=>  e - 1 >= 0
        if any_straddling:
            # 2D-homogeneous edge functions e_i = (v_j x v_k) . (X, Y, 1) with v = (x, y, w) and
            # X = (2 px + 1) / W - 1, exact for any w
            j, k = (i + 1) % 3, (i + 2) % 3
            cx = y[j] * w[k] - w[j] * y[k]
            cy = w[j] * x[k] - x[j] * w[k]
            cz = x[j] * y[k] - y[j] * x[k]
            h_c = cx * (1.0 / width - 1.0) + cy * (1.0 / height - 1.0) + cz
            ea = torch.where(regular, ea, cx * (2.0 / width) * sign)
            eb = torch.where(regular, eb, cy * (2.0 / height) * sign)
            ec = torch.where(regular, ec, h_c * sign)
        edges_a.append(ea)
        edges_b.append(eb)
        edges_c.append(ec)

    row0 = torch.where(regular, torch.ceil((_min3(sy) - half) / SUBPIXEL), 0.0).clamp_(min=0)
    row1 = torch.where(regular, torch.floor((_max3(sy) - half) / SUBPIXEL), height - 1.0).clamp_(max=height - 1)
    col0 = torch.where(regular, torch.ceil((_min3(sx) - half) / SUBPIXEL), 0.0).clamp_(min=0)
    col1 = torch.where(regular, torch.floor((_max3(sx) - half) / SUBPIXEL), width - 1.0).clamp_(max=width - 1)
    keep = ((regular & (area != 0)) | (straddling & (det != 0))) & (row1 >= row0) & (col1 >= col0)
    index = torch.nonzero(keep).squeeze(1)
    flat = torch.arange(batch * faces, device=pos.device, dtype=torch.float64)
    base = torch.div(flat, faces, rounding_mode="floor") * (height * width)
    columns = edges_a + edges_b + edges_c + forms + [row0, flat, base]
    columns = [c.index_select(0, index) for c in columns]
    rows = (row1.index_select(0, index) - columns[_ROW0] + 1).long()
    return columns, rows


def _min3(t):  # (3, T) -> (T,); explicit ops beat a dim-0 reduction on the CPU
    return torch.minimum(torch.minimum(t[0], t[1]), t[2])


def _max3(t):
    return torch.maximum(torch.maximum(t[0], t[1]), t[2])


# the columns returned by _triangle_setup
_EDGE_A, _EDGE_B, _EDGE_C = slice(0, 3), slice(3, 6), slice(6, 9)
_Z_A, _Z_B, _Z_C = 9, 10, 11
_ROW0, _FLAT, _BASE = 12, 13, 14


def _expand(counts: torch.Tensor):
    """For counts (N,) -> (owner, offset) over sum(counts) items: owner i repeated counts[i] times and
    each item's offset 0..counts[i]-1 within its owner."""
    total = int(counts.sum())
    owner = torch.repeat_interleave(torch.arange(counts.numel(), device=counts.device), counts, output_size=total)
    starts = torch.cumsum(counts, 0) - counts
    return owner, torch.arange(total, device=counts.device) - starts.index_select(0, owner)


def _fragments(setup, height, width):
    """Yield (flat pixel index, packed depth|triangle key) for all covered pixels, in chunks."""
    columns, rows = setup
    if rows.numel() == 0:
        return
    owner, offset = _expand(rows)  # one item per (triangle, image row of its bounding box)
    pair = [c.index_select(0, owner) for c in columns]
    py = pair[_ROW0] + offset.double()
    lower = torch.zeros_like(py)
    upper = torch.full_like(py, width - 1.0)
    blocked = torch.zeros_like(py, dtype=torch.bool)
    for a, b, c in zip(pair[_EDGE_A], pair[_EDGE_B], pair[_EDGE_C]):
        d = b * py + c  # e = a * px + d along this row
        bound = -d / a
        lower = torch.maximum(lower, torch.where(a > 0, torch.ceil(bound), 0.0))
        upper = torch.minimum(upper, torch.where(a < 0, torch.floor(bound), width - 1.0))
        blocked |= (a == 0) & (d < 0)
    counts = torch.where(blocked, 0.0, (upper - lower + 1).clamp_(min=0)).long()
    keep = torch.nonzero(counts).squeeze(1)
    counts = counts.index_select(0, keep)
    # per span: z/w slope along the row and value at the first pixel, first pixel's flat index, triangle
    span = [
        pair[_Z_A].float(), (pair[_Z_A] * lower + pair[_Z_B] * py + pair[_Z_C]).float(),
        (pair[_BASE] + py * width + lower).long(), pair[_FLAT].long(),
    ]
    span = [c.index_select(0, keep) for c in span]
    ends = torch.cumsum(counts, 0)
    first = 0
    while first < keep.numel():
        done = int(ends[first - 1]) if first else 0
        last = max(int(torch.searchsorted(ends, done + MAX_FRAGMENTS_PER_CHUNK, right=True)), first + 1)
        span_owner, offset = _expand(counts[first:last])
        z_slope, z_start, pixel0, triangle = (c[first:last].index_select(0, span_owner) for c in span)
        zw = z_start + z_slope * offset.float()
        bits = zw.view(torch.int32)
        sortable = bits ^ ((bits >> 31) & 0x7FFFFFFF)  # orders like the floats, as signed integers
        key = (sortable.long() << 32) | triangle
        key = torch.where((zw >= -1) & (zw <= 1), key, _KEY_EMPTY)  # outside the near/far planes: no fragment
        yield pixel0 + offset, key
        first = last
