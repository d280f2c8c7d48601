"""A benchmark whose measurement is an integration test run alone: the test checks what must
hold, and prints its numbers on lines of its own, which the benchmark collects run by run."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_once(test: str, measured: Sequence[str]) -> list[str]:
    """The lines of the test's output that start with one of `measured`; exits with the test's
    output when it failed."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-s", test],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        sys.stdout.write(result.stdout[-6000:])
        raise SystemExit(f"error: {test} failed (exit code {result.returncode})")
    prefixes = tuple(measured)
    return [line for line in result.stdout.splitlines() if line.lstrip(".").startswith(prefixes)]


def main(
    description: str, test: str, measured: Sequence[str], argv: Sequence[str] | None = None
) -> int:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--runs", type=int, default=1, help="times to run the test")
    args = parser.parse_args(argv)
    for run in range(1, args.runs + 1):
        for line in run_once(test, measured):
            print(f"run {run}: {line.lstrip('.')}")
    return 0
