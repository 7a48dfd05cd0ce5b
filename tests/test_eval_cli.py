"""`shrn eval` as a user runs it: single pairs, folders matched by stem, failures reported."""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from shrn_core.evaluate.synthetic import HALF_NORMAL, write_pair

SIGMA = 0.5


def shrn(*args, cwd=None):
    env = dict(os.environ, COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "shrn_cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval_cli")
    for seed, stem in enumerate(("anna", "ben")):
        write_pair(root, stem=stem, sigma=SIGMA, seed=seed, pred_subdivisions=1, scan_subdivisions=0)
    shutil.copy(root / "gt" / "anna.obj", root / "gt" / "carl.obj")  # a scan nobody predicted
    shutil.copy(root / "pred" / "anna.obj", root / "pred" / "dora.obj")  # a prediction without a scan
    return root


def test_single_pair(folders, tmp_path):
    result = shrn("eval", folders / "pred" / "anna.obj", folders / "gt" / "anna.obj", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    written = [Path(line) for line in result.stdout.splitlines()]
    assert sorted(p.name for p in written) == ["anna.error_heatmap.ply", "anna.error_heatmap.png",
                                               "anna.error_sheet.png", "anna.errors.npy", "anna.metrics.json"]
    metrics = json.loads((tmp_path / "anna.metrics.json").read_text())
    assert metrics["format"] == "shrn.metrics"
    assert metrics["median_mm"] == pytest.approx(HALF_NORMAL["median"] * SIGMA, rel=0.1)
    # outputs of another protocol are not reused
    again = shrn("eval", folders / "pred" / "anna.obj", folders / "gt" / "anna.obj", "--out", tmp_path, "--json",
                 "--protocol", "realy")
    assert again.returncode == 0, again.stderr
    record = json.loads(again.stdout)
    assert record["ok"] and not record["skipped"] and record["protocol"] == "realy"
    assert set(record["regions"]) == {"nose", "mouth", "forehead", "cheek"}
    assert json.loads((tmp_path / "anna.metrics.json").read_text())["protocol"] == "realy"


def test_folder_run_goes_on_and_reports(folders, tmp_path):
    result = shrn("eval", folders / "pred", folders / "gt", "--out", tmp_path)
    assert result.returncode == 1  # some items failed
    assert "Traceback" not in result.stderr
    assert "carl" in result.stderr and "dora" in result.stderr and "ALL" in result.stderr
    with open(tmp_path / "metrics.csv") as handle:
        rows = {row["stem"]: row for row in csv.DictReader(handle)}
    assert rows["anna"]["status"] == "ok" and rows["ben"]["status"] == "ok"
    assert rows["carl"]["status"] == "failed" and "no prediction" in rows["carl"]["message"]
    assert rows["dora"]["status"] == "failed" and "no ground-truth scan" in rows["dora"]["message"]
    pooled = np.concatenate([np.load(tmp_path / f"{s}.errors.npy") for s in ("anna", "ben")])
    assert float(rows["ALL"]["median_mm"]) == pytest.approx(np.median(pooled), rel=1e-4)
    assert (tmp_path / "cumulative_error.png").stat().st_size > 1000
    assert str(tmp_path / "metrics.csv") in result.stdout.splitlines()


def test_bad_input_gives_one_line_and_exit_code(folders, tmp_path):
    missing = shrn("eval", folders / "pred" / "anna.obj", tmp_path / "nope.obj")
    assert missing.returncode == 2 and "file not found" in missing.stderr and "Traceback" not in missing.stderr
    mixed = shrn("eval", folders / "pred", folders / "gt" / "anna.obj")
    assert mixed.returncode == 2 and "both be files or both be folders" in mixed.stderr
    protocol = shrn("eval", folders / "pred" / "anna.obj", folders / "gt" / "anna.obj", "--protocol", "x")
    assert protocol.returncode == 2 and "unknown protocol" in protocol.stderr
    units = shrn("eval", folders / "pred" / "anna.obj", folders / "gt" / "anna.obj", "--gt-scale", "0.001",
                 "--out", tmp_path)
    assert units.returncode == 2 and "millimetres" in units.stderr
