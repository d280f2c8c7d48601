"""A restore drill: the latest backup and every archived WAL segment restored into a scratch
folder, a throwaway server started on it, checked, stopped and deleted.

A backup nobody restored is a hope, not a backup. The drill runs what a real restore runs
(`verify`, `restore`, WAL replay to the end of the archive) and then checks the result: every
B-tree index with `amcheck` and the rows of every table, in every database. The throwaway
server listens on no TCP port and never archives (`restore_copy` turns archiving off), so it
cannot touch the live server's repository.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pitr.errors import PitrError, last_line
from pitr.pgbackrest import PgBackRest, RestoreTarget

PORT = 5432
START_TIMEOUT_S = 3600
"""Replaying a long archive takes time; a drill that cannot finish in an hour has failed."""

# Every B-tree index of every permanent relation, checked; amcheck ships with PostgreSQL.
_INDEXES = """CREATE EXTENSION IF NOT EXISTS amcheck;
SELECT count(bt_index_check(c.oid)) FROM pg_index i
  JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam
  WHERE am.amname = 'btree' AND i.indisvalid AND i.indisready AND c.relpersistence = 'p';"""
# One `count(*)` per table, generated and run by psql's \\gexec.
_ROWS = r"""SELECT format('SELECT count(*) FROM %s', c.oid::regclass) FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname NOT LIKE 'pg_toast%' AND c.relpersistence = 'p' \gexec"""
_DATABASES = "SELECT datname FROM pg_database WHERE datallowconn ORDER BY datname"


@dataclass(frozen=True)
class DatabaseCheck:
    name: str
    tables: int
    rows: int
    indexes: int


@dataclass(frozen=True)
class DrillReport:
    backup: str
    """The label of the backup the drill restored."""
    databases: tuple[DatabaseCheck, ...]

    def summary(self) -> str:
        rows = sum(d.rows for d in self.databases)
        indexes = sum(d.indexes for d in self.databases)
        return (f"backup {self.backup} restored: {len(self.databases)} databases, "
                f"{rows} rows, {indexes} indexes checked")  # fmt: skip


@dataclass(frozen=True)
class ServerChecks:
    """What a drill checks in a running server, through its socket: every database's B-tree
    indexes (amcheck) and the rows of its tables. The recovery of a lost host runs the same on
    each restored server (`python -m pitr check-here`)."""

    socket_dir: Path
    user: str
    run_as: Sequence[str] = ()
    bin_dir: Path | None = None

    def all(self) -> tuple[DatabaseCheck, ...]:
        return tuple(self.check(database) for database in self.databases())

    def databases(self) -> list[str]:
        return self.psql("postgres", _DATABASES).split()

    def check(self, database: str) -> DatabaseCheck:
        indexes = int(self.psql(database, _INDEXES).split()[-1])
        counts = [int(line) for line in self.psql(database, _ROWS).split()]
        return DatabaseCheck(database, len(counts), sum(counts), indexes)

    def psql(self, database: str, sql: str) -> str:
        argv = [*self.run_as, _program(self.bin_dir, "psql"), "-X", "-q", "-At", "-v",
                "ON_ERROR_STOP=1", "-h", str(self.socket_dir), "-p", str(PORT), "-U",
                self.user, "-d", database]  # fmt: skip
        done = _run(argv, sql)
        if done.returncode != 0:
            raise PitrError(f"checking database {database} failed: {_last(done)}")
        return done.stdout


@dataclass(frozen=True)
class Drill:
    tool: PgBackRest
    scratch: Path
    """An otherwise unused folder the server's user owns; emptied before and after."""
    bin_dir: Path | None = None
    """Where `pg_ctl` and `psql` are; None: on PATH."""

    @property
    def data_dir(self) -> Path:
        return self.scratch / "pgdata"

    @property
    def socket_dir(self) -> Path:
        """The data directory itself: made by the restore, owned by the server's user."""
        return self.data_dir

    def run(self) -> DrillReport:
        self._empty_scratch()
        try:
            info = self.tool.info()
            backups = info.get("backup", [])
            if not backups:
                raise PitrError(f"stanza {self.tool.stanza.name}: no backup to drill yet")
            label = str(backups[-1]["label"])
            self.tool.restore_copy(self.data_dir, RestoreTarget("latest"))
            self._pg_ctl("-l", str(self.scratch / "server.log"), "-o", _server_options(
                self.socket_dir), "start")  # fmt: skip
            try:
                self._wait_for_the_end_of_recovery()
                checks = self._checks.all()
            finally:
                self._pg_ctl("-m", "immediate", "stop")
            return DrillReport(label, checks)
        finally:
            self._empty_scratch()

    def _wait_for_the_end_of_recovery(self) -> None:
        """pg_ctl returns once recovery has started; sessions open only when it has replayed
        every archived segment and the copy takes writes."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                if self._checks.psql("postgres", "SELECT pg_is_in_recovery()").strip() == "f":
                    return
            except PitrError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.5)

    @property
    def _checks(self) -> ServerChecks:
        tool = self.tool
        return ServerChecks(self.socket_dir, tool.stanza.pg_user, tool.run_as, self.bin_dir)

    def _pg_ctl(self, *args: str) -> None:
        argv = [*self.tool.run_as, _program(self.bin_dir, "pg_ctl"), "-D", str(self.data_dir), "-w",
                "-t", str(START_TIMEOUT_S), *args]  # fmt: skip
        done = _run(argv)
        if done.returncode != 0:
            log = self.scratch / "server.log"
            detail = log.read_text(errors="replace") if log.exists() else done.stderr
            raise PitrError(f"pg_ctl {args[-1]} failed: {last_line(detail)}")

    def _empty_scratch(self) -> None:
        if not self.scratch.is_dir():
            raise PitrError(f"the drill folder {self.scratch} is missing (its volume?)")
        for entry in self.scratch.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()


def _program(bin_dir: Path | None, name: str) -> str:
    return str(bin_dir / name) if bin_dir is not None else name


def _server_options(socket_dir: Path) -> str:
    # No TCP, a socket of its own, little memory, no archiving. hot_standby off: no session
    # before recovery has ended, so a primary's larger max_connections does not stop it.
    settings = {
        "listen_addresses": "''",
        "unix_socket_directories": str(socket_dir),
        "port": str(PORT),
        "archive_mode": "off",
        "hot_standby": "off",
        "max_connections": "10",
        "shared_buffers": "32MB",
    }
    return " ".join(f"-c {key}={value}" for key, value in settings.items())


def _run(argv: Sequence[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv), input=stdin, capture_output=True, text=True, errors="replace", check=False
    )


def _last(done: subprocess.CompletedProcess[str]) -> str:
    return last_line(done.stderr or done.stdout)
