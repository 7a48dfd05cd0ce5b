"""Killing ``shrn run`` at random moments and running it twice at once, then checking every folder.

    trial = kill_and_resume(photos, out, rng, kills=2)   # kill -9 twice, then a full rerun
    problems = trial["problems"]                          # empty when nothing was lost or taken as done

Checks after each kill (``check_unfinished``): a stage whose last-written file exists has all its
files, each one parsing; a manifest exists only for a finished photo. After the final run
(``check_finished``): every photo has a manifest saying ok, every file parses, no temporary files.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

FAST_FIT = {"render_size": 64, "texture_size": 64, "subdivisions": 1, "coarse_iterations": 20, "mid_iterations": 3,
            "fine_iterations": 2, "displacement_size": 32, "max_render_side": 256}
RUN_OPTIONS = ["--inpaint-backend", "telea", "--device", "cpu", "--json",
               *[f"--option=reconstruct.{k}={v}" for k, v in FAST_FIT.items()]]


def photos(shared_data: Path, count: int = 2) -> list[Path]:
    names = ("multi_view_images__10078.jpg", "multi_view_images__21650.jpg", "multi_view_images__5932.jpg")
    return [shared_data / "faces_hrn" / name for name in names[:count]]


def start_run(inputs: list[Path], out: Path, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, COLUMNS="200")
    return subprocess.Popen([sys.executable, "-m", "shrn_cli", "run", *map(str, inputs), "--out", str(out),
                             *RUN_OPTIONS, *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def kill_and_resume(inputs: list[Path], out: Path, rng, kills: int = 2, window: float = 6.0) -> dict:
    """``kills`` runs each killed with SIGKILL at a random moment of its work (uniform in ``window``
    seconds after its models are loaded, which is when the first photo folder is touched), a check
    after each, then one run to the end and the final check.
    Returns {"kills": [...], "problems": [...], "final_seconds": s, "reports": [...]}."""
    problems, log = [], []
    for _ in range(kills):
        process = start_run(inputs, out)
        _wait_for_work(process, out / inputs[0].stem)
        delay = rng.uniform(0.0, window)
        time.sleep(delay)
        alive = process.poll() is None
        if alive:
            process.send_signal(signal.SIGKILL)
        process.communicate()
        state = {p.name: sorted(f.name for f in p.iterdir()) for p in out.iterdir() if p.is_dir()} if out.exists() else {}
        log.append({"delay_s": round(delay, 2), "killed": alive, "files": sum(map(len, state.values()))})
        problems += [f"after kill at {delay:.1f} s: {p}" for p in check_unfinished(inputs, out)]
    start = time.perf_counter()
    process = start_run(inputs, out)
    stdout, stderr = process.communicate(timeout=600)
    seconds = time.perf_counter() - start
    if process.returncode != 0:
        problems.append(f"final run exit {process.returncode}: {stderr.decode(errors='replace')[-400:]}")
    problems += [f"final: {p}" for p in check_finished(inputs, out)]
    return {"kills": log, "problems": problems, "final_seconds": round(seconds, 1),
            "reports": [json.loads(line) for line in stdout.decode().splitlines() if line.startswith("{")]}


def _wait_for_work(process: subprocess.Popen, folder: Path, timeout: float = 300.0) -> None:
    """Until the run touches its first photo folder (its lock file appears) or exits."""
    deadline = time.monotonic() + timeout
    lock = folder / ".shrn.lock"
    while process.poll() is None and not lock.exists() and time.monotonic() < deadline:
        time.sleep(0.02)


def run_twice_at_once(inputs: list[Path], out: Path, extra: tuple[str, ...] = ()) -> dict:
    """Two ``shrn run`` processes on the same ``--out`` started together; each photo must be computed
    by exactly one of them (the other waits on the folder lock, then reuses), and end valid."""
    first = start_run(inputs, out, *extra)
    second = start_run(inputs, out, *extra)
    outputs = [process.communicate(timeout=600) for process in (first, second)]
    problems = []
    computed_by: dict[str, list[int]] = {}
    for index, (process, (stdout, stderr)) in enumerate(zip((first, second), outputs)):
        if process.returncode != 0:
            problems.append(f"process {index} exit {process.returncode}: {stderr.decode(errors='replace')[-400:]}")
        if b"Traceback" in stderr:
            problems.append(f"process {index} printed a traceback")
        for line in stdout.decode().splitlines():
            record = json.loads(line)
            if not record["resumed"]:
                computed_by.setdefault(Path(record["input"]).stem, []).append(index)
    for photo in inputs:
        if len(computed_by.get(photo.stem, [])) != 1:
            problems.append(f"{photo.stem}: computed by processes {computed_by.get(photo.stem, [])}, expected exactly one")
    problems += check_finished(inputs, out)
    waited = sum(b"another shrn run" in stderr for _, stderr in outputs)
    return {"problems": problems, "computed_by": computed_by, "waited": waited}


def _parses(folder: Path, stem: str) -> dict:
    """Reader for each file of a photo folder (None when the file is absent)."""
    from shrn_core.formats.face import read_face_json
    from shrn_core.formats.image import read_image
    from shrn_core.formats.manifest import read_manifest
    from shrn_core.formats.mask import read_mask
    from shrn_core.formats.mesh import read_obj, read_params

    return {f"{stem}.face.json": read_face_json, f"{stem}.mask.png": read_mask, f"{stem}.face_region.png": read_mask,
            f"{stem}.inpainted.png": read_image, f"{stem}.obj": read_obj, f"{stem}.mtl": lambda p: p.read_text(),
            f"{stem}.albedo.png": read_image, f"{stem}.params.npz": read_params, "manifest.json": read_manifest}


STAGE_FILES = {  # stage -> (its files, the one written last)
    "face": (["face.json"], "face.json"),
    "segment": (["face_region.png", "mask.png"], "mask.png"),
    "inpaint": (["inpainted.png"], "inpainted.png"),
    "reconstruct": (["mtl", "albedo.png", "params.npz", "obj"], "obj"),
}


def _name(stem: str, suffix: str) -> str:
    return f"{stem}.{suffix}"


def check_unfinished(inputs: list[Path], out: Path) -> list[str]:
    """What a killed run may leave: stages whose last file exists are complete and parse; a manifest
    only where every stage is complete."""
    problems = []
    for photo in inputs:
        folder = out / photo.stem
        if not folder.is_dir():
            continue
        readers = _parses(folder, photo.stem)
        complete = []
        for stage, (names, last) in STAGE_FILES.items():
            if not (folder / _name(photo.stem, last)).is_file():
                complete.append(False)
                continue
            complete.append(True)
            for name in names:
                path = folder / _name(photo.stem, name)
                problems += _parse(readers, path, f"{stage} marked done by {last} but")
        if (folder / "manifest.json").is_file():
            if not all(complete):
                problems.append(f"{folder.name}: manifest.json present but stages unfinished {complete}")
            problems += _parse(readers, folder / "manifest.json", "manifest")
    return problems


def check_finished(inputs: list[Path], out: Path) -> list[str]:
    problems = []
    for photo in inputs:
        folder = out / photo.stem
        if not (folder / "manifest.json").is_file():
            problems.append(f"{photo.stem}: no manifest.json after the final run")
            continue
        readers = _parses(folder, photo.stem)
        for name in readers:
            problems += _parse(readers, folder / name, "final")
        from shrn_core.formats.manifest import read_manifest

        manifest = read_manifest(folder / "manifest.json")
        if not manifest["ok"] or [s["name"] for s in manifest["stages"]] != list(STAGE_FILES):
            problems.append(f"{photo.stem}: manifest not ok: {manifest['error']}")
        leftovers = [p.name for p in folder.iterdir() if p.name.endswith(".tmp") or p.name == ".shrn.lock"]
        if leftovers:
            problems.append(f"{photo.stem}: left behind {leftovers}")
        # each stage's files are at least as new as the files it was computed from
        order = [_name(photo.stem, "face.json"), _name(photo.stem, "mask.png"), _name(photo.stem, "inpainted.png"),
                 _name(photo.stem, "obj")]
        times = [(folder / name).stat().st_mtime_ns for name in order if (folder / name).is_file()]
        if len(times) == len(order) and times != sorted(times):
            problems.append(f"{photo.stem}: a stage output is older than its input: {dict(zip(order, times))}")
    return problems


def _parse(readers: dict, path: Path, context: str) -> list[str]:
    if not path.is_file():
        return [f"{context}: {path.name} missing"]
    try:
        readers[path.name](path)
    except Exception as exc:  # noqa: BLE001 - any failure to read back is what we look for
        return [f"{context}: {path.name} does not parse ({type(exc).__name__}: {exc})"]
    return []
