"""Eval stage: known-answer synthetic pairs (similarity + Gaussian noise), scan defects, bad input."""
from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh

from shrn_core.errors import FormatError, InputError, NumericalError
from shrn_core.evaluate import NOW7_MEDIAPIPE, evaluate, load_pair
from shrn_core.evaluate.face_frame import now_crop
from shrn_core.evaluate.realy import REGIONS, region_labels
from shrn_core.evaluate.report import write_item_outputs
from shrn_core.evaluate.synthetic import HALF_NORMAL, face_mesh, random_similarity, write_obj, write_pair
from shrn_core.face import landmark_sets
from shrn_core.formats.image import read_image
from shrn_core.formats.mesh_io import read_landmarks, read_mesh
from shrn_core.formats.metrics import read_errors, read_metrics

SIGMA = 0.4


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    folder = tmp_path_factory.mktemp("eval_pair")
    pred, scan, lmk, transform = write_pair(folder, stem="face", sigma=SIGMA, seed=11, pred_subdivisions=1,
                                            scan_subdivisions=1)
    return {"folder": folder, "pred": pred, "scan": scan, "lmk": lmk, "transform": transform}


@pytest.fixture(scope="module")
def now_result(pair):
    return evaluate(pair["pred"], pair["scan"])


def expect_noise(stats, sigma=SIGMA, rel=0.06):
    assert stats.median == pytest.approx(HALF_NORMAL["median"] * sigma, rel=rel)
    assert stats.mean == pytest.approx(HALF_NORMAL["mean"] * sigma, rel=rel)
    assert stats.std == pytest.approx(HALF_NORMAL["std"] * sigma, rel=2 * rel)


def test_now7_vertices_match_the_face_landmark_sets():
    assert NOW7_MEDIAPIPE[[0, 1]].tolist() == list(landmark_sets.RIGHT_EYE_CORNERS)
    assert NOW7_MEDIAPIPE[[2, 3]].tolist() == list(landmark_sets.LEFT_EYE_CORNERS)
    assert NOW7_MEDIAPIPE[5:].tolist() == [landmark_sets.MOUTH_RIGHT, landmark_sets.MOUTH_LEFT]
    vertices, _ = face_mesh(0)  # head frame: x to the subject's left, y up, z towards the viewer
    assert vertices[NOW7_MEDIAPIPE[0], 0] < vertices[NOW7_MEDIAPIPE[3], 0]
    # NoW's landmark 5 is the nose *bottom* (subnasale): below and behind the tip, above the lip
    bottom, tip, lip = vertices[NOW7_MEDIAPIPE[4]], vertices[landmark_sets.NOSE_TIP], vertices[0]
    assert lip[1] < bottom[1] < tip[1] - 5 and bottom[2] < tip[2] - 10


def test_now_recovers_noise_statistics_and_transform(pair, now_result):
    expect_noise(now_result.stats)
    assert now_result.transform.scale == pytest.approx(pair["transform"].scale, rel=2e-3)
    assert np.abs(now_result.transform.rotation - pair["transform"].rotation).max() < 2e-3
    assert now_result.info["crop"]["method"] == "now"
    assert now_result.info["overlap_fraction"] == 1.0
    assert now_result.stats.count == now_result.info["scan_points_evaluated"] == len(now_result.scan_points)


def test_now_crop_follows_the_official_formula():
    lmk = np.array([[-45.0, 0, 0], [-15, 0, 0], [15, 0, 0], [45, 0, 0], [0, -40, 20], [-25, -70, 0], [25, -70, 0]])
    centre, radius = now_crop(lmk)
    bridge = np.array([0.0, 0, 0])
    assert np.allclose(centre, lmk[4] + 0.3 * (bridge - lmk[4]))
    assert radius == pytest.approx(1.4 * (90 + np.linalg.norm(lmk[4])) / 2)


def test_cropped_scan_keeps_statistics(pair, tmp_path, now_result):
    scan = read_mesh(pair["scan"])
    lmk = np.loadtxt(pair["lmk"])
    local = (scan.vertices - lmk[4]) @ now_result.view_rotation.T
    keep = local[:, 1] > -10  # drop everything below the upper lip: a partial scan
    write_obj(tmp_path / "part.obj", scan.vertices[keep], np.zeros((0, 3), np.int64))
    np.savetxt(tmp_path / "part.txt", lmk)
    result = evaluate(pair["pred"], tmp_path / "part.obj")
    assert result.stats.count < 0.8 * now_result.stats.count
    expect_noise(result.stats)


def test_scan_with_holes_only_loses_points(pair, tmp_path, now_result):
    scan = read_mesh(pair["scan"])
    lmk = np.loadtxt(pair["lmk"])
    hole = (np.linalg.norm(scan.vertices - lmk[4], axis=1) < 15) | (np.linalg.norm(scan.vertices - lmk[0], axis=1) < 10)
    keep = ~hole
    remap = np.cumsum(keep) - 1
    faces = remap[scan.faces[keep[scan.faces].all(axis=1)]]
    write_obj(tmp_path / "holes.obj", scan.vertices[keep], faces)
    np.savetxt(tmp_path / "holes.txt", lmk)  # landmarks stay (annotated before the holes)
    result = evaluate(pair["pred"], tmp_path / "holes.obj")
    assert result.stats.count == now_result.stats.count - int(hole[np.linalg.norm(
        scan.vertices - np.array(now_result.info["crop"]["centre"]), axis=1) <= now_result.info["crop"]["radius_mm"]].sum())
    expect_noise(result.stats)


def test_flipped_normals_change_nothing(pair, tmp_path, now_result):
    pred = read_mesh(pair["pred"])
    scan = read_mesh(pair["scan"])
    write_obj(tmp_path / "pred.obj", pred.vertices, pred.faces[:, ::-1], topology="mediapipe468")
    write_obj(tmp_path / "scan.obj", scan.vertices, scan.faces[:, ::-1])
    np.savetxt(tmp_path / "scan.txt", np.loadtxt(pair["lmk"]))
    result = evaluate(tmp_path / "pred.obj", tmp_path / "scan.obj")
    assert np.allclose(result.stats.distances, now_result.stats.distances, atol=1e-6)


def test_units_mismatch_is_caught_and_scale_options_fix_it(pair, tmp_path, now_result):
    scan = read_mesh(pair["scan"])
    write_obj(tmp_path / "metres.obj", scan.vertices / 1000, scan.faces)
    np.savetxt(tmp_path / "metres.txt", np.loadtxt(pair["lmk"]) / 1000)
    with pytest.raises(InputError, match="--gt-scale 1000"):
        evaluate(pair["pred"], tmp_path / "metres.obj")
    fixed = evaluate(pair["pred"], tmp_path / "metres.obj", scan_scale=1000)
    assert fixed.stats.median == pytest.approx(now_result.stats.median, rel=1e-3)
    # A prediction in other units is absorbed by the similarity alignment ...
    pred = read_mesh(pair["pred"])
    write_obj(tmp_path / "pred_m.obj", pred.vertices / 1000, pred.faces, topology="mediapipe468")
    in_metres = evaluate(tmp_path / "pred_m.obj", pair["scan"])
    assert in_metres.stats.median == pytest.approx(now_result.stats.median, rel=1e-3)
    # ... but the metrical protocol needs it in mm
    with pytest.raises(InputError, match="--pred-scale"):
        evaluate(tmp_path / "pred_m.obj", pair["scan"], metrical=True)


def test_metrical_protocol_reports_scale_error(tmp_path):
    truth = random_similarity(4)
    truth = type(truth)(1.0, truth.rotation, truth.translation)  # rigid: right size
    pred, scan, _, _ = write_pair(tmp_path / "ok", sigma=SIGMA, pred_subdivisions=1, transform=truth)
    expect_noise(evaluate(pred, scan, metrical=True).stats)
    big = type(truth)(1.1, truth.rotation, truth.translation)  # the scan is 10% bigger than the prediction
    pred, scan, _, _ = write_pair(tmp_path / "big", sigma=SIGMA, pred_subdivisions=1, transform=big)
    metrical = evaluate(pred, scan, metrical=True)
    assert metrical.transform.scale == 1.0
    assert metrical.stats.mean > 3 * HALF_NORMAL["mean"] * SIGMA
    expect_noise(evaluate(pred, scan).stats)  # the non-metrical protocol absorbs it


def test_point_cloud_scan(pair, tmp_path, now_result):
    scan = read_mesh(pair["scan"])
    trimesh.PointCloud(scan.vertices).export(tmp_path / "cloud.ply")
    np.save(tmp_path / "cloud.npy", np.loadtxt(pair["lmk"]))
    result = evaluate(pair["pred"], tmp_path / "cloud.ply")
    assert np.allclose(result.stats.distances, now_result.stats.distances, atol=1e-4)  # PLY stores float32


def test_realy_regions_and_errors(pair):
    result = evaluate(pair["pred"], pair["scan"], protocol="realy")
    assert set(result.regions) == set(REGIONS)
    for name, region in result.regions.items():
        assert region.scan_to_pred.median == pytest.approx(HALF_NORMAL["median"] * SIGMA, rel=0.12), name
        assert region.pred_to_scan is not None and region.pred_to_scan.mean < HALF_NORMAL["mean"] * SIGMA
        assert region.transform.scale == pytest.approx(pair["transform"].scale, rel=2e-3)
    summary = result.summary()
    assert summary["region_mean_error"] == pytest.approx(np.mean([r.error for r in result.regions.values()]))
    counts = result.info["region_points"]
    assert all(counts[name] > 100 for name in REGIONS)


def test_region_labels_on_the_mean_face():
    vertices, _ = face_mesh(0)
    labels = region_labels(vertices, vertices[NOW7_MEDIAPIPE])
    named = {name: set(np.flatnonzero(labels == i)) for i, name in enumerate(REGIONS)}
    assert {1, 2, 4} <= named["nose"]  # tip, bottom, bridge-side tip point
    assert {0, 13, 14, 17} <= named["mouth"]  # upper lip top, inner lips, lower lip bottom
    assert 10 in named["forehead"] and 105 in named["forehead"]  # forehead top, right brow
    assert 50 in named["cheek"] and 280 in named["cheek"]  # right and left cheek
    assert 152 not in set().union(*named.values())  # chin is in no region


def test_outputs_round_trip(pair, now_result, tmp_path):
    paths = write_item_outputs(now_result, tmp_path, "face", pair["pred"], pair["scan"], heatmap_max=2.0)
    metrics = read_metrics(paths["metrics"])
    assert metrics["median_mm"] == pytest.approx(now_result.stats.median)
    assert metrics["units"] == "mm" and metrics["protocol"] == "now"
    errors = read_errors(paths["errors"])
    assert errors.shape == (now_result.stats.count,)
    assert np.median(errors) == pytest.approx(now_result.stats.median, rel=1e-5)
    ply = trimesh.load(paths["heatmap_ply"], process=False)
    assert len(ply.vertices) == len(errors) and len(ply.faces) == len(now_result.scan_faces)
    assert np.allclose(ply.vertices, now_result.scan_points, atol=1e-3)
    colors = ply.visual.vertex_colors[:, :3].astype(int)
    assert np.abs(colors[np.argmin(errors)] - colors[np.argmax(errors)]).sum() > 100  # low and high differ
    png = read_image(paths["heatmap_png"])
    assert png.shape[0] > 200 and png.shape[1] > 200 and png.std() > 10
    json.loads(paths["metrics"].read_text())  # strict JSON (no NaN)
    (tmp_path / "other.json").write_text('{"format": "shrn.face", "schema_version": 1}')
    with pytest.raises(FormatError, match="not a shrn metrics file"):
        read_metrics(tmp_path / "other.json")


def test_landmark_file_formats(pair, tmp_path):
    lmk = np.loadtxt(pair["lmk"])
    np.save(tmp_path / "a.npy", lmk[None])  # NoW's (1, 7, 3)
    (tmp_path / "a.json").write_text(json.dumps({"landmarks": lmk.tolist()}))
    points = "\n".join(f'<point x="{x}" y="{y}" z="{z}" name="{i}"/>' for i, (x, y, z) in enumerate(lmk))
    (tmp_path / "a.pp").write_text(f"<!DOCTYPE PickedPoints>\n<PickedPoints>\n{points}\n</PickedPoints>\n")
    for name in ("a.npy", "a.json", "a.pp"):
        assert np.allclose(read_landmarks(tmp_path / name).points, lmk), name
    (tmp_path / "ids.txt").write_text("\n".join(str(i) for i in NOW7_MEDIAPIPE))
    spec = read_landmarks(tmp_path / "ids.txt")
    assert spec.vertex_ids.tolist() == NOW7_MEDIAPIPE.tolist()
    loaded = load_pair(pair["pred"], pair["scan"], pred_landmarks=tmp_path / "ids.txt")
    assert np.allclose(loaded.pred_landmarks, read_mesh(pair["pred"]).vertices[NOW7_MEDIAPIPE])


def test_bad_inputs(pair, tmp_path):
    pred, scan = pair["pred"], pair["scan"]
    write_obj(tmp_path / "lonely.obj", read_mesh(scan).vertices, np.zeros((0, 3), np.int64))
    with pytest.raises(InputError, match="missing gt landmarks"):
        evaluate(pred, tmp_path / "lonely.obj")
    np.savetxt(tmp_path / "two.txt", np.loadtxt(pair["lmk"])[:2])
    with pytest.raises(InputError, match="at least 3"):
        evaluate(pred, scan, pred_landmarks=tmp_path / "two.txt", scan_landmarks=tmp_path / "two.txt")
    np.savetxt(tmp_path / "five.txt", np.loadtxt(pair["lmk"])[:5])
    with pytest.raises(InputError, match="landmark counts differ"):
        evaluate(pred, scan, scan_landmarks=tmp_path / "five.txt")
    vertices = read_mesh(pred).vertices
    write_obj(tmp_path / "nofaces.obj", vertices, np.zeros((0, 3), np.int64), topology="mediapipe468")
    with pytest.raises(FormatError, match="no faces"):
        evaluate(tmp_path / "nofaces.obj", scan)
    bad = vertices.copy()
    bad[100] = np.nan
    write_obj(tmp_path / "nan.obj", bad, read_mesh(pred).faces, topology="mediapipe468")
    with pytest.raises(NumericalError, match="NaN"):
        evaluate(tmp_path / "nan.obj", scan)
    np.savetxt(tmp_path / "elsewhere.txt", np.loadtxt(pair["lmk"]) + 1000.0)  # landmarks of another scan
    with pytest.raises(InputError, match="empty overlap"):
        evaluate(pred, scan, scan_landmarks=tmp_path / "elsewhere.txt")
    (tmp_path / "empty.obj").write_text("")
    with pytest.raises(InputError, match="empty"):
        evaluate(tmp_path / "empty.obj", scan)
    with pytest.raises(InputError, match="not found"):
        evaluate(tmp_path / "missing.obj", scan)
    (tmp_path / "junk.ply").write_bytes(b"\x00\x01 not a ply at all")
    with pytest.raises(InputError, match="not a readable PLY"):
        evaluate(pred, tmp_path / "junk.ply")
    with pytest.raises(InputError, match="unknown eval protocol"):
        evaluate(pred, scan, protocol="nope")


def test_reads_meshes_written_by_shrn_reconstruct(pair, tmp_path, now_result):
    from shrn_core.formats import mesh as shrn_mesh

    pred = read_mesh(pair["pred"])
    uvs = np.random.default_rng(0).random((len(pred.vertices), 2))
    path = shrn_mesh.write_obj(tmp_path / "face.obj", pred.vertices, pred.faces, uvs=uvs, mtl_name="face.mtl",
                               topology="mediapipe468")
    assert read_mesh(path).topology == "mediapipe468"  # landmarks come from the topology ("auto")
    result = evaluate(path, pair["scan"])
    assert result.stats.median == pytest.approx(now_result.stats.median, rel=1e-3)
