"""HRN networks and asset/checkpoint loading: official key layout, strict loads, clear errors."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

from shrn_core.errors import WeightsError
from shrn_core.reconstruct.hrn.assets import FILES, resolve_assets
from shrn_core.reconstruct.hrn.bfm import load_bfm_arrays
from shrn_core.reconstruct.hrn.checkpoint import load_hrn_weights, read_checkpoint
from shrn_core.reconstruct.hrn.networks import HRNNetworks
from shrn_core.reconstruct.hrn.synthetic import face_mesh_arrays, write_assets

FIXTURE = Path(__file__).parent / "fixtures" / "hrn_state_dict_shapes.json"


@pytest.fixture(scope="module")
def nets() -> HRNNetworks:
    torch.manual_seed(1)
    return HRNNetworks()


@pytest.fixture(scope="module")
def asset_dir(tmp_path_factory, nets) -> Path:
    """A complete asset folder: tiny face-shaped BFM files, full-size random-weight checkpoints."""
    with torch.no_grad():
        nets.alpha.fill_(0.25)
    return write_assets(tmp_path_factory.mktemp("hrn_assets") / "assets", face_mesh_arrays(tex_side=32), nets)


def test_networks_produce_exactly_the_official_keys_and_shapes(nets):
    official = json.loads(FIXTURE.read_text())["checkpoints"]
    ours = nets.checkpoint_modules()
    assert list(ours) == list(official)
    for file_name, entries in official.items():
        assert list(ours[file_name]) == list(entries)
        for entry, expected in entries.items():
            target = ours[file_name][entry]
            if isinstance(target, str):
                assert list(getattr(nets, target).shape) == expected
            else:
                got = {k: list(v.shape) for k, v in target.state_dict().items()}
                assert list(got) == list(expected), f"{file_name}:{entry} key order differs"
                assert got == expected, f"{file_name}:{entry} shapes differ"


def test_checkpoints_written_in_the_official_layout_load_strictly(asset_dir, nets):
    loaded = load_hrn_weights(HRNNetworks(), asset_dir / FILES["hrn"], asset_dir / FILES["de_retouching"])
    for name in ("net_recon", "mid_net", "high_net", "de_retouch"):
        ours, theirs = getattr(loaded, name).state_dict(), getattr(nets, name).state_dict()
        assert all(torch.equal(ours[k], theirs[k]) for k in theirs), name
    assert float(loaded.alpha) == pytest.approx(0.25)


def _save_epoch_file(path: Path, nets: HRNNetworks, net_recon_state: dict) -> Path:
    torch.save({"net_recon": net_recon_state, "mid_net": nets.mid_net.state_dict(), "high_net": nets.high_net.state_dict(),
                "alpha": torch.ones(1), "beta": torch.ones(1), "opt_00": {"state": {}, "param_groups": []}}, path)
    return path


def test_checkpoint_with_wrong_keys_names_the_first_mismatches(tmp_path, asset_dir, nets):
    state = dict(nets.net_recon.state_dict())
    state["backbone.conv1.weight"] = torch.zeros(64, 4, 7, 7)  # wrong shape
    state["module.final_layers.0.bias"] = state.pop("final_layers.0.bias")  # renamed
    bad = _save_epoch_file(tmp_path / "epoch_10.pth", nets, state)
    with pytest.raises(WeightsError) as err:
        load_hrn_weights(HRNNetworks(), bad, asset_dir / FILES["de_retouching"])
    message = str(err.value)
    assert "net_recon" in message and str(bad) in message
    assert "missing final_layers.0.bias" in message
    assert "unexpected module.final_layers.0.bias" in message
    assert "backbone.conv1.weight has shape (64, 4, 7, 7), expected (64, 3, 7, 7)" in message


def test_checkpoint_of_another_model_and_garbage_files_are_rejected(tmp_path, asset_dir):
    other = tmp_path / "other.pth"
    torch.save({"generator": {}}, other)
    with pytest.raises(WeightsError, match="entries net_recon, mid_net, high_net, alpha, beta missing"):
        load_hrn_weights(HRNNetworks(), other, asset_dir / FILES["de_retouching"])
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"this is not a checkpoint")
    with pytest.raises(WeightsError, match="not a readable PyTorch checkpoint"):
        read_checkpoint(garbage)


def test_missing_assets_are_all_listed_with_the_layout(tmp_path, monkeypatch, asset_dir):
    with pytest.raises(WeightsError) as err:
        resolve_assets(tmp_path)
    message = str(err.value)
    assert "8 HRN asset file(s) missing" in message
    for rel in FILES.values():
        assert rel in message
    assert "github.com/youngLBW/HRN" in message and "\n" not in message

    partial = tmp_path / "partial"
    for name in ("bfm", "uvs"):
        (partial / FILES[name]).parent.mkdir(parents=True, exist_ok=True)
        (partial / FILES[name]).write_bytes(b"x")
    with pytest.raises(WeightsError) as err:
        resolve_assets(partial)
    assert "6 HRN asset file(s) missing" in str(err.value)
    assert "pretrained_models/hrn_v1.1/epoch_10.pth" in str(err.value)
    assert ", 3dmm_assets/BFM/BFM_model_front.mat" not in str(err.value).split("expected layout")[0]

    monkeypatch.delenv("SHRN_HRN_ASSETS", raising=False)
    with pytest.raises(WeightsError, match="--assets"):
        resolve_assets(None)
    # the HRN repository root (holding assets/) is accepted too
    assert resolve_assets(asset_dir.parent).root == asset_dir


def test_bfm_file_without_a_field_is_rejected(tmp_path, asset_dir):
    paths = resolve_assets(asset_dir)
    fields = scipy.io.loadmat(paths.bfm)
    broken = {k: v for k, v in fields.items() if not k.startswith("__") and k != "exBase"}
    scipy.io.savemat(paths.bfm.with_name("broken.mat"), broken)
    with pytest.raises(WeightsError, match="exBase"):
        load_bfm_arrays(type(paths)(**{**paths.__dict__, "bfm": paths.bfm.with_name("broken.mat")}))
    arrays = load_bfm_arrays(paths)
    assert arrays.id_base.shape == (3 * 468, 80) and arrays.keypoints.shape == (68,)
    assert np.allclose(arrays.mean_shape.mean(0), 0, atol=1e-6)
