"""The rendered person around a ground-truth face: head, ears, neck, hair cap, mouth cavity, eyes.

A ``PersonRig`` is built once per shape model. Its vertex list is the model's vertices followed by
extra geometry whose positions follow each sample's face (``PersonRig.vertices``):

* ICT-FaceKit is a whole head: the extras are eyeballs behind its open eyes, a mouth cavity and a
  hair cap (copies of the scalp vertices pushed out along the normals).
* The Surrey model is a face only: an ICT head (the mean shape, MIT) is bent around each sample's
  face as a *carrier* -- a thin-plate warp through the face's landmarks, then a smooth correction
  so that its surface meets the Surrey face's outline -- and sunk a few millimetres below the face
  inside that outline so the Surrey surface is what the camera sees. Without ICT the Surrey face is
  rendered alone.

Every triangle belongs to one part: ``FACE`` (the ground-truth surface written to ``gt.obj``),
``INTERIOR`` (mouth cavity, eyeballs: inside the face but not part of its surface), ``SKIN`` (ears,
neck, scalp), ``HAIR``, ``CLOTH``. The occluder mask counts occluder pixels over FACE and INTERIOR.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .meshutil import ThinPlate, boundary_loops, gaussian_rbf_operator, geodesic_rings, vertex_normals
from .models import ShapeModel
from .texture_space import REGISTRATION_POINTS, model_texturing, register_to_canonical, texturing_of_canonical_points

FACE, INTERIOR, SKIN, HAIR, CLOTH = range(5)
PART_NAMES = ("face", "interior", "skin", "hair", "cloth")
# per-vertex material channels (besides uv/outside): textured skin, cavity darkness, hair, cloth, gloss
MATERIAL_CHANNELS = ("textured", "cavity", "hair", "cloth", "gloss")
EYEBALL_RADIUS_MM = 12.0
EYEBALL_RINGS, EYEBALL_SEGMENTS = 10, 16
CARRIER_SINK_MM = 4.0
HAIR_RAMP_HOPS = 4


@dataclass
class PersonRig:
    model: ShapeModel
    head: Optional[ShapeModel]  # the ICT model used as the Surrey model's carrier (None: no carrier)
    triangles: np.ndarray  # (F, 3) int64 over all person vertices
    triangle_part: np.ndarray  # (F,) int8
    uvs: np.ndarray  # (N, 2) float32 canonical UVs
    outside: np.ndarray  # (N,) float32
    material: np.ndarray  # (N, 5) float32, see MATERIAL_CHANNELS
    # layout of the vertex list
    mouth_loop: np.ndarray
    eye_loops: tuple[np.ndarray, ...]  # only for models with open eyes (ICT)
    head_offset: int  # first vertex of the carrier (== model vertices when there is none)
    head_count: int
    hair_source: np.ndarray  # head-vertex ids copied into the hair cap
    hair_ramp: np.ndarray  # (H,) 0 at the hairline .. 1 inside the scalp
    carrier: Optional[dict] = None  # precomputed data of the Surrey carrier
    hair_normals: Optional[np.ndarray] = None  # (head vertices, 3) rest-pose normals used to lift the hair

    @property
    def num_vertices(self) -> int:
        return len(self.uvs)

    @property
    def face_triangles(self) -> np.ndarray:
        return self.triangles[self.triangle_part == FACE]

    def vertices(self, face: np.ndarray, hair_thickness: float) -> np.ndarray:
        """All person vertices (N, 3) for one sample's model vertices ``face`` (V, 3), mm head frame."""
        parts = [face]
        parts.append(_cavity(face, self.mouth_loop))
        for loop in self.eye_loops:
            parts.append(_eyeball(face, loop))
        if self.carrier is not None:
            head = _bend_carrier(self.carrier, face)
            parts.append(head)
        else:
            head = face
        normals = self.hair_normals
        source = head[self.hair_source]
        offset = 0.6 + hair_thickness * self.hair_ramp if hair_thickness > 0 else np.full(len(source), -2.0)
        parts.append(source + normals[self.hair_source] * offset[:, None])
        return np.concatenate(parts).astype(np.float32)


def build_rig(model: ShapeModel, head: Optional[ShapeModel] = None) -> PersonRig:
    """The rig of ``model``; ``head`` (ICT) is the carrier for a face-only model (Surrey)."""
    loops = boundary_loops(model.triangles)
    mean = model.mean
    mouth = _mouth_loop(model, loops)
    whole_head = model.name == "ict"
    eye_loops = tuple(_eye_loops(model, loops)) if whole_head else ()
    texturing = model_texturing(mean, model.landmarks68)
    uvs, outside = [texturing.uvs], [texturing.outside]
    materials = [np.tile(_material(textured=1, gloss=0.0), (len(mean), 1))]
    tris, parts = [], []
    surface = (model.triangles < model.surface_vertex_count).all(axis=1)
    tris.append(model.triangles)
    parts.append(np.where(surface, FACE, SKIN))
    count = len(mean)

    cavity_points = _cavity(mean, mouth)
    cavity_tris = _cavity_triangles(mouth, count)
    tris.append(cavity_tris)
    parts.append(np.full(len(cavity_tris), INTERIOR))
    uvs.append(np.zeros((len(cavity_points), 2), np.float32))
    outside.append(np.ones(len(cavity_points), np.float32))
    depth = np.concatenate([np.full(len(mouth), 0.55), np.full(len(mouth), 0.85), [1.0]])
    materials.append(np.stack([_material(cavity=d) for d in depth]))
    count += len(cavity_points)

    warp = register_to_canonical(mean, model.landmarks68)
    for loop in eye_loops:
        ball = _eyeball(mean, loop)
        tex = texturing_of_canonical_points(warp(ball))
        tris.append(_sphere_triangles(count))
        parts.append(np.full(len(tris[-1]), INTERIOR))
        uvs.append(tex.uvs)
        outside.append(np.zeros(len(ball), np.float32))
        materials.append(np.tile(_material(textured=1, gloss=1.0), (len(ball), 1)))
        count += len(ball)

    carrier = None
    if whole_head:
        head_model, head_offset, head_mean = model, 0, mean
        head_tris = model.triangles
        head_surface = np.zeros(len(mean), bool)
        head_surface[: model.surface_vertex_count] = True
    elif head is not None:
        carrier = _prepare_carrier(model, head)
        head_model, head_offset, head_mean = head, count, carrier["rest"]
        head_tris = head.triangles
        head_tex = model_texturing(head.mean, head.landmarks68)
        # the carrier's own face lies under the Surrey face: drop it (the outline ring stays)
        hidden = carrier["under"][head_tris].all(1)
        tris.append(head_tris[~hidden] + count)
        parts.append(np.where(_cloth_vertices(head.mean, head)[head_tris[~hidden]].all(1), CLOTH, SKIN))
        uvs.append(head_tex.uvs)
        outside.append(head_tex.outside)
        materials.append(_head_materials(head))
        head_surface = carrier["under"]
        count += len(head.mean)
    else:
        head_model = None
    if head_model is not None:
        scalp = _scalp_vertices(head_model.mean, head_model, head_surface)
        hair_source = np.nonzero(scalp)[0]
        index = np.full(len(scalp), -1)
        index[hair_source] = np.arange(len(hair_source)) + count
        keep = scalp[head_tris].all(1)
        hair_tris = index[head_tris[keep]]
        tris.append(hair_tris)
        parts.append(np.full(len(hair_tris), HAIR))
        edge = np.nonzero(scalp & (_neighbour_count(head_tris, ~scalp, len(scalp)) > 0))[0]
        ramp = np.clip(geodesic_rings(head_tris[keep], edge, len(scalp), HAIR_RAMP_HOPS)[hair_source] / HAIR_RAMP_HOPS, 0, 1)
        uvs.append(np.zeros((len(hair_source), 2), np.float32) + head_model_uv(head_model)[hair_source])
        outside.append(np.ones(len(hair_source), np.float32))
        materials.append(np.tile(_material(hair=1), (len(hair_source), 1)))
        count += len(hair_source)
        if whole_head:  # ICT's own shoulders wear the clothes
            cloth = _cloth_vertices(mean, model)
            parts[0] = np.where(cloth[model.triangles].all(1), CLOTH, parts[0])
            materials[0] = np.where(cloth[:, None], _material(cloth=1), materials[0])
    else:
        hair_source, ramp = np.zeros(0, np.int64), np.zeros(0, np.float32)
        head_offset = count
    rig = PersonRig(
        model=model, head=head if not whole_head else None, triangles=np.concatenate(tris).astype(np.int64),
        triangle_part=np.concatenate(parts).astype(np.int8), uvs=np.concatenate(uvs).astype(np.float32),
        outside=np.concatenate(outside).astype(np.float32), material=np.concatenate(materials).astype(np.float32),
        mouth_loop=mouth, eye_loops=eye_loops, head_offset=head_offset,
        head_count=len(head_model.mean) if head_model is not None else 0, hair_source=hair_source,
        hair_ramp=ramp.astype(np.float32), carrier=carrier,
        hair_normals=carrier["normals"] if carrier is not None else vertex_normals(mean, model.triangles))
    return rig


def head_model_uv(model: ShapeModel) -> np.ndarray:
    """Hair strand coordinates: the angle around the vertical axis and the height (for the hair pattern)."""
    mean = model.mean - model.mean[model.now7].mean(0)
    return np.stack([np.arctan2(mean[:, 0], mean[:, 2]) / np.pi, mean[:, 1] / 100.0], axis=1).astype(np.float32)


def _material(textured=0.0, cavity=0.0, hair=0.0, cloth=0.0, gloss=0.0) -> np.ndarray:
    return np.array([textured, cavity, hair, cloth, gloss], np.float32)


def _head_materials(head: ShapeModel) -> np.ndarray:
    cloth = _cloth_vertices(head.mean, head)
    return np.where(cloth[:, None], _material(cloth=1), _material(textured=1))


def _frame(points: np.ndarray, model: ShapeModel):
    """Landmark-based reference heights: eye level, chin."""
    eyes = points[model.landmarks68[[36, 39, 42, 45]]].mean(0)
    chin = points[model.landmarks68[8]]
    return eyes, chin


def _cloth_vertices(points: np.ndarray, model: ShapeModel) -> np.ndarray:
    eyes, chin = _frame(points, model)
    return points[:, 1] < chin[1] - 0.75 * (eyes[1] - chin[1])


def _scalp_vertices(points: np.ndarray, model: ShapeModel, face_surface: np.ndarray) -> np.ndarray:
    eyes, chin = _frame(points, model)
    span = eyes[1] - chin[1]  # ~ 70 mm
    ears_z = points[model.landmarks68[[0, 16]]].mean(0)[2] if (model.landmarks68[[0, 16]] >= 0).all() else eyes[2] - 80
    top = points[:, 1] > eyes[1] + 0.45 * span
    ears = np.zeros(len(points), bool)
    ears[model.surface_vertex_count:max(model.face_area_vertex_count, model.surface_vertex_count)] = True
    back = (points[:, 2] < ears_z - 0.15 * span) & (points[:, 1] > eyes[1] - 0.75 * span)
    return (top | (back & ~ears)) & ~face_surface


def _neighbour_count(triangles: np.ndarray, flag: np.ndarray, count: int) -> np.ndarray:
    out = np.zeros(count, np.int64)
    for a, b in ((0, 1), (1, 2), (2, 0), (1, 0), (2, 1), (0, 2)):
        np.add.at(out, triangles[:, a], flag[triangles[:, b]].astype(np.int64))
    return out


def _mouth_loop(model: ShapeModel, loops) -> np.ndarray:
    """The boundary loop around the mouth opening: the one nearest the mouth corners' midpoint."""
    mean = model.mean
    mouth = mean[model.landmarks68[[48, 54]]].mean(0)
    return min(loops, key=lambda loop: np.linalg.norm(mean[loop].mean(0) - mouth))


def _eye_loops(model: ShapeModel, loops):
    """Loops around open eyes (ICT): nearest each eye's corner midpoint, within 10 mm."""
    mean = model.mean
    found = []
    for corners in ((36, 39), (42, 45)):
        centre = mean[model.landmarks68[list(corners)]].mean(0)
        best = min(loops, key=lambda loop: np.linalg.norm(mean[loop].mean(0) - centre))
        if np.linalg.norm(mean[best].mean(0) - centre) < 10:
            found.append(best)
    return found


def _cavity(face: np.ndarray, loop: np.ndarray) -> np.ndarray:
    rim = face[loop]
    centre = rim.mean(0)
    back = np.array([0.0, 0.0, 1.0])
    ring1 = rim + (centre - rim) * 0.25 - back * 6.0
    ring2 = centre + (rim - centre) * 0.55 - back * 16.0
    return np.concatenate([ring1, ring2, [centre - back * 24.0]])


def _cavity_triangles(loop: np.ndarray, first: int) -> np.ndarray:
    n = len(loop)
    ring1 = first + np.arange(n)
    ring2 = first + n + np.arange(n)
    centre = first + 2 * n
    tris = []
    for rim_a, rim_b in ((loop, ring1), (ring1, ring2)):
        nxt_a, nxt_b = np.roll(rim_a, -1), np.roll(rim_b, -1)
        tris.append(np.stack([nxt_a, rim_a, rim_b], 1))
        tris.append(np.stack([nxt_a, rim_b, nxt_b], 1))
    tris.append(np.stack([np.roll(ring2, -1), ring2, np.full(n, centre)], 1))
    return np.concatenate(tris)


def _eyeball(face: np.ndarray, loop: np.ndarray) -> np.ndarray:
    rim = face[loop]
    centre = rim.mean(0) - np.array([0.0, 0.0, EYEBALL_RADIUS_MM - 1.5])
    theta = np.linspace(0, np.pi * 0.75, EYEBALL_RINGS)[1:]  # 0 = front pole
    phi = np.linspace(0, 2 * np.pi, EYEBALL_SEGMENTS, endpoint=False)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    ring = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], -1).reshape(-1, 3)
    points = np.concatenate([[[0.0, 0.0, 1.0]], ring])
    return centre + EYEBALL_RADIUS_MM * points


def _sphere_triangles(first: int) -> np.ndarray:
    rings, segs = EYEBALL_RINGS - 1, EYEBALL_SEGMENTS
    tris = [[first, first + 1 + (j + 1) % segs, first + 1 + j] for j in range(segs)]
    for i in range(rings - 1):
        for j in range(segs):
            a = first + 1 + i * segs + j
            b = first + 1 + i * segs + (j + 1) % segs
            c, d = a + segs, b + segs
            tris += [[a, b, d], [a, d, c]]
    return np.array(tris, np.int64)


# ------------------------------------------------------------------ the Surrey carrier


def _registration_pairs(model: ShapeModel, head: ShapeModel) -> tuple[np.ndarray, np.ndarray]:
    ids = [i for i in REGISTRATION_POINTS if model.landmarks68[i] >= 0 and head.landmarks68[i] >= 0]
    return head.landmarks68[ids], model.landmarks68[ids]


def _prepare_carrier(model: ShapeModel, head: ShapeModel) -> dict:
    head_ids, face_ids = _registration_pairs(model, head)
    rest = ThinPlate(head.mean[head_ids], model.mean[face_ids], smoothing=2.0)(head.mean)
    outline = boundary_loops(model.triangles)[0]
    distance = np.sqrt(((rest[:, None, :] - model.mean[None, outline]) ** 2).sum(-1))
    anchor = distance.argmin(0)  # carrier vertex nearest each outline vertex
    # carrier vertices under the Surrey face: closer to an interior face vertex than to the outline
    to_face = np.sqrt(((rest[:, None, :] - model.mean[None, ::3]) ** 2).sum(-1)).min(1)
    to_outline = distance.min(1)
    under = (to_face < 20.0) & (to_outline > 2.0) & _inside_outline(rest, model, outline)
    sink = CARRIER_SINK_MM * np.clip((to_outline - 2.0) / 8.0, 0, 1) * under
    kept = np.zeros(len(rest), bool)
    kept[head.triangles[~under[head.triangles].all(1)].reshape(-1)] = True
    under_ids = np.nonzero(under & kept)[0]
    nearest = np.array([np.argmin(((model.mean - rest[i]) ** 2).sum(1)) for i in under_ids], dtype=np.int64)
    # the bend is linear in the face vertices: head = warp @ face[face_ids] + fix @ (outline - anchors)
    warp = ThinPlate(head.mean[head_ids], smoothing=2.0).operator(head.mean)
    fix = gaussian_rbf_operator(rest[anchor], rest, sigma=18.0, ridge=0.05)
    rest_normals = vertex_normals(rest, head.triangles)
    return {"face_ids": face_ids, "outline": outline, "anchor": anchor, "under": under, "under_ids": under_ids,
            "under_nearest": nearest, "face_triangles": model.triangles, "sink": sink.astype(np.float32),
            "rest": rest.astype(np.float32), "warp": warp, "fix": fix, "normals": rest_normals,
            "triangles": head.triangles}


def _inside_outline(points: np.ndarray, model: ShapeModel, outline: np.ndarray) -> np.ndarray:
    """Points whose frontal projection falls inside the face outline (and that lie in front of the ears)."""
    polygon = model.mean[outline][:, :2]
    x, y = points[:, 0:1], points[:, 1:2]
    a, b = polygon, np.roll(polygon, -1, axis=0)
    crosses = (a[:, 1] > y) != (b[:, 1] > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_at = a[:, 0] + (y - a[:, 1]) * (b[:, 0] - a[:, 0]) / (b[:, 1] - a[:, 1])
    inside = (crosses & (x < x_at)).sum(1) % 2 == 1
    return inside & (points[:, 2] > model.mean[outline][:, 2].min() - 5)


def _bend_carrier(carrier: dict, face: np.ndarray) -> np.ndarray:
    face = np.asarray(face, np.float64)
    head = carrier["warp"] @ face[carrier["face_ids"]]
    head += carrier["fix"] @ (face[carrier["outline"]] - head[carrier["anchor"]])
    head -= carrier["normals"] * carrier["sink"][:, None]
    # wherever the carrier still reaches through the face (eyelids, lips), push it behind the face
    ids, nearest = carrier["under_ids"], carrier["under_nearest"]
    face_normals = vertex_normals(face, carrier["face_triangles"])[nearest]
    above = ((head[ids] - face[nearest]) * face_normals).sum(1) + 1.5
    head[ids] -= face_normals * np.clip(above, 0, None)[:, None]
    return head
