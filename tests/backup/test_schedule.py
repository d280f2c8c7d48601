"""The scheduled container's loop (one run of it) and its health check, on a real server."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from backup import errors, metrics
from tests.backup.conftest import Env, copy_backup, run_tool

pytestmark = pytest.mark.integration


def test_schedule_once_creates_verifies_prunes_and_status_reports(
    pgenv: Env, backup_dir: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "b"
    for name in ("20200101_000000", "20200102_000000", "20200103_000000"):
        copy_backup(backup_dir, dest, name)
    r = run_tool(
        "schedule",
        "--targets",
        pgenv.targets_file,
        "--dest",
        dest,
        "--keep-last",
        "2",
        "--once",
        "--only",
        "content",
        "customer",
    )
    assert r.code == 0, r.err
    last = json.loads((dest / "last-run.json").read_text())
    assert last["ok"] is True and last["error"] is None
    listed = json.loads(run_tool("list", "--dest", dest, "--json").out)
    names = [b["name"] for b in listed["backups"]]
    assert names == [last["backup"], "20200103_000000"]
    assert listed["backups"][0]["verification"]["ok"] is True
    assert listed["backups"][0]["databases"] == ["content", "customer"]

    r = run_tool("status", "--dest", dest, "--max-age", "1h")
    assert r.code == 0 and last["backup"] in r.out
    # Its metrics: the new backup (verified) is the last success; the copies were never
    # verified, so they do not count as one.
    created = listed["backups"][0]["created_at"]
    good = metric_values(metrics.render(dest))
    assert good["ecommerce_backup_last_success_timestamp_seconds"] == iso_seconds(created)
    assert good["ecommerce_backup_last_run_failed"] == 0
    assert good["ecommerce_backup_count"] == 2
    assert good['ecommerce_volume_free_bytes{volume="backups"}'] > 0

    bad = pgenv.write_targets(tmp_path / "bad.json", pgenv.targets(content={"password": "nope"}))
    r = run_tool("schedule", "--targets", bad, "--dest", dest, "--keep-last", "2", "--once")
    assert r.code == errors.CANNOT_CONNECT
    r = run_tool("status", "--dest", dest)
    assert r.code == errors.UNHEALTHY
    assert (
        r.err.strip().splitlines() == [r.err.strip().splitlines()[0]]
        and "failed: cannot connect to 'content'" in r.err
    )
    assert len(json.loads(run_tool("list", "--dest", dest, "--json").out)["backups"]) == 2
    failed = metric_values(metrics.render(dest))
    assert failed["ecommerce_backup_last_run_failed"] == 1
    assert failed["ecommerce_backup_consecutive_failures"] == 1
    assert failed["ecommerce_backup_last_success_timestamp_seconds"] == iso_seconds(created)


def metric_values(text: str) -> dict[str, float]:
    """`name{labels} value` lines of the exposition format, by `name{labels}`."""
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def iso_seconds(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
