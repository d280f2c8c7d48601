"""What losing the node of a replicated database's primary costs: seconds until writes succeed
again, the writes that failed meanwhile, acknowledged orders lost (0 is the goal, with
synchronous replication); and the same for a planned switchover.

The measurement is tests/integration/test_replicated_database.py (three test hosts, the
replicated database deployed by the real Pulumi engine, an order written every 20 ms through
its router, the primary's node killed), run alone: the test checks what must hold (no
acknowledged order lost, writes back, the node's member a standby again, nothing for Pulumi to
change), this prints its numbers, as docs/replication.md reports them. Needs root, `ip`,
`unshare`, `dockerd` and the test images (`python -m images.build`); about five minutes a run.

    .venv/bin/python -m benchmarks.failover [--runs N]
"""

from __future__ import annotations

from benchmarks.from_test import main

TEST = "tests/integration/test_replicated_database.py"
MEASURED = ("failover:", "switchover:")

if __name__ == "__main__":
    raise SystemExit(main(__doc__.splitlines()[0], TEST, MEASURED))
