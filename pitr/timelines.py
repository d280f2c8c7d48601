"""Which backup a restore can start from once a restore to the past has branched the history.

A restore to a time or a restore point ends on a new timeline, which forks off the old one
where the restore stopped. Backups taken on the old timeline after that point stay in the
repository (retention removes them later), and they are the newest there for a while: yet they
hold what the fork discarded. PostgreSQL follows the latest timeline when it replays the
archive, and a backup that ends past the fork is not on that timeline's history: the server
refuses to start from it ("requested timeline 2 is not a child of this server's history").
pgBackRest 2.45 takes the newest backup for a restore to the latest state, and the newest that
ended before the target time for a time, whatever their timeline, so the set is chosen here:
the newest backup that lies on the history of the repository's latest timeline (read from its
`.history` file: each ancestor and the position where the next timeline forked off it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from pitr.errors import RefusedError

if TYPE_CHECKING:
    from pitr.pgbackrest import RestoreTarget


class Repository(Protocol):
    """What the choice reads: a stanza's `info` and a file of its repository."""

    def info(self, *options: str) -> dict[str, Any]: ...

    def run(self, command: str, *options: str, params: Sequence[str] = ()) -> str: ...


def set_to_start_from(tool: Repository, target: RestoreTarget, repo: int) -> list[str]:
    """The `--set` option when pgBackRest's own choice in repository `repo` could be a backup
    off the latest timeline's history; [] when every backup there is on it."""
    info = tool.info(f"--repo={repo}")
    archive = current_archive(info.get("archive", []))
    if archive is None:
        return []  # nothing archived: pgBackRest says what is wrong, in its own words
    # Only the current database's (a stanza upgrade starts again at timeline 1).
    database = archive["database"]["id"]
    backups = [b for b in info.get("backup", []) if b["database"]["id"] == database]
    folder = f"archive/{info['name']}/{archive['id']}"
    listing = tool.run(
        "repo-ls", f"--repo={repo}", "--filter=\\.history$", "--output=text", params=[folder]
    )
    newest_segment = str(archive.get("max") or "00000001")
    latest = max([timeline_of_segment(newest_segment), *history_timelines(listing)])
    if all(timeline_of(b) == latest for b in backups):
        return []
    forks = forks_of(
        tool.run("repo-get", f"--repo={repo}", params=[f"{folder}/{latest:08X}.history"])
    )
    candidates = [b for b in backups if on_the_history(b, latest, forks)]
    if target.kind == "time":
        # As pgBackRest chooses for a time: a backup that stopped before it.
        until = datetime.fromisoformat(target.value).timestamp()
        candidates = [b for b in candidates if int(b["timestamp"]["stop"]) < until]
    if not candidates:
        raise RefusedError(
            f"stanza {info['name']}: no backup in repo{repo} lies on the history of its latest "
            f"timeline ({latest}) before {target.text()}; take a backup, or restore to a later "
            "target"
        )
    newest = max(candidates, key=lambda b: int(b["timestamp"]["stop"]))
    return [f"--set={newest['label']}"]


def current_archive(archives: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The archive of the stanza's current database: the highest database id."""
    return max(archives, key=lambda a: int(a["database"]["id"]), default=None)


def timeline_of(backup: Mapping[str, Any]) -> int:
    """The timeline a backup was taken on: its first WAL segment's."""
    return timeline_of_segment(str(backup["archive"]["start"]))


def timeline_of_segment(name: str) -> int:
    return int(name[:8], 16)


def history_timelines(listing: str) -> list[int]:
    """The timelines of the `.history` files a `repo-ls` lists. A server that leaves recovery
    archives its new timeline's history at once, and its first segment only later: until
    then, only this says that the new timeline is the latest."""
    return [
        int(line[:8], 16) for line in listing.split() if re.fullmatch(r"[0-9A-F]{8}\.history", line)
    ]


def forks_of(history: str) -> dict[int, int]:
    """Each ancestor timeline of a `.history` file and the position (LSN) where it was left."""
    forks = {}
    for line in history.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0].isdigit():
            forks[int(fields[0])] = lsn(fields[1])
    return forks


def on_the_history(backup: Mapping[str, Any], latest: int, forks: Mapping[int, int]) -> bool:
    """Whether replaying from the backup can reach the latest timeline: taken on it, or on an
    ancestor and ended before that ancestor was left."""
    timeline = timeline_of(backup)
    if timeline == latest:
        return True
    return timeline in forks and lsn(str(backup["lsn"]["stop"])) <= forks[timeline]


def lsn(text: str) -> int:
    """A PostgreSQL LSN (`0/4020440`) as a number."""
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)
