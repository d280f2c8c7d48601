"""Point-in-time recovery on a real PostgreSQL server with pgBackRest: archive, full and
incremental backups, restore to the latest state and to a time, verify read from its report,
a refused restore, a wrong passphrase."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from pitr.errors import PassphraseError, RefusedError, VerifyError
from pitr.pgbackrest import PgBackRest, RestoreTarget, verify_problems
from tests.pitr.cluster import Cluster, archiving_cluster

pytestmark = pytest.mark.integration


def count(cluster: Cluster) -> int:
    return int(cluster.sql("SELECT count(*) FROM orders"))


def test_restore_to_the_latest_state_and_to_a_time(cluster: Cluster) -> None:
    tool = cluster.tool
    tool.create_stanza()
    full = tool.backup("full")
    cluster.sql("CREATE TABLE orders (id int PRIMARY KEY, at timestamptz DEFAULT now())")
    cluster.sql("INSERT INTO orders (id) SELECT g FROM generate_series(1, 100) g")  # rows A
    incr = tool.backup("incr")
    assert [b["type"] for b in tool.info()["backup"]] == ["full", "incr"]
    assert incr != full
    time.sleep(1.1)
    moment = cluster.sql("SELECT now()")  # T
    time.sleep(1.1)
    cluster.sql("INSERT INTO orders (id) SELECT g FROM generate_series(101, 150) g")  # rows B
    cluster.sql("SELECT pg_switch_wal()")
    cluster.stop()  # shutting down archives what is left

    with pytest.raises(RefusedError, match="to the latest archived state discards what was"):
        tool.restore(RestoreTarget.parse("latest"), force=False)
    tool.restore(RestoreTarget.parse("latest"), force=True)
    cluster.start()
    assert count(cluster) == 150  # A and B

    cluster.stop()
    target = RestoreTarget.parse(f"time:{moment}")
    with pytest.raises(RefusedError, match="discards what was written after it; pass --force"):
        tool.restore(target, force=False)
    tool.restore(target, force=True)
    cluster.start()
    assert count(cluster) == 100  # exactly A
    assert cluster.sql("SELECT max(id) FROM orders") == "100"

    # Written on the new timeline (C), then the volume is lost again: the latest state is A
    # and C, never the discarded B, though the newest backup predates the branch.
    cluster.tool.resume_archiving()
    cluster.sql("INSERT INTO orders (id) VALUES (500)")
    cluster.stop()
    tool.restore(RestoreTarget.parse("latest"), force=True)
    cluster.start()
    assert cluster.sql("SELECT count(*), max(id) FROM orders") == "101|500"


def test_a_killed_backup_leaves_the_repository_consistent(cluster: Cluster) -> None:
    # Some 150 MB, so that a full backup is still copying when it is killed.
    cluster.sql(
        "CREATE TABLE ballast AS SELECT g, md5(g::text) || repeat('x', 200) AS t "
        "FROM generate_series(1, 600000) g"
    )
    tool = cluster.tool
    before = [b["label"] for b in tool.info()["backup"]]
    argv, env = tool.command("backup", "--type=full")
    running = subprocess.Popen(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    repo = Path(tool.stanza.repo_path) / "backup" / "main"
    deadline = time.monotonic() + 60
    while running.poll() is None and time.monotonic() < deadline:
        copying = [d for d in repo.iterdir() if d.is_dir() and d.name not in before]
        if copying and any(copying[0].rglob("*.zst")):
            break
        time.sleep(0.05)
    assert running.poll() is None, "the backup ended before it could be killed"
    os.killpg(running.pid, signal.SIGKILL)  # runuser and pgbackrest alike
    running.wait()
    # What was complete stays complete and valid, and the next backup runs.
    assert [b["label"] for b in tool.info()["backup"]] == before
    assert tool.verify() == []
    after = tool.backup("full")
    assert [b["label"] for b in tool.info()["backup"]][-1] == after
    cluster.sql("DROP TABLE ballast")


def test_restore_to_a_named_restore_point(cluster: Cluster) -> None:
    cluster.sql("CREATE TABLE migrated (id int)")
    cluster.sql("SELECT pg_create_restore_point('before-drop')")
    cluster.sql("DROP TABLE migrated")  # the bad migration
    cluster.stop()
    cluster.tool.restore(RestoreTarget.parse("name:before-drop"), force=True)
    cluster.start()
    assert cluster.sql("SELECT to_regclass('migrated') IS NOT NULL") == "t"
    cluster.tool.resume_archiving()
    cluster.sql("DROP TABLE migrated")


def test_a_running_server_is_never_restored_over(cluster: Cluster) -> None:
    with pytest.raises(RefusedError, match=r"the server still runs on .*; stop it first"):
        cluster.tool.restore(RestoreTarget.parse("latest"), force=True)


def test_a_crashed_server_is_restored_despite_its_stale_pid_file(cluster: Cluster) -> None:
    cluster.sql("INSERT INTO orders (id) VALUES (1000)")
    cluster.sql("SELECT pg_switch_wal()")
    cluster.sql("CHECKPOINT")
    time.sleep(2)  # the archiver takes the switched segment
    pid_file = cluster.server.data_dir / "postmaster.pid"
    pid = int(pid_file.read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while cluster.tool.server_answers() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pid_file.exists()  # left behind by the crash
    forget_the_killed_server(pid, cluster)
    cluster.tool.restore(RestoreTarget.parse("latest"), force=True)
    cluster.start()
    assert cluster.sql("SELECT count(*) FROM orders WHERE id = 1000") == "1"


def forget_the_killed_server(pid: int, cluster: Cluster) -> None:
    """The killed postmaster stays a zombie until this machine's init reaps it, and a zombie
    still "runs" for PostgreSQL's check of its socket lock file. In a container the server is
    PID 1 again and the check ignores its own PID; here the test removes that stale lock once
    the process is dead."""
    status = Path(f"/proc/{pid}/status")
    deadline = time.monotonic() + 10
    while status.exists() and time.monotonic() < deadline:
        if "State:\tZ" in status.read_text():
            break
        time.sleep(0.1)
    for lock in cluster.server.socket_dir.glob(".s.PGSQL.*.lock"):
        lock.unlink()


def test_archiving_resumes_on_the_new_timeline_right_after_a_restore() -> None:
    # A server of its own with a short archive_timeout: after a restore, the next segment goes
    # to the archive within it, not after the checkpointer's 5-minute sleep.
    with archiving_cluster(archive_timeout_s=2) as fresh:
        fresh.tool.create_stanza()
        fresh.tool.backup("full")
        fresh.stop("immediate")
        fresh.tool.restore(RestoreTarget.parse("latest"), force=True)
        fresh.start()
        fresh.tool.resume_archiving(str(fresh.server.bin_dir / "psql"))
        fresh.sql("CREATE TABLE after_restore (id int)")
        deadline = time.monotonic() + 20
        archived = ""
        while time.monotonic() < deadline:
            archived = fresh.sql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")
            if archived.startswith("00000002") and not archived.endswith(".history"):
                break
            time.sleep(0.5)
        assert archived.startswith("00000002") and not archived.endswith(".history"), archived


def test_a_wrong_passphrase_is_refused_clearly(cluster: Cluster) -> None:
    wrong = PgBackRest(
        cluster.tool.stanza,
        cluster.tool.config_file,
        cluster.run_as,
        passphrase_override="not-the-passphrase",
    )
    with pytest.raises(PassphraseError, match="cannot be decrypted with this passphrase"):
        wrong.info()


def test_a_corrupted_backup_file_is_found_and_refuses_the_restore(cluster: Cluster) -> None:
    # Runs last: it damages the repository. pgbackrest verify exits 0 all the same.
    tool = cluster.tool
    assert tool.verify() == []
    repo = Path(tool.stanza.repo_path) / "backup" / "main"
    damaged = next(
        p for p in sorted(repo.glob("*F/pg_data/base/*/*.zst")) if p.stat().st_size > 512
    )
    with damaged.open("r+b") as file:
        file.seek(100)
        file.write(b"XXXX")
    problems = tool.verify()
    assert any(damaged.name in p for p in problems), problems
    cluster.stop()
    with pytest.raises(VerifyError, match="restore refused, the repository fails verification"):
        tool.restore(RestoreTarget.parse("latest"), force=True)
    cluster.start()


def test_the_verify_report_of_pgbackrest_2_45_is_read_not_its_exit_code() -> None:
    report = """P01   INFO: invalid checksum '20261202-090523F/pg_data/base/5/2654.zst'
P00   INFO: stanza: main
                                    status: error
                                      backup: 20261202-090523F, status: invalid, total files checked: 964
                                        checksum invalid: 1
"""
    assert verify_problems(report) == [
        "invalid checksum 20261202-090523F/pg_data/base/5/2654.zst",
        "backup: 20261202-090523F is invalid",
    ]
    assert verify_problems("P00   INFO: stanza: main\n    status: ok\n") == []


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("time:2026-12-02 14:02:30", "give a time with its UTC offset"),
        ("yesterday", "use latest, time:"),
        ("name:", "use latest, time:"),
    ],
)
def test_a_bad_restore_target_names_what_to_give(text: str, error: str) -> None:
    with pytest.raises(Exception, match=error):
        RestoreTarget.parse(text)


def restored_to_the_past(fresh: Cluster) -> str:
    """Rows A (1), a moment, rows B (2), an incremental backup; then the server restored to
    the moment (A only, on timeline 2) and started. Returns the label of that backup, the
    newest, which lies past the fork on the old timeline."""
    tool = fresh.tool
    tool.create_stanza()
    tool.backup("full")
    fresh.sql("CREATE TABLE orders (id int PRIMARY KEY)")
    fresh.sql("INSERT INTO orders VALUES (1)")  # A
    time.sleep(1.1)
    moment = fresh.sql("SELECT now()")
    time.sleep(1.1)
    fresh.sql("INSERT INTO orders VALUES (2)")  # B, which the restore to `moment` discards
    past_the_fork = tool.backup("incr")
    fresh.stop()
    tool.restore(RestoreTarget.parse(f"time:{moment}"), force=True)
    fresh.start()
    return past_the_fork


def ids(fresh: Cluster) -> str:
    return fresh.sql("SELECT string_agg(id::text, ',' ORDER BY id) FROM orders")


def test_the_latest_state_after_a_restore_in_the_past_is_the_new_timelines() -> None:
    # A backup taken on the old timeline after the point a restore went back to is not on the
    # new timeline's history: a later restore to the latest state starts from one that is.
    with archiving_cluster() as fresh:
        past_the_fork = restored_to_the_past(fresh)
        fresh.tool.resume_archiving(str(fresh.server.bin_dir / "psql"))
        fresh.sql("INSERT INTO orders VALUES (3)")  # C, on the new timeline
        fresh.stop()
        assert fresh.tool.info()["backup"][-1]["label"] == past_the_fork

        fresh.tool.restore(RestoreTarget.parse("latest"), force=True)
        fresh.start()
        assert ids(fresh) == "1,3"


def test_a_crash_right_after_a_restore_in_the_past_still_restores() -> None:
    # Its new timeline's history archived (at once, when it left recovery), no segment of it
    # yet. The backup past the fork is passed over (the history file says there is a new
    # timeline); with no segment of it archived, PostgreSQL replays the old timeline to its end,
    # as docs/pitr.md says (which is why `python -m pitr restore` waits for that first segment).
    with archiving_cluster() as fresh:
        restored_to_the_past(fresh)
        deadline = time.monotonic() + 20
        while fresh.sql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver") != (
            "00000002.history"
        ):
            assert time.monotonic() < deadline, "the new timeline's history was not archived"
            time.sleep(0.2)
        fresh.stop("immediate")

        fresh.tool.restore(RestoreTarget.parse("latest"), force=True)
        fresh.start()
        assert ids(fresh) == "1,2"
