"""The off-host repository's layout (pitr/off_host.py) on a real PostgreSQL server with real
pgBackRest 2.45: WAL to repo1 and, through the repository host's TLS server, to repo2; backups
into repo2 taken on the repository's side; certificates of a CA made by the program's own code
(components/dynamic/certificates.py); a foreign certificate refused; the repository out of
reach for a while and nothing lost; the host lost and the server back from repo2 alone.

Both "hosts" are this machine: the repository's side is a second `pgbackrest server` with its
own configuration, repository and certificate, on another loopback port.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import pytest

from components.dynamic import certificates
from pitr.agent import TASKS, Agent, Schedule, TaskState, load_tasks
from pitr.drill import Drill
from pitr.errors import PitrError, RefusedError
from pitr.guard import must_not_start_empty
from pitr.off_host import (
    REPO,
    Listener,
    RemoteDatabase,
    RepositoryAddress,
    TlsFiles,
    database_config,
    repository_config,
)
from pitr.pgbackrest import PgBackRest, RestoreTarget, Stanza, render_config
from tests.backup.pgserver import ServerUnavailableError, free_port
from tests.pitr.cluster import PASSPHRASE, Cluster, archiving_cluster

pytestmark = pytest.mark.integration

HOST = "localhost"
"""The name both sides dial, and both servers' certificates carry."""
REPOSITORY_CN = "repository"
OFF_HOST_PASSPHRASE = "off-host-" + os.urandom(6).hex()


@dataclass
class Pair:
    """A database server with repo1 beside it, and the repository host's side."""

    cluster: Cluster
    work: Path
    repository: PgBackRest
    """pgbackrest on the repository's side, for the stanza: backups into repo2, `info`."""
    repository_argv: list[str]
    repository_server: subprocess.Popen[bytes] | None = None
    database_server: subprocess.Popen[bytes] | None = None

    def start_repository(self) -> None:
        self.repository_server = _serve(self.repository_argv)

    def stop_repository(self) -> None:
        _stop(self.repository_server)
        self.repository_server = None

    def database(self, config: Path | None = None) -> PgBackRest:
        """pgbackrest on the database's side (`config`: another configuration of it)."""
        tool = self.cluster.tool
        return PgBackRest(tool.stanza, config or tool.config_file, tool.run_as)


def _serve(argv: list[str]) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.5)  # it listens at once, or has exited with its reason
    if process.poll() is not None:
        said = (process.stderr.read() if process.stderr else b"").decode(errors="replace")
        raise RuntimeError(f"pgbackrest server exited: {said.strip()}")
    return process


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _write_certificates(folder: Path) -> dict[str, TlsFiles]:
    """One CA; the repository's server and client certificates, the database's (client: its
    stanza's name), and two that must be refused: another stanza's, another CA's."""
    folder.mkdir()
    authority = certificates.new_authority("test off-host CA", 30)
    stranger = certificates.new_authority("another CA", 30)
    made = {
        "repository-server": certificates.issue(authority, REPOSITORY_CN, "server", 30, [HOST]),
        "repository-client": certificates.issue(authority, REPOSITORY_CN, "client", 30),
        "database-server": certificates.issue(authority, "db-main", "server", 30, [HOST]),
        "database-client": certificates.issue(authority, "main", "client", 30),
        "other-stanza": certificates.issue(authority, "cart", "client", 30),
        "other-ca": certificates.issue(stranger, "main", "client", 30),
    }
    (folder / "ca.crt").write_text(authority.cert_pem)
    files = {}
    for name, issued in made.items():
        (folder / f"{name}.crt").write_text(issued.cert_pem)
        (folder / f"{name}.key").write_text(issued.key_pem)
        (folder / f"{name}.key").chmod(0o600)
        files[name] = TlsFiles(folder / f"{name}.crt", folder / f"{name}.key", folder / "ca.crt")
    return files


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    ports = {"repository": free_port(), "database": free_port()}
    layout: dict[str, object] = {}

    def render(stanza: Stanza, work: Path) -> str:
        tls = _write_certificates(work / "certs")
        side = work / "repository"
        for folder in (side, side / "repo", side / "lock", side / "log"):
            folder.mkdir()
        database_conf = work / "pgbackrest.conf"
        repository_conf = side / "pgbackrest.conf"
        repository_conf.write_text(
            repository_config(
                [RemoteDatabase(stanza, HOST, ports["database"], database_conf)],
                OFF_HOST_PASSPHRASE,
                side / "repo",
                side,
                Listener(HOST, ports["repository"], tls["repository-server"], {"main": ["main"]}),
                tls["repository-client"],
                retention_full=2,
            )
        )
        repository_conf.chmod(0o600)
        layout.update(stanza=stanza, repository_conf=repository_conf, tls=tls)
        return database_config(
            stanza,
            PASSPHRASE,
            RepositoryAddress(HOST, ports["repository"], repository_conf, tls["database-client"]),
            Listener(HOST, ports["database"], tls["database-server"], {REPOSITORY_CN: ["main"]}),
        )

    try:
        with archiving_cluster(archive_timeout_s=2, render=render) as cluster:
            run_as = cluster.run_as
            repository_conf = Path(str(layout["repository_conf"]))
            work = repository_conf.parent.parent
            made = Pair(
                cluster,
                work,
                PgBackRest(cluster.tool.stanza, repository_conf, run_as),
                [*run_as, "pgbackrest", f"--config={repository_conf}", "server"],
            )
            database_server_argv = [
                *run_as,
                "pgbackrest",
                f"--config={cluster.tool.config_file}",
                "server",
            ]
            try:
                made.start_repository()
                made.database_server = _serve(database_server_argv)
                yield made
            finally:
                made.stop_repository()
                _stop(made.database_server)
    except ServerUnavailableError as err:
        if os.environ.get("REQUIRE_INTEGRATION") == "1":
            pytest.fail(f"REQUIRE_INTEGRATION=1 but {err}")
        pytest.skip(str(err))


def archived(tool: PgBackRest, repo: int) -> str:
    """The newest WAL segment a repository holds for the stanza."""
    (found,) = [
        r
        for r in tool.info(f"--repo={repo}")["archive"]
        if r.get("database", {}).get("repo-key") == repo
    ] or [{}]
    return str(found.get("max", ""))


def test_wal_reaches_both_repositories_and_the_repository_takes_the_backups(pair: Pair) -> None:
    database = pair.database()
    database.create_stanza()  # both repositories; `check` archives a segment to each
    label = pair.repository.run("backup", f"--repo={REPO}", "--type=full")
    info = pair.repository.info()
    assert [b["type"] for b in info["backup"]] == ["full"], label
    assert info["cipher"] == "aes-256-cbc"
    # Encrypted with the repository host's passphrase, which the database's side never holds.
    assert "repo2-cipher-pass" not in Path(database.config_file).read_text()
    segment = next((pair.work / "repository" / "repo" / "archive").rglob("*.zst"))
    assert segment.read_bytes()[:8] == b"Salted__"
    # The database's side takes no backup into a remote repository (pgBackRest 2.45).
    with pytest.raises(PitrError, match="must be run on the repository host"):
        database.run("backup", f"--repo={REPO}", "--type=full")


def test_the_repository_host_restores_a_copy_of_repo2_locally(pair: Pair) -> None:
    # What a drill on the repository's side needs: its backups restored there, without the
    # database's host (`--reset-pg1-host`: the copy is local, pgBackRest would refuse a
    # restore meant for a remote server).
    into = pair.work / "repository" / "drill"
    subprocess.run([*pair.cluster.run_as, "mkdir", str(into)], check=True)
    pair.repository.run(
        "restore",
        "--reset-pg1-host",
        f"--pg1-path={into}",
        "--archive-mode=off",
        *RestoreTarget.parse("latest").options(),
    )

    def version(data: Path) -> str:
        read = [*pair.cluster.run_as, "cat", str(data / "PG_VERSION")]
        return subprocess.run(read, capture_output=True, text=True, check=True).stdout

    assert version(into) == version(pair.cluster.server.data_dir)


def test_each_side_runs_its_agent_on_its_own_repository(pair: Pair) -> None:
    # The repository's side: an agent per stanza on its configuration (repo2 only) checks the
    # off-host archive end to end, backs up and drills, the copy restored on its own side.
    schedule = Schedule(
        full_every=timedelta(hours=1),
        diff_every=None,
        incr_every=None,
        drill_every=timedelta(hours=1),
        check_every=timedelta(hours=1),
        retry_after=timedelta(0),
    )
    scratch = pair.work / "repository" / "drills"
    subprocess.run([*pair.cluster.run_as, "mkdir", str(scratch)], check=True)
    remote = replace(pair.repository, copies_here=True)
    bin_dir = pair.cluster.server.bin_dir
    status = pair.work / "repository" / "main.status.json"
    tasks = ticked(Agent(remote, Drill(remote, scratch, bin_dir), schedule, status))
    assert {name: t.ok for name, t in tasks.items()} == dict.fromkeys(TASKS, True), tasks
    assert "restored" in str(tasks["drill"].detail), tasks["drill"]
    # The database's side: its agent works on repo1 alone (a configuration without repo2),
    # so repo2 out of reach leaves it healthy; `check` on the archiving configuration, which
    # checks every repository (it takes no --repo), would fail.
    local = pair.database(
        _config_copy(pair, "repo1", render_config(pair.cluster.tool.stanza, PASSPHRASE))
    )
    pair.stop_repository()
    try:
        status = pair.work / "database.status.json"
        drills = pair.work / "drills"
        subprocess.run([*pair.cluster.run_as, "mkdir", str(drills)], check=True)
        tasks = ticked(Agent(local, Drill(local, drills, bin_dir), schedule, status))
        assert {name: t.ok for name, t in tasks.items()} == dict.fromkeys(TASKS, True), tasks
        assert [r["key"] for r in local.info()["repo"]] == [1]
        with pytest.raises(PitrError):
            pair.database().run("check")
    finally:
        pair.start_repository()


def ticked(agent: Agent, ticks: int = 5) -> dict[str, TaskState]:
    """The agent's tasks once all passed, or after `ticks` ticks, as its loop runs them: a
    `stanza-create` meeting the server's archive lock (an `archive-push` under way) is tried
    again at the next tick."""
    for _ in range(ticks):
        agent.tick()
        if all(task.ok for task in agent.tasks.values()):
            break
        time.sleep(2)
    return load_tasks(agent.status_file)


def test_a_foreign_certificate_is_refused(pair: Pair) -> None:
    config = Path(pair.database().config_file).read_text()
    for name, expected in (("other-stanza", "access denied"), ("other-ca", "unknown ca")):
        tls = str(pair.work / "certs" / name)
        other = _config_copy(
            pair, name, config.replace(str(pair.work / "certs" / "database-client"), tls)
        )
        with pytest.raises(PitrError, match=expected):
            pair.database(other).run("check")
    # The database's own certificate opens its own stanza only.
    renamed = _config_copy(pair, "renamed", config.replace("[main]", "[cart]"))
    own = pair.database()
    another = PgBackRest(replace(own.stanza, name="cart"), renamed, own.run_as)
    with pytest.raises(PitrError, match="access denied"):
        another.run("stanza-create")


def _config_copy(pair: Pair, name: str, text: str) -> Path:
    """Another pgbackrest.conf of the database's side, readable by its user only."""
    copy = pair.work / f"pgbackrest-{name}.conf"
    copy.write_text(text)
    os.chown(copy, *_owner(Path(pair.database().config_file)))
    copy.chmod(0o600)
    return copy


def _owner(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_uid, stat.st_gid


def test_the_repository_out_of_reach_loses_nothing(pair: Pair) -> None:
    cluster = pair.cluster
    cluster.sql("CREATE TABLE IF NOT EXISTS orders (id int PRIMARY KEY)")
    pair.stop_repository()
    try:
        for _ in range(3):
            cluster.sql("INSERT INTO orders SELECT coalesce(max(id), 0) + 1 FROM orders")
            cluster.sql("SELECT pg_switch_wal()")
        newest = _previous(cluster.sql("SELECT pg_walfile_name(pg_current_wal_lsn())"))
        # repo1, beside the server, keeps up meanwhile: each push gives up on repo2 after
        # its io-timeout (twice: the connection, then its retry).
        wait_until(lambda: archived(pair.database(), 1) >= newest, f"{newest} in repo1")
        # The server's archiver waits for repo2: the segments stay in pg_wal for it.
        failed = cluster.sql("SELECT failed_count FROM pg_stat_archiver")
        assert int(failed) > 0, "archiving reported success without repo2"
    finally:
        pair.start_repository()
    wait_until(lambda: archived(pair.repository, REPO) >= newest, f"{newest} in repo2")
    pair.repository.run("check")  # a new segment archived end to end, to both repositories
    # No gap: repo2's archive holds every segment from its first to the newest.
    held = sorted(
        p.name[:24] for p in (pair.work / "repository" / "repo" / "archive").rglob("0*.zst")
    )
    assert held == [_nth(held[0], n) for n in range(len(held))], held


def wait_until(check: Callable[[], bool], what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"no {what} after {timeout:.0f} s"
        time.sleep(1)


def _nth(segment: str, n: int) -> str:
    return f"{segment[:16]}{int(segment[16:], 16) + n:08X}"


def _previous(segment: str) -> str:
    """The segment before `segment` (the current one is not archived yet)."""
    return f"{segment[:16]}{int(segment[16:], 16) - 1:08X}"


def test_the_host_lost_the_server_comes_back_from_repo2_alone(pair: Pair) -> None:
    cluster = pair.cluster
    cluster.sql("CREATE TABLE IF NOT EXISTS orders (id int PRIMARY KEY)")
    cluster.sql("INSERT INTO orders SELECT g FROM generate_series(1001, 1100) g")
    expected = cluster.sql("SELECT count(*) FROM orders")
    cluster.sql("SELECT pg_switch_wal()")
    cluster.stop()  # archives what is left, to both repositories
    # The host's disk is gone: its data directory and repo1 with it.
    for lost in (cluster.server.data_dir, pair.work / "repo"):
        subprocess.run(
            [*cluster.run_as, "find", str(lost), "-mindepth", "1", "-delete"], check=True
        )
    # The server's start guard on the new host: repo1 holds nothing, repo2 the backups. Without
    # a request it refuses the empty start; with the recovery's, it restores from repo2.
    data, tool = cluster.server.data_dir, pair.database()
    with pytest.raises(RefusedError, match=rf"holds backups \(newest .*, repo{REPO}\)"):
        must_not_start_empty(data, tool)
    request = pair.work / "pitr-recovery-request"
    request.write_text("latest\n")
    assert must_not_start_empty(data, tool, request) == (
        f"stanza {tool.stanza.name} restored from repo{REPO} to latest (a recovery)"
    )
    cluster.start()
    assert cluster.sql("SELECT count(*) FROM orders") == expected
