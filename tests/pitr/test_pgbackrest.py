"""Point-in-time recovery on a real PostgreSQL server with pgBackRest: archive, full and
incremental backups, restore to the latest state and to a time, verify read from its report,
a refused restore, a wrong passphrase."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pitr.errors import PassphraseError, RefusedError, VerifyError
from pitr.pgbackrest import (
    PgBackRest,
    RestoreTarget,
    Stanza,
    render_config,
    server_settings,
    verify_problems,
)
from tests.backup.pgserver import PgServer, ServerUnavailableError, _run_as_prefix, start_server

pytestmark = pytest.mark.integration

PASSPHRASE = "test-passphrase-" + os.urandom(6).hex()


@dataclass
class Cluster:
    server: PgServer
    tool: PgBackRest
    options: str
    run_as: list[str]

    def sql(self, text: str) -> str:
        return self.server.psql(text).strip()

    def pg_ctl(self, *args: str) -> None:
        argv = [*self.run_as, str(self.server.bin_dir / "pg_ctl"), "-D",
                str(self.server.data_dir), "-w", "-t", "120", *args]  # fmt: skip
        subprocess.run(argv, check=True, capture_output=True, text=True)

    def stop(self) -> None:
        self.pg_ctl("-m", "fast", "stop")

    def start(self) -> None:
        """Start, and after a restore wait until recovery has ended and the server takes
        writes (it accepts reads before that)."""
        self.pg_ctl("-l", str(self.server.root / "server.log"), "-o", self.options, "start")
        deadline = time.monotonic() + 60
        while self.sql("SELECT pg_is_in_recovery()") == "t":
            assert time.monotonic() < deadline, "still in recovery after 60 s"
            time.sleep(0.2)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    if shutil.which("pgbackrest") is None:
        if os.environ.get("REQUIRE_INTEGRATION") == "1":
            pytest.fail("REQUIRE_INTEGRATION=1 but pgbackrest is not installed")
        pytest.skip("pgbackrest is not installed (Debian package `pgbackrest`)")
    run_as, user = _run_as_prefix()
    # Not under pytest's own temporary folder: the server's user must reach it.
    work = Path(tempfile.mkdtemp(prefix="pitr-test-"))
    work.chmod(0o755)
    config_file = work / "pgbackrest.conf"
    archive = server_settings(
        Stanza("main", work, 0, work, "", work / "repo", work), config_file
    )  # only the config file's path matters before the server runs
    settings = {**archive, "archive_command": f"'{archive['archive_command']}'",
                "full_page_writes": "on"}  # fmt: skip
    try:
        server = start_server(settings)
    except ServerUnavailableError as err:
        if os.environ.get("REQUIRE_INTEGRATION") == "1":
            pytest.fail(f"REQUIRE_INTEGRATION=1 but {err}")
        pytest.skip(str(err))
    try:
        stanza = Stanza("main", server.data_dir, server.port, server.socket_dir, server.superuser,
                        work / "repo", work)  # fmt: skip
        config_file.write_text(render_config(stanza, PASSPHRASE))
        config_file.chmod(0o600)
        for path in (work / "repo", work / "lock", work / "log", work / "spool"):
            path.mkdir()
        if user is not None:
            owner = pwd.getpwnam(user)
            for path in (work, config_file, *work.iterdir()):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        options = " ".join(f"-c {k}={v}" for k, v in {
            "listen_addresses": "127.0.0.1", "port": str(server.port),
            "unix_socket_directories": str(server.socket_dir), **settings}.items())  # fmt: skip
        yield Cluster(server, PgBackRest(stanza, config_file, run_as), options, run_as)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


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

    tool.restore(RestoreTarget.parse("latest"), force=False)
    cluster.start()
    assert count(cluster) == 150  # A and B

    cluster.stop()
    target = RestoreTarget.parse(f"time:{moment}")
    with pytest.raises(RefusedError, match="discards everything written after it; pass --force"):
        tool.restore(target, force=False)
    tool.restore(target, force=True)
    cluster.start()
    assert count(cluster) == 100  # exactly A
    assert cluster.sql("SELECT max(id) FROM orders") == "100"


def test_a_killed_backup_leaves_the_repository_consistent(cluster: Cluster) -> None:
    # Some 150 MB, so that a full backup is still copying when it is killed.
    cluster.sql("CREATE TABLE ballast AS SELECT g, md5(g::text) || repeat('x', 200) AS t "
                "FROM generate_series(1, 600000) g")  # fmt: skip
    tool = cluster.tool
    before = [b["label"] for b in tool.info()["backup"]]
    argv, env = tool.command("backup", "--type=full")
    running = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    repo = tool.stanza.repo_path / "backup" / "main"
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


def test_a_running_server_is_never_restored_over(cluster: Cluster) -> None:
    with pytest.raises(RefusedError, match=r"the server still runs on .*; stop it first"):
        cluster.tool.restore(RestoreTarget.parse("latest"), force=True)


def test_a_wrong_passphrase_is_refused_clearly(cluster: Cluster) -> None:
    wrong = PgBackRest(cluster.tool.stanza, cluster.tool.config_file, cluster.run_as,
                       passphrase_override="not-the-passphrase")  # fmt: skip
    with pytest.raises(PassphraseError, match="cannot be decrypted with this passphrase"):
        wrong.info()


def test_a_corrupted_backup_file_is_found_and_refuses_the_restore(cluster: Cluster) -> None:
    # Runs last: it damages the repository. pgbackrest verify exits 0 all the same.
    tool = cluster.tool
    assert tool.verify() == []
    repo = tool.stanza.repo_path / "backup" / "main"
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


@pytest.mark.parametrize(("text", "error"), [
    ("time:2026-12-02 14:02:30", "give a time with its UTC offset"),
    ("yesterday", "use latest, time:"),
    ("name:", "use latest, time:"),
])  # fmt: skip
def test_a_bad_restore_target_names_what_to_give(text: str, error: str) -> None:
    with pytest.raises(Exception, match=error):
        RestoreTarget.parse(text)
