"""`shrn run` killed with SIGKILL at random moments, and two runs on one --out at once.

After every kill, whatever is on disk is either finished or visibly unfinished: a stage whose last
written file exists has all its files and they parse; a manifest.json exists only for a finished
photo. A rerun completes the set. Two overlapping runs never compute one photo twice at the same
time (a per-folder lock) and leave every folder valid. More trials: ``python -m benchmarks.kill_resume``.
"""
from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest

from fuzz.runs import check_finished, check_unfinished, kill_and_resume, photos, run_twice_at_once
from shrn_core.pipeline.lock import LOCK_NAME, FolderLock, remove_temporary_files

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def killed_and_resumed(shared_data, tmp_path_factory):
    inputs = photos(shared_data, 2)
    out = tmp_path_factory.mktemp("kill") / "out"
    return inputs, out, kill_and_resume(inputs, out, random.Random(16), kills=2)


def test_killed_runs_leave_nothing_taken_as_done_and_a_rerun_completes(killed_and_resumed):
    _, _, trial = killed_and_resumed
    assert not trial["problems"], trial
    assert all(record["ok"] for record in trial["reports"]) and len(trial["reports"]) == 2


def test_two_runs_on_one_output_folder_do_not_collide(shared_data, tmp_path):
    inputs = photos(shared_data, 1)  # both runs reach this photo together: one computes, one waits
    result = run_twice_at_once(inputs, tmp_path / "out", ("--levels", "coarse"))
    assert not result["problems"], result


def test_a_lock_held_by_a_killed_process_is_free_at_once(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from shrn_core.pipeline.lock import FolderLock; "
         "FolderLock(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(60)", str(tmp_path)],
        stdout=subprocess.PIPE, text=True, env=dict(os.environ))
    assert holder.stdout.readline().strip() == "locked"
    lock = FolderLock(tmp_path)
    assert not lock.try_acquire()
    assert f"pid {holder.pid}" in lock.holder()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (tmp_path / LOCK_NAME).exists()  # the file stays behind, the lock does not
    start = time.monotonic()
    lock.acquire()
    assert time.monotonic() - start < 2.0
    lock.release()
    assert not (tmp_path / LOCK_NAME).exists()


def test_checks_catch_a_stage_left_half_written(killed_and_resumed, tmp_path):
    """The verifier itself: a reconstruction whose params are missing while its mesh exists, a
    manifest beside an unfinished stage, a truncated file, a temporary file."""
    inputs, finished, _ = killed_and_resumed
    out = tmp_path / "out"
    shutil.copytree(finished, out)
    inputs = inputs[:1]
    folder, stem = out / inputs[0].stem, inputs[0].stem
    assert check_unfinished(inputs, out) == [] and check_finished(inputs, out) == []
    (folder / f"{stem}.params.npz").unlink()
    assert any("params.npz missing" in p for p in check_unfinished(inputs, out))
    (folder / f"{stem}.obj").unlink()
    assert any("manifest.json present but stages unfinished" in p for p in check_unfinished(inputs, out))
    face = folder / f"{stem}.face.json"
    face.write_bytes(face.read_bytes()[:100])
    assert any("face.json does not parse" in p for p in check_finished(inputs, out))
    (folder / f".{stem}.obj.abc123.tmp").write_text("partial")
    assert any("left behind" in p for p in check_finished(inputs, out))
    assert remove_temporary_files(folder) == [folder / f".{stem}.obj.abc123.tmp"]
