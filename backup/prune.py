"""`prune`: retention. Keeps the newest `keep_last` backups, and with `keep_days` also every
backup younger than that; never deletes the newest backup whose last verification passed, and
never touches what it cannot identify (a directory whose name does not match or whose manifest
is not valid). Leftovers of interrupted runs (`.incomplete-*`, `.deleting-*`) are removed: the
lock guarantees no other run is writing them."""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from backup.errors import OperationError, UsageError
from backup.fsutil import fsync_dir, remove_tree
from backup.lock import locked
from backup.manifest import DELETING_PREFIX, INCOMPLETE_PREFIX, name_time, scan

log = logging.getLogger(__name__)


@dataclass
class PrunePlan:
    keep: list[tuple[str, str]] = field(default_factory=list)  # (name, why)
    delete: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)


def plan_prune(dest: Path, keep_last: int, keep_days: float | None, now: datetime) -> PrunePlan:
    found = scan(dest)
    plan = PrunePlan()
    newest_verified = next(
        (b.name for b in found.backups if b.verification is not None and b.verification.ok),
        None,
    )
    for i, b in enumerate(found.backups):
        when = name_time(b.name)
        if i < keep_last:
            plan.keep.append((b.name, f"among the newest {keep_last}"))
        elif keep_days is not None and when is not None and now - when < timedelta(days=keep_days):
            plan.keep.append((b.name, f"younger than {keep_days:g} days"))
        elif b.name == newest_verified:
            plan.keep.append((b.name, "newest verified backup"))
        else:
            plan.delete.append(b.name)
    plan.leftovers = [
        name
        for name, _why in found.ignored
        if name.startswith((INCOMPLETE_PREFIX, DELETING_PREFIX))
    ]
    return plan


def prune(
    dest: Path, keep_last: int, keep_days: float | None, dry_run: bool, now: datetime
) -> PrunePlan:
    if keep_last < 1:
        raise UsageError("--keep-last must be at least 1")
    if keep_days is not None and keep_days <= 0:
        raise UsageError("--keep-days must be positive")
    if not dest.is_dir():
        raise UsageError(f"backup directory {dest} does not exist")
    with locked(dest, "prune"):
        plan = plan_prune(dest, keep_last, keep_days, now)
        verb = "would delete" if dry_run else "deleting"
        for name in plan.delete:
            log.info("%s %s", verb, name)
            if dry_run:
                continue
            try:
                # out of sight first, so a half-deleted backup never looks complete
                gone = dest / f"{DELETING_PREFIX}{name}-{os.getpid()}"
                (dest / name).rename(gone)
                fsync_dir(dest)
                remove_tree(gone)
                with contextlib.suppress(FileNotFoundError):
                    (dest / f"{name}.tar.gz").unlink()
            except OSError as exc:
                raise OperationError(f"cannot delete {dest / name}: {exc.strerror}") from None
        for name in plan.leftovers:
            log.info("%s leftover %s", verb, name)
            if not dry_run:
                try:
                    remove_tree(dest / name)
                except OSError as exc:
                    raise OperationError(f"cannot delete {dest / name}: {exc.strerror}") from None
        return plan
