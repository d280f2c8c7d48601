"""A database server never starts empty over a stanza that holds backups (docs/pitr.md).

The official entrypoint runs `initdb` whenever the data directory is empty: after a lost data
volume, or on a new host, that is a new, empty database where the shop's data was, archiving
into the same stanza as if nothing had happened (pgBackRest refuses its WAL, but the shop would
take orders into it). So the server's entrypoint in the PITR image (entrypoint.sh) asks first:
an empty data directory over a stanza with a backup is refused, naming the restore command; one
over a repository that cannot be read is refused too, since nobody can tell. The first start
of a new stanza (nothing in any repository) goes on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pitr.errors import PitrError, RefusedError
from pitr.pgbackrest import PgBackRest

NO_STANZA = 1
"""pgBackRest's repository status `missing stanza path`: this stanza never archived there."""
NO_BACKUP = 2
"""`no valid backups`: the stanza exists, but nothing could be restored from it."""


def must_not_start_empty(pg_path: Path, tool: PgBackRest) -> str:
    """Why starting may go on; raises RefusedError when an empty server would hide backups."""
    if (pg_path / "PG_VERSION").exists():
        return f"{pg_path} holds a database"
    name = tool.stanza.name
    try:
        (stanza,) = json.loads(tool.run("info", "--output=json"), strict=False)
    except (PitrError, ValueError) as err:
        raise _unreadable(pg_path, name, str(err)) from None
    repos: list[dict[str, Any]] = stanza.get("repo", [])
    backups: list[dict[str, Any]] = stanza.get("backup", [])
    if backups:
        newest = backups[-1]
        raise RefusedError(
            f"{pg_path} is empty but stanza {name} holds backups (newest {newest['label']}, "
            f"repo{newest.get('database', {}).get('repo-key', 1)}): an empty server would take "
            "the shop's writes in place of its data; restore it instead: `python -m pitr "
            f"restore {name} --stack <stack> --to latest` on the Docker host (docs/pitr.md)"
        )
    unreadable = [r for r in repos if r.get("status", {}).get("code") not in (NO_STANZA, NO_BACKUP)]
    if unreadable or not repos:
        reasons = "; ".join(
            f"repo{r.get('key')}: {r.get('status', {}).get('message', '?')}" for r in unreadable
        )
        raise _unreadable(pg_path, name, reasons or "no repository reported")
    return f"stanza {name} holds no backup: a first start"


def _unreadable(pg_path: Path, name: str, reason: str) -> RefusedError:
    first = reason.strip().splitlines()[0] if reason.strip() else "no answer"
    return RefusedError(
        f"{pg_path} is empty and the repository of stanza {name} cannot be read ({first}): "
        "whether it holds backups is unknown, so the server does not start empty; it tries "
        "again at its next start"
    )
