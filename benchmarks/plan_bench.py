"""How long the offline plan takes, as CI and reviewers run it: the whole command, both
revisions (the base in a temporary worktree), one stack and every stack. Prints a table;
asserts nothing.

    .venv/bin/python -m benchmarks.plan_bench [--repeat 5] [--base HEAD]

The base defaults to HEAD: the graphs are recorded and compared whatever differs, so the time
is that of a real change of the same size of program.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from plan.recorder import ROOT


def timed(args: list[str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "plan", *args], cwd=ROOT, capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - started
    if result.returncode not in (0, 2):
        raise SystemExit(f"python -m plan {' '.join(args)} failed: {result.stderr.strip()}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--base", default="HEAD")
    args = parser.parse_args()
    cases = {
        "dev (one stack)": ["--base", args.base, "--stack", "dev"],
        "prod (one stack)": ["--base", args.base, "--stack", "prod"],
        "every stack": ["--base", args.base],
        "prod, JSON": ["--base", args.base, "--stack", "prod", "--format", "json"],
    }
    print(f"{'case':<20} {'min s':>7} {'median s':>9} {'max s':>7}   ({args.repeat} runs)")
    for name, case_args in cases.items():
        times = [timed(case_args) for _ in range(args.repeat)]
        print(f"{name:<20} {min(times):>7.2f} {statistics.median(times):>9.2f} {max(times):>7.2f}")


if __name__ == "__main__":
    main()
