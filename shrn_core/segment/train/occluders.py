"""Procedural occluders drawn over a batch of aligned faces, entirely in torch (GPU when available).

Each kind is a function ``kind(scene) -> Layer`` for a ``Scene`` of ``n`` faces: hands (a 3D
articulated hand, projected), face masks of every kind (surgical with pleats, N95/KN95 with seams,
cloth, patterned; ear loops and straps), glasses (frames, bridges, temples, clear/tinted/sun lenses
with reflections), microphones, phones, cups and bottles, hair (fringes, side locks, strands), scarves,
thin straps and random shapes. Placement follows the face's landmarks; sizes are relative to the face.
Textures come from ``textures`` (plain colours incl. the face's own skin tone, patterns, patches cut
from other training photos).

A layer has a visual opacity ``alpha`` and a ``cover`` (the label: what counts as occluder). They
differ only for glasses: a lens counts as occluder when it is at least ``LENS_LABEL_OPACITY`` opaque
(sunglasses, tinted lenses), and as face when it is clear (the eye shows through).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from . import shapes
from .scene import (LEFT_EDGE, LEFT_EYE_CORNERS, MASK_JAW, MASK_TOP, MASK_TOP_LOW, NOSE_TIP, RIGHT_EDGE,
                    RIGHT_EYE_CORNERS, UPPER_LIP, LOWER_LIP, FOREHEAD_TOP, Scene)
from .textures import hsv_to_rgb, noise, on_device, palette, streaks, texture

LENS_LABEL_OPACITY = 0.35


@dataclass
class Layer:
    alpha: torch.Tensor  # (n, 1, S, S) visual opacity
    colour: torch.Tensor  # (n, 3, S, S)
    cover: torch.Tensor  # (n, 1, S, S) occluder label in [0, 1] (thresholded at 0.5)


def _softness(scene: Scene, lo: float = 0.5, hi: float = 1.3) -> torch.Tensor:
    """Edge ramp width in px: mostly crisp, sometimes defocused."""
    soft = scene.rng.uniform((scene.n,), lo, hi)
    blurry = scene.rng.chance((scene.n,), 0.15)
    return torch.where(blurry, soft * scene.rng.uniform((scene.n,), 2.0, 4.0), soft)


def _lit(normal_x, normal_y, normal_z, light: torch.Tensor, ambient: torch.Tensor) -> torch.Tensor:
    """Lambert shading of unit normals (n, ..., H, W) with ``light`` (n, 3) and ``ambient`` (n,)."""
    shape = (-1,) + (1,) * (normal_x.dim() - 1)
    lx, ly, lz = (light[:, i].reshape(shape) for i in range(3))
    diffuse = (normal_x * lx + normal_y * ly + normal_z * lz).clamp_min(0.0)
    a = ambient.reshape(shape)
    return a + (1.0 - a) * diffuse


def _random_light(scene: Scene) -> tuple[torch.Tensor, torch.Tensor]:
    azimuth = scene.rng.uniform((scene.n,), 0, 2 * math.pi)
    elevation = scene.rng.uniform((scene.n,), 0.35, 1.3)  # from the camera side
    light = torch.stack([torch.cos(azimuth) * torch.cos(elevation), torch.sin(azimuth) * torch.cos(elevation),
                         torch.sin(elevation)], -1)
    return light, scene.rng.uniform((scene.n,), 0.3, 0.65)


def _skin_for_hands(scene: Scene) -> torch.Tensor:
    """The face's own skin (same person), another face's, or a generic skin tone."""
    rng, n = scene.rng, scene.n
    own = scene.skin
    other = scene.skin[torch.randperm(n, generator=rng.generator, device=rng.device)] if n > 1 else own
    generic = palette(rng, n, families={"skin_tone": 1.0})
    pick = rng.choice(n, [0.5, 0.3, 0.2])
    colour = torch.where((pick == 0)[:, None], own, torch.where((pick == 1)[:, None], other, generic))
    return (colour * rng.uniform((n, 1), 0.85, 1.2) * rng.uniform((n, 3), 0.95, 1.05)).clamp(0.02, 1.0)


# ---------------------------------------------------------------------------------------------- hands
# Hand model in units of the palm width, hand frame: x across the palm (thumb side negative for a
# right hand), y from the wrist towards the fingers, z out of the palm (the side the fingers curl to).
_KNUCKLES = [[-0.36, 0.95], [-0.12, 1.0], [0.12, 0.97], [0.36, 0.88]]
_PHALANGES = [[0.42, 0.25, 0.20], [0.47, 0.29, 0.21], [0.44, 0.27, 0.21], [0.34, 0.20, 0.18]]
_FINGER_RADIUS = [[0.105, 0.085], [0.11, 0.088], [0.105, 0.085], [0.09, 0.072]]
_SPREAD = [0.14, 0.0, -0.10, -0.24]  # radians, base spread of index..little
_THUMB_BASE = [-0.40, 0.18]
_THUMB = [0.45, 0.33, 0.28]
_THUMB_RADIUS = [0.17, 0.125, 0.105, 0.09]
_PALM = [[-0.38, 0.0], [0.38, 0.0], [0.47, 0.86], [0.12, 0.97], [-0.12, 1.0], [-0.46, 0.92]]


def _rotation(axis: str, angle: torch.Tensor) -> torch.Tensor:
    c, s = torch.cos(angle), torch.sin(angle)
    one, zero = torch.ones_like(c), torch.zeros_like(c)
    if axis == "x":
        rows = [[one, zero, zero], [zero, c, -s], [zero, s, c]]
    elif axis == "y":
        rows = [[c, zero, s], [zero, one, zero], [-s, zero, c]]
    else:
        rows = [[c, -s, zero], [s, c, zero], [zero, zero, one]]
    return torch.stack([torch.stack(r, -1) for r in rows], -2)


def _hand_skeleton(scene: Scene):
    """Per hand: capsule starts/ends (n, K, 3) in palm units, radii (n, K), palm polygon (n, 6, 3)."""
    rng, n, device = scene.rng, scene.n, scene.rng.device
    knuckles, phalanges = on_device(_KNUCKLES, device), on_device(_PHALANGES, device)
    finger_radius, spread = on_device(_FINGER_RADIUS, device), on_device(_SPREAD, device)
    thumb, thumb_radius = on_device(_THUMB, device), on_device(_THUMB_RADIUS, device)
    # Curl per finger: a shared pose (open, relaxed, fist) plus per-finger variation; sometimes pointing.
    curl = (rng.uniform((n, 1)) ** 1.3 + rng.normal((n, 4), 0.0, 0.15)).clamp(0.0, 1.0)
    pointing = rng.chance((n,), 0.15)
    curl[:, 0] = torch.where(pointing, rng.uniform((n,), 0.0, 0.15), curl[:, 0])
    joint_max = on_device([1.45, 1.75, 1.2], device)  # MCP, PIP, DIP flexion at full curl
    flex = curl[..., None] * joint_max * rng.uniform((n, 4, 3), 0.8, 1.1)
    splay = spread * rng.uniform((n, 1), 0.0, 1.8) + rng.normal((n, 4), 0.0, 0.05)
    starts, ends, radii = [], [], []
    for finger in range(4):
        base = torch.cat([knuckles[finger].expand(n, 2), torch.zeros(n, 1, device=device)], -1)
        heading = torch.stack([-torch.sin(splay[:, finger]), torch.cos(splay[:, finger])], -1)
        point, angle = base, torch.zeros(n, device=device)
        for joint in range(3):
            angle = angle + flex[:, finger, joint]
            direction = torch.cat([heading * torch.cos(angle)[:, None], torch.sin(angle)[:, None]], -1)
            nxt = point + direction * phalanges[finger, joint]
            starts.append(point)
            ends.append(nxt)
            t0, t1 = joint / 3.0, (joint + 1) / 3.0
            r0 = finger_radius[finger, 0] + (finger_radius[finger, 1] - finger_radius[finger, 0]) * t0
            r1 = finger_radius[finger, 0] + (finger_radius[finger, 1] - finger_radius[finger, 0]) * t1
            radii.append(torch.stack([r0.expand(n), r1.expand(n)], -1))
            point = nxt
    # Thumb: from the base of the palm outwards, opposing more when the hand curls.
    thumb_curl = (curl.mean(1) + rng.normal((n,), 0.0, 0.2)).clamp(0.0, 1.0)
    out_angle = rng.uniform((n,), 0.5, 1.1) - 0.35 * thumb_curl
    point = torch.cat([on_device(_THUMB_BASE, device).expand(n, 2), torch.zeros(n, 1, device=device)], -1)
    heading = torch.stack([-torch.sin(out_angle), torch.cos(out_angle)], -1)
    lift = 0.3 + 0.6 * thumb_curl
    for joint in range(3):
        angle = lift * (joint + 1) * 0.6
        direction = torch.cat([heading * torch.cos(angle)[:, None], torch.sin(angle)[:, None]], -1)
        nxt = point + direction * thumb[joint]
        starts.append(point)
        ends.append(nxt)
        radii.append(torch.stack([thumb_radius[joint].expand(n), thumb_radius[joint + 1].expand(n)], -1))
        point = nxt
    # Palm thickness (seen from the side) and the forearm (goes out of the picture).
    zero = torch.zeros(n, 3, device=device)
    starts.append(zero + on_device([0.0, 0.1, 0.0], device))
    ends.append(zero + on_device([0.0, 0.85, 0.0], device))
    radii.append(on_device([0.2, 0.2], device).expand(n, 2))
    forearm = rng.uniform((n,), 2.5, 4.5)
    starts.append(zero.clone())
    ends.append(torch.stack([rng.normal((n,), 0.0, 0.3), -forearm, torch.zeros(n, device=device)], -1))
    radii.append(torch.stack([torch.full((n,), 0.3, device=device), rng.uniform((n,), 0.32, 0.42)], -1))
    palm = torch.cat([on_device(_PALM, device).expand(n, 6, 2), torch.zeros(n, 6, 1, device=device)], -1)
    return torch.stack(starts, 1), torch.stack(ends, 1), torch.stack(radii, 1), palm


def hand(scene: Scene) -> Layer:
    rng, n, X, Y = scene.rng, scene.n, scene.X, scene.Y
    starts, ends, radii, palm = _hand_skeleton(scene)
    mirror = rng.sign((n,))  # left or right hand
    flip = torch.stack([mirror, torch.ones_like(mirror), torch.ones_like(mirror)], -1)
    starts, ends, palm = starts * flip[:, None], ends * flip[:, None], palm * flip[:, None]
    # Orientation: roll about the hand's long axis (palm, side or back to the camera), tilt, then
    # the in-picture direction of the fingers (mostly up or sideways: hands come from below).
    rotation = (_rotation("z", rng.normal((n,), 0.0, 1.0) * 1.1 + math.pi * rng.chance((n,), 0.1).float())
                @ _rotation("x", rng.uniform((n,), -0.6, 0.6))
                @ _rotation("y", rng.uniform((n,), -math.pi, math.pi)))
    unit = scene.face_width() * rng.uniform((n,), 0.5, 0.95)  # palm width in px
    centre = scene.anchor(jitter=0.12)
    across, down = scene.axes()
    face_angle = torch.atan2(across[:, 1], across[:, 0])
    to_image = _rotation("z", face_angle) @ rotation

    def place(points):  # (n, K, 3) hand units -> (n, K, 2) pixels, depth (n, K)
        moved = (points - on_device([0.0, 0.5, 0.0], rng.device)) @ to_image.transpose(1, 2)
        # Hand "up" (+y) should point up in the picture: image y grows downwards.
        xy = torch.stack([moved[..., 0], -moved[..., 1]], -1) * unit[:, None, None] + centre[:, None]
        return xy, moved[..., 2] * unit[:, None]

    start_xy, start_z = place(starts)
    end_xy, end_z = place(ends)
    palm_xy, palm_z = place(palm)
    radius_px = radii * unit[:, None, None]
    # Rendered on a grid half as fine (fingers are several pixels wide), then interpolated.
    coarse = 2 if scene.size % 2 == 0 and scene.size >= 128 else 1
    Xc, Yc = shapes.pixel_grid(scene.size // coarse, X.device)
    Xc, Yc = Xc * coarse, Yc * coarse
    sdf, nx, ny, nz = shapes.capsule_fields(Xc, Yc, start_xy, end_xy, radius_px[..., 0], radius_px[..., 1])
    palm_sdf = shapes.polygon(Xc, Yc, palm_xy) - 0.06 * unit[:, None, None]
    union = torch.minimum(sdf.min(1).values, palm_sdf)
    # Visible surface: the capsule nearest the camera (depth along its axis minus its bulge).
    t_depth = start_z[..., None, None] + 0.5 * (end_z - start_z)[..., None, None]
    depth = torch.where(sdf < 0, t_depth - nz * radius_px.mean(-1)[..., None, None], torch.full_like(sdf, 1e9))
    palm_depth = palm_z.mean(1)[:, None, None].expand_as(palm_sdf)
    depth = torch.cat([depth, torch.where(palm_sdf < 0, palm_depth, torch.full_like(palm_sdf, 1e9))[:, None]], 1)
    winner = depth.argmin(1, keepdim=True)
    palm_normal = to_image[:, :, 2] * on_device([1.0, -1.0, -1.0], rng.device)
    pad = lambda t, v: torch.cat([t, v.expand(n, 1, *t.shape[2:]).to(t.dtype)], 1)  # noqa: E731
    normals = [pad(nx, palm_normal[:, 0].reshape(n, 1, 1, 1)), pad(ny, palm_normal[:, 1].reshape(n, 1, 1, 1)),
               pad(nz, palm_normal[:, 2].abs().reshape(n, 1, 1, 1))]
    nx, ny, nz = (torch.gather(v, 1, winner)[:, 0] for v in normals)
    light, ambient = _random_light(scene)
    # Relative to a surface facing the camera, which keeps the skin's own colour (same light as the face).
    facing = ambient + (1.0 - ambient) * light[:, 2].clamp_min(0.0)
    shade = (_lit(nx, ny, nz, light, ambient) / facing[:, None, None]).clamp(0.0, 1.3)
    # A sleeve over the forearm in half of the pictures.
    sleeve = rng.chance((n,), 0.5)
    forearm = (winner[:, 0] == sdf.shape[1] - 1) & sleeve[:, None, None] \
        & _beyond(Xc, Yc, start_xy[:, -1], end_xy[:, -1], rng.uniform((n,), 0.15, 0.5))
    full = lambda t: F.interpolate(t[:, None], size=(scene.size, scene.size), mode="bilinear",  # noqa: E731
                                   align_corners=False) if coarse > 1 else t[:, None]
    union, shade, forearm = full(union), full(shade), full(forearm.float()) > 0.5
    skin = _skin_for_hands(scene)
    albedo = skin[:, :, None, None] * (1.0 + 0.05 * noise(rng, n, scene.size, cells=24, octaves=2))
    colour = albedo * shade
    if sleeve.any():
        cloth = texture(rng, n, X, Y, scene.bank, weights=(1.0, 0.6, 0.6))
        colour = torch.where(forearm, cloth * shade, colour)
    alpha = shapes.coverage(union[:, 0], _softness(scene))[:, None]
    return Layer(alpha, colour.clamp(0, 1), alpha)


def _beyond(X, Y, start, end, fraction):
    """Pixels past ``fraction`` of the way from ``start`` to ``end`` (n, 2) along that segment."""
    d = end - start
    t = ((X - start[:, 0, None, None]) * d[:, 0, None, None] + (Y - start[:, 1, None, None]) * d[:, 1, None, None])
    return t / (d * d).sum(-1).clamp_min(1e-6)[:, None, None] > fraction[:, None, None]


# ------------------------------------------------------------------------------------------ face masks
def face_mask(scene: Scene) -> Layer:
    rng, n, X, Y, size = scene.rng, scene.n, scene.X, scene.Y, scene.size
    top = scene.point(MASK_TOP)
    low = scene.point(MASK_TOP_LOW)
    worn_low = torch.where(rng.chance((n,), 0.12), rng.uniform((n,), 0.5, 1.0), rng.uniform((n,), 0.0, 0.25))
    top = top + (low - top) * worn_low[:, None, None]
    jaw = scene.point(MASK_JAW)
    _, down = scene.axes()
    height = scene.face_height()
    centre = scene.point(NOSE_TIP)
    # Wider than the face, hanging under the chin.
    jaw = centre[:, None] + (jaw - centre[:, None]) * rng.uniform((n, 1, 1), 1.0, 1.1)
    sag = rng.uniform((n,), -0.02, 0.12) * height
    below_mouth = ((jaw - scene.point(UPPER_LIP)[:, None]) * down[:, None]).sum(-1).clamp_min(0.0)
    jaw = jaw + down[:, None] * (sag[:, None] * (below_mouth / height[:, None] * 3.0).clamp(0, 1))[..., None]
    top = centre[:, None] + (top - centre[:, None]) * rng.uniform((n, 1, 1), 1.0, 1.08)
    outline = torch.cat([top, jaw], 1)
    sdf = shapes.polygon(X, Y, outline, coarse=2) - rng.uniform((n,), 0.0, 0.02)[:, None, None] * height[:, None, None]
    alpha = shapes.coverage(sdf, _softness(scene))[:, None]
    # Surface: medical colours or anything; pleats, a seam, a valve; shading darker at the rim.
    kind = rng.choice(n, [0.35, 0.3, 0.35])  # surgical, N95/KN95, cloth
    medical = palette(rng, n, families={"white": 1.0, "pastel": 1.5, "black": 0.8, "grey": 0.4, "saturated": 0.4,
                                        "skin_tone": 0.3})
    surface = texture(rng, n, X, Y, scene.bank, skin=scene.skin, weights=(1.0, 1.2, 1.0))
    plain = (kind != 2) & rng.chance((n,), 0.8)
    surface = torch.where(plain[:, None, None, None], medical[:, :, None, None].expand_as(surface), surface)
    across, _ = scene.axes()
    v = ((X - centre[:, 0, None, None]) * down[:, 0, None, None] + (Y - centre[:, 1, None, None]) * down[:, 1, None, None])
    u = ((X - centre[:, 0, None, None]) * across[:, 0, None, None] + (Y - centre[:, 1, None, None]) * across[:, 1, None, None])
    folds = 1.0 - 0.18 * torch.relu(torch.sin(2 * math.pi * v / (height[:, None, None] * rng.uniform((n, 1, 1), 0.08, 0.14))))
    seam = 1.0 - 0.25 * torch.exp(-(u / (0.01 * height[:, None, None])) ** 2)
    radial = 1.0 - 0.3 * ((u ** 2 + v ** 2) / (0.5 * height[:, None, None]) ** 2).clamp(0, 1)
    shade = torch.where((kind == 0)[:, None, None], folds, torch.where((kind == 1)[:, None, None], seam * radial,
                                                                         torch.ones_like(folds)))
    rim = shapes.coverage(sdf + 0.03 * height[:, None, None], 2.0)  # darker towards the outline
    shade = shade * (0.8 + 0.2 * rim)
    colour = surface * shade[:, None]
    layer_alpha, layer_colour = alpha, colour
    # Ear loops / head straps (part of the occluder).
    straps = rng.chance((n,), 0.6)
    if straps.any():
        radius = rng.uniform((n,), 0.004, 0.012) * size
        ear_r, ear_l = scene.point(RIGHT_EDGE), scene.point(LEFT_EDGE)
        out = (ear_l - ear_r) * rng.uniform((n, 1), 0.0, 0.12)
        ear_r, ear_l = ear_r - out, ear_l + out
        corners = outline[:, [0, len(MASK_TOP) - 1, len(MASK_TOP) + 3, -4]]  # top right, top left, lower left, lower right
        lift = -down * (height * rng.uniform((n,), 0.0, 0.3))[:, None]
        a = torch.stack([corners[:, 0], corners[:, 3], corners[:, 1], corners[:, 2]], 1)
        b = torch.stack([ear_r + lift, ear_r - lift * 0.3, ear_l + lift, ear_l - lift * 0.3], 1)
        strap = shapes.capsules(X, Y, a, b, radius[:, None].expand(n, 4)).min(1).values
        strap_alpha = shapes.coverage(strap, 0.6)[:, None] * straps[:, None, None, None]
        strap_colour = torch.where(rng.chance((n, 1), 0.5), palette(rng, n), medical)
        layer_colour = torch.where(strap_alpha > alpha, strap_colour[:, :, None, None] * shade[:, None].clamp(0.8, 1),
                                   colour)
        layer_alpha = torch.maximum(alpha, strap_alpha)
    return Layer(layer_alpha, layer_colour.clamp(0, 1), layer_alpha)


# --------------------------------------------------------------------------------------------- glasses
def glasses(scene: Scene) -> Layer:
    rng, n, X, Y, size = scene.rng, scene.n, scene.X, scene.Y, scene.size
    across, down = scene.axes()
    right_corners, left_corners = scene.point(RIGHT_EYE_CORNERS), scene.point(LEFT_EYE_CORNERS)
    eyes = torch.stack([right_corners.mean(1), left_corners.mean(1)], 1)  # (n, 2, 2)
    eye_width = torch.stack([(right_corners[:, 0] - right_corners[:, 1]).norm(dim=-1),
                             (left_corners[:, 0] - left_corners[:, 1]).norm(dim=-1)], 1).clamp_min(2.0)
    scale = rng.uniform((n, 1), 0.8, 1.15)
    half_w = eye_width * scale
    half_h = half_w * rng.uniform((n, 1), 0.55, 0.95)
    outward = torch.stack([-across, across], 1)
    offset = down[:, None] * (half_h * rng.uniform((n, 1), -0.05, 0.3))[..., None] \
        + outward * (half_w * rng.uniform((n, 1), 0.0, 0.12))[..., None]
    centres = eyes + offset
    angle = torch.atan2(across[:, 1], across[:, 0]) + rng.normal((n,), 0.0, 0.03)
    power = rng.uniform((n,), 2.0, 6.0)
    lens_sdf = torch.stack([shapes.superellipse(X, Y, centres[:, k], torch.stack([half_w[:, k], half_h[:, k]], -1),
                                                angle, power) for k in range(2)], 1).min(1).values
    thickness = rng.uniform((n,), 0.03, 0.2) * half_w.mean(1)
    rimless = rng.chance((n,), 0.12)
    thickness = torch.where(rimless, torch.zeros_like(thickness), thickness).clamp_min(0.0)
    ring = lens_sdf.abs() - thickness[:, None, None] / 2
    bridge_a = centres[:, 0] + across * half_w[:, :1] * 0.9 - down * half_h[:, :1] * 0.4
    bridge_b = centres[:, 1] - across * half_w[:, 1:] * 0.9 - down * half_h[:, 1:] * 0.4
    edge = thickness.clamp_min(0.006 * size) * rng.uniform((n,), 0.4, 0.8)
    temples_a = torch.stack([centres[:, 0] - across * half_w[:, :1], centres[:, 1] + across * half_w[:, 1:]], 1)
    ears = torch.stack([scene.point(RIGHT_EDGE), scene.point(LEFT_EDGE)], 1)
    temples_b = ears + (ears - temples_a) * rng.uniform((n, 1, 1), 0.0, 0.4)
    parts = torch.cat([torch.stack([bridge_a], 1), temples_a], 1)
    ends = torch.cat([torch.stack([bridge_b], 1), temples_b], 1)
    sticks = shapes.capsules(X, Y, parts, ends, edge[:, None].expand(n, 3)).min(1).values
    frame_sdf = torch.minimum(ring, sticks)
    softness = _softness(scene, 0.4, 1.0)
    frame = shapes.coverage(frame_sdf, softness)[:, None]
    lens = shapes.coverage(lens_sdf, softness)[:, None]
    style = rng.choice(n, [0.35, 0.25, 0.4])  # sunglasses, tinted, clear
    opacity = torch.where(style == 0, rng.uniform((n,), 0.7, 0.97),
                          torch.where(style == 1, rng.uniform((n,), 0.3, 0.7), rng.uniform((n,), 0.0, 0.25)))
    tint = palette(rng, n, families={"black": 2.0, "dark": 2.0, "saturated": 1.0, "pastel": 0.6, "grey": 0.6})
    frame_colour = texture(rng, n, X, Y, scene.bank, weights=(1.0, 0.3, 0.3),
                           families={"black": 2.0, "dark": 1.0, "grey": 0.6, "saturated": 0.8, "white": 0.3,
                                     "skin_tone": 0.3, "pastel": 0.4})
    # Reflections: a bright soft streak across the lens (only seen, not a label).
    streak_angle = rng.uniform((n,), 0.3, 1.2)
    s = (X * torch.cos(streak_angle)[:, None, None] + Y * torch.sin(streak_angle)[:, None, None]) / size
    glare = torch.exp(-((s - rng.uniform((n, 1, 1), 0.3, 1.1)) / rng.uniform((n, 1, 1), 0.02, 0.08)) ** 2)
    glare = glare * rng.uniform((n, 1, 1), 0.0, 0.6) * rng.chance((n, 1, 1), 0.6)
    lens_colour = tint[:, :, None, None] + glare[:, None]
    # Mirrored lenses reflect the scene: a photo patch, tinted.
    mirrored = (rng.chance((n,), 0.2) & (style == 0))[:, None, None, None]
    reflection = texture(rng, n, X, Y, scene.bank, weights=(0.2, 0.6, 1.0)) * (0.5 + tint[:, :, None, None])
    lens_colour = torch.where(mirrored, reflection + glare[:, None], lens_colour)
    lens_alpha = (lens * (opacity[:, None, None, None] + glare[:, None] * 0.5)).clamp(0, 1)
    alpha = torch.maximum(frame, lens_alpha)
    colour = torch.where(frame >= lens_alpha, frame_colour, lens_colour)
    cover = torch.maximum(frame, lens * (opacity >= LENS_LABEL_OPACITY).float()[:, None, None, None])
    return Layer(alpha, colour.clamp(0, 1), cover)


# ---------------------------------------------------------------------------- hand-held and worn things
def microphone(scene: Scene) -> Layer:
    rng, n, X, Y = scene.rng, scene.n, scene.X, scene.Y
    height = scene.face_height()
    across, down = scene.axes()
    mouth = (scene.point(UPPER_LIP) + scene.point(LOWER_LIP)) / 2
    centre = mouth + down * (height * rng.uniform((n,), -0.05, 0.35))[:, None] \
        + across * (height * rng.uniform((n,), -0.3, 0.3))[:, None]
    radius = height * rng.uniform((n,), 0.09, 0.22)
    head = ((X - centre[:, 0, None, None]) ** 2 + (Y - centre[:, 1, None, None]) ** 2).sqrt() - radius[:, None, None]
    direction = rng.normal((n,), 0.0, 0.7) + math.pi / 2  # handle mostly goes down
    handle_end = centre + torch.stack([torch.cos(direction), torch.sin(direction)], -1) * (radius * rng.uniform((n,), 3, 8))[:, None]
    handle_r = radius * rng.uniform((n,), 0.3, 0.55)
    handle = shapes.capsules(X, Y, centre[:, None], handle_end[:, None], handle_r[:, None] * 0.85, handle_r[:, None])[:, 0]
    light, ambient = _random_light(scene)
    # Ball: spherical shading, a metal grille or a foam cover.
    dx = (X - centre[:, 0, None, None]) / radius[:, None, None]
    dy = (Y - centre[:, 1, None, None]) / radius[:, None, None]
    dz = (1.0 - dx ** 2 - dy ** 2).clamp_min(0.0).sqrt()
    ball_shade = _lit(dx.clamp(-1, 1), dy.clamp(-1, 1), dz, light, ambient)
    cell = radius[:, None, None] * rng.uniform((n, 1, 1), 0.1, 0.2)
    grille = torch.maximum(torch.cos(math.pi * (X + Y) / cell).abs(), torch.cos(math.pi * (X - Y) / cell).abs()) ** 8
    metal, dark = palette(rng, n, families={"grey": 1.0, "white": 0.5, "black": 0.5}), palette(rng, n, families={"black": 1.0, "dark": 0.5})
    foam = rng.chance((n,), 0.35)
    ball = metal[:, :, None, None] * (1 - grille[:, None]) + dark[:, :, None, None] * grille[:, None]
    foam_colour = palette(rng, n)[:, :, None, None] * (1.0 + 0.15 * noise(rng, n, scene.size, cells=scene.size // 4, octaves=2))
    ball = torch.where(foam[:, None, None, None], foam_colour, ball) * ball_shade[:, None]
    _, nx, ny, nz = shapes.capsule_fields(X, Y, centre[:, None], handle_end[:, None], handle_r[:, None])
    handle_colour = palette(rng, n, families={"black": 2.0, "grey": 1.0, "dark": 1.0, "saturated": 0.3})
    handle_rgb = handle_colour[:, :, None, None] * _lit(nx[:, 0], ny[:, 0], nz[:, 0], light, ambient)[:, None]
    softness = _softness(scene)
    ball_alpha = shapes.coverage(head, softness)[:, None]
    handle_alpha = shapes.coverage(handle, softness)[:, None]
    colour = torch.where(ball_alpha >= handle_alpha, ball, handle_rgb)
    alpha = torch.maximum(ball_alpha, handle_alpha)
    return Layer(alpha, colour.clamp(0, 1), alpha)


def phone(scene: Scene) -> Layer:
    rng, n, X, Y = scene.rng, scene.n, scene.X, scene.Y
    height = scene.face_height()
    centre = scene.anchor(jitter=0.15)
    long_half = height * rng.uniform((n,), 0.25, 0.5)
    half = torch.stack([long_half / rng.uniform((n,), 1.8, 2.2), long_half], -1)
    angle = rng.uniform((n,), -math.pi, math.pi)
    power = rng.uniform((n,), 5.0, 12.0)
    body = shapes.superellipse(X, Y, centre, half, angle, power)
    screen = shapes.superellipse(X, Y, centre, half * rng.uniform((n, 1), 0.85, 0.93), angle, power)
    case = texture(rng, n, X, Y, scene.bank, weights=(1.0, 0.4, 0.4),
                   families={"black": 2.0, "white": 1.0, "grey": 1.0, "saturated": 1.0, "pastel": 0.6, "dark": 0.6})
    screen_on = rng.chance((n,), 0.4)
    display = torch.where(screen_on[:, None, None, None], texture(rng, n, X, Y, scene.bank, weights=(0.2, 0.2, 1.0)),
                          palette(rng, n, families={"black": 1.0, "dark": 0.5})[:, :, None, None].expand(n, 3, *X.shape[-2:]))
    show_screen = rng.chance((n,), 0.5)  # back of the phone (camera side) or its screen
    inside = (screen < 0)[:, None] & show_screen[:, None, None, None]
    colour = torch.where(inside, display, case)
    alpha = shapes.coverage(body, _softness(scene))[:, None]
    return Layer(alpha, colour.clamp(0, 1), alpha)


def cup(scene: Scene) -> Layer:
    rng, n, X, Y = scene.rng, scene.n, scene.X, scene.Y
    height = scene.face_height()
    across, down = scene.axes()
    mouth = (scene.point(UPPER_LIP) + scene.point(LOWER_LIP)) / 2
    half_w = height * rng.uniform((n,), 0.13, 0.3)
    half_h = half_w * rng.uniform((n,), 1.0, 2.2)
    tilt = torch.atan2(across[:, 1], across[:, 0]) + rng.normal((n,), 0.0, 0.35)
    axis_down = torch.stack([-torch.sin(tilt), torch.cos(tilt)], -1)
    axis_across = torch.stack([torch.cos(tilt), torch.sin(tilt)], -1)
    top = mouth + down * (height * rng.uniform((n,), -0.05, 0.25))[:, None] \
        + across * (height * rng.uniform((n,), -0.2, 0.2))[:, None]
    centre = top + axis_down * half_h[:, None]
    body = shapes.superellipse(X, Y, centre, torch.stack([half_w, half_h], -1), tilt, rng.uniform((n,), 3.0, 8.0))
    rim = shapes.ellipse(X, Y, top, torch.stack([half_w, half_w * rng.uniform((n,), 0.15, 0.35)], -1), tilt)
    side = rng.sign((n,))
    handle_c = centre + axis_across * (half_w * side * 1.05)[:, None]
    handle_r = half_h * rng.uniform((n,), 0.3, 0.5)
    ring = (((X - handle_c[:, 0, None, None]) ** 2 + (Y - handle_c[:, 1, None, None]) ** 2).sqrt()
            - handle_r[:, None, None]).abs() - (half_w * 0.08)[:, None, None]
    has_handle = rng.chance((n,), 0.6)
    ring = torch.where(has_handle[:, None, None], ring, torch.full_like(ring, 1e4))
    bottle = rng.chance((n,), 0.3)  # a bottle: a neck towards the mouth instead of a rim
    neck = shapes.capsules(X, Y, top[:, None], (top - axis_down * (half_h * 0.6)[:, None])[:, None],
                           (half_w * 0.35)[:, None])[:, 0]
    shape_sdf = torch.minimum(torch.minimum(body, ring), torch.where(bottle[:, None, None], neck, torch.minimum(rim, body)))
    surface = texture(rng, n, X, Y, scene.bank, weights=(1.0, 1.0, 0.5))
    u = ((X - centre[:, 0, None, None]) * axis_across[:, 0, None, None]
         + (Y - centre[:, 1, None, None]) * axis_across[:, 1, None, None]) / half_w[:, None, None]
    cylinder = 1.0 - 0.45 * (u.clamp(-1, 1) ** 2) + 0.15 * torch.exp(-((u - rng.uniform((n, 1, 1), -0.6, 0.6)) / 0.15) ** 2)
    interior = (rim < 0) & ~bottle[:, None, None] & rng.chance((n, 1, 1), 0.7)
    drink = palette(rng, n, families={"dark": 2.0, "black": 1.0, "white": 0.5, "saturated": 0.5})
    colour = torch.where(interior[:, None], drink[:, :, None, None].expand_as(surface), surface * cylinder[:, None])
    alpha = shapes.coverage(shape_sdf, _softness(scene))[:, None]
    return Layer(alpha, colour.clamp(0, 1), alpha)


def _hair_colour(scene: Scene) -> torch.Tensor:
    rng, n = scene.rng, scene.n
    family = rng.choice(n, [3.0, 2.5, 1.5, 1.2, 0.7, 0.7, 0.5])
    hsv = on_device([[0.07, 0.3, 0.06], [0.06, 0.55, 0.2], [0.07, 0.55, 0.38], [0.11, 0.45, 0.72], [0.03, 0.7, 0.4],
                     [0.08, 0.05, 0.7], [0.0, 0.8, 0.6]], rng.device)[family]
    hue = torch.where(family == 6, rng.uniform((n,)), hsv[:, 0] + rng.normal((n,), 0, 0.015))
    return hsv_to_rgb(hue, (hsv[:, 1] * rng.uniform((n,), 0.7, 1.2)).clamp(0, 1),
                      (hsv[:, 2] * rng.uniform((n,), 0.7, 1.3)).clamp(0, 1))


def hair(scene: Scene) -> Layer:
    rng, n, X, Y, size = scene.rng, scene.n, scene.X, scene.Y, scene.size
    height, width = scene.face_height(), scene.face_width()
    across, down = scene.axes()
    top = scene.point(FOREHEAD_TOP)
    u = (X - top[:, 0, None, None]) * across[:, 0, None, None] + (Y - top[:, 1, None, None]) * across[:, 1, None, None]
    v = (X - top[:, 0, None, None]) * down[:, 0, None, None] + (Y - top[:, 1, None, None]) * down[:, 1, None, None]
    un, vn = u / width[:, None, None], v / height[:, None, None]
    style = rng.choice(n, [0.45, 0.3, 0.25])  # fringe, side lock, strands
    # Fringe: above a wavy edge across the forehead (locks as sharp dips).
    depth = rng.uniform((n, 1, 1), 0.05, 0.5)
    freq = rng.uniform((n, 1, 1), 4.0, 14.0)
    phase = rng.uniform((n, 1, 1), 0.0, 6.3)
    locks = (torch.sin(freq * un + phase).abs() ** rng.uniform((n, 1, 1), 0.3, 1.0)) * rng.uniform((n, 1, 1), 0.03, 0.15)
    sweep = rng.uniform((n, 1, 1), -0.3, 0.3) * un
    fringe = vn - (depth + sweep - locks)
    # Side lock: hair hanging over one side of the face from the temple.
    side = rng.sign((n, 1, 1))
    edge = rng.uniform((n, 1, 1), 0.1, 0.45) + 0.05 * torch.sin(freq * vn + phase)
    lock = (side * un - 0.5 + edge).neg() * torch.ones_like(vn)
    lock = torch.maximum(lock, vn - rng.uniform((n, 1, 1), 0.5, 1.1))
    region_sdf = torch.where((style == 0)[:, None, None], fringe, lock) * height[:, None, None]
    # Strands: thin curves falling across the face.
    k = 6
    starts = top[:, None] + across[:, None] * (rng.uniform((n, k, 1), -0.5, 0.5) * width[:, None, None]) \
        - down[:, None] * (0.1 * height)[:, None, None]
    sway = rng.normal((n, k, 1), 0.0, 0.25) * width[:, None, None]
    length = rng.uniform((n, k, 1), 0.3, 1.0) * height[:, None, None]
    mids = starts + down[:, None] * length * 0.5 + across[:, None] * sway * 0.5
    ends = starts + down[:, None] * length + across[:, None] * sway
    thin = rng.uniform((n, k), 0.003, 0.012) * size
    strand_sdf = torch.minimum(shapes.capsules(X, Y, starts, mids, thin), shapes.capsules(X, Y, mids, ends, thin)).min(1).values
    strands_on = rng.chance((n, k), 0.6).float()
    strand_sdf = torch.where(strands_on.sum(1)[:, None, None] > 0, strand_sdf, torch.full_like(strand_sdf, 1e4))
    sdf = torch.where((style == 2)[:, None, None], strand_sdf, torch.minimum(region_sdf, torch.where(
        rng.chance((n, 1, 1), 0.3), strand_sdf, torch.full_like(strand_sdf, 1e4))))
    base = _hair_colour(scene)
    direction = torch.atan2(down[:, 1], down[:, 0]) + rng.normal((n,), 0.0, 0.3)
    grain = streaks(rng, n, size, direction)
    sheen = torch.exp(-((vn - rng.uniform((n, 1, 1), 0.0, 0.3)) / 0.06) ** 2) * rng.uniform((n, 1, 1), 0.0, 0.5)
    colour = base[:, :, None, None] * (0.75 + 0.35 * grain) + sheen[:, None] * 0.5
    alpha = shapes.coverage(sdf, _softness(scene, 0.5, 1.0))[:, None]
    return Layer(alpha, colour.clamp(0, 1), alpha)


def scarf(scene: Scene) -> Layer:
    rng, n, X, Y = scene.rng, scene.n, scene.X, scene.Y
    height = scene.face_height()
    across, down = scene.axes()
    mouth = (scene.point(UPPER_LIP) + scene.point(LOWER_LIP)) / 2
    level = mouth + down * (height * rng.uniform((n,), -0.25, 0.3))[:, None]
    u = ((X - level[:, 0, None, None]) * across[:, 0, None, None] + (Y - level[:, 1, None, None]) * across[:, 1, None, None])
    v = ((X - level[:, 0, None, None]) * down[:, 0, None, None] + (Y - level[:, 1, None, None]) * down[:, 1, None, None])
    un = u / height[:, None, None]
    wave = rng.uniform((n, 1, 1), 0.0, 0.08) * torch.sin(un * rng.uniform((n, 1, 1), 2, 9) + rng.uniform((n, 1, 1), 0, 6.3))
    slope = rng.uniform((n, 1, 1), -0.25, 0.25) * un
    sdf = -(v / height[:, None, None] - wave - slope) * height[:, None, None]
    surface = texture(rng, n, X, Y, scene.bank, skin=scene.skin, weights=(1.0, 1.2, 1.2))
    folds = 1.0 - 0.2 * torch.relu(torch.sin(un * rng.uniform((n, 1, 1), 6, 16) + v / height[:, None, None] * 3.0))
    alpha = shapes.coverage(sdf, _softness(scene))[:, None]
    return Layer(alpha, (surface * folds[:, None]).clamp(0, 1), alpha)


def strap(scene: Scene) -> Layer:
    rng, n, X, Y, size = scene.rng, scene.n, scene.X, scene.Y, scene.size
    k = 2
    centre = scene.anchor(jitter=0.2)
    angle = rng.uniform((n, k), 0, math.pi)
    reach = size * 0.8
    direction = torch.stack([torch.cos(angle), torch.sin(angle)], -1)
    bend = rng.normal((n, k, 2), 0.0, 0.08) * size
    a = centre[:, None] - direction * reach
    m = centre[:, None] + bend + rng.normal((n, k, 2), 0.0, 0.1) * size
    b = centre[:, None] + direction * reach
    radius = rng.uniform((n, k), 0.004, 0.03) * size
    sdf = torch.minimum(shapes.capsules(X, Y, a, m, radius), shapes.capsules(X, Y, m, b, radius))
    second = rng.chance((n,), 0.3)
    sdf = torch.where(second[:, None, None], sdf.min(1).values, sdf[:, 0])
    colour = texture(rng, n, X, Y, scene.bank, skin=scene.skin, weights=(1.0, 0.5, 0.3))
    alpha = shapes.coverage(sdf, _softness(scene, 0.4, 0.9))[:, None]
    return Layer(alpha, colour, alpha)


def blob(scene: Scene) -> Layer:
    """Random ellipses, rounded rectangles, star polygons and blob unions, anywhere on the face."""
    rng, n, X, Y = scene.rng, scene.n, scene.X, scene.Y
    height = scene.face_height()
    centre = scene.anchor(ids=tuple(range(0, 468, 7)), jitter=0.05)
    radius = height * rng.log_uniform((n,), 0.08, 0.5)
    kind = rng.choice(n, [0.25, 0.2, 0.3, 0.25])
    angle = rng.uniform((n,), 0, math.pi)
    axes = torch.stack([radius, radius * rng.uniform((n,), 0.3, 1.0)], -1)
    ellipse = shapes.ellipse(X, Y, centre, axes, angle)
    rect = shapes.superellipse(X, Y, centre, axes, angle, rng.uniform((n,), 6.0, 14.0))
    count = 14
    theta = torch.linspace(0, 2 * math.pi, count + 1, device=rng.device)[:-1] + rng.uniform((n, 1), 0, 6.3)
    rho = radius[:, None] * rng.uniform((n, count), 0.45, 1.15)
    star = shapes.polygon(X, Y, centre[:, None] + torch.stack([torch.cos(theta) * rho, torch.sin(theta) * rho], -1),
                          coarse=2)
    bumps = rng.normal((n, 5, 2), 0.0, 0.6) * radius[:, None, None] + centre[:, None]
    bump_r = radius[:, None] * rng.uniform((n, 5), 0.25, 0.6)
    blobs = shapes.capsules(X, Y, bumps, torch.roll(bumps, 1, 1), bump_r).min(1).values
    sdf = torch.stack([ellipse, rect, star, blobs], 1)[torch.arange(n, device=rng.device), kind]
    colour = texture(rng, n, X, Y, scene.bank, skin=scene.skin, weights=(1.0, 1.0, 1.5))
    alpha = shapes.coverage(sdf, _softness(scene))[:, None]
    return Layer(alpha, colour, alpha)


KINDS = {
    "hand": (hand, 0.2),
    "face_mask": (face_mask, 0.2),
    "glasses": (glasses, 0.14),
    "microphone": (microphone, 0.06),
    "phone": (phone, 0.05),
    "cup": (cup, 0.05),
    "hair": (hair, 0.08),
    "scarf": (scarf, 0.05),
    "strap": (strap, 0.05),
    "shape": (blob, 0.12),
}


def recolour_lips(scene: Scene, amount: torch.Tensor) -> torch.Tensor:
    """Lipstick (a negative example: lips stay face). ``amount`` (n,) blend strength; returns images."""
    from .scene import OUTER_LIPS

    rng, n = scene.rng, scene.n
    sdf = shapes.polygon(scene.X, scene.Y, scene.point(OUTER_LIPS), coarse=2)
    weight = shapes.coverage(sdf, 1.5)[:, None] * amount[:, None, None, None]
    colour = hsv_to_rgb(rng.uniform((n,), -0.12, 0.05), rng.uniform((n,), 0.4, 0.9), rng.uniform((n,), 0.3, 0.9))
    gray = scene.image.mean(1, keepdim=True)
    tinted = (gray * colour[:, :, None, None] * 1.8).clamp(0, 1)
    return scene.image * (1 - weight) + tinted * weight


__all__ = ["KINDS", "Layer", "LENS_LABEL_OPACITY", "recolour_lips"]
