"""Where the official HRN assets live, and a check that lists every missing file at once.

``--assets DIR`` is the ``assets`` folder of the HRN download (the HRN repository root, holding
``assets/``, is accepted too). Only the files below are read; the original pipeline's
TensorFlow face-segmentation graph, retinaface and landmark models are not needed (shrn's face
and segment stages replace them).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ...errors import WeightsError

ENV_VAR = "SHRN_HRN_ASSETS"
DOWNLOAD_HINT = ("get them from the HRN project's asset download (https://github.com/youngLBW/HRN, "
                 "assets/README.md: Google Drive folder) and pass its 'assets' folder with --assets")

# name -> path relative to the assets folder, as the HRN download lays them out
FILES = {
    "bfm": "3dmm_assets/BFM/BFM_model_front.mat",
    "lm3d": "3dmm_assets/BFM/similarity_Lm3D_all.mat",
    "tex_basis": "3dmm_assets/bfm_albedo_map_basis/bfm_texmap_base2.npy",
    "tex_mean": "3dmm_assets/bfm_albedo_map_basis/bfm_tex_mean2.npy",
    "uvs": "3dmm_assets/template_mesh/bfm_uvs2.npy",
    "template": "3dmm_assets/template_mesh/template_bfm.obj",
    "hrn": "pretrained_models/hrn_v1.1/epoch_10.pth",
    "de_retouching": "pretrained_models/de-retouching.pth",
}


@dataclass(frozen=True)
class AssetPaths:
    root: Path
    bfm: Path
    lm3d: Path
    tex_basis: Path
    tex_mean: Path
    uvs: Path
    template: Path
    hrn: Path
    de_retouching: Path


def expected_layout() -> str:
    """The folder layout on one line: ``3dmm_assets/BFM/{a, b}, ...``."""
    groups: dict[str, list[str]] = {}
    for rel in FILES.values():
        folder, _, name = rel.rpartition("/")
        groups.setdefault(folder, []).append(name)
    return ", ".join(f"{folder}/{{{', '.join(names)}}}" if len(names) > 1 else f"{folder}/{names[0]}"
                     for folder, names in groups.items())


def resolve_assets(root: str | Path | None) -> AssetPaths:
    """Paths of every asset, or one ``WeightsError`` naming every missing file and the layout."""
    if root is None or str(root) == "":
        root = os.environ.get(ENV_VAR)
    if not root:
        raise WeightsError(f"the hrn backend needs the HRN assets folder (--assets DIR or ${ENV_VAR}); "
                           f"{DOWNLOAD_HINT}; expected layout under DIR: {expected_layout()}")
    root = Path(root).expanduser()
    if root.is_file() and root.as_posix().endswith(FILES["hrn"]):  # given the checkpoint itself
        root = root.parents[2]
    if root.is_file():
        raise WeightsError(f"expected the HRN assets folder, got a file; {DOWNLOAD_HINT}; expected layout "
                           f"under the folder: {expected_layout()}", root)
    if not root.is_dir():
        raise WeightsError(f"HRN assets folder not found; {DOWNLOAD_HINT}; expected layout under it: "
                           f"{expected_layout()}", root)
    if not (root / "3dmm_assets").is_dir() and (root / "assets" / "3dmm_assets").is_dir():
        root = root / "assets"
    missing = [rel for rel in FILES.values() if not (root / rel).is_file()]
    if missing:
        raise WeightsError(f"{len(missing)} HRN asset file(s) missing: {', '.join(missing)}; {DOWNLOAD_HINT}; "
                           f"expected layout under the folder: {expected_layout()}", root)
    return AssetPaths(root=root, **{name: root / rel for name, rel in FILES.items()})
