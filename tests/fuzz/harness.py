"""Make seeded fuzz cases from the reader table, run them in a watched worker process, summarise.

    cases = make_cases(total=300, seed=0)
    results = run_cases(cases, workdir)          # one dict per case, "problems" empty when all is well
    print(format_summary(summarise(results)))

A case is (reader, mode "api" or "cli", mutation, seed); mutation ``None`` is the valid example
itself, run first for every reader (it must be accepted: this checks the builder and warms up
models). Cases whose mode is "cli" run the reader's command in-process through Typer's CliRunner;
``run_subprocess_case`` runs one as a real ``python -m shrn_cli`` process.
"""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
import zlib
from collections import defaultdict
from pathlib import Path

from .mutate import FAMILIES, mutate
from .readers import READERS, Reader, available

WORKER = Path(__file__).resolve().with_name("worker.py")
CASE_SECONDS = 10.0  # a case that does not report within this is a hang
WARMUP_SECONDS = 240.0  # building an example and the first use of a model (mediapipe, torchvision, diffusers)
MEMORY_MB = 1024  # peak RSS growth allowed per case
ADDRESS_SPACE_MB = 8192  # RLIMIT_AS headroom above the worker's size after imports


def mutations_of(reader: Reader) -> list[str]:
    names: list[str] = []
    for family in reader.families:
        names.extend(n for n in FAMILIES[family] if n not in names)
    return names


def make_cases(total: int, seed: int = 0, cli_every: int = 6, readers: list[Reader] | None = None) -> list[dict]:
    """About ``total`` cases spread over the readers by weight; every ``cli_every``-th case of a
    reader that has a command runs that command instead of the Python reader."""
    readers = [r for r in (readers or READERS) if available(r)]
    weights = sum(r.weight for r in readers)
    cases = []
    for reader in readers:
        cases.append({"reader": reader.name, "mode": "api", "mutation": None, "seed": 0, "warmup": True})
        if reader.cli:
            cases.append({"reader": reader.name, "mode": "cli", "mutation": None, "seed": 0, "warmup": True})
        names = mutations_of(reader)
        count = max(len(names), round(total * reader.weight / weights))
        for k in range(count):
            mode = "cli" if reader.cli and cli_every and k % cli_every == cli_every - 1 else "api"
            case_seed = zlib.crc32(f"{seed}:{reader.name}:{k}".encode())
            cases.append({"reader": reader.name, "mode": mode, "mutation": names[k % len(names)], "seed": case_seed})
    return cases


def run_cases(cases: list[dict], workdir: Path, case_seconds: float = CASE_SECONDS, memory_mb: int = MEMORY_MB,
              address_space_mb: int = ADDRESS_SPACE_MB, log=None) -> list[dict]:
    """Run every case; a hang or a dead worker is recorded against its case and a fresh worker
    goes on with the rest."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    results: dict[int, dict] = {}
    pending = list(enumerate(cases))
    while pending:
        done = _run_worker(pending, workdir, case_seconds, address_space_mb, results, log)
        pending = [(i, c) for i, c in pending if i not in results and i not in done]
    ordered = [results[i] for i in range(len(cases))]
    for result in ordered:
        if (result.get("peak_mb") or 0) > memory_mb:
            result["problems"].append(f"peak memory {result['peak_mb']} MB above {memory_mb} MB")
        if (result.get("seconds") or 0) > case_seconds and not cases[result["index"]].get("warmup"):
            result["problems"].append(f"took {result['seconds']} s (limit {case_seconds} s)")
    return ordered


def _run_worker(pending, workdir, case_seconds, address_space_mb, results, log) -> set[int]:
    cases_file = workdir / "cases.json"
    cases_file.write_text(json.dumps(pending))
    read_fd, write_fd = os.pipe()
    env = dict(os.environ, SHRN_NATIVE_LOGS="1", COLUMNS="200", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join([str(WORKER.parents[2]), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    process = subprocess.Popen(
        [sys.executable, str(WORKER), "--cases", str(cases_file), "--workdir", str(workdir), "--result-fd",
         str(write_fd), "--address-space-mb", str(address_space_mb)],
        pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, start_new_session=True)
    os.close(write_fd)
    by_index = dict(pending)
    buffer = b""
    current, deadline = None, time.monotonic() + WARMUP_SECONDS
    finished: set[int] = set()
    stderr_chunks: list[bytes] = []
    try:
        while True:
            wait = max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([read_fd, process.stderr], [], [], wait)
            if not ready:
                _kill(process)
                if current is not None:
                    results[current] = _failed(current, by_index[current], "hang",
                                               f"no result within {case_seconds if not by_index[current].get('warmup') else WARMUP_SECONDS} s")
                    finished.add(current)
                return finished
            if process.stderr in ready:
                chunk = os.read(process.stderr.fileno(), 65536)
                stderr_chunks.append(chunk)
                del stderr_chunks[:-20]
            if read_fd not in ready:
                continue
            chunk = os.read(read_fd, 65536)
            if not chunk:  # the worker died
                process.wait()
                if current is not None:
                    tail = b"".join(stderr_chunks).decode(errors="replace")[-800:]
                    results[current] = _failed(current, by_index[current], "crash",
                                               f"worker died (exit {process.returncode}) {tail}")
                    finished.add(current)
                return finished
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                event = json.loads(line)
                kind = event.pop("event")
                if kind == "build":
                    current, deadline = event["index"], time.monotonic() + WARMUP_SECONDS
                elif kind == "start":
                    current = event["index"]
                    limit = WARMUP_SECONDS if by_index[current].get("warmup") else case_seconds
                    deadline = time.monotonic() + limit
                elif kind == "result":
                    results[event["index"]] = event
                    finished.add(event["index"])
                    current, deadline = None, time.monotonic() + WARMUP_SECONDS
                    if log:
                        log(event)
                elif kind == "done":
                    process.wait()
                    return finished
    finally:
        os.close(read_fd)
        if process.poll() is None:
            _kill(process)
        process.stderr.close()


def _kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def _failed(index: int, case: dict, outcome: str, message: str) -> dict:
    return {"index": index, **case, "outcome": outcome, "problems": [f"{outcome}: {message}"], "seconds": None,
            "peak_mb": None}


# ---------------------------------------------------------------- one case as a real process

def run_subprocess_case(reader: Reader, mutation: str | None, seed: int, folder: Path, timeout_s: float = 60.0) -> dict:
    """Build, mutate and run ``reader``'s command as ``python -m shrn_cli``; checks as in-process,
    at the file-descriptor level (native libraries' output included), peak RSS from wait4."""
    folder.mkdir(parents=True, exist_ok=True)
    target = Path(reader.build(folder))
    if mutation is not None:
        target.write_bytes(mutate(target.read_bytes(), mutation, seed))
    before = {p for p in folder.rglob("*") if p.is_file()}
    args = [arg.format(path=target, dir=folder, out=folder / "out") for arg in reader.cli]
    env = dict(os.environ, COLUMNS="200")
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "shrn_cli", *args], cwd=folder, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    exit_code, peak_mb, stdout, stderr = _wait_with_usage(process, timeout_s)
    if exit_code is None:
        return {"problems": [f"hang: no exit within {timeout_s} s"]}
    seconds = time.perf_counter() - start
    after = {p for p in folder.rglob("*") if p.is_file()}
    text = stderr.decode(errors="replace")
    lines = [line for line in text.splitlines() if line.strip()]
    problems = []
    if exit_code not in reader.codes:
        problems.append(f"exit code {exit_code} not in {sorted(reader.codes)}")
    if "Traceback" in text:
        problems.append("traceback printed")
    if exit_code != 0:
        if len(lines) != 1 or not lines[0].startswith("error:"):
            problems.append(f"expected one 'error:' line on stderr, got {lines[:4]}")
        if after - before:
            problems.append(f"output left behind: {sorted(map(str, after - before))[:3]}")
    if any(p.name.endswith(".tmp") for p in after):
        problems.append("temporary file left behind")
    return {"exit_code": exit_code, "stderr": text, "stdout": stdout.decode(errors="replace"),
            "seconds": round(seconds, 2), "peak_mb": peak_mb, "problems": problems}


def _wait_with_usage(process: subprocess.Popen, timeout_s: float):
    """(exit code or None on timeout, peak RSS in MB, stdout, stderr) of one child, via wait4."""
    import threading

    streams = {"out": b"", "err": b""}

    def drain(name, pipe):
        streams[name] = pipe.read()

    threads = [threading.Thread(target=drain, args=("out", process.stdout)),
               threading.Thread(target=drain, args=("err", process.stderr))]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout_s
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            process.kill()
            os.wait4(process.pid, 0)
            process.returncode = -9
            for thread in threads:
                thread.join()
            return None, 0.0, streams["out"], streams["err"]
        time.sleep(0.05)
    process.returncode = os.waitstatus_to_exitcode(status)
    for thread in threads:
        thread.join()
    return process.returncode, round(usage.ru_maxrss / 1024, 1), streams["out"], streams["err"]


# ---------------------------------------------------------------- reporting

def summarise(results: list[dict]) -> dict[str, dict]:
    table: dict[str, dict] = defaultdict(lambda: {"cases": 0, "api": 0, "cli": 0, "accepted": 0, "refused": 0,
                                                  "crashes": 0, "hangs": 0, "other_problems": 0, "max_peak_mb": 0.0,
                                                  "max_seconds": 0.0})
    for result in results:
        if result.get("mutation") is None:
            continue  # the valid example: a precondition, not a fuzz case
        row = table[result["reader"]]
        row["cases"] += 1
        row[result["mode"]] += 1
        outcome = result["outcome"]
        if outcome in ("accepted", "refused"):
            row[outcome] += 1
        problems = result.get("problems", [])
        row["crashes"] += outcome == "crash" or any(p.startswith("crash") for p in problems)
        row["hangs"] += outcome == "hang"
        row["other_problems"] += bool(problems) and outcome not in ("crash", "hang") and \
            not any(p.startswith("crash") for p in problems)
        row["max_peak_mb"] = max(row["max_peak_mb"], result.get("peak_mb") or 0.0)
        row["max_seconds"] = max(row["max_seconds"], result.get("seconds") or 0.0)
    return dict(table)


def format_summary(table: dict[str, dict]) -> str:
    columns = ("cases", "api", "cli", "accepted", "refused", "crashes", "hangs", "other_problems", "max_peak_mb",
               "max_seconds")
    lines = ["| reader | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    total = defaultdict(float)
    for name, row in table.items():
        lines.append(f"| {name} | " + " | ".join(str(row[c]) for c in columns) + " |")
        for c in columns:
            total[c] = max(total[c], row[c]) if c.startswith("max") else total[c] + row[c]
    lines.append("| **all** | " + " | ".join(str(round(total[c], 4) if c.startswith("max") else int(total[c]))
                                          for c in columns) + " |")
    return "\n".join(lines)


def failures(results: list[dict]) -> list[dict]:
    return [r for r in results if r.get("problems")]


def describe(result: dict) -> str:
    where = f" ({result['case_dir']})" if result.get("case_dir") else ""
    return (f"{result['reader']} {result['mode']} {result['mutation']} seed={result['seed']}{where}: "
            + "; ".join(result["problems"]))
