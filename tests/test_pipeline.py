"""`shrn run` end to end on a real photo with a pasted occluder: outputs, resume, replaced
intermediates, failures in a batch, sharding. Reconstruction uses small fit settings for speed."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from shrn_core.evaluate.occluders import load_occluders, paste_occluder
from shrn_core.face import analyze_image
from shrn_core.formats.image import read_image, write_image
from shrn_core.formats.manifest import read_manifest
from shrn_core.formats.mask import read_mask
from shrn_core.pipeline import PipelineOptions, run

FAST_FIT = {"render_size": 96, "texture_size": 128, "subdivisions": 1, "coarse_iterations": 20,
            "mid_iterations": 4, "fine_iterations": 3, "displacement_size": 32, "max_render_side": 256}
FAST_CLI = [f"--option=reconstruct.{k}={v}" for k, v in FAST_FIT.items()]


def fast_options(**overrides) -> PipelineOptions:
    return PipelineOptions(reconstruct_options=dict(FAST_FIT), device="cpu", **overrides)


@pytest.fixture(scope="module")
def occluded_photo(tmp_path_factory, shared_data):
    """A real 450x450 photo with a surgical mask pasted over nose and mouth (exact mask known)."""
    folder = tmp_path_factory.mktemp("occluded")
    photo = read_image(shared_data / "faces_deca" / "AFLW2000__image04085.jpg")
    occluder = next(o for o in load_occluders(shared_data / "occluded_webfaceocc") if o.kind == "mask")
    image, mask = paste_occluder(photo, analyze_image(photo).face, occluder, rng=None)
    path = write_image(folder / "masked.png", image)
    return path, mask


def _mtimes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


def test_full_run_resume_and_replaced_mask(occluded_photo, tmp_path):
    photo, true_mask = occluded_photo
    [report] = run([photo], tmp_path, fast_options())
    assert report.ok, report.error
    folder = tmp_path / "masked"
    names = {p.name for p in folder.iterdir()}
    for expected in ("masked.face.json", "masked.mask.png", "masked.face_region.png", "masked.inpainted.png",
                     "masked.obj", "masked.mtl", "masked.albedo.png", "masked.params.npz", "manifest.json"):
        assert expected in names
    assert [s.status for s in report.stages] == ["computed"] * 4
    manifest = read_manifest(folder / "manifest.json")
    assert manifest["ok"] and [s["name"] for s in manifest["stages"]] == ["face", "segment", "inpaint", "reconstruct"]
    # the segment stage found the pasted mask
    predicted = read_mask(folder / "masked.mask.png") > 0
    truth = true_mask > 0
    assert (predicted & truth).sum() / max((predicted | truth).sum(), 1) > 0.5
    # inpainting changed the masked pixels only
    original = read_image(photo)
    inpainted = read_image(folder / "masked.inpainted.png")
    assert np.array_equal(original[~predicted], inpainted[~predicted])
    assert np.abs(original[predicted].astype(int) - inpainted[predicted]).mean() > 5

    # rerun: everything fresh, nothing rewritten but the manifest
    before = _mtimes(folder)
    [again] = run([photo], tmp_path, fast_options())
    assert again.ok and again.resumed
    after = _mtimes(folder)
    assert {k for k in before if before[k] != after[k]} == {"manifest.json"}

    # a hand-edited mask is newer than the face file: kept, and the later stages rerun on it
    edited = np.zeros_like(true_mask)
    edited[:40, :40] = 255
    write_image(folder / "masked.mask.png", edited)
    [third] = run([photo], tmp_path, fast_options())
    assert [s.status for s in third.stages] == ["reused", "reused", "computed", "computed"]
    assert np.array_equal(read_mask(folder / "masked.mask.png"), edited)

    # --from-stage recomputes that stage and the ones after
    [fourth] = run([photo], tmp_path, fast_options(from_stage="reconstruct"))
    assert [s.status for s in fourth.stages] == ["reused", "reused", "reused", "computed"]


def test_user_mask_and_no_inpaint(occluded_photo, tmp_path):
    photo, true_mask = occluded_photo
    mask_file = write_image(tmp_path / "given.png", true_mask)
    [report] = run([photo], tmp_path / "out", fast_options(mask=mask_file, skip_inpaint=True))
    assert report.ok, report.error
    assert [s.status for s in report.stages] == ["computed", "provided", "skipped", "computed"]
    assert np.array_equal(read_mask(tmp_path / "out" / "masked" / "masked.mask.png"), true_mask)
    assert not (tmp_path / "out" / "masked" / "masked.inpainted.png").exists()


def shrn(*args):
    env = dict(os.environ, COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "shrn_cli", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=600)


def test_cli_batch_goes_on_past_bad_inputs_and_shards(occluded_photo, tmp_path):
    photo, _ = occluded_photo
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a_good.png").write_bytes(Path(photo).read_bytes())
    (folder / "b_corrupt.jpg").write_bytes(b"\xff\xd8\xff garbage")
    write_image(folder / "c_noface.png", np.full((120, 160, 3), 90, np.uint8))
    result = shrn("run", folder, "--out", tmp_path / "out", "--json", "--device", "cpu", *FAST_CLI)
    assert result.returncode == 1, result.stderr
    records = {Path(r["input"]).name: r for r in map(json.loads, result.stdout.splitlines())}
    assert records["a_good.png"]["ok"] and not records["b_corrupt.jpg"]["ok"] and not records["c_noface.png"]["ok"]
    assert records["c_noface.png"]["exit_code"] == 3 and "no face" in records["c_noface.png"]["error"]
    assert "Traceback" not in result.stderr and "2 of 3 inputs" not in result.stderr
    assert "1 of 3 inputs ok" in result.stderr
    manifest = read_manifest(tmp_path / "out" / "c_noface" / "manifest.json")
    assert not manifest["ok"] and "no face" in manifest["error"]

    # shards: each input lands in exactly one of 3 shards (resumed runs, so this is quick)
    seen = []
    for index in range(3):
        shard = shrn("run", folder, "--out", tmp_path / "out", "--json", "--shard", f"{index}/3", "-q", *FAST_CLI)
        seen += [json.loads(line)["input"] for line in shard.stdout.splitlines()]
    assert sorted(Path(s).name for s in seen) == ["a_good.png", "b_corrupt.jpg", "c_noface.png"]


def test_cli_wrong_mask_size_and_bad_options(occluded_photo, tmp_path):
    photo, _ = occluded_photo
    small = write_image(tmp_path / "small.png", np.zeros((10, 10), np.uint8))
    result = shrn("run", photo, "--out", tmp_path, "--mask", small, *FAST_CLI)
    assert result.returncode == 2 and "mask is 10x10" in result.stderr
    result = shrn("run", photo, "--out", tmp_path, "--shard", "5/2")
    assert result.returncode == 2 and "--shard" in result.stderr
    result = shrn("run", photo, "--out", tmp_path, "--option", "nonsense")
    assert result.returncode == 2 and "STAGE.KEY=VALUE" in result.stderr


def test_batched_reconstruction_matches_inputs(occluded_photo, shared_data, tmp_path):
    photo, _ = occluded_photo
    other = shared_data / "faces_deca" / "AFLW2000__image02202.jpg"
    reports = run([photo, other], tmp_path, fast_options(batch_size=2))
    assert [r.ok for r in reports] == [True, True], [r.error for r in reports]
    for report in reports:
        record = report.stages[-1]
        assert record.name == "reconstruct" and record.info.get("batched") == 2
        assert Path(record.outputs["mesh"]).is_file()
    # each output belongs to its own photo: the overlays differ and match their photo's size
    first = read_image(tmp_path / "masked" / "masked.overlay.png")
    second = read_image(tmp_path / "AFLW2000__image02202" / "AFLW2000__image02202.overlay.png")
    assert first.shape == read_image(photo).shape and second.shape == read_image(other).shape


def test_manifest_reader_refuses_malformed_files(tmp_path):
    from shrn_core.errors import FormatError
    from shrn_core.formats.manifest import write_manifest

    payload = {"shrn_version": "0", "input": "x.jpg", "ok": True, "error": None, "backends": {}, "options": {},
               "stages": [{"name": "face", "status": "computed"}], "warnings": []}
    path = write_manifest(tmp_path / "manifest.json", payload)
    assert read_manifest(path)["stages"][0]["status"] == "computed"
    doc = json.loads(path.read_text())
    doc["stages"][0]["status"] = "exploded"
    path.write_text(json.dumps(doc))
    with pytest.raises(FormatError, match="malformed stage"):
        read_manifest(path)
