"""pgBackRest for one PostgreSQL server (a stanza): its configuration, and its commands with
their outcomes read the way pgBackRest 2.45 reports them.

The repository is encrypted (aes-256-cbc) with a passphrase that only the configuration file
holds, never a command line: the file is written with mode 0600 for the user that runs the
server, whose `archive_command` (`archive-push`) needs it as much as the backups do.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePath
from typing import Any, Literal

from pitr.errors import PassphraseError, PitrError, RefusedError, UsageError, VerifyError
from pitr.timelines import set_to_start_from

BackupType = Literal["full", "diff", "incr"]
ARCHIVE_TIMEOUT_S = 60
"""Longest a committed transaction waits before its WAL segment is archived: the RPO."""


@dataclass(frozen=True)
class Stanza:
    """One server and its repository."""

    name: str
    pg_path: PurePath
    """The server's data directory."""
    pg_port: int
    pg_socket: PurePath
    """Its Unix socket directory: pgBackRest talks to the server there, as the OS user."""
    pg_user: str
    """A superuser (or a role with the backup functions granted) to log in as."""
    repo_path: PurePath
    work_path: PurePath
    """Locks, logs and the archive spool."""
    retention_full: int = 2
    retention_diff: int | None = None
    process_max: int = 2
    """Processes that compress, encrypt and copy files at once (backup, restore, verify)."""


def render_config(stanza: Stanza, passphrase: str, more_global: Sequence[str] = ()) -> str:
    """The pgbackrest.conf of the stanza: zstd compression, an encrypted repository;
    `more_global`: further `[global]` lines (the off-host repository's: pitr/off_host.py)."""
    if not passphrase or "\n" in passphrase:
        raise UsageError("the repository passphrase must be one non-empty line")
    retention = [f"repo1-retention-full={stanza.retention_full}"]
    if stanza.retention_diff is not None:
        retention.append(f"repo1-retention-diff={stanza.retention_diff}")
    lines = [
        "[global]",
        f"repo1-path={stanza.repo_path}",
        "repo1-cipher-type=aes-256-cbc",
        f"repo1-cipher-pass={passphrase}",
        *retention,
        "compress-type=zst",
        f"process-max={stanza.process_max}",
        "start-fast=y",
        f"lock-path={stanza.work_path / 'lock'}",
        f"log-path={stanza.work_path / 'log'}",
        f"spool-path={stanza.work_path / 'spool'}",
        "log-level-file=off",
        "log-level-console=info",
        *more_global,
        "",
        f"[{stanza.name}]",
        f"pg1-path={stanza.pg_path}",
        f"pg1-port={stanza.pg_port}",
        f"pg1-socket-path={stanza.pg_socket}",
        f"pg1-user={stanza.pg_user}",
        "",
    ]
    return "\n".join(lines)


def server_settings(
    stanza: Stanza, config_file: PurePath, archive_timeout_s: int = ARCHIVE_TIMEOUT_S
) -> dict[str, str]:
    """What the server needs to archive every WAL segment into the repository; a segment is
    switched at least every `archive_timeout_s` while anything is written (the RPO)."""
    return {
        "wal_level": "replica",
        "archive_mode": "on",
        "archive_command": (
            f"pgbackrest --config={config_file} --stanza={stanza.name} archive-push %p"
        ),
        "archive_timeout": f"{archive_timeout_s}s",
    }


@dataclass(frozen=True)
class RestoreTarget:
    """Where a restore stops: the latest archived state, a time, or a named restore point."""

    kind: Literal["latest", "time", "name"]
    value: str = ""

    @classmethod
    def parse(cls, text: str) -> RestoreTarget:
        """`latest`, `time:2026-12-02 14:02:30+00` (with a UTC offset) or `name:before-upgrade`."""
        kind, _, value = text.partition(":")
        if kind == "latest" and not value:
            return cls("latest")
        if kind == "time" and value:
            try:
                parsed = datetime.fromisoformat(value.strip())
            except ValueError:
                parsed = None
            if parsed is None or parsed.tzinfo is None:
                raise UsageError(
                    f"restore target {text!r}: give a time with its UTC offset, e.g. "
                    "time:2026-12-02 14:02:30+00"
                )
            return cls("time", value.strip())
        if kind == "name" and re.fullmatch(r"[A-Za-z0-9_.-]{1,63}", value):
            return cls("name", value)
        raise UsageError(
            f"restore target {text!r}: use latest, time:<timestamp with offset> or name:<restore "
            "point>"
        )

    def text(self) -> str:
        """As it is written: `latest`, `time:...`, `name:...`."""
        return self.kind if self.kind == "latest" else f"{self.kind}:{self.value}"

    def options(self) -> list[str]:
        if self.kind == "latest":
            return ["--type=default"]
        # Once there, the server leaves recovery and takes writes (a new timeline).
        return [f"--type={self.kind}", f"--target={self.value}", "--target-action=promote"]


@dataclass(frozen=True)
class PgBackRest:
    """Runs pgbackrest for one stanza, as `run_as` (a prefix such as `runuser -u postgres --`)."""

    stanza: Stanza
    config_file: PurePath
    run_as: Sequence[str] = ()
    program: str = "pgbackrest"
    passphrase_override: str | None = None
    """Another passphrase than the file's (pgBackRest reads it from the environment)."""
    copies_here: bool = False
    """The configuration reaches the server through its TLS server (`pg1-host`: the off-host
    repository's side), and a copy (a drill's) is restored here, not there."""

    def command(
        self, command: str, *options: str, params: Sequence[str] = ()
    ) -> tuple[list[str], dict[str, str]]:
        """The argv and environment of one pgbackrest command (`params`: its own arguments,
        after it, such as `repo-get`'s path)."""
        argv = [*self.run_as, self.program, f"--config={self.config_file}",
                f"--stanza={self.stanza.name}", *options, command, *params]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("PGBACKREST_")}
        if self.passphrase_override is not None:
            env["PGBACKREST_REPO1_CIPHER_PASS"] = self.passphrase_override
        return argv, env

    def run(self, command: str, *options: str, params: Sequence[str] = ()) -> str:
        argv, env = self.command(command, *options, params=params)
        done = subprocess.run(argv, env=env, capture_output=True, text=True, errors="replace",
                              check=False)  # fmt: skip
        if done.returncode != 0:
            raise _failure(command, done.stdout + done.stderr)
        return done.stdout

    def repo_keys(self) -> list[int]:
        """The repositories its configuration file names (`repo1-path`, `repo2-host`, ...)."""
        text = Path(self.config_file).read_text(encoding="utf-8")
        return sorted({int(key) for key in re.findall(r"^repo(\d+)-", text, re.MULTILINE)}) or [1]

    def create_stanza(self) -> None:
        self.run("stanza-create")
        self.run("check")  # a WAL segment archived end to end

    def backup(self, kind: BackupType) -> str:
        """A backup of the running server; returns its label."""
        self.run("backup", f"--type={kind}")
        return str(self.info()["backup"][-1]["label"])

    def info(self, *options: str) -> dict[str, Any]:
        """The stanza's entry of `info --output=json` (`options`: `--repo=2`, ...), its status
        checked."""
        # strict=False: a repository read with a wrong passphrase puts raw bytes in messages.
        (found,) = json.loads(self.run("info", "--output=json", *options), strict=False)
        status = found.get("status", {})
        # The stanza's status says "other"; its repository's says why.
        repos = [r.get("status", {}) for r in found.get("repo", [])]
        message = "; ".join(str(r.get("message", "")) for r in repos if r.get("code", 0))
        if status.get("code", 0) != 0 and ("FormatError" in message or "Crypto" in message):
            raise PassphraseError(
                f"stanza {self.stanza.name}: the repository cannot be decrypted with this "
                "passphrase (or its info files are damaged)"
            )
        if status.get("code", 0) not in (0, 2):  # 2: no backup yet
            reason = (message or str(status.get("message", ""))).splitlines()[0]
            raise PitrError(f"stanza {self.stanza.name}: {reason}")
        info: dict[str, Any] = found
        return info

    def verify(self) -> list[str]:
        """Every problem `verify` finds. pgBackRest 2.45-2.53 exit 0 even when a file fails its
        checksum (pgbackrest#2502), so the report is read, never the exit code alone."""
        return verify_problems(self.run("verify", "--log-level-console=detail"))

    def resume_archiving(self, psql: str = "psql") -> None:
        """Once a restored server is up: a checkpoint. PostgreSQL's checkpointer, asleep since
        recovery for up to `checkpoint_timeout` (5 minutes), only then starts switching WAL
        segments every `archive_timeout` again: without it, up to 5 minutes of writes after a
        restore would wait to be archived (measured: benchmarks/pitr_rpo.py)."""
        argv = [*self.run_as, psql, "-X", "-q", "-h", str(self.stanza.pg_socket), "-p",
                str(self.stanza.pg_port), "-U", self.stanza.pg_user, "-d", "postgres",
                "-c", "CHECKPOINT"]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise PitrError(f"stanza {self.stanza.name}: CHECKPOINT failed: {done.stderr.strip()}")

    def server_answers(self) -> bool:
        """Whether a server accepts connections on the stanza's socket (a `postmaster.pid` left
        by a crash does not count: that is when a restore is needed most)."""
        path = self.stanza.pg_socket / f".s.PGSQL.{self.stanza.pg_port}"
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(2)
            try:
                probe.connect(str(path))
            except OSError:
                return False
        return True

    def restore(self, target: RestoreTarget, *, force: bool) -> None:
        """Restore into the (stopped) server's data directory, then the server is to be
        started: it replays WAL up to the target."""
        pg_path = Path(self.stanza.pg_path)
        if self.server_answers():
            raise RefusedError(
                f"stanza {self.stanza.name}: the server still runs on {pg_path}; stop it first"
            )
        stale = pg_path / "postmaster.pid"
        if stale.exists():
            if not force:
                raise RefusedError(
                    f"stanza {self.stanza.name}: {stale} is there but no server answers on "
                    f"{self.stanza.pg_socket} (a crash?); pass --force to remove it and restore"
                )
            stale.unlink()  # pgBackRest refuses while it is there
        # Even to the latest state: WAL the server wrote and had not archived yet is lost.
        in_use = pg_path.is_dir() and any(pg_path.iterdir())
        if in_use and not force:
            where = "the latest archived state" if target.kind == "latest" else (
                f"{target.kind} {target.value}")  # fmt: skip
            raise RefusedError(
                f"stanza {self.stanza.name}: restoring {pg_path} to {where} discards what was "
                "written after it; pass --force to do so"
            )
        self.verify_or_refuse()
        delta = ["--delta"] if in_use else []
        self.run("restore", *delta, *self.start_options(target), *target.options())

    def restore_copy(self, into: Path, target: RestoreTarget) -> None:
        """Restore into another, empty data directory, for a server beside the live one (a
        drill, an inspection): it never archives (`archive_mode=off`), so its new timeline
        never reaches the live server's repository."""
        if into.exists() and any(into.iterdir()):
            raise RefusedError(f"stanza {self.stanza.name}: {into} is not empty")
        self.verify_or_refuse()
        here = ["--reset-pg1-host"] if self.copies_here else []
        start = self.start_options(target)
        self.run("restore", *here, f"--pg1-path={into}", "--archive-mode=off", *start,
                 *target.options())  # fmt: skip

    def start_options(self, target: RestoreTarget) -> list[str]:
        """The backup a restore to `target` starts from (`--set`; pgBackRest looks for it in
        each repository in turn), when its own choice could be off the latest timeline's
        history (pitr/timelines.py); [] otherwise. Each repository that holds backups is asked
        in turn, as pgBackRest would, until one holds a backup that fits."""
        refused: RefusedError | None = None
        for key in self.repo_keys():
            if not self.info(f"--repo={key}").get("backup"):
                continue
            try:
                return set_to_start_from(self, target, key)
            except RefusedError as err:
                refused = refused or err
        if refused is not None:
            raise refused
        return []

    def verify_or_refuse(self) -> None:
        problems = self.verify()
        if problems:
            raise VerifyError(
                f"stanza {self.stanza.name}: restore refused, the repository fails "
                f"verification: {problems[0]}"
            )


_ERROR = re.compile(r"ERROR: \[(\d+)\]: (.*)")


def _failure(command: str, output: str) -> PitrError:
    found = _ERROR.search(output)
    message = found.group(2).strip() if found else (output.strip().splitlines() or ["?"])[-1]
    if "cipher" in message.lower() or "decrypt" in message.lower():
        return PassphraseError(f"pgbackrest {command}: {message} (wrong repository passphrase?)")
    return PitrError(f"pgbackrest {command}: {message}")


def verify_problems(report: str) -> list[str]:
    """The problems in a `verify` report: invalid files, and each backup or archive whose
    status is not ok."""
    problems = [f"invalid checksum {m.group(1)}"
                for m in re.finditer(r"invalid checksum '([^']+)'", report)]  # fmt: skip
    problems += [f"{m.group(1)} is {m.group(2)}" for m in re.finditer(
        r"(backup: \S+), status: (invalid|[a-z ]*error[a-z ]*)", report)]  # fmt: skip
    if not problems and re.search(r"^\s*status: error", report, re.MULTILINE):
        problems.append("verify reports status: error")
    return problems
