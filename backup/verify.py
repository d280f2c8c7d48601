"""`verify`: every file of a backup is present with the size and sha256 of the manifest, each
dump is readable (`pg_restore --list`), and with `deep` each database restores into a scratch
database on its server whose row counts match the manifest. The result is stored in the
backup's `verified.json`, which `list` shows and `prune` trusts."""

from __future__ import annotations

import logging
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

from backup import compress, pg
from backup.create import iso, now_utc
from backup.errors import UsageError, VerifyError
from backup.fsutil import sha256_file
from backup.manifest import DatabaseEntry, Found, Verification, scan, write_verification
from backup.parallel import run_all
from backup.proc import ProcessError, base_env, run
from backup.targets import Target

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeepOptions:
    targets: dict[str, Target]
    authority: pg.Authority
    jobs: int


def check_files(found: Found, tools: pg.Tools | None) -> list[str]:
    """Errors (each naming the file) of the checksum and readability checks."""
    errors: list[str] = []
    root = found.path
    for service, db in found.manifest.databases.items():
        listed = set()
        for f in db.files:
            listed.add(f.path)
            path = root / f.path
            try:
                size, digest = sha256_file(path)
            except FileNotFoundError:
                errors.append(f"{found.name}/{f.path}: missing")
                continue
            except OSError as exc:
                errors.append(f"{found.name}/{f.path}: unreadable ({exc.strerror})")
                continue
            if size != f.size:
                errors.append(f"{found.name}/{f.path}: size {size} != {f.size} in manifest")
            elif digest != f.sha256:
                errors.append(f"{found.name}/{f.path}: sha256 mismatch (corrupt)")
        db_dir = root / db.dir
        if db_dir.is_dir():
            for r, _dirs, names in os.walk(db_dir):
                for name in names:
                    rel = str((Path(r) / name).relative_to(root))
                    if rel not in listed:
                        errors.append(f"{found.name}/{rel}: not in the manifest")
        if tools is not None and not any(e.startswith(f"{found.name}/{db.dir}/") for e in errors):
            try:
                run(
                    [tools.path("pg_restore"), "--list", str(db_dir)],
                    base_env(),
                    what="pg_restore --list",
                )
            except ProcessError as exc:
                reason = exc.stderr.strip().splitlines()[-1] if exc.stderr.strip() else ""
                errors.append(f"{found.name}/{db.dir}: not readable by pg_restore: {reason}")
        if not db.files:
            errors.append(f"{found.name}: database '{service}' has no files")
    return errors


def check_deep(found: Found, tools: pg.Tools, opts: DeepOptions) -> list[str]:
    """Restore each database into a scratch database and compare row counts (databases side
    by side, within the jobs budget); scratch databases are always dropped."""
    errors: list[str] = []
    work: list[tuple[str, DatabaseEntry, Target]] = []
    for service, db in found.manifest.databases.items():
        target = opts.targets.get(service)
        if target is None:
            errors.append(f"{found.name}: no target for '{service}' in --targets: cannot restore")
        else:
            work.append((service, db, target))
    if any(compress.uses_zstd([f.path for f in db.files]) for _s, db, _t in work):
        compress.zstd_path()  # a clear error before any scratch database is created
    concurrency = max(1, min(opts.jobs, len(work)))
    per_db = max(1, opts.jobs // concurrency)

    def one(item: tuple[str, DatabaseEntry, Target], cancel: threading.Event) -> list[str]:
        service, db, target = item
        admin = opts.authority.check(tools, target)
        scratch = pg.scratch_name(db.database, "verify", secrets.token_hex(4))
        log.info("deep verify %s/%s: restoring into %s", found.name, service, scratch)
        try:
            if cancel.is_set():
                return []
            with compress.readable_dump(
                found.path / db.dir, [f.path for f in db.files], service, found.path.parent
            ) as dump_dir:
                pg.restore_dump(tools, admin, target, dump_dir, scratch, per_db)
            counts = pg.table_counts(tools, pg.Conn.of(target).to_db(scratch))
        except ProcessError as exc:
            return [f"{found.name}/{db.dir}: restore failed: {exc}"]
        finally:
            pg.drop_database(tools, admin, scratch)
        return compare_counts(f"{found.name}/{db.dir}", db.tables, counts)

    outcomes, error = run_all(one, work, concurrency)
    if error is not None:
        raise error
    for o in outcomes:
        errors += o.result or []
    return errors


def compare_counts(where: str, expected: dict[str, int], actual: dict[str, int]) -> list[str]:
    errors = []
    for table in sorted(set(expected) | set(actual)):
        want, got = expected.get(table), actual.get(table)
        if want != got:
            errors.append(f"{where}: table {table} has {got} rows, manifest says {want}")
    return errors


def verify_one(found: Found, tools: pg.Tools | None, deep: DeepOptions | None) -> list[str]:
    log.info("verifying %s%s", found.name, " (deep)" if deep else "")
    errors = check_files(found, tools)
    if deep is not None and not errors:
        assert tools is not None
        errors += check_deep(found, tools, deep)
    result = Verification(
        ok=not errors, deep=deep is not None, verified_at=iso(now_utc()), errors=errors
    )
    try:
        write_verification(found.path, result)
    except OSError as exc:
        log.warning("could not record the verification of %s: %s", found.name, exc.strerror)
    for e in errors:
        log.error("%s", e)
    if not errors:
        log.info("%s: OK", found.name)
    return errors


def find_backups(dest: Path, name: str | None) -> list[Found]:
    if not dest.is_dir():
        raise UsageError(f"backup directory {dest} does not exist")
    found = scan(dest)
    if name is None:
        if not found.backups:
            raise UsageError(f"no backup in {dest}")
        return found.backups
    for f in found.backups:
        if f.name == name:
            return [f]
    why = next((reason for n, reason in found.ignored if n == name), None)
    if why:
        raise VerifyError(f"{name} is not a usable backup: {why}")
    raise UsageError(f"no backup named {name} in {dest} (see `list --dest {dest}`)")


def verify(dest: Path, name: str | None, tools: pg.Tools | None, deep: DeepOptions | None) -> None:
    backups = find_backups(dest, name)
    bad: list[tuple[str, list[str]]] = []
    for found in backups:
        errors = verify_one(found, tools, deep)
        if errors:
            bad.append((found.name, errors))
    if bad:
        _first_name, errors = bad[0]
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        others = f"; {len(bad) - 1} other backup(s) failed too" if len(bad) > 1 else ""
        raise VerifyError(f"verification failed: {errors[0]}{more}{others}")
