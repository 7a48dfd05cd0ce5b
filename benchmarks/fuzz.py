"""Fuzz every file shrn reads and report crashes, hangs, one-line errors and peak memory per reader.

    python -m benchmarks.fuzz                 # the CI size (~300 cases, about a minute)
    python -m benchmarks.fuzz --long          # thousands of cases, run before a release
    python -m benchmarks.fuzz --reader mesh.obj --cases 500 --seed 3
    python -m benchmarks.fuzz --long --json results.json

Exit code 1 when any case has a problem; each problem is printed with the case's reader,
mutation and seed (rerun it alone with --reader and --seed) and the folder holding the file.
The reader table lives in tests/fuzz/readers.py; docs/benchmarks.md records the --long results.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from fuzz.harness import describe, failures, format_summary, make_cases, run_cases, summarise  # noqa: E402
from fuzz.readers import BY_NAME  # noqa: E402

CI_CASES = 300
LONG_CASES = 5000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--long", action="store_true", help=f"{LONG_CASES} cases instead of {CI_CASES}")
    parser.add_argument("--cases", type=int, help="number of cases (overrides --long)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reader", action="append", help="only this reader (repeatable)")
    parser.add_argument("--cli-every", type=int, default=6, help="every Nth case of a reader runs its command")
    parser.add_argument("--workdir", type=Path, help="where cases are written (default: a temporary folder)")
    parser.add_argument("--json", type=Path, help="write every case's result here")
    args = parser.parse_args(argv)

    total = args.cases or (LONG_CASES if args.long else CI_CASES)
    readers = [BY_NAME[name] for name in args.reader] if args.reader else None
    cases = make_cases(total, seed=args.seed, cli_every=args.cli_every, readers=readers)
    start = time.perf_counter()
    done = [0]

    def progress(result: dict) -> None:
        done[0] += 1
        if done[0] % 100 == 0:
            print(f"{done[0]}/{len(cases)} cases, {time.perf_counter() - start:.0f} s", file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="shrn-fuzz-") as tmp:
        results = run_cases(cases, args.workdir or Path(tmp), log=progress)
        elapsed = time.perf_counter() - start
        print(format_summary(summarise(results)))
        print(f"\n{len(cases)} cases (incl. {sum(c['mutation'] is None for c in cases)} valid examples), seed "
              f"{args.seed}, {elapsed:.0f} s")
        bad = failures(results)
        for result in bad:
            print("PROBLEM " + describe(result))
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
