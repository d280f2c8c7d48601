"""The PITR agent's metrics (pitr/metrics.py): its status file and volumes as the exposition
format, served over HTTP on loopback."""

from __future__ import annotations

import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pitr.agent import TaskState, save_tasks
from pitr.metrics import agent_metrics, serve


def test_each_task_and_volume_is_a_series(tmp_path: Path) -> None:
    status = tmp_path / "agent-status.json"
    passed = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
    check = TaskState()
    check.record(passed, True, "a WAL segment archived")
    drill = TaskState()
    drill.record(passed, True, "ok")
    drill.record(passed, False, "restore failed")
    save_tasks(status, {"check": check, "backup": TaskState(), "drill": drill})
    text = agent_metrics(status, {"data": tmp_path, "gone": tmp_path / "missing"})()
    lines = set(text.splitlines())
    stamp = int(passed.timestamp())
    assert f'ecommerce_pitr_last_success_timestamp_seconds{{task="check"}} {stamp}' in lines
    assert f'ecommerce_pitr_last_success_timestamp_seconds{{task="drill"}} {stamp}' in lines
    # A task that never passed has no success time at all (not a zero that looks overdue).
    assert not any('last_success_timestamp_seconds{task="backup"}' in x for x in lines)
    assert 'ecommerce_pitr_last_attempt_failed{task="drill"} 1' in lines
    assert 'ecommerce_pitr_last_attempt_failed{task="backup"} 0' in lines
    assert 'ecommerce_pitr_consecutive_failures{task="drill"} 1' in lines
    assert any(x.startswith('ecommerce_volume_free_bytes{volume="data"} ') for x in lines)
    assert not any('volume="gone"' in x for x in lines)  # not mounted: no series


def test_the_server_answers_metrics_and_nothing_else() -> None:
    server = serve(0, lambda: "ecommerce_probe 1\n")
    port = server.server_address[1]
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            lines = answer.read().decode().splitlines()
            assert lines[0] == "ecommerce_probe 1"
            # And when the agent started: a restart is the rule ProcessRestarting.
            assert lines[1] == "# TYPE process_start_time_seconds gauge"
            assert float(lines[2].split()[1]) > 0
            assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5)
        assert refused.value.code == 404
    finally:
        server.shutdown()
