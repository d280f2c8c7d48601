"""`restore`: put databases back from a verified backup without ever losing the current data.

Each database is restored into a new database beside the live one (`<db>_restore_<ts>`),
checked against the manifest's row counts, and only then swapped in by renames in one
transaction (other sessions terminated first). A failure anywhere before the swap drops the
new database and leaves the live one untouched. A live database that has any user table is
replaced only with --force; the replaced database is dropped after the swap unless
--keep-old, which keeps it as `<db>_old_<ts>`."""

from __future__ import annotations

import contextlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from backup import pg
from backup.create import now_utc
from backup.errors import ConnectError, OperationError, RefusedError, UsageError, VerifyError
from backup.lock import locked
from backup.manifest import DatabaseEntry, Found
from backup.targets import Target
from backup.verify import check_files, compare_counts, find_backups

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Restored:
    service: str
    database: str
    tables: int
    rows: int
    replaced: bool
    kept_as: str | None

    def describe(self) -> str:
        what = (
            f"restored '{self.service}' ({self.database}): {self.tables} tables, {self.rows} rows"
        )
        if not self.replaced:
            return what + " (database was new or empty)"
        if self.kept_as:
            return what + f"; previous database kept as {self.kept_as}"
        return what + "; previous database dropped"


@dataclass(frozen=True)
class _Plan:
    target: Target
    entry: DatabaseEntry
    admin: pg.Conn
    exists: bool


def _major(version: str) -> int:
    m = re.match(r"(\d+)", version)
    return int(m.group(1)) if m else 0


def _plan(
    found: Found,
    targets: dict[str, Target],
    only: list[str] | None,
    tools: pg.Tools,
    authority: pg.Authority,
    force: bool,
) -> list[_Plan]:
    manifest = found.manifest
    services = list(dict.fromkeys(only)) if only else sorted(manifest.databases)
    for s in services:
        if s not in manifest.databases:
            raise UsageError(
                f"backup {found.name} has no database '{s}' "
                f"(it has: {', '.join(sorted(manifest.databases))})"
            )
        if s not in targets:
            raise UsageError(f"unknown service '{s}': not in the targets file")
    plans = []
    for s in services:
        target, entry = targets[s], manifest.databases[s]
        if tools.major < _major(entry.pg_dump_version):
            raise ConnectError(
                f"pg_restore {tools.major} cannot read a dump made by pg_dump "
                f"{entry.pg_dump_version} ('{s}'): install postgresql-client-"
                f"{_major(entry.pg_dump_version)}"
            )
        server = pg.server_version_num(tools, pg.Conn.of(target).to_db(authority.admin_db))
        pg.check_client(tools, server, s)
        admin = authority.check(tools, target)
        exists = pg.database_exists(tools, admin, target.database)
        if exists:
            ntables, nrows = pg.user_table_summary(tools, pg.Conn.of(target))
            if ntables and not force:
                raise RefusedError(
                    f"'{s}' ({target.database}) already has {ntables} table(s), {nrows} with "
                    "rows: restore refused; pass --force to replace it"
                )
        plans.append(_Plan(target, entry, admin, exists))
    return plans


def _restore_one(plan: _Plan, found: Found, tools: pg.Tools, jobs: int, keep_old: bool) -> Restored:
    target, entry, admin = plan.target, plan.entry, plan.admin
    live = target.database
    stamp = now_utc().strftime("%Y%m%d%H%M%S")
    new = pg.scratch_name(live, "restore", stamp)
    log.info("restore %s: %s -> %s (new database %s)", found.name, target.service, live, new)
    pg.restore_dump(tools, admin, target, found.path / entry.dir, new, jobs)
    try:
        counts = pg.table_counts(tools, pg.Conn.of(target).to_db(new))
        mismatch = compare_counts(f"{found.name}/{entry.dir}", entry.tables, counts)
        if mismatch:
            raise VerifyError(f"restored data differs from the backup: {mismatch[0]}")
        if plan.exists:
            old = pg.scratch_name(live, "old", stamp)
            pg.set_allow_connections(tools, admin, live, False)
            try:
                pg.terminate_connections(tools, admin, live)
                pg.swap_databases(tools, admin, live, new, old)
            except BaseException:
                with contextlib.suppress(Exception):
                    pg.set_allow_connections(tools, admin, live, True)
                raise
        else:
            pg.rename_database(tools, admin, new, live)
    except BaseException:
        with contextlib.suppress(Exception):
            pg.drop_database(tools, admin, new)
        raise
    kept: str | None = None
    if plan.exists:
        if keep_old:
            with contextlib.suppress(Exception):
                pg.set_allow_connections(tools, admin, old, True)
            kept = old
        else:
            try:
                pg.drop_database(tools, admin, old)
            except Exception as exc:
                log.warning("restored, but could not drop the previous database %s: %s", old, exc)
                kept = old
    result = Restored(
        service=target.service,
        database=live,
        tables=len(counts),
        rows=sum(counts.values()),
        replaced=plan.exists,
        kept_as=kept,
    )
    log.info("%s", result.describe())
    return result


def restore(
    dest: Path,
    name: str,
    targets: dict[str, Target],
    only: list[str] | None,
    tools: pg.Tools,
    authority: pg.Authority,
    *,
    force: bool,
    keep_old: bool,
    jobs: int,
) -> list[Restored]:
    with locked(dest, "restore"):
        [found] = find_backups(dest, name)
        errors = check_files(found, tools)
        if errors:
            raise VerifyError(f"restore refused, backup {name} fails verification: {errors[0]}")
        plans = _plan(found, targets, only, tools, authority, force)
        done: list[Restored] = []
        for plan in plans:
            try:
                done.append(_restore_one(plan, found, tools, jobs, keep_old))
            except (OperationError, VerifyError, ConnectError) as exc:
                restored = ", ".join(r.service for r in done)
                prefix = f"restored {restored}; " if restored else ""
                cls: type[OperationError | VerifyError | ConnectError] = (
                    ConnectError
                    if isinstance(exc, ConnectError)
                    else VerifyError
                    if isinstance(exc, VerifyError)
                    else OperationError
                )
                raise cls(
                    f"{prefix}restore of '{plan.target.service}' failed, its database is "
                    f"unchanged: {exc}"
                ) from None
        return done
