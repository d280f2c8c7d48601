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

from benchmarks.from_test import main

TEST = (
    "tests/integration/test_swarm.py::"
    "test_losing_a_node_without_a_database_drops_no_request_and_the_swarm_heals"
)
MEASURED = ("swarm node loss:", "swarm node return:")

if __name__ == "__main__":
    raise SystemExit(main(__doc__.splitlines()[0], TEST, MEASURED))
