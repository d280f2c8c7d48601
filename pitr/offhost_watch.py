"""Beside an off-host repository, the database agent's view of repo2 (docs/pitr.md): whether it
answers, since when its archive holds everything repo1's does, and its newest backup. The agent
looks at every check interval and writes what it saw to a status file of its own; its metrics
(pitr/metrics.py) serve it to the alert rules. repo2 away never makes the agent unhealthy:
repo1 keeps working, and the alerts say what is missing."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from pitr.agent import iso_utc, parse_utc, write_whole
from pitr.errors import PitrError

log = logging.getLogger(__name__)

OFF_HOST_REPO = 2


class Info(Protocol):
    """What is read of pgBackRest here (PgBackRest on the server's own configuration)."""

    def info(self, *options: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class OffHostState:
    checked_at: datetime
    reachable: bool
    caught_up_at: datetime | None
    """The last time repo2 held what repo1 held at a look: how far behind repo2 can be."""
    backup_at: datetime | None
    """When repo2's newest backup ended."""
    detail: str
    since: datetime | None = None
    """The first look: with no backup, or no catching up, since then, the alerts count from it."""
    local_wal: str = ""
    """repo1's newest WAL segment at this look, which repo2 must hold by the next."""

    def to_json(self) -> dict[str, Any]:
        return {
            "checked_at": iso_utc(self.checked_at),
            "reachable": self.reachable,
            "caught_up_at": iso_utc(self.caught_up_at),
            "backup_at": iso_utc(self.backup_at),
            "detail": self.detail,
            "since": iso_utc(self.since),
            "local_wal": self.local_wal,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OffHostState:
        checked = parse_utc(data["checked_at"])
        assert checked is not None
        return cls(
            checked,
            bool(data["reachable"]),
            parse_utc(data.get("caught_up_at")),
            parse_utc(data.get("backup_at")),
            str(data.get("detail", "")),
            parse_utc(data.get("since")),
            str(data.get("local_wal", "")),
        )


def observe(tool: Info, previous: OffHostState | None, now: datetime) -> OffHostState:
    """What repo2 holds for the stanza now, against repo1 (`tool` reads both: the server's own
    configuration)."""
    caught_up_at = previous.caught_up_at if previous else None
    backup_at = previous.backup_at if previous else None
    since = (previous.since if previous else None) or now
    earlier_wal = previous.local_wal if previous else ""

    def away(why: str) -> OffHostState:
        return OffHostState(now, False, caught_up_at, backup_at, why, since, earlier_wal)

    try:
        local, remote = tool.info("--repo=1"), tool.info(f"--repo={OFF_HOST_REPO}")
    except PitrError as exc:
        return away(str(exc))
    problems = [
        str(r.get("status", {}).get("message", ""))
        for r in remote.get("repo", [])
        if r.get("key") == OFF_HOST_REPO and r.get("status", {}).get("code", 0) != 0
    ]
    if problems:
        return away("; ".join(problems))
    # Segment names sort in time order (timeline, then log and segment numbers).
    newest_local, newest_remote = _newest_wal(local, 1), _newest_wal(remote, OFF_HOST_REPO)
    if newest_remote >= newest_local:
        caught_up_at = now
    elif previous is not None and earlier_wal and newest_remote >= earlier_wal:
        # Under steady writes repo1 may always be a segment ahead at the moment of a look: repo2
        # holding what repo1 held at the last look means it was caught up then.
        caught_up_at = max(caught_up_at or previous.checked_at, previous.checked_at)
    stops = [
        int(b["timestamp"]["stop"])
        for b in remote.get("backup", [])
        if b.get("database", {}).get("repo-key") == OFF_HOST_REPO
    ]
    if stops:
        backup_at = datetime.fromtimestamp(max(stops), UTC)
    detail = f"repo2 holds WAL up to {newest_remote or 'none'}, repo1 {newest_local or 'none'}"
    return OffHostState(now, True, caught_up_at, backup_at, detail, since, newest_local)


def _newest_wal(info: dict[str, Any], repo: int) -> str:
    found = [
        str(a.get("max") or "")
        for a in info.get("archive", [])
        if a.get("database", {}).get("repo-key") == repo
    ]
    return max(found, default="")


class OffHostWatch:
    """Looks at repo2 every `every` (the agent's check interval), ticked by the agent's loop."""

    def __init__(
        self,
        tool: Info,
        status_file: Path,
        every: timedelta,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.tool, self.status_file, self.every, self.clock = tool, status_file, every, clock
        self.state = load_state(status_file)

    def tick(self) -> None:
        now = self.clock()
        if self.state is not None and now - self.state.checked_at < self.every:
            return
        try:
            self.state = observe(self.tool, self.state, now)
        except Exception as exc:  # an answer it cannot read: never the agent's end
            log.exception("looking at the off-host repository failed")
            self.state = observe(_Failing(exc), self.state, now)
        if not self.state.reachable:
            log.warning("off-host repository unreachable: %s", self.state.detail)
        save_state(self.status_file, self.state)

    def run(self, stop: threading.Event, tick: timedelta) -> None:
        """Tick on its own until `stop`: a long backup or drill of the agent never delays a look
        (the alert would read a stale look as repo2 behind)."""
        while not stop.is_set():
            self.tick()
            stop.wait(tick.total_seconds())


class _Failing:
    """An `Info` that fails as the look did: `observe` records it as repo2 out of reach."""

    def __init__(self, cause: Exception) -> None:
        self.cause = cause

    def info(self, *options: str) -> dict[str, Any]:
        raise PitrError(f"unreadable answer: {self.cause.__class__.__name__}: {self.cause}")


def load_state(path: Path) -> OffHostState | None:
    try:
        return OffHostState.from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, AssertionError):
        log.error("%s is unreadable; starting afresh", path)
        return None


def save_state(path: Path, state: OffHostState) -> None:
    write_whole(path, state.to_json())
