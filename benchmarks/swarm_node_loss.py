"""What losing a node of a three-node swarm costs: seconds until the managers mark it down,
seconds until every service is back to its replicas on the other two, and the requests that
failed meanwhile through the surviving edge; then its return.

The measurement is the node-loss test of tests/integration/test_swarm.py (three test hosts,
the swarm stack file deployed by the real Pulumi engine, a node cut off and its engine killed
under load), run alone: the test checks what must hold (no failed request, nothing for Pulumi
to change after), this prints its numbers, as docs/swarm.md reports them. Needs root, `ip`,
`unshare`, `dockerd` and the test images (`python -m images.build`); about five minutes.

    .venv/bin/python -m benchmarks.swarm_node_loss [--runs N]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST = (
    "tests/integration/test_swarm.py::"
    "test_losing_a_node_without_a_database_drops_no_request_and_the_swarm_heals"
)
MEASURED = ("swarm node loss:", "swarm node return:")


def run_once() -> list[str]:
    """The test's measurement lines; exits with its output when it failed."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-s", TEST],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        sys.stdout.write(result.stdout[-6000:])
        raise SystemExit(f"error: the node-loss test failed (exit code {result.returncode})")
    return [line for line in result.stdout.splitlines() if line.lstrip(".").startswith(MEASURED)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="times to deploy and lose a node")
    args = parser.parse_args(argv)
    for run in range(1, args.runs + 1):
        for line in run_once():
            print(f"run {run}: {line.lstrip('.')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
