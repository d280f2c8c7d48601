"""The server's start guard (pitr/guard.py) on a real repository: an empty data directory is a
first start until the stanza holds a backup, and refused from then on; a data directory with a
database is never asked about; a repository that cannot be read refuses the empty start."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path

import pytest

from pitr.errors import RefusedError
from pitr.guard import must_not_start_empty
from tests.pitr.cluster import Cluster, archiving_cluster
from tests.pitr.test_agent import scratch_for

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


def test_a_recovery_request_restores_the_empty_server_instead() -> None:
    # A cluster of its own: the module's already holds backups, and this starts before any.
    with archiving_cluster() as cluster:
        _recovery_request_restores(cluster)


def _recovery_request_restores(cluster: Cluster) -> None:
    tool = cluster.tool
    # The data volume as the server's user sees it: an empty data directory of its own.
    volume = scratch_for(cluster, "recovery")
    empty, request = volume / "pgdata", volume / "pitr-recovery-request"
    empty.mkdir(mode=0o700)
    owner = cluster.server.data_dir.stat()
    os.chown(empty, owner.st_uid, owner.st_gid)
    request.write_text("latest\n")
    # Asked before any backup: refused, never an empty start in the data's place.
    tool.create_stanza()
    with pytest.raises(RefusedError, match="a recovery asks to restore it, but no repository"):
        must_not_start_empty(empty, tool, request)
    assert request.exists() and not any(empty.iterdir())
    tool.backup("full")
    said = must_not_start_empty(empty, tool, request)
    assert said == "stanza main restored from repo1 to latest (a recovery)"
    assert (empty / "PG_VERSION").exists() and (empty / "backup_label").exists()
    assert not request.exists(), "the request outlived its restore"
    # A second start over the restored directory asks nothing, restores nothing.
    request.write_text("latest\n")
    assert must_not_start_empty(empty, tool, request).endswith("holds a database")
    assert not request.exists()
    # A restore cut off midway (pgBackRest moves pg_control in last): with its request still
    # there, the next start restores again over what it wrote, never starts it.
    (empty / "global" / "pg_control").unlink()
    request.write_text("latest\n")
    said = must_not_start_empty(empty, tool, request)
    assert said == "stanza main restored from repo1 to latest (a recovery)"
    assert (empty / "global" / "pg_control").exists() and not request.exists()
    # And without a request the empty start is refused as before, naming the recovery too.
    with pytest.raises(RefusedError, match="`python -m deploy recover --stack <stack>`"):
        must_not_start_empty(volume / "other", tool)


def test_a_request_with_no_valid_target_is_refused(cluster: Cluster) -> None:
    cluster.tool.create_stanza()
    cluster.tool.backup("full")
    with tempfile.TemporaryDirectory() as folder:
        request = Path(folder) / "pitr-recovery-request"
        request.write_text("yesterday")
        with pytest.raises(RefusedError, match="pitr-recovery-request: restore target 'yesterday'"):
            must_not_start_empty(Path(folder) / "pgdata", cluster.tool, request)
        assert request.exists()
