"""The backup manifest (`manifest.json`), the verification record (`verified.json`), and how a
backup directory is recognised. Only a directory whose name matches NAME_RE and which holds a
valid manifest is a backup; everything else is left alone."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backup.fsutil import atomic_write_json

FORMAT = "ecommerce-backup"
# 1: table data gzip-compressed by pg_dump (`N.dat.gz`); 2: also zstd-compressed data files
# (`N.dat.zst`), which tools that know only version 1 cannot restore. A backup is written with
# the lowest version that describes it, so gzip backups stay readable by older tools.
FORMAT_VERSION = 2
MANIFEST = "manifest.json"
VERIFIED = "verified.json"
NAME_RE = re.compile(r"^(\d{8}_\d{6})(?:_(\d+))?$")
INCOMPLETE_PREFIX = ".incomplete-"
DELETING_PREFIX = ".deleting-"


class ManifestError(Exception):
    pass


@dataclass(frozen=True)
class FileEntry:
    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class DatabaseEntry:
    service: str
    database: str
    user: str
    dir: str
    server_version: str
    server_version_num: int
    pg_dump_version: str
    compression: str
    files: list[FileEntry]
    tables: dict[str, int]
    database_size: int
    duration_s: float

    @property
    def dump_size(self) -> int:
        return sum(f.size for f in self.files)


@dataclass(frozen=True)
class Manifest:
    name: str
    tool_version: str
    created_at: str
    finished_at: str
    duration_s: float
    databases: dict[str, DatabaseEntry]

    @property
    def size(self) -> int:
        return sum(db.dump_size for db in self.databases.values())

    @property
    def format_version(self) -> int:
        zstd = any(d.compression.startswith("zstd") for d in self.databases.values())
        return 2 if zstd else 1

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": self.format_version,
            "name": self.name,
            "tool_version": self.tool_version,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
            "duration_s": round(self.duration_s, 3),
            "databases": {
                s: {
                    "database": d.database,
                    "user": d.user,
                    "dir": d.dir,
                    "server_version": d.server_version,
                    "server_version_num": d.server_version_num,
                    "pg_dump_version": d.pg_dump_version,
                    "format": "directory",
                    "compression": d.compression,
                    "database_size": d.database_size,
                    "duration_s": round(d.duration_s, 3),
                    "tables": d.tables,
                    "files": [
                        {"path": f.path, "size": f.size, "sha256": f.sha256} for f in d.files
                    ],
                }
                for s, d in self.databases.items()
            },
        }


def _get(obj: dict[str, Any], key: str, typ: type | tuple[type, ...], where: str) -> Any:
    if key not in obj or not isinstance(obj[key], typ) or isinstance(obj[key], bool):
        raise ManifestError(f"{where}: missing or invalid '{key}'")
    return obj[key]


def _safe_relpath(path: str, where: str) -> str:
    p = Path(path)
    if p.is_absolute() or ".." in p.parts or not path:
        raise ManifestError(f"{where}: unsafe path {path!r}")
    return path


def parse_manifest(data: Any) -> Manifest:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ManifestError("not an ecommerce-backup manifest")
    version = _get(data, "format_version", int, "manifest")
    if version > FORMAT_VERSION:
        raise ManifestError(f"format_version {version} is newer than this tool understands")
    dbs: dict[str, DatabaseEntry] = {}
    raw_dbs = _get(data, "databases", dict, "manifest")
    if not raw_dbs:
        raise ManifestError("manifest lists no database")
    for service, raw in raw_dbs.items():
        where = f"database '{service}'"
        if not isinstance(raw, dict):
            raise ManifestError(f"{where}: not an object")
        files = []
        for f in _get(raw, "files", list, where):
            if not isinstance(f, dict):
                raise ManifestError(f"{where}: bad file entry")
            files.append(
                FileEntry(
                    path=_safe_relpath(_get(f, "path", str, where), where),
                    size=_get(f, "size", int, where),
                    sha256=_get(f, "sha256", str, where),
                )
            )
        tables = _get(raw, "tables", dict, where)
        dbs[service] = DatabaseEntry(
            service=service,
            database=_get(raw, "database", str, where),
            user=_get(raw, "user", str, where),
            dir=_safe_relpath(_get(raw, "dir", str, where), where),
            server_version=_get(raw, "server_version", str, where),
            server_version_num=_get(raw, "server_version_num", int, where),
            pg_dump_version=_get(raw, "pg_dump_version", str, where),
            compression=_get(raw, "compression", str, where),
            files=files,
            tables={str(k): int(v) for k, v in tables.items()},
            database_size=_get(raw, "database_size", int, where),
            duration_s=float(_get(raw, "duration_s", (int, float), where)),
        )
    return Manifest(
        name=_get(data, "name", str, "manifest"),
        tool_version=_get(data, "tool_version", str, "manifest"),
        created_at=_get(data, "created_at", str, "manifest"),
        finished_at=_get(data, "finished_at", str, "manifest"),
        duration_s=float(_get(data, "duration_s", (int, float), "manifest")),
        databases=dbs,
    )


def read_manifest(backup_dir: Path) -> Manifest:
    try:
        data = json.loads((backup_dir / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"{backup_dir.name}/{MANIFEST} is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{backup_dir.name}/{MANIFEST} is unreadable: {exc}") from None
    manifest = parse_manifest(data)
    if manifest.name != backup_dir.name:
        raise ManifestError(f"{backup_dir.name}/{MANIFEST} names another backup")
    return manifest


def write_manifest(backup_dir: Path, manifest: Manifest) -> None:
    atomic_write_json(backup_dir / MANIFEST, manifest.to_json())


def name_time(name: str) -> datetime | None:
    m = NAME_RE.match(name)
    if not m:
        return None
    try:
        return datetime.strptime(m.group(1), "%Y%m%d_%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def sort_key(name: str) -> tuple[str, int]:
    m = NAME_RE.match(name)
    assert m
    return m.group(1), int(m.group(2) or 0)


@dataclass(frozen=True)
class Verification:
    ok: bool
    deep: bool
    verified_at: str
    errors: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "deep": self.deep,
            "verified_at": self.verified_at,
            "errors": self.errors,
        }


def read_verification(backup_dir: Path) -> Verification | None:
    try:
        data = json.loads((backup_dir / VERIFIED).read_text(encoding="utf-8"))
        return Verification(
            ok=bool(data["ok"]),
            deep=bool(data["deep"]),
            verified_at=str(data["verified_at"]),
            errors=[str(e) for e in data.get("errors", [])],
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_verification(backup_dir: Path, result: Verification) -> None:
    atomic_write_json(backup_dir / VERIFIED, result.to_json())


@dataclass(frozen=True)
class Found:
    """A backup found in DIR."""

    path: Path
    manifest: Manifest
    verification: Verification | None

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class Scan:
    backups: list[Found]  # newest first
    ignored: list[tuple[str, str]]  # (entry name, why it is not a backup)


def scan(dest: Path) -> Scan:
    """Backups in `dest`, newest first, and the entries that are not (with the reason)."""
    backups: list[Found] = []
    ignored: list[tuple[str, str]] = []
    for entry in sorted(dest.iterdir()):
        name = entry.name
        if name == ".lock" or (name.startswith(".") and name.endswith(".tmp")):
            continue
        if name.startswith(INCOMPLETE_PREFIX):
            ignored.append((name, "incomplete (an interrupted create), ignored"))
            continue
        if name.startswith(DELETING_PREFIX):
            ignored.append((name, "partly deleted by an interrupted prune, ignored"))
            continue
        if entry.is_file() and name.endswith(".tar.gz") and NAME_RE.match(name[:-7]):
            continue  # archive of a backup: reported with it
        if not entry.is_dir() or entry.is_symlink() or not NAME_RE.match(name):
            if name not in ("last-run.json",):
                ignored.append((name, "not a backup (unknown name), ignored"))
            continue
        try:
            manifest = read_manifest(entry)
        except ManifestError as exc:
            ignored.append((name, f"no valid manifest ({exc}), ignored"))
            continue
        backups.append(Found(entry, manifest, read_verification(entry)))
    backups.sort(key=lambda f: sort_key(f.name), reverse=True)
    return Scan(backups, ignored)
