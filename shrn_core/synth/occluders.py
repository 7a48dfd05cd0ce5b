"""3D occluders placed in front of a synthetic face: hands, microphones, phones, cups, glasses,
sunglasses, hair fringes, cloth and paper face masks.

``draw(kind, rng, frame, camera, skin)`` draws the parameters of one occluder (a JSON-able dict);
``build(params, frame, camera)`` turns them into ``OccluderMesh`` parts in the head frame (mm). Both
are deterministic. Placement is relative to the face (``FaceFrame``: landmarks, surface heights)
and to the camera (hand-held objects sit between the face and the camera).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .geometry import (OccluderMesh, axis_rotation, ellipsoid, frustum, grid_surface, merge,
                       rotation_from_axes, rounded_box, tube)
from .models import ShapeModel
from .procedural import random_skin_tone
from .scene import Camera

SOLID_KINDS = ("hand", "microphone", "phone", "cup", "glasses", "sunglasses", "hair", "cloth_mask", "paper_mask")
PALETTE = np.array([[0.05, 0.05, 0.05], [0.95, 0.95, 0.93], [0.75, 0.1, 0.1], [0.1, 0.25, 0.6], [0.15, 0.45, 0.2],
                    [0.9, 0.75, 0.2], [0.55, 0.55, 0.58], [0.45, 0.25, 0.55], [0.95, 0.5, 0.6], [0.3, 0.2, 0.12]])
FRAME_COLOURS = np.array([[0.03, 0.03, 0.03], [0.25, 0.15, 0.08], [0.75, 0.6, 0.3], [0.7, 0.7, 0.72],
                          [0.5, 0.1, 0.1], [0.1, 0.15, 0.35]])
MASK_COLOURS = {"paper_mask": np.array([[0.55, 0.75, 0.9], [0.95, 0.95, 0.95], [0.1, 0.1, 0.1], [0.9, 0.7, 0.75],
                                        [0.6, 0.8, 0.7]])}


@dataclass
class FaceFrame:
    """Landmarks and surface of one sample's face (head frame, mm)."""

    vertices: np.ndarray  # the model's vertices
    surface: np.ndarray  # (S, 3) front-facing face-surface vertices (for heights)
    landmarks: dict[str, np.ndarray]
    half_width: float  # half the face width at eye level

    @classmethod
    def of(cls, face: np.ndarray, model: ShapeModel) -> "FaceFrame":
        lm = lambda i: face[model.landmarks68[i]].astype(np.float64)  # noqa: E731
        marks = {
            "eye_right": (lm(36) + lm(39)) / 2, "eye_left": (lm(42) + lm(45)) / 2,
            "eye_right_outer": lm(36), "eye_left_outer": lm(45), "brow": (lm(19) + lm(24)) / 2,
            "nose_bridge": lm(27), "nose_tip": lm(30), "subnasale": lm(33), "mouth_right": lm(48),
            "mouth_left": lm(54), "mouth": (lm(51) + lm(57)) / 2, "chin": lm(8),
        }
        surface = face[: model.surface_vertex_count]
        eye_level = marks["eye_right"][1]
        band = surface[np.abs(surface[:, 1] - eye_level) < 15]
        half_width = float(np.abs(band[:, 0]).max()) if len(band) else 70.0
        front = surface[surface[:, 2] > marks["eye_right_outer"][2] - 25]
        marks["cheek_right"] = np.array([-(0.6 * half_width), (eye_level + marks["mouth"][1]) / 2, 0.0])
        marks["cheek_left"] = np.array([0.6 * half_width, (eye_level + marks["mouth"][1]) / 2, 0.0])
        top = surface[np.abs(surface[:, 0]) < 20]
        marks["forehead"] = np.array([0.0, (eye_level + top[:, 1].max()) / 2, 0.0])
        frame = cls(face, front, marks, half_width)
        for key in ("cheek_right", "cheek_left", "forehead"):
            point = marks[key]
            marks[key] = np.array([point[0], point[1], frame.height(point[None, :2])[0]])
        return frame

    def height(self, xy: np.ndarray, radius: float = 6.0) -> np.ndarray:
        """z of the face surface in front at points (N, 2) (frontmost vertex within ``radius``; the
        nearest vertex's z where none is that close)."""
        xy = np.asarray(xy, np.float64)
        plane = self.surface[:, :2]
        low, high = xy.min(0) - radius, xy.max(0) + radius
        near_box = np.all((plane >= low) & (plane <= high), axis=1)
        candidates = self.surface[near_box] if near_box.sum() >= 1 else self.surface
        plane = candidates[:, :2]
        d2 = (xy * xy).sum(1)[:, None] + (plane * plane).sum(1)[None, :] - 2 * xy @ plane.T
        z = np.where(d2 < radius**2, candidates[None, :, 2], -np.inf).max(1)
        # points with no surface within the radius take the z of the nearest surface vertex
        missing = ~np.isfinite(z)
        if missing.any():
            full = self.surface[:, :2]
            d_all = (xy[missing, None, :] - full[None]) ** 2
            z[missing] = self.surface[d_all.sum(-1).argmin(1), 2]
        return z

    def anchor(self, name: str) -> np.ndarray:
        return self.landmarks[name]


def _towards_camera(point: np.ndarray, camera: Camera) -> np.ndarray:
    direction = camera.position() - point
    return direction / np.linalg.norm(direction)


# ------------------------------------------------------------------ drawing parameters


def draw(kind: str, rng: np.random.Generator, frame: FaceFrame, camera: Camera, skin: np.ndarray,
         hair: np.ndarray) -> dict:
    """Random parameters of one occluder of ``kind`` (a JSON-able dict with ``kind``)."""
    return {"kind": kind, **_DRAW[kind](rng, frame, camera, np.asarray(skin), np.asarray(hair))}


def _colour_choice(rng, skin):
    """Any colour: palette, random, skin tones, black or white."""
    choice = rng.random()
    if choice < 0.2:
        return random_skin_tone(rng) if rng.random() < 0.5 else np.clip(skin * rng.uniform(0.85, 1.1, 3), 0, 1)
    if choice < 0.6:
        return np.clip(PALETTE[rng.integers(0, len(PALETTE))] * rng.uniform(0.85, 1.15, 3), 0, 1)
    return rng.uniform(0.03, 0.97, 3)


def _pattern_choice(rng, base, patterns=("plain", "stripes", "checks", "dots", "fabric")):
    pattern = str(rng.choice(patterns, p=None))
    other = np.clip(1 - base if rng.random() < 0.5 else base * rng.uniform(0.4, 0.8), 0, 1)
    return pattern, other, float(rng.uniform(0.03, 0.12))  # periods per mm


def _draw_hand(rng, frame, camera, skin, hair):
    anchor = str(rng.choice(["mouth", "mouth", "chin", "cheek_right", "cheek_left", "eye_right", "eye_left",
                             "nose_tip", "forehead"]))
    colour = np.clip(skin * rng.uniform(0.9, 1.08, 3), 0, 1) if rng.random() < 0.7 else random_skin_tone(rng)
    return {
        "anchor": anchor, "gap_mm": float(rng.uniform(18, 45)), "shift_mm": rng.normal(0, 12, 2).tolist(),
        "spin_deg": float(rng.uniform(-180, 180)), "tilt_deg": rng.normal(0, 15, 2).tolist(),
        "scale": float(rng.uniform(0.85, 1.15)), "left": bool(rng.random() < 0.5),
        "palm_to_face": bool(rng.random() < 0.8), "spread_deg": float(rng.uniform(-4, 14)),
        "flex_deg": rng.uniform(0, 50, (4, 3)).round(2).tolist(), "thumb_flex_deg": rng.uniform(0, 40, 2).round(2).tolist(),
        "colour": colour.round(4).tolist(), "forearm": bool(rng.random() < 0.85),
        "sleeve": _colour_choice(rng, skin).round(4).tolist() if rng.random() < 0.5 else None,
    }


def _draw_microphone(rng, frame, camera, skin, hair):
    body = FRAME_COLOURS[rng.integers(0, len(FRAME_COLOURS))] if rng.random() < 0.7 else _colour_choice(rng, skin)
    return {
        "anchor": str(rng.choice(["mouth", "mouth", "chin"])), "gap_mm": float(rng.uniform(20, 70)),
        "shift_mm": rng.normal(0, 10, 2).tolist(), "direction_deg": float(rng.uniform(-60, 60)),
        "elevation_deg": float(rng.uniform(-70, -20)), "head_radius_mm": float(rng.uniform(20, 32)),
        "handle_radius_mm": float(rng.uniform(10, 18)), "length_mm": float(rng.uniform(140, 220)),
        "grille": (np.array([0.12, 0.12, 0.13]) * rng.uniform(0.5, 5)).clip(0, 1).round(4).tolist(),
        "body": np.asarray(body).round(4).tolist(), "foam": bool(rng.random() < 0.25),
        "foam_colour": _colour_choice(rng, skin).round(4).tolist(),
    }


def _draw_phone(rng, frame, camera, skin, hair):
    return {
        "anchor": str(rng.choice(["mouth", "cheek_right", "cheek_left", "eye_right", "eye_left", "nose_tip", "chin"])),
        "gap_mm": float(rng.uniform(15, 90)), "shift_mm": rng.normal(0, 15, 2).tolist(),
        "spin_deg": float(rng.uniform(-90, 90)), "tilt_deg": rng.normal(0, 20, 2).tolist(),
        "size_mm": [float(rng.uniform(65, 80)), float(rng.uniform(135, 165)), float(rng.uniform(7, 11))],
        "colour": _colour_choice(rng, skin).round(4).tolist(), "screen_to_camera": bool(rng.random() < 0.3),
    }


def _draw_cup(rng, frame, camera, skin, hair):
    colour = _colour_choice(rng, skin)
    pattern, other, freq = _pattern_choice(rng, colour)
    return {
        "anchor": str(rng.choice(["mouth", "mouth", "chin"])), "gap_mm": float(rng.uniform(10, 50)),
        "shift_mm": rng.normal(0, 8, 2).tolist(), "tilt_deg": float(rng.uniform(10, 70)),
        "turn_deg": float(rng.uniform(-40, 40)), "radius_mm": float(rng.uniform(33, 45)),
        "flare": float(rng.uniform(1.0, 1.25)), "height_mm": float(rng.uniform(85, 120)),
        "handle": bool(rng.random() < 0.75), "colour": colour.round(4).tolist(), "pattern": pattern,
        "pattern_colour": other.round(4).tolist(), "pattern_freq": freq,
    }


def _draw_glasses(rng, frame, camera, skin, hair, sun=False):
    lens = {"alpha": float(rng.uniform(0.75, 0.95)),
            "colour": (np.array([0.05, 0.05, 0.05]) + rng.uniform(0, 0.25, 3) * rng.random()).round(4).tolist()} if sun \
        else {"alpha": float(rng.uniform(0.05, 0.35)), "colour": rng.uniform(0.6, 1.0, 3).round(4).tolist()}
    return {
        "width_mm": float(rng.uniform(44, 58)), "height_mm": float(rng.uniform(30, 48) if not sun else rng.uniform(38, 55)),
        "roundness": float(rng.uniform(0.3, 1.0)), "rim_mm": float(rng.uniform(0.8, 3.5)),
        "forward_mm": float(rng.uniform(11, 17)), "drop_mm": float(rng.uniform(-3, 4)),
        "colour": FRAME_COLOURS[rng.integers(0, len(FRAME_COLOURS))].round(4).tolist() if rng.random() < 0.8
        else _colour_choice(rng, skin).round(4).tolist(), "lens": lens, "sun": sun,
    }


def _draw_hair(rng, frame, camera, skin, hair):
    side = float(rng.uniform(-1, 1))
    return {
        "strands": int(rng.integers(25, 60)), "centre": side, "spread": float(rng.uniform(0.25, 0.9)),
        "length": float(rng.uniform(0.35, 1.0)), "sweep": float(rng.uniform(-0.8, 0.8)),
        "width_mm": float(rng.uniform(5, 12)), "lift_mm": float(rng.uniform(2, 6)),
        "colour": np.clip(hair * rng.uniform(0.9, 1.1, 3), 0, 1).round(4).tolist(),
        "seed": int(rng.integers(0, 2**31)),
    }


def _draw_face_mask(rng, frame, camera, skin, hair, paper=False):
    if paper:
        colours = MASK_COLOURS["paper_mask"]
        colour = colours[rng.integers(0, len(colours))] * rng.uniform(0.92, 1.05, 3)
        pattern, other, freq = "pleats", colour * 0.8, float(rng.uniform(0.05, 0.08))
    else:
        colour = _colour_choice(rng, skin)
        pattern, other, freq = _pattern_choice(rng, colour, ("plain", "fabric", "stripes", "checks", "dots", "fabric"))
    return {
        "top": float(rng.uniform(0.15, 0.5)), "bottom_mm": float(rng.uniform(8, 22)),
        "width": float(rng.uniform(0.82, 0.98)), "offset_mm": float(rng.uniform(2, 6) if not paper else rng.uniform(4, 9)),
        "drape_mm": float(rng.uniform(10, 18)), "colour": np.clip(colour, 0, 1).round(4).tolist(), "pattern": pattern,
        "pattern_colour": np.clip(other, 0, 1).round(4).tolist(), "pattern_freq": freq, "paper": paper,
        "strap_colour": (np.clip(colour, 0, 1) if rng.random() < 0.7 else rng.uniform(0.05, 0.95, 3)).round(4).tolist(),
    }


_DRAW = {
    "hand": _draw_hand, "microphone": _draw_microphone, "phone": _draw_phone, "cup": _draw_cup,
    "glasses": _draw_glasses, "sunglasses": lambda *a: _draw_glasses(*a, sun=True), "hair": _draw_hair,
    "cloth_mask": _draw_face_mask, "paper_mask": lambda *a: _draw_face_mask(*a, paper=True),
}


# ------------------------------------------------------------------ building meshes


def build(params: dict, frame: FaceFrame, camera: Camera) -> list[OccluderMesh]:
    return _BUILD[params["kind"]](params, frame, camera)


def _placement(params, frame, camera):
    """Anchor point, its direction to the camera and an image-plane basis (head frame)."""
    anchor = frame.anchor(params["anchor"]).copy()
    view = _towards_camera(anchor, camera)
    up = camera.R.T @ np.array([0.0, 1.0, 0.0])  # image up in the head frame
    right = np.cross(up, view)
    right /= np.linalg.norm(right)
    up = np.cross(view, right)
    shift = np.asarray(params.get("shift_mm", [0, 0]))
    centre = anchor + view * params["gap_mm"] + right * shift[0] + up * shift[1]
    return centre, view, right, up


def _build_hand(params, frame, camera):
    centre, view, right, up = _placement(params, frame, camera)
    s = params["scale"]
    palm_v, palm_t, palm_c = rounded_box((84 * s, 96 * s, 26 * s), radius=12 * s)
    parts = [(palm_v + [0, -4 * s, 0], palm_t, palm_c)]
    bases = [(-31, 36), (-10.5, 42), (10.5, 44), (31, 40)]  # little, ring, middle, index (x towards the thumb)
    lengths = [(33, 21, 18), (43, 28, 21), (46, 29, 22), (42, 26, 20)]
    radii = [8.3, 9.3, 9.8, 9.6]
    spread = np.radians(params["spread_deg"])
    for finger, ((bx, by), lens, radius, flex) in enumerate(zip(bases, lengths, radii, params["flex_deg"])):
        splay = (finger - 1.5) * spread / 1.5
        direction = np.array([np.sin(splay), np.cos(splay), 0.0])
        path = [np.array([bx * s, by * s, 0.0])]
        angle = 0.0
        for length, bend in zip(lens, flex):
            angle += np.radians(bend)
            segment_dir = axis_rotation(np.array([np.cos(splay), -np.sin(splay), 0.0]), -angle) @ direction
            for _ in range(3):
                path.append(path[-1] + segment_dir * length * s / 3)
        path = np.array(path)
        taper = np.linspace(radius, radius * 0.82, len(path)) * s
        parts.append(tube(path, taper, segments=12, caps=False))
        parts.append(ellipsoid(path[-1], (taper[-1],) * 3, rings=6, segments=12))
    thumb = [np.array([32 * s, -22 * s, -5 * s])]
    direction = np.array([0.72, 0.62, -0.3])
    direction /= np.linalg.norm(direction)
    for length, bend in zip((38, 30), params["thumb_flex_deg"]):
        direction = axis_rotation(np.array([0.3, -0.3, 0.9]), np.radians(bend)) @ direction
        for _ in range(3):
            thumb.append(thumb[-1] + direction * length * s / 3)
    thumb = np.array(thumb)
    thumb_r = np.linspace(13, 9.5, len(thumb)) * s
    parts.append(tube(thumb, thumb_r, segments=12, caps=False))
    parts.append(ellipsoid(thumb[-1], (thumb_r[-1],) * 3, rings=6, segments=12))
    hand_v, hand_t, hand_c = merge(parts)
    sleeve = None
    if params["forearm"]:
        arm = np.array([[0, -40 * s, -2], [0, -130 * s, -8], [0, -300 * s, -25]])
        arm_v, arm_t, arm_c = tube(arm, np.array([27, 32, 38]) * s, segments=16)
        if params.get("sleeve") is None:
            hand_v, hand_t, hand_c = merge([(hand_v, hand_t, hand_c), (arm_v, arm_t, arm_c)])
        else:
            sleeve = (arm_v, arm_t, arm_c)
    # local: x towards the thumb, y along the fingers, z out of the back of the hand
    if params["left"]:
        hand_v = hand_v * [-1, 1, 1]
        hand_t = hand_t[:, ::-1]
        if sleeve is not None:
            sleeve = (sleeve[0] * [-1, 1, 1], sleeve[1][:, ::-1], sleeve[2])
    back = view if params["palm_to_face"] else -view
    spin = np.radians(params["spin_deg"])
    fingers = np.cos(spin) * up + np.sin(spin) * right
    tilt = np.radians(params["tilt_deg"])
    rotation = axis_rotation(right, tilt[0]) @ axis_rotation(up, tilt[1]) @ rotation_from_axes(back, fingers)
    # rotation_from_axes gives columns (x, y, z) = (right', fingers, back)
    place = lambda v: v @ rotation.T + centre  # noqa: E731
    colour = np.asarray(params["colour"])
    out = [OccluderMesh("hand", place(hand_v), hand_t, colour, hand_c * 0.06, "fabric", tuple(colour * 0.93), gloss=0.25,
                        shininess=12.0)]
    if sleeve is not None:
        sleeve_colour = np.asarray(params["sleeve"])
        out.append(OccluderMesh("hand", place(sleeve[0]), sleeve[1], sleeve_colour, sleeve[2] * 0.2, "fabric",
                                tuple(sleeve_colour * 0.7), gloss=0.05))
    return out


def _build_microphone(params, frame, camera):
    centre, view, right, up = _placement(params, frame, camera)
    azimuth, elevation = np.radians(params["direction_deg"]), np.radians(params["elevation_deg"])
    # the handle leaves the head downwards (elevation < 0), sideways (azimuth) and towards the camera
    handle_dir = np.sin(elevation) * up + np.cos(elevation) * (0.6 * view + np.sin(azimuth) * right)
    handle_dir /= np.linalg.norm(handle_dir)
    head_r = params["head_radius_mm"]
    start = centre + handle_dir * head_r * 0.8
    path = np.array([start + handle_dir * params["length_mm"] * f for f in (0.0, 0.15, 0.6, 1.0)])
    radii = params["handle_radius_mm"] * np.array([1.25, 1.05, 0.9, 0.8])
    handle = tube(path, radii, segments=16)
    head = ellipsoid(centre, (head_r,) * 3, rings=10, segments=18)
    body = np.asarray(params["body"])
    grille = np.asarray(params["grille"])
    out = [OccluderMesh("microphone", handle[0], handle[1], body, handle[2] * 0.1, "plain", gloss=0.7, shininess=40.0)]
    if params["foam"]:
        foam = np.asarray(params["foam_colour"])
        head = ellipsoid(centre, (head_r * 1.15,) * 3, rings=10, segments=18)
        out.append(OccluderMesh("microphone", head[0], head[1], foam, head[2] * 0.5, "fabric", tuple(foam * 0.6), gloss=0.02))
    else:
        out.append(OccluderMesh("microphone", head[0], head[1], grille * 1.8, head[2] * 0.45, "grille",
                                tuple(grille * 0.3), gloss=0.9, shininess=30.0))
    return out


def _build_phone(params, frame, camera):
    centre, view, right, up = _placement(params, frame, camera)
    w, h, d = params["size_mm"]
    v, t, c = rounded_box((w, h, d), radius=d * 0.6)
    spin = np.radians(params["spin_deg"])
    long_axis = np.cos(spin) * up + np.sin(spin) * right
    tilt = np.radians(params["tilt_deg"])
    rotation = axis_rotation(right, tilt[0]) @ axis_rotation(up, tilt[1]) @ rotation_from_axes(view, long_axis)
    vertices = v @ rotation.T + centre
    colour = np.asarray(params["colour"])
    local_z = v[:, 2]
    screen = (local_z > d * 0.3) if params["screen_to_camera"] else (local_z < -d * 0.3)
    colours = np.where(screen[:, None], np.array([0.02, 0.02, 0.03]), colour)
    return [OccluderMesh("phone", vertices, t, colours, c * 0.1, "plain", gloss=0.8, shininess=60.0)]


def _build_cup(params, frame, camera):
    centre, view, right, up = _placement(params, frame, camera)
    r, h = params["radius_mm"], params["height_mm"]
    v, t, c = frustum(r, r * params["flare"], h)
    parts = [(v, t, c)]
    if params["handle"]:
        angles = np.linspace(-np.pi / 2, np.pi / 2, 9)
        loop = np.stack([r * 1.05 + 22 * np.cos(angles), h * 0.5 + 28 * np.sin(angles), np.zeros_like(angles)], 1)
        parts.append(tube(loop, 5.0, segments=8))
    v, t, c = merge(parts)
    # cup axis: up, tipped towards the face by tilt, turned about the view
    turn = np.radians(params["turn_deg"])
    axis = axis_rotation(view, turn) @ (axis_rotation(right, -np.radians(params["tilt_deg"])) @ up)
    rotation = np.stack([right, axis, np.cross(right, axis)], 1)  # the cup's local y is its axis
    rim_offset = axis * h * 0.9
    vertices = v @ rotation.T + centre - rim_offset
    colour = np.asarray(params["colour"])
    return [OccluderMesh("cup", vertices, t, colour, c * params["pattern_freq"], params["pattern"],
                         tuple(params["pattern_colour"]), gloss=0.6, shininess=40.0)]


def _build_glasses(params, frame, camera):
    kind = "sunglasses" if params["sun"] else "glasses"
    w, h, rim = params["width_mm"], params["height_mm"], params["rim_mm"]
    n = 28
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
    power = 2 / (1 + 3 * (1 - params["roundness"]))  # 2: ellipse, smaller: rounder rectangle
    outline = np.stack([np.sign(np.cos(angles)) * np.abs(np.cos(angles)) ** power * w / 2,
                        np.sign(np.sin(angles)) * np.abs(np.sin(angles)) ** power * h / 2], 1)
    parts, lenses, ends = [], [], []
    for side, eye in ((-1, frame.anchor("eye_right")), (1, frame.anchor("eye_left"))):
        centre_xy = np.array([eye[0] + side * 2.0, eye[1] - params["drop_mm"]])
        ring_xy = outline + centre_xy
        z = frame.height(centre_xy[None])[0] + params["forward_mm"]
        curve = -0.0025 * (ring_xy[:, 0] - centre_xy[0]) ** 2  # a little wrap around the face
        ring = np.column_stack([ring_xy, z + curve])
        parts.append(tube(np.vstack([ring, ring[:1]]), rim, segments=8, caps=False))
        lens_v = np.vstack([[np.append(centre_xy, z + 0.5)], ring + [0, 0, 0.5]])
        lens_t = np.stack([np.zeros(n, int), 1 + (np.arange(n) + 1) % n, 1 + np.arange(n)], 1)
        if side < 0:
            lens_t = lens_t[:, ::-1]
        lenses.append((lens_v, lens_t, lens_v[:, :2]))
        outer = ring[np.argmax(side * ring[:, 0])]
        inner = ring[np.argmin(side * ring[:, 0])]
        ends.append((outer, inner))
    bridge = np.array([ends[0][1], (ends[0][1] + ends[1][1]) / 2 + [0, 3, 2], ends[1][1]])
    parts.append(tube(bridge, rim * 0.9, segments=8))
    for side, (outer, _) in zip((-1, 1), ends):
        ear = np.array([side * (frame.half_width + 4), outer[1] - 5, frame.anchor("eye_right_outer")[2] - 75])
        hinge = outer + [side * 4, 0, -6]
        parts.append(tube(np.array([outer, hinge, ear]), rim * 0.8, segments=6))
    v, t, c = merge(parts)
    colour = np.asarray(params["colour"])
    lens_v, lens_t, lens_c = merge(lenses)
    lens = params["lens"]
    return [OccluderMesh(kind, v, t, colour, c, "plain", gloss=0.8, shininess=50.0),
            OccluderMesh(kind, lens_v, lens_t, np.asarray(lens["colour"]), lens_c, "plain", alpha=lens["alpha"],
                         gloss=1.5, shininess=120.0, counts_as_occluder=lens["alpha"] >= 0.5)]


def _build_hair(params, frame, camera):
    """Strands (ribbons a few mm wide) from above the hairline down over the forehead, lying on the
    face a few millimetres above its surface."""
    rng = np.random.default_rng(params["seed"])
    top = frame.surface[np.abs(frame.surface[:, 0]) < 25][:, 1].max()
    mouth_y = frame.anchor("mouth")[1]
    half = frame.half_width
    steps = 14
    paths = []  # per strand: the (x, y) of both ribbon edges and the lift above the surface
    for _ in range(params["strands"]):
        x0 = np.clip(params["centre"] * 0.6 + rng.normal(0, params["spread"] * 0.35), -0.65, 0.65) * half
        end_y = top - (top - mouth_y) * params["length"] * rng.uniform(0.6, 1.0)
        ys = np.linspace(top + 10, end_y, steps)
        progress = (top + 10 - ys) / max(top + 10 - end_y, 1e-6)
        xs = x0 + params["sweep"] * half * 0.4 * progress ** 1.5 + rng.normal(0, 2.0) * progress
        width = params["width_mm"] * rng.uniform(0.6, 1.3) * (1 - 0.6 * progress)
        lift = params["lift_mm"] + rng.uniform(0, 3) + 5 * (1 - progress)
        paths.append((np.stack([np.column_stack([xs + sign * width, ys]) for sign in (-0.5, 0.5)], 1), lift))
    edges = np.concatenate([xy.reshape(-1, 2) for xy, _ in paths])
    heights = frame.height(edges, radius=6.0).reshape(len(paths), steps, 2)  # one query for every strand
    ribbons = []
    for (xy, lift), z in zip(paths, heights):
        ribbons.append(grid_surface(np.concatenate([xy, (z + lift[:, None])[..., None]], -1)))
    v, t, c = merge(ribbons)
    colour = np.asarray(params["colour"])
    return [OccluderMesh("hair", v, t, colour, c * [0.6, 0.05], "fabric", tuple(colour * 0.55), gloss=0.6, shininess=25.0)]


def _build_face_mask(params, frame, camera):
    kind = "paper_mask" if params["paper"] else "cloth_mask"
    bridge, tip, chin = frame.anchor("nose_bridge"), frame.anchor("nose_tip"), frame.anchor("chin")
    y_top = bridge[1] + (tip[1] - bridge[1]) * params["top"]
    y_bottom = chin[1] - params["bottom_mm"]
    half = frame.half_width * params["width"]
    rows, cols = 22, 30
    ys = np.linspace(y_top, y_bottom, rows)
    xs = np.linspace(-half, half, cols)
    gx, gy = np.meshgrid(xs, ys)
    xy = np.column_stack([gx.reshape(-1), gy.reshape(-1)])
    # drape over the face: the highest surface within a radius (bridges the hollows beside the nose)
    raw = frame.height(xy, radius=params["drape_mm"]).reshape(rows, cols)
    z = np.maximum(_smooth(raw, 2) + params["offset_mm"], raw + 2.0)
    below = gy < chin[1]  # under the chin the mask turns back towards the neck
    z = np.where(below, z - (chin[1] - gy) * 1.2, z)
    edge = np.abs(gx) / half  # the sides wrap back towards the ears
    z = z - 12 * np.clip(edge - 0.75, 0, None) ** 2 * 16
    # round the outline: pull the corners in
    shape = np.clip(1 - ((gy - (y_top + y_bottom) / 2) / ((y_top - y_bottom) / 2)) ** 4, 0.35, 1) ** 0.3
    gx = gx * shape
    points = np.stack([gx, gy, z], -1)
    v, t, c = grid_surface(points)
    colour = np.asarray(params["colour"])
    parts = [OccluderMesh(kind, v, t, colour, c * params["pattern_freq"], params["pattern"],
                          tuple(params["pattern_colour"]), gloss=0.05 if not params["paper"] else 0.15, shininess=8.0)]
    straps = []
    for side in (-1, 1):
        column = 0 if side < 0 else cols - 1
        for row in (1, rows - 2):
            start = points[row, column]
            ear = np.array([side * (frame.half_width + 3), frame.anchor("eye_right")[1] - 25,
                            frame.anchor("eye_right_outer")[2] - 70])
            path = np.array([start, start + (ear - start) * 0.5 + [side * 6, 0, 4], ear])
            straps.append(tube(path, 1.5, segments=6))
    sv, st, sc = merge(straps)
    parts.append(OccluderMesh(kind, sv, st, np.asarray(params["strap_colour"]), sc, "plain", gloss=0.05))
    return parts


def _smooth(grid: np.ndarray, passes: int) -> np.ndarray:
    for _ in range(passes):
        padded = np.pad(grid, 1, mode="edge")
        grid = (padded[:-2, 1:-1] + padded[2:, 1:-1] + padded[1:-1, :-2] + padded[1:-1, 2:] + 4 * grid) / 8
    return grid


_BUILD = {
    "hand": _build_hand, "microphone": _build_microphone, "phone": _build_phone, "cup": _build_cup,
    "glasses": _build_glasses, "sunglasses": _build_glasses, "hair": _build_hair, "cloth_mask": _build_face_mask,
    "paper_mask": _build_face_mask,
}
