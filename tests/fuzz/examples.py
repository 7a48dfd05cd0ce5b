"""Valid examples of every file shrn reads, written into a folder at fuzz time.

Each builder takes an empty folder, writes the file to fuzz (and any files it needs beside it) and
returns the path of the file to fuzz. Photos are derived from ``../shared/data`` in memory and
written only under the fuzz work folder (never into the repository).
"""
from __future__ import annotations

import functools
import io
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np

REPO = Path(__file__).resolve().parents[2]
PHOTO_SIDE = 192


def shared_data_dir() -> Path:
    import os

    env = os.environ.get("SHRN_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@functools.lru_cache(maxsize=1)
def photo_rgb() -> np.ndarray:
    """A real frontal portrait, downscaled so that the fuzz cases that decode it stay fast."""
    import cv2

    from shrn_core.formats.image import read_image

    source = shared_data_dir() / "faces_hrn" / "single_view_image__00016.png"
    return cv2.resize(read_image(source), (PHOTO_SIDE, PHOTO_SIDE), interpolation=cv2.INTER_AREA)


@functools.lru_cache(maxsize=1)
def photo_analysis():
    from shrn_core.face import analyze_image

    return analyze_image(photo_rgb(), image_path="photo.png")


def write_photo(folder: Path, name: str = "photo.png") -> Path:
    from shrn_core.formats.image import write_image

    return write_image(folder / name, photo_rgb())


# ---------------------------------------------------------------- photos

def image_builder(kind: str):
    def build(folder: Path) -> Path:
        import cv2
        from PIL import Image

        from shrn_core.formats.image import write_image

        rgb = photo_rgb()
        if kind == "png8":
            return write_image(folder / "photo.png", rgb)
        if kind == "png16":
            return write_image(folder / "photo.png", rgb.astype(np.uint16) * 257)
        if kind == "gray_png":
            return write_image(folder / "photo.png", cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
        if kind == "rgba_png":
            return write_image(folder / "photo.png", np.dstack([rgb, np.full(rgb.shape[:2], 200, np.uint8)]))
        if kind == "jpeg_exif":
            path = folder / "photo.jpg"
            image = Image.fromarray(np.ascontiguousarray(np.rot90(rgb, 1)))
            exif = image.getexif()
            exif[0x0112] = 6  # stored rotated: readers must turn it upright
            image.save(path, exif=exif, quality=90)
            return path
        if kind == "tiff16":
            return write_image(folder / "photo.tif", rgb.astype(np.uint16) * 257)
        if kind == "tiff_float":
            return write_image(folder / "photo.tif", rgb.astype(np.float32) / 255.0)
        if kind == "webp":
            return write_image(folder / "photo.webp", rgb)
        if kind == "bmp":
            return write_image(folder / "photo.bmp", rgb)
        raise ValueError(kind)
    return build


def build_mask(folder: Path) -> Path:
    from shrn_core.formats.mask import write_mask

    write_photo(folder)
    mask = np.zeros((PHOTO_SIDE, PHOTO_SIDE), np.uint8)
    mask[110:150, 60:130] = 255  # a band over the mouth
    return write_mask(folder / "photo.mask.png", mask)


def build_face_json(folder: Path) -> Path:
    from shrn_core.formats.face import write_face_json

    write_photo(folder)
    return write_face_json(folder / "photo.face.json", photo_analysis())


def build_manifest(folder: Path) -> Path:
    from shrn_core.formats.manifest import write_manifest

    stages = [{"name": name, "status": "computed", "seconds": 0.5, "backend": None,
               "outputs": {name: f"photo.{name}.png"}, "info": {"n": 1}} for name in ("face", "segment", "inpaint")]
    payload = {"shrn_version": "0.1.0", "input": "photos/photo.png", "ok": True, "error": None,
               "backends": {"segment": "auto", "inpaint": "face", "reconstruct": "fit"},
               "options": {"segment": {}, "inpaint": {}, "reconstruct": {"levels": "fine"}, "device": "auto"},
               "stages": stages, "warnings": ["a warning"]}
    return write_manifest(folder / "manifest.json", payload)


def build_metrics(folder: Path) -> Path:
    from shrn_core.formats.metrics import write_metrics

    payload = {"protocol": "now", "median_mm": 1.1, "mean_mm": 1.3, "std_mm": 0.9, "points": 1000,
               "pred": "pred/face.obj", "gt": "gt/face.obj"}
    return write_metrics(folder / "face.metrics.json", payload)


def build_errors(folder: Path) -> Path:
    from shrn_core.formats.metrics import write_errors

    return write_errors(folder / "face.errors.npy", np.abs(np.random.default_rng(0).normal(size=500)).astype(np.float32))


def fake_reconstruction(views: int = 1):
    """The parts of a Reconstruction that ``write_params`` reads, with realistic shapes."""
    from shrn_core.face.topology import load_topology

    topo = load_topology()
    rng = np.random.default_rng(0)
    view_list = []
    for index in range(views):
        camera = SimpleNamespace(K=np.array([[400, 0, 96], [0, 400, 96], [0, 0, 1]], np.float32), R=np.eye(3),
                                 t=np.array([0, 0, -500], np.float32), width=PHOTO_SIDE, height=PHOTO_SIDE)
        view_list.append(SimpleNamespace(camera=camera, sh_lighting=rng.normal(size=(9, 3)).astype(np.float32),
                                         landmarks_2d=rng.uniform(0, PHOTO_SIDE, (478, 2)).astype(np.float32),
                                         landmarks_68=None, image_path=f"photo{index}.png"))
    return SimpleNamespace(views=view_list, backend="fit", levels={"coarse": None, "mid": None, "fine": None},
                           landmark_vertex_ids=topo.landmark_vertex_ids, displacement=np.zeros((32, 32), np.float32))


def build_params(folder: Path) -> Path:
    from shrn_core.formats.mesh import write_params

    return write_params(folder / "photo.params.npz", fake_reconstruction())


def build_shrn_obj(folder: Path) -> Path:
    from shrn_core.face.topology import load_topology
    from shrn_core.formats.mesh import write_obj

    topo = load_topology()
    return write_obj(folder / "photo.obj", topo.mean_shape, topo.triangles, topo.uvs, "photo.mtl", "level=coarse")


def _eval_pair(folder: Path) -> tuple[Path, Path, Path]:
    from shrn_core.evaluate.synthetic import write_pair

    pred, scan, landmarks, _ = write_pair(folder, stem="face", sigma=0.3, seed=1, pred_subdivisions=0,
                                          scan_subdivisions=0)
    return pred, scan, landmarks


def build_eval_pred_obj(folder: Path) -> Path:
    return _eval_pair(folder)[0]


def scan_builder(ext: str, ascii_ply: bool = False):
    def build(folder: Path) -> Path:
        import trimesh

        from shrn_core.formats.mesh_io import read_mesh

        _, scan, _ = _eval_pair(folder)
        mesh = read_mesh(scan)
        target = scan.with_suffix(ext)
        data = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False).export(
            file_type=ext[1:], **({"encoding": "ascii"} if ascii_ply else {}))
        target.write_bytes(data if isinstance(data, bytes) else data.encode())
        scan.unlink()
        return target
    return build


def landmarks_builder(ext: str):
    def build(folder: Path) -> Path:
        _, _, txt = _eval_pair(folder)
        points = np.loadtxt(txt)
        if ext == ".txt":
            return txt
        txt.unlink()
        target = txt.with_suffix(ext)
        if ext == ".npy":
            np.save(target, points)
        elif ext == ".json":
            target.write_text(json.dumps({"landmarks": points.tolist()}))
        elif ext == ".pp":
            rows = "\n".join(f' <point x="{x}" y="{y}" z="{z}" name="{i}" active="1"/>' for i, (x, y, z) in enumerate(points))
            target.write_text(f"<!DOCTYPE PickedPoints>\n<PickedPoints>\n{rows}\n</PickedPoints>\n")
        return target
    return build


def build_config(folder: Path) -> Path:
    write_photo(folder)
    path = folder / "config.yaml"
    path.write_text("max_pixels: 100000000\nface:\n  no_hands: true\n  face_index: 0\nsegment:\n  overhang: 0.2\n")
    return path


# ---------------------------------------------------------------- model files

@functools.lru_cache(maxsize=1)
def _deeplab_state() -> dict:
    import torch
    from torchvision.models.segmentation import deeplabv3_mobilenet_v3_large

    torch.manual_seed(0)
    return deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=2).state_dict()


def build_deeplab(folder: Path) -> Path:
    import torch

    write_photo(folder)
    path = folder / "occlusion.pth"
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in _deeplab_state().items()}}, path)
    return path


def build_hrn_checkpoint(folder: Path) -> Path:
    """The official layout (entries net_recon/mid_net/high_net/alpha/beta) with small tensors."""
    import torch

    torch.manual_seed(0)
    state = {"net_recon": {"backbone.conv1.weight": torch.randn(8, 3, 3, 3), "final_layers.0.bias": torch.randn(80)},
             "mid_net": {"model.1.weight": torch.randn(4, 6, 7, 7)}, "high_net": {"model.1.weight": torch.randn(4, 9, 7, 7)},
             "alpha": torch.tensor([0.01]), "beta": torch.tensor([0.01])}
    path = folder / "epoch_10.pth"
    torch.save(state, path)
    return path


def _tiny_unet():
    import torch
    from diffusers import UNet2DModel

    torch.manual_seed(0)
    return UNet2DModel(sample_size=32, in_channels=3, out_channels=3, layers_per_block=1, block_out_channels=(8, 16),
                       norm_num_groups=8, down_block_types=("DownBlock2D", "DownBlock2D"),
                       up_block_types=("UpBlock2D", "UpBlock2D"))


def repaint_builder(target: str):
    """A tiny diffusers DDPM folder; ``target`` picks the file to fuzz (config, safetensors or bin)."""
    def build(folder: Path) -> Path:
        unet_dir = folder / "ddpm" / "unet"
        model = _tiny_unet()
        model.save_pretrained(unet_dir, safe_serialization=target != "bin")
        (folder / "ddpm" / "scheduler").mkdir(parents=True)
        (folder / "ddpm" / "scheduler" / "scheduler_config.json").write_text(
            json.dumps({"_class_name": "DDPMScheduler", "num_train_timesteps": 1000, "beta_schedule": "linear"}))
        if target == "config":
            return unet_dir / "config.json"
        return unet_dir / ("diffusion_pytorch_model.safetensors" if target == "safetensors"
                           else "diffusion_pytorch_model.bin")
    return build


def hrn_asset_builder(name: str):
    """The HRN asset folder with small stand-in arrays (``hrn.synthetic``) and tiny networks;
    ``name`` (a key of ``hrn.assets.FILES``) picks the file to fuzz."""
    def build(folder: Path) -> Path:
        import torch

        from shrn_core.reconstruct.hrn.assets import FILES
        from shrn_core.reconstruct.hrn.synthetic import face_mesh_arrays, write_assets

        tiny = torch.nn.Linear(1, 1)
        nets = SimpleNamespace(net_recon=tiny, mid_net=tiny, high_net=tiny, de_retouch=tiny,
                               alpha=torch.ones(1), beta=torch.ones(1))
        write_assets(folder / "assets", face_mesh_arrays(tex_side=16), nets)
        return folder / "assets" / FILES[name]
    return build


def build_topology(folder: Path) -> Path:
    import shutil

    from shrn_core.face.topology import TOPOLOGY_FILE

    return Path(shutil.copy(TOPOLOGY_FILE, folder / "face_topology.npz"))


def packaged_builder(which: str, file_name: str):
    """Copy a packaged model folder (``face_model`` or ``occlusion_net``) and return one of its files."""
    def build(folder: Path) -> Path:
        import shutil

        from shrn_core.facemodel import MODEL_DIR

        source = MODEL_DIR.parent / which
        target = folder / which
        shutil.copytree(source, target, dirs_exist_ok=True)
        return target / file_name
    return build


def npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()
