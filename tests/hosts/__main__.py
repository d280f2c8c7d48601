"""`python -m tests.hosts [--remove]`: what earlier test runs left behind (their process gone),
and with --remove, remove it. Exit code 1 when something is left."""

from __future__ import annotations

import argparse

from tests.hosts.hosts import leftovers, remove_leftovers


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.hosts", description=__doc__)
    parser.add_argument("--remove", action="store_true", help="remove what is left")
    args = parser.parse_args()
    if args.remove:
        for line in remove_leftovers():
            print(line)
    left = leftovers()
    for run in left:
        print(f"left behind: test hosts of run {run} (python -m tests.hosts --remove)")
    return 1 if left else 0


if __name__ == "__main__":
    raise SystemExit(main())
