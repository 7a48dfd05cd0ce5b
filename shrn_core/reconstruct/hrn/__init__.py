"""HRN / MV-HRN (Lei et al., CVPR 2023) re-implemented on shrn's face analysis, occlusion masks and
renderer; loads the official checkpoints (``hrn_v1.1/epoch_10.pth``, ``de-retouching.pth``) and
BFM assets. Entry point: ``HRNBackend``."""
from .assets import FILES as ASSET_FILES, expected_layout, resolve_assets
from .backend import HRNBackend

__all__ = ["HRNBackend", "ASSET_FILES", "expected_layout", "resolve_assets"]
