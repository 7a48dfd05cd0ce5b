"""Batched rendering of synthetic scenes: the person, then the occluders, one rasterization each.

All samples of a batch share one image size and the person topology (one instanced pass). The
occluders of all samples are concatenated into one mesh; in each sample's copy the other samples'
occluder vertices sit behind the camera (w < 0), where the rasterizer drops their triangles -- so the
occluder pass is one kernel call too. Shading happens in linear RGB: albedo x (SH ambient + a
directional key light with a shadow map) + Blinn-Phong specular, then exposure and sRGB.

Outputs, per sample: the clean image, the occluded image, the occluder mask (occluder pixels that
are nearer than the face surface or interior and count as occluder, see docs/synth.md) and the face
region (pixels where the person pass shows the face surface, eyes or mouth cavity).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..render import camera_to_clip, create_context, interpolate, rasterize, texture
from .bank import AppearanceBank
from .geometry import PATTERNS, OccluderMesh
from .meshutil import vertex_normals_torch
from .person import FACE, HAIR, INTERIOR, PersonRig
from .procedural import value_noise

SHADOW_RESOLUTION = 256
SHADOW_BIAS_MM = 1.5
_SH = (0.282095, 0.488603, 1.092548, 0.315392, 0.546274)


@dataclass
class SceneInput:
    """One sample ready to draw: the person's vertices and the occluder parts (head frame, mm), and the
    camera (head -> camera rotation ``R``, translation ``t``, intrinsics ``K``)."""

    person: np.ndarray  # (N, 3)
    occluders: list[OccluderMesh]
    R: np.ndarray
    t: np.ndarray
    K: np.ndarray
    size: int
    light_direction: np.ndarray
    light_colour: np.ndarray
    light_intensity: float
    ambient: np.ndarray  # (9, 3)
    specular: float
    shininess: float
    exposure: float
    albedo_index: int
    albedo_gain: np.ndarray
    hair_colour: np.ndarray
    cloth_colour: np.ndarray
    background_index: int
    background_crop: tuple
    background_gain: np.ndarray


@dataclass
class RenderedBatch:
    clean: torch.Tensor  # (B, H, W, 3) float sRGB 0..1, before photo effects
    occluded: torch.Tensor  # (B, H, W, 3)
    mask: torch.Tensor  # (B, H, W) bool
    face_region: torch.Tensor  # (B, H, W) bool


def sh_basis(n: torch.Tensor) -> torch.Tensor:
    x, y, z = n.unbind(-1)
    return torch.stack([torch.full_like(x, _SH[0]), _SH[1] * y, _SH[1] * z, _SH[1] * x, _SH[2] * x * y, _SH[2] * y * z,
                        _SH[3] * (3 * z * z - 1), _SH[2] * x * z, _SH[4] * (x * x - y * y)], -1)


class SceneRenderer:
    """Holds the device-side assets (topology, textures, backgrounds) of one rig and bank."""

    def __init__(self, rig: PersonRig, bank: AppearanceBank, device: torch.device, backend: str = "auto"):
        self.device = device
        self.ctx = create_context(backend, device)
        self.rig = rig
        self.tri = torch.as_tensor(rig.triangles, dtype=torch.int32, device=device)
        self.tri_long = self.tri.long()
        self.part = torch.as_tensor(rig.triangle_part, dtype=torch.int64, device=device)
        self.static = torch.as_tensor(np.concatenate([rig.uvs, rig.outside[:, None], rig.material], 1),
                                      dtype=torch.float32, device=device)
        self.bank = bank
        self._textures = None
        self.skins = torch.as_tensor(bank.skin, dtype=torch.float32, device=device) ** 2.2
        self.backgrounds = torch.as_tensor(bank.background, device=device)  # uint8 (M, S, S, 3)
        noise = value_noise(np.random.default_rng(12345), 64, (8, 16, 32), 0.8)
        self.noise = torch.as_tensor(noise, dtype=torch.float32, device=device)[None, :, :, None]

    def texture_batch(self, indices: list[int]) -> torch.Tensor:
        if self._textures is None:  # linear albedo of the whole bank, converted once
            self._textures = (torch.as_tensor(self.bank.albedo, device=self.device).float() / 255.0) ** 2.2
        return self._textures[torch.as_tensor(indices, device=self.device)]

    # ------------------------------------------------------------------ passes

    def _cameras(self, scenes):
        dev = self.device
        stack = lambda key: torch.as_tensor(np.stack([getattr(s, key) for s in scenes]), dtype=torch.float32,  # noqa: E731
                                            device=dev)
        return stack("R"), stack("t"), stack("K")

    @torch.no_grad()
    def render(self, scenes: list[SceneInput]) -> RenderedBatch:
        size = scenes[0].size
        if any(s.size != size for s in scenes):
            raise ValueError("all scenes of a batch must have one size")
        R, t, K = self._cameras(scenes)
        head = torch.as_tensor(np.stack([s.person for s in scenes]), dtype=torch.float32, device=self.device)
        cam = torch.einsum("bij,bvj->bvi", R, head) + t[:, None]
        normals = torch.einsum("bij,bvj->bvi", R, vertex_normals_torch(head, self.tri_long))
        occ = self._occluder_mesh(scenes, R, t)
        light = self._lights(scenes)
        self._shadow_frame = _light_frame(light["direction"], cam)
        person_map = self._shadow_depth([cam], [self.tri])
        occluder_map = self._shadow_depth([occ["cam"]], [occ["tri"]]) if occ is not None else None

        rast, _ = rasterize(self.ctx, camera_to_clip(cam, K, size, size), self.tri, (size, size))
        covered = rast[..., 3] > 0
        part = torch.where(covered, self.part[(rast[..., 3].long() - 1).clamp(min=0)], -1)
        geometry, _ = interpolate(torch.cat([cam, normals], -1), rast, self.tri)
        static, _ = interpolate(self.static, rast, self.tri)
        albedo, gloss = self._person_albedo(scenes, static, geometry, part)
        depth = -geometry[..., 2]
        background = self._backgrounds(scenes, size)
        # the person is shaded once; the twins differ only in what shadows the key light
        base, lit = self._shade_terms(albedo, geometry[..., :3], geometry[..., 3:6], gloss, light)
        visible = self._shadow_lookup(person_map, geometry[..., :3], geometry[..., 3:6], lit["lambert"])
        clean = torch.where(covered[..., None], base + lit["light"] * visible, background)
        face_region = (part == FACE) | (part == INTERIOR)
        mask = torch.zeros_like(covered)
        occluded = clean
        if occ is not None:
            visible_occ = torch.minimum(visible, self._shadow_lookup(occluder_map, geometry[..., :3], geometry[..., 3:6],
                                                                     lit["lambert"]))
            occluded = torch.where(covered[..., None], base + lit["light"] * visible_occ, background)
            o_rast, _ = rasterize(self.ctx, camera_to_clip(occ["cam"], K, size, size), occ["tri"], (size, size))
            o_geometry, _ = interpolate(torch.cat([occ["cam"], occ["normals"]], -1), o_rast, occ["tri"])
            o_attr, _ = interpolate(occ["attrs"], o_rast, occ["tri"])
            front = (o_rast[..., 3] > 0) & (~covered | (-o_geometry[..., 2] < depth))
            o_albedo = self._occluder_albedo(o_attr)
            o_base, o_lit = self._shade_terms(o_albedo, o_geometry[..., :3], o_geometry[..., 3:6], o_attr[..., 9:10],
                                              light, shininess=o_attr[..., 10:11])
            o_visible = torch.minimum(
                self._shadow_lookup(person_map, o_geometry[..., :3], o_geometry[..., 3:6], o_lit["lambert"]),
                self._shadow_lookup(occluder_map, o_geometry[..., :3], o_geometry[..., 3:6], o_lit["lambert"]))
            o_colour = o_base + o_lit["light"] * o_visible
            alpha = o_attr[..., 3:4].clamp(0, 1)
            occluded = torch.where(front[..., None], o_colour * alpha + occluded * (1 - alpha), occluded)
            mask = front & face_region & (o_attr[..., 11] > 0.5)
        flip = lambda x: x.flip(1)  # noqa: E731 - rasterizer rows start at the bottom
        return RenderedBatch(flip(self._to_srgb(clean, light)), flip(self._to_srgb(occluded, light)), flip(mask),
                             flip(face_region))

    @torch.no_grad()
    def person_pass(self, scenes: list[SceneInput]) -> dict:
        """Coverage, face region and depth of the person alone (for ``coverage``)."""
        size = scenes[0].size
        R, t, K = self._cameras(scenes)
        head = torch.as_tensor(np.stack([s.person for s in scenes]), dtype=torch.float32, device=self.device)
        cam = torch.einsum("bij,bvj->bvi", R, head) + t[:, None]
        rast, _ = rasterize(self.ctx, camera_to_clip(cam, K, size, size), self.tri, (size, size))
        covered = rast[..., 3] > 0
        part = torch.where(covered, self.part[(rast[..., 3].long() - 1).clamp(min=0)], -1)
        depth, _ = interpolate(-cam[..., 2:3], rast, self.tri)
        return {"covered": covered, "face_region": (part == FACE) | (part == INTERIOR), "depth": depth[..., 0]}

    @torch.no_grad()
    def coverage(self, scenes: list[SceneInput], person: dict | None = None) -> np.ndarray:
        """Occluded fraction of the face region per scene: the mask of ``render`` without any shading
        (for choosing occluder placements at a low resolution). ``person``: ``person_pass`` of these scenes."""
        size = scenes[0].size
        person = person or self.person_pass(scenes)
        R, t, K = self._cameras(scenes)
        occ = self._occluder_mesh(scenes, R, t)
        area = person["face_region"].sum((1, 2)).float()
        if occ is None:
            return np.zeros(len(scenes))
        o_rast, _ = rasterize(self.ctx, camera_to_clip(occ["cam"], K, size, size), occ["tri"], (size, size))
        o_depth, _ = interpolate(-occ["cam"][..., 2:3], o_rast, occ["tri"])
        o_counts, _ = interpolate(occ["attrs"][:, 11:12], o_rast, occ["tri"])
        front = (o_rast[..., 3] > 0) & (~person["covered"] | (o_depth[..., 0] < person["depth"]))
        mask = front & person["face_region"] & (o_counts[..., 0] > 0.5)
        return (mask.sum((1, 2)).float() / area.clamp(min=1)).cpu().numpy()

    def _lights(self, scenes) -> dict:
        dev = self.device
        stack = lambda values: torch.as_tensor(np.stack(values), dtype=torch.float32, device=dev)  # noqa: E731
        direction = F.normalize(stack([s.light_direction for s in scenes]), dim=-1)
        return {"direction": direction,
                "colour": stack([np.asarray(s.light_colour) * s.light_intensity for s in scenes]),
                "ambient": stack([s.ambient for s in scenes]),
                "specular": stack([[s.specular] for s in scenes]),
                "shininess": stack([[s.shininess] for s in scenes]),
                "exposure": stack([[s.exposure] for s in scenes])}

    def _person_albedo(self, scenes, static, geometry, part):
        uv, outside = static[..., 0:2], static[..., 2:3]
        textured, cavity, hair, cloth, gloss = static[..., 3:8].unbind(-1)
        tex = self.texture_batch([s.albedo_index for s in scenes])
        gain = torch.as_tensor(np.stack([s.albedo_gain for s in scenes]), dtype=torch.float32,
                               device=self.device)[:, None, None]
        skin = self.skins[torch.as_tensor([s.albedo_index for s in scenes], device=self.device)][:, None, None]
        sampled = texture(tex, uv.contiguous(), filter_mode="linear", boundary_mode="clamp")
        albedo = (sampled * (1 - outside) + skin * outside) * gain
        lips = skin * torch.tensor([0.55, 0.25, 0.25], device=self.device)
        cavity_colour = lips * (1 - cavity[..., None]) * 0.6
        hair_colour = torch.as_tensor(np.stack([s.hair_colour for s in scenes]), dtype=torch.float32,
                                      device=self.device)[:, None, None] ** 2.2
        strands = texture(self.noise, torch.stack([uv[..., 0] * 12.0, uv[..., 1] * 0.4], -1).contiguous(),
                          boundary_mode="wrap")
        hair_colour = hair_colour * (1 + 0.3 * strands)
        cloth_colour = torch.as_tensor(np.stack([s.cloth_colour for s in scenes]), dtype=torch.float32,
                                       device=self.device)[:, None, None] ** 2.2
        albedo = torch.where((cavity > 0)[..., None], cavity_colour, albedo)
        albedo = torch.where((part == HAIR)[..., None], hair_colour.clamp(0, 1), albedo)
        albedo = torch.where((cloth > 0.5)[..., None], cloth_colour, albedo)
        skin_gloss = torch.where(textured > 0.5, 1.0 + gloss * 4.0, torch.where(part == HAIR, 0.6, 0.2))
        return albedo.clamp(0, 1), skin_gloss[..., None]

    def _occluder_albedo(self, attrs):
        """Per-pixel occluder colour (linear) from the interpolated attributes (see ``_occluder_mesh``)."""
        base, pattern_colour = attrs[..., 0:3], attrs[..., 4:7]
        coords, pattern = attrs[..., 7:9], attrs[..., 12:13]
        amount = pattern_mix(pattern, coords, self.noise)
        return ((base * (1 - amount) + pattern_colour * amount).clamp(0, 1)) ** 2.2

    def _shade_terms(self, albedo, position, normal, gloss, light, shininess=None):
        """(ambient part, {"light": key-light part before shadowing, "lambert": n.l}) in linear RGB."""
        n = F.normalize(normal, dim=-1, eps=1e-9)
        view = F.normalize(-position, dim=-1, eps=1e-9)
        n = torch.where(((n * view).sum(-1, keepdim=True) < 0), -n, n)  # thin parts: light the side we see
        batch = n.shape[0]
        ambient = torch.einsum("bhwk,bkc->bhwc", sh_basis(n), light["ambient"]).clamp(min=0)
        direction = light["direction"].view(batch, 1, 1, 3)
        lambert = (n * direction).sum(-1, keepdim=True).clamp(min=0)
        colour = light["colour"].view(batch, 1, 1, 3)
        half = F.normalize(direction + view, dim=-1)
        power = light["shininess"].view(batch, 1, 1, 1) if shininess is None else shininess.clamp(min=1)
        spec = ((n * half).sum(-1, keepdim=True).clamp(min=0) ** power) * (lambert > 0)
        key = (albedo * lambert + light["specular"].view(batch, 1, 1, 1) * gloss * spec) * colour
        return albedo * ambient, {"light": key, "lambert": lambert}

    def _to_srgb(self, colour, light):
        exposed = colour * light["exposure"].view(-1, 1, 1, 1)
        # a soft shoulder instead of hard clipping, like a camera's tone curve
        toned = 1 - torch.exp(-exposed * 1.6)
        return (toned.clamp(1e-6, 1) ** (1 / 2.2)).clamp(0, 1)

    # ------------------------------------------------------------------ occluders

    def _occluder_mesh(self, scenes, R, t):
        parts = [(b, part) for b, s in enumerate(scenes) for part in s.occluders]
        if not parts:
            return None
        batch, dev = len(scenes), self.device
        counts = [len(p.vertices) for _, p in parts]
        total = sum(counts)
        head = torch.zeros(batch, total, 3, dtype=torch.float32, device=dev)
        valid = torch.zeros(batch, total, dtype=torch.bool, device=dev)
        tris, attrs, start = [], [], 0
        for (b, part), count in zip(parts, counts):
            head[b, start:start + count] = torch.as_tensor(part.vertices, dtype=torch.float32, device=dev)
            valid[b, start:start + count] = True
            tris.append(torch.as_tensor(part.triangles + start, dtype=torch.int64))
            attrs.append(np.column_stack([
                part.colours(), np.full(count, part.alpha), np.broadcast_to(part.pattern_colour, (count, 3)),
                part.coords(), np.full(count, part.gloss), np.full(count, part.shininess),
                np.full(count, 1.0 if part.counts_as_occluder else 0.0), np.full(count, float(PATTERNS.index(part.pattern)))]))
            start += count
        tri = torch.cat(tris).to(dev)
        normals = vertex_normals_torch(head, tri)
        cam = torch.einsum("bij,bvj->bvi", R, head) + t[:, None]
        normals = torch.einsum("bij,bvj->bvi", R, normals)
        # other samples' occluders: put them behind the camera (w <= 0), where triangles are dropped
        cam = torch.where(valid[..., None], cam, torch.tensor([0.0, 0.0, 1.0], device=dev))
        # per-vertex attributes: colour 0:3, alpha 3, pattern colour 4:7, pattern coords 7:9, gloss 9,
        # shininess 10, counts-as-occluder 11, pattern id 12
        table = torch.as_tensor(np.concatenate(attrs), dtype=torch.float32, device=dev)
        return {"cam": cam, "normals": normals, "tri": tri.int(), "attrs": table}

    # ------------------------------------------------------------------ shadows

    def _shadow_depth(self, positions, triangles):
        rotation, centre, extent = self._shadow_frame
        pos, tris, offset = [], [], 0
        for points, tri in zip(positions, triangles):
            local = torch.einsum("bij,bvj->bvi", rotation, points - centre[:, None])
            behind = points[..., 2] > 0  # the hidden copies of other samples' occluders
            clip = torch.stack([local[..., 0] / extent[:, None], local[..., 1] / extent[:, None],
                                (-local[..., 2] / (4 * extent[:, None])).clamp(-0.99, 0.99), torch.ones_like(local[..., 0])], -1)
            clip = torch.where(behind[..., None], torch.tensor([0.0, 0.0, 0.0, -1.0], device=clip.device), clip)
            pos.append(clip)
            tris.append(tri.long() + offset)
            offset += points.shape[1]
        rast, _ = rasterize(self.ctx, torch.cat(pos, 1), torch.cat(tris).int(), (SHADOW_RESOLUTION, SHADOW_RESOLUTION))
        depth = torch.where(rast[..., 3] > 0, rast[..., 2], torch.ones_like(rast[..., 2]))
        return depth

    def _shadow_lookup(self, depth_map, position, normal, lambert):
        rotation, centre, extent = self._shadow_frame
        texel_mm = 2 * extent[:, None, None, None] / SHADOW_RESOLUTION
        # normal offset and slope-scaled bias against self-shadowing stripes ("acne")
        position = position + normal * texel_mm * 1.5
        local = torch.einsum("bij,bhwj->bhwi", rotation, position - centre[:, None, None])
        uv = torch.stack([local[..., 0] / extent[:, None, None], local[..., 1] / extent[:, None, None]], -1)
        depth = -local[..., 2] / (4 * extent[:, None, None])
        slope = torch.sqrt((1 - lambert[..., 0] ** 2).clamp(min=0)) / lambert[..., 0].clamp(min=0.2)
        bias = (SHADOW_BIAS_MM + texel_mm[..., 0] * slope) / (4 * extent[:, None, None])
        lit = torch.zeros_like(depth)
        texel = 2.0 / SHADOW_RESOLUTION
        for dx, dy in ((-0.7, -0.7), (0.7, -0.7), (-0.7, 0.7), (0.7, 0.7)):  # 4-tap percentage-closer filter
            grid = (uv + torch.tensor([dx * texel, dy * texel], device=uv.device)).unsqueeze(1).flatten(2, 3)
            nearest = F.grid_sample(depth_map[:, None], grid, mode="nearest", padding_mode="border", align_corners=False)
            nearest = nearest.view_as(depth)
            lit = lit + (depth <= nearest + bias).float()
        return (lit / 4)[..., None]

    # ------------------------------------------------------------------ background

    def _backgrounds(self, scenes, size):
        dev = self.device
        images = self.backgrounds[torch.as_tensor([s.background_index for s in scenes], device=dev)]
        images = images.permute(0, 3, 1, 2).float() / 255.0
        theta = []
        for s in scenes:
            zoom, x, y, flip = s.background_crop
            shift_x, shift_y = (1 - zoom) * (2 * x - 1), (1 - zoom) * (2 * y - 1)
            theta.append([[zoom * (-1 if flip else 1), 0, shift_x], [0, zoom, shift_y]])
        theta = torch.as_tensor(theta, dtype=torch.float32, device=dev)
        grid = F.affine_grid(theta, (len(scenes), 3, size, size), align_corners=False)
        out = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
        gain = torch.as_tensor(np.stack([s.background_gain for s in scenes]), dtype=torch.float32, device=dev)
        out = (out.clamp(0, 1) ** 2.2) * gain[:, :, None, None]
        # the background is drawn at "scene" level; undo the exposure so it ends up as photographed
        exposure = torch.as_tensor([s.exposure for s in scenes], dtype=torch.float32, device=dev)
        linear = -torch.log1p(-(out.clamp(0, 0.98))) / 1.6 / exposure[:, None, None, None]
        return linear.permute(0, 2, 3, 1).flip(1)  # rasterizer row order


def pattern_mix(pattern: torch.Tensor, coords: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """(B, H, W, 1) amount of the pattern colour for pattern ids (rounded) at pattern coordinates."""
    pattern = pattern.round()
    u, v = coords[..., 0:1], coords[..., 1:2]
    stripes = (torch.sin(2 * math.pi * u) > 0).float()
    checks = ((torch.floor(u) + torch.floor(v)) % 2).float()
    fu, fv = u - torch.floor(u) - 0.5, v - torch.floor(v) - 0.5
    dots = ((fu * fu + fv * fv) < 0.09).float()
    fabric = (texture(noise, torch.cat([u, v], -1).contiguous() * 0.25, boundary_mode="wrap") * 0.5 + 0.5).clamp(0, 1)
    grille = ((fu.abs() > 0.3) | (fv.abs() > 0.3)).float()
    pleats = (torch.sin(2 * math.pi * v) * 0.5 + 0.5) ** 4
    options = [torch.zeros_like(u), stripes, checks, dots, fabric, grille, pleats]
    out = torch.zeros_like(u)
    for index, value in enumerate(options):
        out = torch.where(pattern == index, value, out)
    return out


def _light_frame(direction: torch.Tensor, cam: torch.Tensor):
    """Rotation into a frame whose z is the light direction, the head centre and a half-extent (mm)."""
    z = direction
    helper = torch.tensor([0.0, 1.0, 0.0], device=z.device).expand_as(z)
    helper = torch.where((z[:, 1:2].abs() > 0.9), torch.tensor([1.0, 0.0, 0.0], device=z.device).expand_as(z), helper)
    x = F.normalize(torch.cross(helper, z, dim=-1), dim=-1)
    y = torch.cross(z, x, dim=-1)
    rotation = torch.stack([x, y, z], 1)  # rows: the light frame axes
    centre = cam.mean(1)
    extent = (cam - centre[:, None]).norm(dim=-1).amax(1) * 1.05
    return rotation, centre, extent
