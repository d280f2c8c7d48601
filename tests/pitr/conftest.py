"""The PITR tests' server: one archiving cluster per test module (tests/pitr/cluster.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.backup.pgserver import ServerUnavailableError
from tests.pitr.cluster import Cluster, archiving_cluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """Skipped without PostgreSQL's binaries or pgBackRest, failed under REQUIRE_INTEGRATION=1."""
    try:
        with archiving_cluster() as made:
            yield made
    except ServerUnavailableError as err:
        if os.environ.get("REQUIRE_INTEGRATION") == "1":
            pytest.fail(f"REQUIRE_INTEGRATION=1 but {err}")
        pytest.skip(str(err))
