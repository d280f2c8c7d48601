"""`list`: the backups of a directory, newest first, with size, databases and verification."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from backup.errors import UsageError
from backup.manifest import Scan, scan
from backup.progress import human


def list_backups(dest: Path) -> Scan:
    if not dest.is_dir():
        raise UsageError(f"backup directory {dest} does not exist")
    return scan(dest)


def as_json(found: Scan) -> dict[str, Any]:
    return {
        "backups": [
            {
                "name": b.name,
                "path": str(b.path),
                "created_at": b.manifest.created_at,
                "size": b.manifest.size,
                "databases": sorted(b.manifest.databases),
                "archive": (b.path.parent / f"{b.name}.tar.gz").is_file(),
                "verification": b.verification.to_json() if b.verification else None,
            }
            for b in found.backups
        ],
        "ignored": [{"name": n, "reason": why} for n, why in found.ignored],
    }


def as_text(found: Scan) -> str:
    lines = []
    if found.backups:
        lines.append(f"{'BACKUP':<20} {'SIZE':>10}  {'VERIFIED':<28} DATABASES")
    for b in found.backups:
        v = b.verification
        if v is None:
            state = "never"
        else:
            state = ("ok" if v.ok else "FAILED") + (" deep" if v.deep else "") + f" {v.verified_at}"
        archive = " +tar.gz" if (b.path.parent / f"{b.name}.tar.gz").is_file() else ""
        lines.append(
            f"{b.name:<20} {human(b.manifest.size):>10}  {state:<28} "
            f"{', '.join(sorted(b.manifest.databases))}{archive}"
        )
    if not found.backups:
        lines.append("no backups")
    for name, why in found.ignored:
        lines.append(f"{name}: {why}")
    return "\n".join(lines)
