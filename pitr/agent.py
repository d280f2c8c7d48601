"""The PITR agent beside each database server: its schedule and its health.

One loop, woken every `tick`, does whatever is due:
- `check`: pgBackRest's end-to-end test of archiving (a WAL switch, then the segment awaited
  in the repository). It also bounds the age of the newest archived segment on a server that
  writes nothing, so "no WAL for too long" means archiving is broken, not that the shop is idle;
- a backup: full when the newest full is older than its interval, else differential, else
  incremental, read from the repository itself, so a restarted agent keeps the rhythm;
- a drill (pitr/drill.py) once a backup exists, then on its own interval.

A failed task is tried again after `retry_after`, doubling while it keeps failing, never later
than its own interval. Every outcome goes to a status file; `health` reads it for the
container's health check.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pitr.drill import Drill
from pitr.errors import PitrError, UnhealthyError
from pitr.pgbackrest import BackupType, PgBackRest

log = logging.getLogger(__name__)

TASKS = ("check", "backup", "drill")


@dataclass(frozen=True)
class Schedule:
    full_every: timedelta
    diff_every: timedelta | None
    incr_every: timedelta | None
    drill_every: timedelta
    check_every: timedelta
    retry_after: timedelta = timedelta(minutes=1)
    tick: timedelta = timedelta(seconds=15)


@dataclass
class TaskState:
    """The last attempt of one task, and the last time it succeeded."""

    at: datetime | None = None
    ok: bool | None = None
    ok_at: datetime | None = None
    failures: int = 0
    detail: str | None = None

    def record(self, now: datetime, ok: bool, detail: str) -> None:
        self.at, self.ok, self.detail = now, ok, detail
        self.failures = 0 if ok else self.failures + 1
        if ok:
            self.ok_at = now

    def may_run(self, now: datetime, every: timedelta, retry_after: timedelta) -> bool:
        """Whether the interval (or, after a failure, the backoff) has passed."""
        if self.at is None:
            return True
        if self.ok:
            return now >= self.at + every
        return now >= self.at + retry_delay(self.failures, retry_after, every)

    def to_json(self) -> dict[str, Any]:
        return {"at": iso_utc(self.at), "ok": self.ok, "ok_at": iso_utc(self.ok_at),
                "failures": self.failures, "detail": self.detail}  # fmt: skip

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TaskState:
        return cls(parse_utc(data.get("at")), data.get("ok"), parse_utc(data.get("ok_at")),
                   int(data.get("failures", 0)), data.get("detail"))  # fmt: skip


def retry_delay(failures: int, retry_after: timedelta, every: timedelta) -> timedelta:
    """`retry_after` after the first failure in a row, doubling after each further one, never
    longer than the task's own interval."""
    delay = retry_after
    for _ in range(failures - 1):
        if delay >= every:  # a long streak must not overflow
            break
        delay *= 2
    return min(delay, every)


def backup_due(backups: list[Mapping[str, Any]], s: Schedule, now: datetime) -> BackupType | None:
    """The backup the schedule asks for now, from the repository's list (`info`)."""

    def newest(*kinds: str) -> datetime | None:
        stops = [b["timestamp"]["stop"] for b in backups if b.get("type") in kinds]
        return datetime.fromtimestamp(max(stops), UTC) if stops else None

    last_full = newest("full")
    if last_full is None or now - last_full >= s.full_every:
        return "full"
    last_diff = newest("full", "diff")
    if s.diff_every is not None and last_diff is not None and now - last_diff >= s.diff_every:
        return "diff"
    last_any = newest("full", "diff", "incr")
    if s.incr_every is not None and last_any is not None and now - last_any >= s.incr_every:
        return "incr"
    return None


@dataclass
class Agent:
    tool: PgBackRest
    drill: Drill
    schedule: Schedule
    status_file: Path
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    tasks: dict[str, TaskState] = field(default_factory=dict)
    stanza_ready: bool = False

    def __post_init__(self) -> None:
        self.tasks = {name: TaskState() for name in TASKS} | load_tasks(self.status_file)

    def run(self, stop: threading.Event) -> None:
        while True:
            self.tick()
            if stop.wait(self.schedule.tick.total_seconds()):
                return

    def tick(self) -> None:
        """Everything that is due, in order: the stanza, a check, a backup, a drill."""
        s, now = self.schedule, self.clock()
        if not self.stanza_ready:
            try:
                self.tool.run("stanza-create")
                self.stanza_ready = True
            except PitrError as exc:  # the server may still be starting
                self._done("check", False, f"stanza-create: {exc}")
                return
        if self.tasks["check"].may_run(now, s.check_every, s.retry_after):
            self._attempt("check", self._check)
        backup = self.tasks["backup"]
        shortest = min(e for e in (s.full_every, s.diff_every, s.incr_every) if e is not None)
        if backup.ok is not False or backup.may_run(now, shortest, s.retry_after):
            self._backup(now)
        drill = self.tasks["drill"]
        if self.tasks["backup"].ok_at is not None and drill.may_run(
            now, s.drill_every, s.retry_after
        ):
            self._attempt("drill", lambda: self.drill.run().summary())

    def _check(self) -> str:
        self.tool.run("check")
        return "a WAL segment archived"

    def _backup(self, now: datetime) -> None:
        try:
            kind = backup_due(self.tool.info().get("backup", []), self.schedule, now)
        except PitrError as exc:
            self._done("backup", False, f"info: {exc}")
            return
        if kind is not None:
            self._attempt("backup", lambda: f"{kind} backup {self.tool.backup(kind)}")
        elif self.tasks["backup"].ok_at is None:
            # A backup made before this agent's status existed (a restarted container).
            self._done("backup", True, "a backup exists")

    def _attempt(self, task: str, action: Callable[[], str]) -> None:
        try:
            detail = action()
        except PitrError as exc:
            self._done(task, False, str(exc))
            return
        except OSError as exc:  # a full or vanished volume: reported, and tried again
            self._done(task, False, f"{exc.strerror}: {exc.filename}")
            return
        self._done(task, True, detail)

    def _done(self, task: str, ok: bool, detail: str) -> None:
        self.tasks[task].record(self.clock(), ok, detail)
        (log.info if ok else log.error)("%s: %s", task, detail)
        try:
            save_tasks(self.status_file, self.tasks)
        except OSError as exc:  # the health check then reports the stale file
            log.error("cannot write %s: %s", self.status_file, exc.strerror)


def load_tasks(path: Path) -> dict[str, TaskState]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        log.error("%s is unreadable; starting afresh", path)
        return {}
    return {name: TaskState.from_json(data[name]) for name in TASKS if name in data}


def save_tasks(path: Path, tasks: Mapping[str, TaskState]) -> None:
    write_whole(path, {k: t.to_json() for k, t in tasks.items()})


def write_whole(path: Path, data: Any) -> None:
    """`data` as JSON, written whole or not at all: a health check or a scrape never reads
    half a file."""
    scratch = path.with_name(f".{path.name}.tmp")
    scratch.write_text(json.dumps(data, indent=2))
    scratch.replace(path)


@dataclass(frozen=True)
class HealthLimits:
    max_archive_age: timedelta
    """No WAL proven archived (a passing `check`) for longer: the archive is stale."""
    max_backup_age: timedelta
    max_drill_age: timedelta


def health(path: Path, limits: HealthLimits, now: datetime) -> str:
    """A one-line summary when healthy; UnhealthyError with the first reason otherwise: a stale
    archive, a failed or overdue backup, no drill passed yet, a failed or overdue drill."""
    tasks = {name: TaskState() for name in TASKS} | load_tasks(path)
    maxima = {"check": limits.max_archive_age, "backup": limits.max_backup_age,
              "drill": limits.max_drill_age}  # fmt: skip
    what = {"check": "archive check", "backup": "backup", "drill": "restore drill"}
    for name in TASKS:
        task = tasks[name]
        if task.ok is False:
            raise UnhealthyError(f"the last {what[name]} failed: {task.detail}")
        if task.ok_at is None:
            raise UnhealthyError(f"no {what[name]} has passed yet")
        age = now - task.ok_at
        if age > maxima[name]:
            label = "stale archive: no WAL archived" if name == "check" else (
                f"overdue {what[name]}: the last passed")  # fmt: skip
            raise UnhealthyError(f"{label} {_ago(age)} ago (max {_ago(maxima[name])})")
    drill = tasks["drill"]
    return f"ok: {drill.detail} at {iso_utc(drill.ok_at)}"


def _ago(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds / 3600:.1f}h"


def iso_utc(at: datetime | None) -> str | None:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ") if at is not None else None


def parse_utc(text: str | None) -> datetime | None:
    if text is None:
        return None
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
