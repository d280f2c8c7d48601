"""The server's start guard (pitr/guard.py) on a real repository: an empty data directory is a
first start until the stanza holds a backup, and refused from then on; a data directory with a
database is never asked about; a repository that cannot be read refuses the empty start."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import pytest

from pitr.errors import RefusedError
from pitr.guard import must_not_start_empty
from tests.pitr.cluster import Cluster

pytestmark = pytest.mark.integration


def test_an_empty_server_starts_until_its_stanza_holds_a_backup(cluster: Cluster) -> None:
    tool = cluster.tool
    with tempfile.TemporaryDirectory() as folder:
        empty = Path(folder)
        # A new stanza: nothing archived anywhere yet.
        assert must_not_start_empty(empty, tool) == "stanza main holds no backup: a first start"
        # Created, archiving, no backup yet: nothing a restore could bring back.
        tool.create_stanza()
        assert "holds no backup" in must_not_start_empty(empty, tool)
        label = tool.backup("full")
        with pytest.raises(RefusedError) as refused:
            must_not_start_empty(empty, tool)
        message = str(refused.value)
        assert f"{empty} is empty but stanza main holds backups (newest {label}, repo1)" in message
        assert "`python -m pitr restore main --stack <stack> --to latest`" in message
        assert refused.value.exit_code == 3
    # The live server's directory holds a database: started without asking the repository
    # (a configuration that does not exist would fail any pgbackrest command).
    unasked = dataclasses.replace(tool, config_file=Path("/nonexistent/pgbackrest.conf"))
    assert must_not_start_empty(cluster.server.data_dir, unasked).endswith("holds a database")


def test_an_unreadable_repository_refuses_an_empty_start(cluster: Cluster) -> None:
    # A stanza with a backup, which only a wrong passphrase hides (stanza-create is idempotent).
    cluster.tool.create_stanza()
    cluster.tool.backup("full")
    with tempfile.TemporaryDirectory() as folder:
        for broken in (
            dataclasses.replace(cluster.tool, config_file=Path("/nonexistent/pgbackrest.conf")),
            dataclasses.replace(cluster.tool, passphrase_override="not-the-passphrase"),
        ):
            with pytest.raises(RefusedError, match=r"cannot be read .*whether it holds backups"):
                must_not_start_empty(Path(folder), broken)
