"""Runs fuzz cases in its own process and reports each result as one JSON line on a pipe.

The parent (``harness.run_cases``) watches the clock: a case that does not report in time is a hang
and this process is killed; a case that kills this process (segfault, out of memory) is a crash.
Memory is measured per case as the peak resident set size (VmHWM, reset before every case
through /proc/self/clear_refs) minus the resident size when the case began; an address-space limit
(RLIMIT_AS) stops a runaway allocation before it can hurt the machine.
"""
from __future__ import annotations

import json
import os
import re
import resource
import shutil
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parents[1])]  # the `fuzz` package and the repository

from fuzz.mutate import mutate  # noqa: E402
from fuzz.readers import BY_NAME, Reader  # noqa: E402

PWNED = "PWNED"  # the file a malicious pickle would create if it ever ran


def _status_kb(field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    return int(match.group(1)) if match else 0


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _limit_address_space(headroom_mb: int) -> None:
    if headroom_mb <= 0:
        return
    limit = _status_kb("VmSize") * 1024 + headroom_mb * 2 ** 20
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() or p.is_symlink()}


class Worker:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.templates: dict[str, tuple[Path, Path]] = {}  # reader -> (template folder, target path inside)
        self.runner = None

    def template(self, reader: Reader) -> tuple[Path, Path]:
        if reader.name not in self.templates:
            folder = self.workdir / "templates" / reader.name
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            target = reader.build(folder)
            self.templates[reader.name] = (folder, Path(target).relative_to(folder))
        return self.templates[reader.name]

    def run(self, index: int, case: dict) -> dict:
        reader = BY_NAME[case["reader"]]
        template, target_rel = self.template(reader)
        case_dir = self.workdir / "cases" / f"{index:05d}"
        if case_dir.exists():
            shutil.rmtree(case_dir)
        shutil.copytree(template, case_dir, symlinks=True)
        target = case_dir / target_rel
        if case["mutation"] is not None:
            data = mutate(template.joinpath(target_rel).read_bytes(), case["mutation"], case["seed"])
            target.unlink()
            target.write_bytes(data)
        before = _files(case_dir)
        result = {"index": index, **case}
        _reset_peak()
        rss = _status_kb("VmRSS")
        start = time.perf_counter()
        cwd = os.getcwd()
        os.chdir(case_dir)  # relative paths (and anything a pickle might write) stay inside the case
        try:
            result.update(self._api(reader, target) if case["mode"] == "api" else self._cli(reader, target, case_dir))
        finally:
            os.chdir(cwd)
        result["seconds"] = round(time.perf_counter() - start, 4)
        result["peak_mb"] = round(max(_status_kb("VmHWM") - rss, 0) / 1024, 1)
        after = _files(case_dir)
        problems = result.setdefault("problems", [])
        temps = sorted(p for p in after if p.endswith(".tmp"))
        if temps:
            problems.append(f"temporary files left behind: {temps[:3]}")
        if result["outcome"] != "accepted" and after - before:
            problems.append(f"output left behind by a failure: {sorted(after - before)[:3]}")
        if any(Path(p).name == PWNED for p in after):
            problems.append("a pickle in the file ran code")
        if case["mutation"] is None and result["outcome"] != "accepted":
            problems.append("the valid example was not accepted")
        if not problems:
            shutil.rmtree(case_dir, ignore_errors=True)
        else:
            result["case_dir"] = str(case_dir)
        return result

    def _api(self, reader: Reader, target: Path) -> dict:
        try:
            value = reader.api(target)
        except reader.errors as err:
            message = str(err)
            problems = []
            if "\n" in message.strip():
                problems.append("error message spans several lines")
            if target.name not in message and target.parent.name not in message:
                problems.append("error message does not name the file")
            return {"outcome": "refused", "error": f"{type(err).__name__}: {message[:300]}", "problems": problems}
        except BaseException as err:  # noqa: BLE001 - anything else is the bug we are looking for
            return {"outcome": "crash", "error": f"{type(err).__name__}: {str(err)[:300]}",
                    "problems": ["crash: " + "".join(traceback.format_exception(err)[-3:])[-1500:]]}
        try:
            (reader.check or (lambda _v: None))(value)
        except Exception as err:  # noqa: BLE001
            return {"outcome": "accepted", "problems": [f"accepted invalid data: {type(err).__name__}: {err}"[:500]]}
        return {"outcome": "accepted", "problems": []}

    def _cli(self, reader: Reader, target: Path, case_dir: Path) -> dict:
        if self.runner is None:
            from typer.testing import CliRunner

            self.runner = CliRunner()
        from shrn_cli.app import app

        args = [arg.format(path=target, dir=case_dir, out=case_dir / "out") for arg in reader.cli]
        outcome = self.runner.invoke(app, args, catch_exceptions=True, env={"COLUMNS": "200"})
        code = outcome.exit_code
        stderr = outcome.stderr if hasattr(outcome, "stderr") else ""
        lines = [line for line in stderr.splitlines() if line.strip()]
        problems = []
        exception = outcome.exception
        if exception is not None and not isinstance(exception, SystemExit):
            problems.append("crash: " + "".join(traceback.format_exception(exception)[-3:])[-1500:])
        if code not in reader.codes:
            problems.append(f"exit code {code} not in {sorted(reader.codes)}")
        if "Traceback" in stderr or "Traceback" in outcome.stdout:
            problems.append("traceback printed")
        if code != 0 and (len(lines) != 1 or not lines[0].startswith("error:")):
            problems.append(f"expected one 'error:' line on stderr, got {len(lines)}: {lines[:3]}")
        return {"outcome": "accepted" if code == 0 else "refused", "exit_code": code,
                "error": lines[0][:300] if code and lines else None, "problems": problems}


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--result-fd", type=int, required=True)
    parser.add_argument("--address-space-mb", type=int, default=0)
    args = parser.parse_args()
    channel = os.fdopen(args.result_fd, "w", buffering=1)
    cases = json.loads(Path(args.cases).read_text())
    worker = Worker(Path(args.workdir))
    # Import the heavy modules before limiting the address space, so the limit bounds the cases only.
    import shrn_cli.app  # noqa: F401
    import torch  # noqa: F401

    _limit_address_space(args.address_space_mb)
    for index, case in cases:
        if case.get("warmup"):
            channel.write(json.dumps({"event": "build", "index": index}) + "\n")
            worker.template(BY_NAME[case["reader"]])
        channel.write(json.dumps({"event": "start", "index": index}) + "\n")
        result = worker.run(index, case)
        channel.write(json.dumps({"event": "result", **result}) + "\n")
    channel.write(json.dumps({"event": "done"}) + "\n")


if __name__ == "__main__":
    main()
