"""`restore`: put databases back from a verified backup without ever losing the current data.

A database that exists and has no table yet (a fresh deployment's) is restored into in place,
in one transaction: a failure leaves it as it was, and the service's own role, which owns it,
needs no CREATEDB. Any other database is restored into a new database beside the live one
(`<db>_restore_<ts>`), checked against the manifest's row counts, and only then swapped in by
renames in one transaction (other sessions terminated first); that needs a role that may
create databases. A failure anywhere before the swap drops the new database and leaves the
live one untouched. A live database that has any user table is replaced only with --force;
the replaced database is dropped after the swap unless --keep-old, which keeps it as
`<db>_old_<ts>`."""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from backup import compress, pg
from backup.create import now_utc
from backup.errors import ConnectError, OperationError, RefusedError, UsageError, VerifyError
from backup.lock import locked
from backup.manifest import DatabaseEntry, Found
from backup.parallel import run_all
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
    empty: bool = False
    """It exists and has no user table: restored into in place, in one transaction."""


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
        exists = pg.database_exists(tools, authority.admin(target), target.database)
        ntables = 0
        if exists:
            ntables, nrows = pg.user_table_summary(tools, pg.Conn.of(target))
            if ntables and not force:
                raise RefusedError(
                    f"'{s}' ({target.database}) already has {ntables} table(s), {nrows} with "
                    "rows: restore refused; pass --force to replace it"
                )
        if exists and not ntables:
            plans.append(_Plan(target, entry, authority.admin(target), True, empty=True))
        else:  # restored beside, then swapped in: creating a database needs CREATEDB
            plans.append(_Plan(target, entry, authority.check(tools, target), exists))
    return plans


def _restore_new(plan: _Plan, found: Found, tools: pg.Tools, jobs: int, stamp: str) -> str:
    """Restore into a new database beside the live one and check its row counts; returns the
    new database's name. On failure the new database is dropped."""
    target, entry, admin = plan.target, plan.entry, plan.admin
    new = pg.scratch_name(target.database, "restore", stamp)
    log.info("restore %s: %s into new database %s", found.name, target.service, new)
    files = [f.path for f in entry.files]
    with compress.readable_dump(
        found.path / entry.dir, files, target.service, found.path.parent
    ) as dump_dir:
        pg.restore_dump(tools, admin, target, dump_dir, new, jobs)
    try:
        counts = pg.table_counts(tools, pg.Conn.of(target).to_db(new))
        mismatch = compare_counts(f"{found.name}/{entry.dir}", entry.tables, counts)
        if mismatch:
            raise VerifyError(f"restored data differs from the backup: {mismatch[0]}")
    except BaseException:
        with contextlib.suppress(Exception):
            pg.drop_database(tools, admin, new)
        raise
    return new


def _restore_in_place(plan: _Plan, found: Found, tools: pg.Tools) -> Restored:
    """Restore into the existing empty database in one transaction, then check row counts."""
    target, entry = plan.target, plan.entry
    log.info(
        "restore %s: %s into its empty database %s", found.name, target.service, target.database
    )
    files = [f.path for f in entry.files]
    with compress.readable_dump(
        found.path / entry.dir, files, target.service, found.path.parent
    ) as dump_dir:
        try:
            pg.restore_into_empty(tools, plan.admin, target, dump_dir)
        except (OperationError, ConnectError) as exc:
            raise _wrap(
                exc, f"restore into {target.database} rolled back, it is as it was (empty): {exc}"
            ) from None
    counts = pg.table_counts(tools, pg.Conn.of(target))
    mismatch = compare_counts(f"{found.name}/{entry.dir}", entry.tables, counts)
    if mismatch:  # committed already: nothing it held is lost (it was empty), but say so
        raise VerifyError(
            f"restored into {target.database} (it was empty), but its row counts differ from "
            f"the backup: {mismatch[0]}; it holds the restored data"
        )
    result = Restored(
        target.service,
        target.database,
        len(entry.tables),
        sum(entry.tables.values()),
        replaced=False,
        kept_as=None,
    )
    log.info("%s", result.describe())
    return result


def _swap(plan: _Plan, new: str, tools: pg.Tools, keep_old: bool, stamp: str) -> Restored:
    """Put the new database in place of the live one (renames in one transaction)."""
    target, admin = plan.target, plan.admin
    live = target.database
    old = pg.scratch_name(live, "old", stamp)
    try:
        if plan.exists:
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
    tables = plan.entry.tables
    result = Restored(
        service=target.service,
        database=live,
        tables=len(tables),
        rows=sum(tables.values()),
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
        if any(compress.uses_zstd([f.path for f in p.entry.files]) for p in plans):
            compress.zstd_path()  # a clear error before any database is created
        stamp = now_utc().strftime("%Y%m%d%H%M%S")
        concurrency = max(1, min(jobs, len(plans)))
        per_db = max(1, jobs // concurrency)

        def restore_new(plan: _Plan, cancel: threading.Event) -> str:
            if cancel.is_set():
                raise OperationError("cancelled")
            return _restore_new(plan, found, tools, per_db, stamp)

        # phase 1, all databases side by side: nothing live is touched yet
        beside = [p for p in plans if not p.empty]
        order = sorted(beside, key=lambda p: p.entry.database_size, reverse=True)
        outcomes, error = run_all(restore_new, order, concurrency)
        if error is not None:
            for o in outcomes:
                if o.result is not None:
                    with contextlib.suppress(Exception):
                        pg.drop_database(tools, o.item.admin, o.result)
            failed = next(o.item.target.service for o in outcomes if o.error is error)
            raise _wrap(error, f"restore of '{failed}' failed, no database was changed: {error}")
        new_names = {o.item.target.service: o.result for o in outcomes if o.result}
        # phase 2, one database after the other: first the empty databases, each filled in one
        # transaction, then the quick renames; so a failure in the first part has swapped
        # nothing in yet
        done: list[Restored] = []
        ordered = [p for p in plans if p.empty] + [p for p in plans if not p.empty]
        for i, plan in enumerate(ordered):
            try:
                if plan.empty:
                    done.append(_restore_in_place(plan, found, tools))
                else:
                    new = new_names[plan.target.service]
                    done.append(_swap(plan, new, tools, keep_old, stamp))
            except BaseException as exc:
                for later in ordered[i + 1 :]:
                    if not later.empty:
                        with contextlib.suppress(Exception):
                            pg.drop_database(tools, later.admin, new_names[later.target.service])
                restored = ", ".join(r.service for r in done)
                prefix = f"restored {restored}; " if restored else ""
                service = plan.target.service
                if plan.empty:
                    message = f"{prefix}'{service}': {exc}; the databases after it are unchanged"
                else:
                    message = (
                        f"{prefix}putting '{service}' in place failed, it and the rest "
                        f"are unchanged: {exc}"
                    )
                raise _wrap(exc, message) from None
        return done


def _wrap(exc: BaseException, message: str) -> BaseException:
    """The same kind of failure (exit code) with a message that says what was changed."""
    if isinstance(exc, ConnectError):
        return ConnectError(message)
    if isinstance(exc, VerifyError):
        return VerifyError(message)
    if isinstance(exc, OperationError):
        return OperationError(message)
    return exc
