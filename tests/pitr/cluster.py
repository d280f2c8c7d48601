"""A throwaway PostgreSQL server archiving into its own encrypted pgBackRest repository, for
the PITR tests and the RPO benchmark (tests/backup/pgserver.py makes the server)."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from pitr.pgbackrest import PgBackRest, Stanza, render_config, server_settings
from tests.backup.pgserver import PgServer, ServerUnavailableError, _run_as_prefix, start_server

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
        argv = [
            *self.run_as,
            str(self.server.bin_dir / "pg_ctl"),
            "-D",
            str(self.server.data_dir),
            "-w",
            "-t",
            "120",
            *args,
        ]
        subprocess.run(argv, check=True, capture_output=True, text=True)

    def stop(self, mode: str = "fast") -> None:
        self.pg_ctl("-m", mode, "stop")

    def start(self) -> None:
        """Start, and after a restore wait until recovery has ended and the server takes
        writes (it accepts reads before that)."""
        log = self.server.root / "server.log"
        try:
            self.pg_ctl("-l", str(log), "-o", self.options, "start")
        except subprocess.CalledProcessError:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            raise RuntimeError(f"the server did not start:\n{tail}") from None
        deadline = time.monotonic() + 60
        while self.sql("SELECT pg_is_in_recovery()") == "t":
            if time.monotonic() > deadline:
                raise RuntimeError("still in recovery after 60 s")
            time.sleep(0.2)


def _local_repository(stanza: Stanza, _work: Path) -> str:
    return render_config(stanza, PASSPHRASE)


@contextlib.contextmanager
def archiving_cluster(
    archive_timeout_s: int | None = None,
    extra_settings: Mapping[str, str] | None = None,
    render: Callable[[Stanza, Path], str] | None = None,
) -> Iterator[Cluster]:
    """A running server whose WAL goes to a new repository; everything removed on exit.
    `extra_settings`: more server settings (a benchmark's memory); `render`: the pgbackrest.conf
    of the stanza, given the work folder (default: one local repository). Raises
    ServerUnavailableError without the server binaries or pgbackrest."""
    if shutil.which("pgbackrest") is None:
        raise ServerUnavailableError("pgbackrest is not installed (Debian package `pgbackrest`)")
    run_as, user = _run_as_prefix()
    # Not under pytest's own temporary folder: the server's user must reach it.
    work = Path(tempfile.mkdtemp(prefix="pitr-test-"))
    work.chmod(0o755)
    config_file = work / "pgbackrest.conf"
    archive = server_settings(
        Stanza("main", work, 0, work, "", work / "repo", work), config_file
    )  # only the config file's path matters before the server runs
    settings = {
        **archive,
        "archive_command": f"'{archive['archive_command']}'",
        "full_page_writes": "on",
    }
    if archive_timeout_s is not None:
        settings["archive_timeout"] = f"{archive_timeout_s}s"
    settings |= extra_settings or {}
    server: PgServer | None = None
    try:
        server = start_server(settings)
        stanza = Stanza(
            "main",
            server.data_dir,
            server.port,
            server.socket_dir,
            server.superuser,
            work / "repo",
            work,
        )
        config_file.write_text((render or _local_repository)(stanza, work))
        config_file.chmod(0o600)
        for path in (work / "repo", work / "lock", work / "log", work / "spool"):
            path.mkdir()
        if user is not None:
            owner = pwd.getpwnam(user)
            for folder, folders, files in os.walk(work):
                for name in [".", *folders, *files]:
                    os.chown(Path(folder) / name, owner.pw_uid, owner.pw_gid)
        options = " ".join(
            f"-c {k}={v}"
            for k, v in {
                "listen_addresses": "127.0.0.1",
                "port": str(server.port),
                "unix_socket_directories": str(server.socket_dir),
                **settings,
            }.items()
        )
        yield Cluster(server, PgBackRest(stanza, config_file, run_as), options, run_as)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
