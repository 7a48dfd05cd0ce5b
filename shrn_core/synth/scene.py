"""From a sample's parameters to what the renderer draws: face vertices, person, camera."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .models import ShapeModel
from .params import SampleParams
from .person import PersonRig
from .renderer import SceneInput

FACE_WIDTH_PER_EYE_SPAN = 1.5  # face width (cheekbones) ~ 1.5 x the outer-eye-corner distance


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Head -> camera rotation R = Ry(yaw) Rx(pitch) Rz(roll), degrees, right-handed (the convention of
    ``shrn_core.formats.mesh.pose_angles``): yaw > 0 turns the nose towards the image right (the
    subject's left), pitch > 0 tips the nose down, roll > 0 turns the face counter-clockwise in the image."""
    y, p, r = np.radians([yaw, pitch, roll])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return ry @ rx @ rz


@dataclass
class Camera:
    K: np.ndarray  # (3, 3)
    R: np.ndarray  # (3, 3) head -> camera
    t: np.ndarray  # (3,) mm
    size: int

    def project(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) pixel coordinates (x right, y down, corner origin) of head-frame points."""
        cam = np.asarray(points, np.float64) @ self.R.T + self.t
        return np.stack([self.K[0, 0] * cam[:, 0] / -cam[:, 2] + self.K[0, 2],
                         self.K[1, 1] * -cam[:, 1] / -cam[:, 2] + self.K[1, 2]], 1)

    def position(self) -> np.ndarray:
        """The camera centre in the head frame."""
        return -self.R.T @ self.t

    def scaled(self, size: int) -> "Camera":
        factor = size / self.size
        K = self.K.copy()
        K[:2] *= factor
        return Camera(K, self.R, self.t, size)

    def to_json(self) -> dict:
        return {"K": self.K.round(6).tolist(), "R": self.R.round(8).tolist(), "t": self.t.round(6).tolist(),
                "width": self.size, "height": self.size,
                "convention": "x_cam = R x_head + t; u = fx x/-z + cx, v = fy (-y)/-z + cy (shrn Camera)"}


def face_vertices(model: ShapeModel, params: SampleParams) -> np.ndarray:
    return model.vertices(params.identity, params.expression)


def camera_for(model: ShapeModel, face: np.ndarray, params: SampleParams) -> Camera:
    size = params.size
    f = params.focal_px
    lm = face[model.now7]
    centre = lm.mean(0)
    face_width = FACE_WIDTH_PER_EYE_SPAN * np.linalg.norm(lm[3] - lm[0])
    distance = f * face_width / (params.face_fraction * size)
    cx, cy = params.principal
    u = size / 2 + params.offset[0] * size
    v = size / 2 + params.offset[1] * size
    target = np.array([(u - cx) * distance / f, -(v - cy) * distance / f, -distance])
    R = rotation(params.yaw, params.pitch, params.roll)
    K = np.array([[f, 0, cx], [0, f, cy], [0, 0, 1.0]])
    return Camera(K, R, target - R @ centre, size)


def scene_input(rig: PersonRig, params: SampleParams, face: np.ndarray, camera: Camera, occluders: list,
                person: np.ndarray | None = None) -> SceneInput:
    """What the renderer needs for one sample; ``person`` = ``rig.vertices(face, ...)`` when already computed."""
    person = rig.vertices(face, params.hair_thickness) if person is None else person
    return SceneInput(
        person=person, occluders=occluders, R=camera.R, t=camera.t, K=camera.K,
        size=camera.size, light_direction=params.light_direction, light_colour=params.light_colour,
        light_intensity=params.light_intensity, ambient=params.ambient, specular=params.specular,
        shininess=params.shininess, exposure=params.exposure, albedo_index=params.albedo_index,
        albedo_gain=params.albedo_gain, hair_colour=params.hair_colour, cloth_colour=params.cloth_colour,
        background_index=params.background_index, background_crop=params.background_crop,
        background_gain=params.background_gain)
