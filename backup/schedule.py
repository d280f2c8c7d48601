"""`schedule` (the backup container's main loop: create, verify, prune, sleep) and `status`
(its health check: the last run succeeded and is recent). Each run's result is written to
`DIR/last-run.json` atomically."""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from backup.create import iso, now_utc
from backup.errors import BackupToolError, UnhealthyError, UsageError
from backup.fsutil import atomic_write_json

log = logging.getLogger(__name__)

LAST_RUN = "last-run.json"
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """`90s`, `30m`, `24h`, `7d`."""
    m = _DURATION.match(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a duration like 30m, 24h or 7d")
    seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if seconds <= 0:
        raise ValueError(f"{text!r} must be positive")
    return timedelta(seconds=seconds)


@dataclass(frozen=True)
class RunResult:
    ok: bool
    backup: str | None
    error: str | None
    exit_code: int


def record(
    dest: Path,
    started: datetime,
    result: RunResult,
    next_run: datetime | None,
    failures: int = 0,
) -> None:
    atomic_write_json(
        dest / LAST_RUN,
        {
            "ok": result.ok,
            "started_at": iso(started),
            "finished_at": iso(now_utc()),
            "backup": result.backup,
            "error": result.error,
            "exit_code": result.exit_code,
            "failures_in_a_row": failures,
            "next_run_at": iso(next_run) if next_run else None,
        },
    )


def retry_delay(failures: int, retry_after: timedelta, every: timedelta) -> timedelta:
    """How long after the `failures`-th failed run in a row to try again: `retry_after`, then
    twice as long each time, never longer than the schedule's own interval."""
    delay = retry_after
    for _ in range(failures - 1):
        if delay >= every:  # doubling no further: a long streak must not overflow
            break
        delay *= 2
    return min(delay, every)


def run_loop(
    dest: Path,
    every: timedelta,
    once: bool,
    one_run: Callable[[], str],
    stop: threading.Event,
    retry_after: timedelta = timedelta(minutes=1),
) -> int:
    """Run `one_run` (create+verify+prune, returning the backup name) now and then every
    `every`. A failed run is recorded and tried again after `retry_after`, doubling while it
    keeps failing (a database still starting, a full disk freed): one failure does not leave
    the shop without a backup for a whole interval. Returns the last exit code."""
    code = 0
    failures = 0
    if not (dest / LAST_RUN).exists():
        # Lets `status` report a fresh container healthy while its first (maybe long) run works,
        # so a deployment that waits for health does not wait for the first backup.
        try:
            atomic_write_json(dest / LAST_RUN, {"first_run_started_at": iso(now_utc())})
        except OSError as exc:
            log.error("cannot write %s: %s", dest / LAST_RUN, exc.strerror)
    while True:
        started = now_utc()
        try:
            name = one_run()
            result = RunResult(True, name, None, 0)
            log.info("scheduled run ok: %s", name)
        except BackupToolError as exc:
            result = RunResult(False, None, str(exc), exc.exit_code)
            log.error("scheduled run failed: %s", exc)
        failures = 0 if result.ok else failures + 1
        if result.ok:
            next_run = started + every
        else:
            next_run = min(started + every, now_utc() + retry_delay(failures, retry_after, every))
        try:
            record(dest, started, result, None if once else next_run, failures)
        except OSError as exc:
            log.error("cannot write %s: %s", dest / LAST_RUN, exc.strerror)
        code = result.exit_code
        if once:
            return code
        delay = max(0.0, (next_run - now_utc()).total_seconds())
        if failures:
            log.info("failed %d time(s) in a row; next try at %s", failures, iso(next_run))
        else:
            log.info("next run at %s", iso(next_run))
        if stop.wait(delay):
            return code


def status(dest: Path, max_age: timedelta, now: datetime | None = None) -> str:
    """A one-line summary when healthy; raises UnhealthyError with the reason otherwise."""
    path = dest / LAST_RUN
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if "first_run_started_at" in data:
            return _first_run_status(data["first_run_started_at"], max_age, now or now_utc())
        ok = bool(data["ok"])
        finished = datetime.strptime(data["finished_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except FileNotFoundError:
        raise UnhealthyError(f"no scheduled run recorded yet ({path} missing)") from None
    except (OSError, ValueError, KeyError, TypeError):
        raise UnhealthyError(f"{path} is unreadable") from None
    age = (now or now_utc()) - finished
    if not ok:
        retry = f"; next try at {data['next_run_at']}" if data.get("next_run_at") else ""
        raise UnhealthyError(
            f"last run at {data['finished_at']} failed: {data.get('error')}{retry}"
        )
    if age > max_age:
        hours = age.total_seconds() / 3600
        raise UnhealthyError(
            f"last successful run at {data['finished_at']} is {hours:.1f}h old "
            f"(max {max_age.total_seconds() / 3600:g}h)"
        )
    return f"ok: last run at {data['finished_at']} made {data.get('backup')}"


def _first_run_status(started_at: str, max_age: timedelta, now: datetime) -> str:
    started = datetime.strptime(started_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    if now - started > max_age:
        hours = (now - started).total_seconds() / 3600
        raise UnhealthyError(
            f"the first scheduled run, started at {started_at}, has not finished after {hours:.1f}h"
        )
    return f"ok: first scheduled run in progress since {started_at}"


def check_dest_exists(dest: Path) -> None:
    if not dest.is_dir():
        raise UsageError(f"backup directory {dest} does not exist")
