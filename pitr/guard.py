"""A database server never starts empty over a stanza that holds backups (docs/pitr.md).

The official entrypoint runs `initdb` whenever the data directory is empty: after a lost data
volume, or on a new host, that is a new, empty database where the shop's data was, archiving
into the same stanza as if nothing had happened (pgBackRest refuses its WAL, but the shop would
take orders into it). So the server's entrypoint in the PITR image (entrypoint.sh) asks first:
an empty data directory over a stanza with a backup is refused, naming the restore and the
recovery commands; one over a repository that cannot be read is refused too, since nobody can
tell. The first start of a new stanza (nothing in any repository) goes on.

One empty start is not refused but restored: the recovery of a lost host (deploy/recovery.py)
writes a request beside the empty data directory (layout.RECOVERY_REQUEST: the restore target),
and the guard restores the server there, from the repository holding the newest backup (on a
new host, the off-host one: repo1 is as empty as the volume). The recovery runs the guard in a
one-off container with the server's volumes and networks (only they reach that repository, with
its keys), and the server's own start would do the same. The request goes once pgBackRest is
done (`global/pg_control`, which it writes last, is there): a restore cut off midway is done
again, never started.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pitr.errors import PitrError, RefusedError, UsageError
from pitr.pgbackrest import PgBackRest, RestoreTarget
from pitr.timelines import set_to_start_from

NO_STANZA = 1
"""pgBackRest's repository status `missing stanza path`: this stanza never archived there."""
NO_BACKUP = 2
"""`no valid backups`: the stanza exists, but nothing could be restored from it."""
RECOVER_COMMAND = "python -m deploy recover --stack <stack>"
CONTROL_FILE = "global/pg_control"
"""What pgBackRest restores last, so that an interrupted restore never starts: a data directory
with it is a database; one without it but with a request is a restore to do (again)."""


def must_not_start_empty(pg_path: Path, tool: PgBackRest, request: Path | None = None) -> str:
    """Why starting may go on; raises RefusedError when an empty server would hide backups.
    `request`: where a recovery's restore target would be (None: never a recovery)."""
    asked = request if request is not None and request.exists() else None
    done = (pg_path / CONTROL_FILE).exists()
    if done or (asked is None and (pg_path / "PG_VERSION").exists()):
        if asked is not None:  # a restore that finished, stopped before removing its request
            asked.unlink()
        return f"{pg_path} holds a database"
    name = tool.stanza.name
    try:
        stanzas = [_info(tool, key) for key in tool.repo_keys()]
    except (PitrError, OSError, ValueError) as err:
        raise _unreadable(pg_path, name, str(err)) from None
    repos = [repo for stanza in stanzas for repo in stanza.get("repo", [])]
    backups = sorted(
        (backup for stanza in stanzas for backup in stanza.get("backup", [])),
        key=lambda backup: int(backup.get("timestamp", {}).get("stop", 0)),
    )
    if backups and asked is not None:
        return _restore(pg_path, tool, backups[-1], asked)
    if backups:
        newest = backups[-1]
        raise RefusedError(
            f"{pg_path} is empty but stanza {name} holds backups (newest {newest['label']}, "
            f"repo{_repo_key(newest)}): an empty server would take the shop's writes in place "
            f"of its data; restore it instead: `python -m pitr restore {name} --stack <stack> "
            f"--to latest` on the Docker host, or, on a new host after the loss of the old one, "
            f"`{RECOVER_COMMAND}` (docs/operations.md)"
        )
    unreadable = [r for r in repos if r.get("status", {}).get("code") not in (NO_STANZA, NO_BACKUP)]
    if unreadable or not repos:
        reasons = "; ".join(
            f"repo{r.get('key')}: {r.get('status', {}).get('message', '?')}" for r in unreadable
        )
        raise _unreadable(pg_path, name, reasons or "no repository reported")
    if asked is not None:
        raise RefusedError(
            f"{pg_path} is empty and a recovery asks to restore it, but no repository of stanza "
            f"{name} holds a backup: the server does not start empty in its place; check that "
            "the off-host repository is the one that holds its backups (pitr.offHost)"
        )
    return f"stanza {name} holds no backup: a first start"


def _restore(pg_path: Path, tool: PgBackRest, newest: dict[str, Any], request: Path) -> str:
    """The recovery's restore: the target it asked for, from the newest backup's repository."""
    text = request.read_text(encoding="utf-8").strip()
    try:
        target = RestoreTarget.parse(text)
    except UsageError as err:
        raise RefusedError(f"{request}: {err}; write a valid target, or remove it") from None
    repo = _repo_key(newest)
    pg_path.mkdir(mode=0o700, exist_ok=True)
    # An earlier restore, interrupted: pgBackRest goes on over what it wrote.
    delta = ["--delta", "--force"] if any(pg_path.iterdir()) else []
    start = set_to_start_from(tool, target, repo)
    tool.run("restore", f"--repo={repo}", f"--pg1-path={pg_path}", *delta, *start,
             *target.options())  # fmt: skip
    request.unlink()
    return f"stanza {tool.stanza.name} restored from repo{repo} to {text} (a recovery)"


def _info(tool: PgBackRest, key: int) -> dict[str, Any]:
    """The stanza as one repository holds it. One `info` per repository: pgBackRest 2.45's
    `info` over all of them reads a remote repository's encrypted files as if plain (the
    cipher is the remote side's to know), and fails on the off-host one."""
    (stanza,) = json.loads(tool.run("info", "--output=json", f"--repo={key}"), strict=False)
    found: dict[str, Any] = stanza
    return found


def _repo_key(backup: dict[str, Any]) -> int:
    return int(backup.get("database", {}).get("repo-key", 1))


def _unreadable(pg_path: Path, name: str, reason: str) -> RefusedError:
    first = reason.strip().splitlines()[0] if reason.strip() else "no answer"
    return RefusedError(
        f"{pg_path} is empty and the repository of stanza {name} cannot be read ({first}): "
        "whether it holds backups is unknown, so the server does not start empty; it tries "
        "again at its next start"
    )
