"""The PITR agent on a real PostgreSQL server with pgBackRest: its schedule, its restore drills
and its health, with a clock the test moves."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pitr.agent import Agent, HealthLimits, Schedule, backup_due, health, retry_delay
from pitr.drill import Drill
from pitr.errors import PitrError, UnhealthyError
from tests.pitr.cluster import Cluster, archiving_cluster

SCHEDULE = Schedule(
    full_every=timedelta(days=7),
    diff_every=timedelta(days=1),
    incr_every=timedelta(hours=1),
    drill_every=timedelta(days=1),
    check_every=timedelta(minutes=5),
)
LIMITS = HealthLimits(timedelta(minutes=15), timedelta(hours=3), timedelta(hours=26))


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def scratch_for(cluster: Cluster, name: str) -> Path:
    """A folder the server's user owns, as the drill volume is in the agent's container."""
    scratch = cluster.server.root / f"drill-{name}"  # removed with the server
    scratch.mkdir()
    owner = cluster.server.data_dir.stat()
    os.chown(scratch, owner.st_uid, owner.st_gid)
    return scratch


def make_agent(cluster: Cluster, tmp_path: Path, clock: Clock) -> Agent:
    drill = Drill(cluster.tool, scratch_for(cluster, tmp_path.name), cluster.server.bin_dir)
    return Agent(cluster.tool, drill, SCHEDULE, tmp_path / "status.json", clock)


def test_the_first_tick_archives_backs_up_and_drills_then_the_agent_is_healthy(
    cluster: Cluster, tmp_path: Path
) -> None:
    cluster.sql("CREATE TABLE drilled (id int PRIMARY KEY, note text)")
    cluster.sql("INSERT INTO drilled SELECT g, 'row ' || g FROM generate_series(1, 500) g")
    clock = Clock()
    agent = make_agent(cluster, tmp_path, clock)
    with pytest.raises(UnhealthyError, match="no archive check has passed yet"):
        health(agent.status_file, LIMITS, clock.now)
    agent.tick()
    tasks = agent.tasks
    assert tasks["check"].ok and tasks["backup"].ok and tasks["drill"].ok, tasks
    assert tasks["backup"].detail is not None and tasks["backup"].detail.startswith("full backup")
    # The drill restored, started and checked a copy: the table's rows and its primary key.
    assert "databases" in (tasks["drill"].detail or "")
    assert health(agent.status_file, LIMITS, clock.now).startswith("ok: backup ")
    assert not any(agent.drill.scratch.iterdir())  # the copy is thrown away

    # An hour later: an incremental backup and a check, no drill (one a day).
    clock.now += timedelta(minutes=61)
    agent.tick()
    assert (agent.tasks["backup"].detail or "").startswith("incr backup")
    assert agent.tasks["drill"].at is not None and agent.tasks["drill"].at < clock.now
    # The health check's view, from the file alone (a new process, as Docker runs it).
    assert agent.tasks["check"].at == clock.now
    only_drills = HealthLimits(timedelta(days=30), timedelta(days=30), timedelta(hours=26))
    with pytest.raises(UnhealthyError, match=r"overdue restore drill: the last passed 27\.0h ago"):
        health(agent.status_file, only_drills, clock.now + timedelta(hours=26))
    backups = HealthLimits(timedelta(days=30), timedelta(hours=3), timedelta(days=30))
    with pytest.raises(UnhealthyError, match=r"overdue backup: the last passed 3\.2h ago"):
        health(agent.status_file, backups, clock.now + timedelta(hours=3, minutes=10))
    with pytest.raises(UnhealthyError, match="stale archive: no WAL archived 16m00s ago"):
        health(agent.status_file, LIMITS, clock.now + timedelta(minutes=16))


def test_a_drill_counts_every_row_and_checks_every_index(cluster: Cluster, tmp_path: Path) -> None:
    cluster.sql("CREATE TABLE IF NOT EXISTS counted (id int PRIMARY KEY)")
    cluster.sql("INSERT INTO counted SELECT generate_series(1, 1234)")
    cluster.tool.backup("incr")
    drill = Drill(cluster.tool, scratch_for(cluster, tmp_path.name), cluster.server.bin_dir)
    report = drill.run()
    (main,) = [d for d in report.databases if d.name == cluster.sql("SELECT current_database()")]
    expected_rows = int(
        cluster.sql(
            "SELECT sum(n) FROM (SELECT count(*) AS n FROM counted UNION ALL "
            "SELECT count(*) FROM drilled) t"
        )
    )
    assert main.rows == expected_rows  # everything committed before the backup, and no more
    assert main.indexes >= 2 and main.tables >= 2


def test_a_failing_drill_is_retried_with_backoff_and_reported(
    cluster: Cluster, tmp_path: Path
) -> None:
    clock = Clock()
    agent = make_agent(cluster, tmp_path, clock)
    agent.tick()
    assert agent.tasks["drill"].ok
    # The scratch folder disappears (a volume gone): the drill fails, the agent says why.
    shutil.rmtree(agent.drill.scratch)
    clock.now += timedelta(days=1, minutes=1)
    agent.tick()
    drill = agent.tasks["drill"]
    assert drill.ok is False and drill.failures == 1
    with pytest.raises(UnhealthyError, match="the last restore drill failed"):
        health(agent.status_file, LIMITS, clock.now)
    # Not again at the next tick, but after a minute, then two.
    agent.tick()
    assert agent.tasks["drill"].failures == 1
    clock.now += timedelta(minutes=1)
    agent.tick()
    assert agent.tasks["drill"].failures == 2
    assert retry_delay(2, timedelta(minutes=1), timedelta(days=1)) == timedelta(minutes=2)


def test_a_drill_over_a_damaged_repository_fails_and_says_so(tmp_path: Path) -> None:
    with archiving_cluster() as cluster:
        cluster.tool.create_stanza()
        cluster.tool.backup("full")
        repo = Path(cluster.tool.stanza.repo_path) / "backup" / "main"
        damaged = next(
            p for p in sorted(repo.glob("*F/pg_data/base/*/*.zst")) if p.stat().st_size > 512
        )
        with damaged.open("r+b") as file:
            file.seek(200)
            byte = file.read(1)
            file.seek(200)
            file.write(bytes([byte[0] ^ 0xFF]))
        drill = Drill(cluster.tool, scratch_for(cluster, tmp_path.name), cluster.server.bin_dir)
        with pytest.raises(PitrError, match="fails verification"):
            drill.run()


def test_the_backup_the_schedule_asks_for() -> None:
    now = datetime(2026, 12, 2, 12, tzinfo=UTC)

    def made(kind: str, hours_ago: float) -> dict[str, object]:
        stop = (now - timedelta(hours=hours_ago)).timestamp()
        return {"type": kind, "timestamp": {"start": stop - 60, "stop": stop}}

    assert backup_due([], SCHEDULE, now) == "full"
    assert backup_due([made("full", 24 * 7)], SCHEDULE, now) == "full"
    assert backup_due([made("full", 25)], SCHEDULE, now) == "diff"
    assert backup_due([made("full", 25), made("diff", 2)], SCHEDULE, now) == "incr"
    assert backup_due([made("full", 25), made("diff", 0.5)], SCHEDULE, now) is None
    no_diff = Schedule(
        timedelta(days=7), None, timedelta(hours=1), timedelta(days=1), timedelta(minutes=5)
    )
    assert backup_due([made("full", 25)], no_diff, now) == "incr"
