"""Kill ``shrn run`` with SIGKILL at random moments, rerun, and check nothing was lost or taken as
done; then start pairs of runs on one --out and check they never compute a photo twice at once.

    python -m benchmarks.kill_resume                       # 10 kill-and-resume trials, 3 concurrent pairs
    python -m benchmarks.kill_resume --trials 30 --kills 3 --photos 3 --pairs 5 --seed 1

Each trial starts from an empty --out, kills --kills runs at a random moment of their work
(uniform over --window seconds after models are loaded), checks the folder after each kill, then
runs to the end and checks every photo folder (manifest ok, every file parses, no temporary file).
The helpers live in tests/fuzz/runs.py; results are recorded in docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from fuzz.examples import shared_data_dir  # noqa: E402
from fuzz.runs import kill_and_resume, photos, run_twice_at_once  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--kills", type=int, default=2, help="runs killed per trial before the final one")
    parser.add_argument("--photos", type=int, default=2, choices=(1, 2, 3))
    parser.add_argument("--window", type=float, default=6.0, help="kill within this many seconds of work")
    parser.add_argument("--pairs", type=int, default=3, help="concurrent pairs of runs on one --out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    inputs = photos(shared_data_dir(), args.photos)
    rng = random.Random(args.seed)
    trials, pairs = [], []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="shrn-kill-") as tmp:
        for index in range(args.trials):
            trial = kill_and_resume(inputs, Path(tmp) / f"trial{index}", rng, args.kills, args.window)
            trial.pop("reports")
            trials.append(trial)
            landed = sum(k["killed"] for k in trial["kills"])
            print(f"trial {index}: {landed}/{len(trial['kills'])} kills landed "
                  f"({', '.join(_kill_text(k) for k in trial['kills'])}), "
                  f"problems: {len(trial['problems'])}", file=sys.stderr)
        for index in range(args.pairs):
            pair = run_twice_at_once(inputs, Path(tmp) / f"pair{index}")
            pairs.append(pair)
            print(f"pair {index}: computed by {pair['computed_by']}, waited on a lock: {pair['waited']}, "
                  f"problems: {len(pair['problems'])}", file=sys.stderr)
    kills = [k for t in trials for k in t["kills"]]
    summary = {
        "photos": args.photos, "trials": len(trials), "kills": len(kills),
        "kills_landed": sum(k["killed"] for k in kills),
        "kills_with_partial_outputs": sum(k["killed"] and k["files"] > 0 for k in kills),
        "trials_with_problems": sum(bool(t["problems"]) for t in trials),
        "concurrent_pairs": len(pairs), "pairs_that_waited_on_a_lock": sum(p["waited"] > 0 for p in pairs),
        "pairs_with_problems": sum(bool(p["problems"]) for p in pairs),
        "seconds": round(time.perf_counter() - start),
    }
    print(json.dumps(summary, indent=1))
    for item in trials + pairs:
        for problem in item["problems"]:
            print("PROBLEM " + problem)
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "trials": trials, "pairs": pairs}, indent=1))
    return 1 if summary["trials_with_problems"] or summary["pairs_with_problems"] else 0


def _kill_text(kill: dict) -> str:
    return f"{kill['delay_s']} s, {kill['files']} files{'' if kill['killed'] else ' (had finished)'}"


if __name__ == "__main__":
    sys.exit(main())
