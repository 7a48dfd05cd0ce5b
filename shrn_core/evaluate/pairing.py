"""Matching prediction and scan folders by file stem."""
from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from ..formats.mesh_io import MESH_EXTENSIONS


def mesh_files(folder: Path) -> dict[str, Path]:
    """Mesh files of a folder by stem, ignoring shrn outputs (``<stem>.<kind>.<ext>``)."""
    found: dict[str, Path] = {}
    for path in sorted(Path(folder).iterdir()):
        if path.is_file() and path.suffix.lower() in MESH_EXTENSIONS and "." not in path.stem:
            if path.stem in found:
                raise InputError(f"two meshes share the stem {path.stem!r}: {found[path.stem].name}, {path.name}", folder)
            found[path.stem] = path
    return found


def match_folders(pred_dir: Path, gt_dir: Path) -> tuple[dict[Path, Path | None], list[Path]]:
    """{prediction: scan or None} for every prediction, and the scans without a prediction."""
    for folder in (pred_dir, gt_dir):
        if not Path(folder).is_dir():
            raise InputError("folder not found", folder)
    preds, scans = mesh_files(pred_dir), mesh_files(gt_dir)
    if not preds:
        raise InputError("folder holds no .obj/.ply/.stl meshes", pred_dir)
    if not scans:
        raise InputError("folder holds no .obj/.ply/.stl scans", gt_dir)
    if not set(preds) & set(scans):
        raise InputError(f"no file stem is shared with the GT folder {gt_dir}", pred_dir)
    pairs = {path: scans.get(stem) for stem, path in preds.items()}
    orphans = [path for stem, path in scans.items() if stem not in preds]
    return pairs, orphans
