"""`create`: dump the databases into a new backup directory, atomically.

The backup is built under `.incomplete-<name>-<pid>`, every file fsynced and hashed into the
manifest, then renamed to `<name>`: a directory with a name like 20250922_135038 and a valid
manifest is complete by construction. Each database is dumped with pg_dump's directory format
(parallel jobs) from an exported snapshot that the exact row counts also read; its data files are
then compressed with zstd (or by pg_dump with gzip: backup/compress.py)."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tarfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from backup import __version__, compress, pg
from backup.compress import Compression
from backup.errors import OperationError
from backup.fsutil import fsync_dir, hash_and_sync, remove_tree, tree_size
from backup.lock import locked
from backup.manifest import (
    INCOMPLETE_PREFIX,
    DatabaseEntry,
    FileEntry,
    Manifest,
    write_manifest,
)
from backup.parallel import run_all
from backup.proc import Child, ProcessError
from backup.progress import Progress, Task, human
from backup.targets import Target

log = logging.getLogger(__name__)

DEFAULT_COMPRESSION = compress.DEFAULT  # zstd 3: measured, docs/backup.md "Performance"
_DUMPING = re.compile(r'dumping contents of table "(.+)"')
_FINISHED = re.compile(r"finished item \d+ TABLE DATA (.+)$")


@dataclass(frozen=True)
class CreateResult:
    path: Path
    manifest: Manifest
    archive: Path | None


def now_utc() -> datetime:
    return datetime.now(UTC)


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def ensure_dest(dest: Path) -> None:
    """Create the backup directory if needed; a clear error if it cannot be written."""
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OperationError(
            f"cannot create backup directory {dest}: {exc.strerror}: choose a writable --dest"
        ) from None
    if not dest.is_dir():
        raise OperationError(f"backup directory {dest} is not a directory")
    if not os.access(dest, os.W_OK | os.X_OK):
        raise OperationError(f"backup directory {dest} is not writable by this user")


def unique_name(dest: Path, when: datetime) -> str:
    base = when.strftime("%Y%m%d_%H%M%S")
    name, n = base, 0
    while (dest / name).exists() or (dest / f"{name}.tar.gz").exists():
        n += 1
        name = f"{base}_{n}"
    return name


class _TableProgress:
    """Turns pg_dump --verbose lines into a fraction of the table bytes dumped."""

    def __init__(self, task: Task, sizes: dict[str, int], parallel: bool) -> None:
        self.task = task
        self.sizes = sizes
        self.total = max(1, sum(sizes.values()))
        self.parallel = parallel
        self.started: list[str] = []
        self.done: set[str] = set()
        self._lock = threading.Lock()

    def _mark(self, key: str) -> None:
        if key in self.sizes:
            self.done.add(key)

    def line(self, line: str) -> None:
        with self._lock:
            m = _DUMPING.search(line)
            if m:
                if not self.parallel:
                    for key in self.started:
                        self._mark(key)
                self.started.append(m.group(1))
            m = _FINISHED.search(line)
            if m:
                rel = m.group(1).strip()
                for key in self.started:
                    if key not in self.done and key.split(".", 1)[-1] == rel:
                        self._mark(key)
                        break
            self.task.update(sum(self.sizes[k] for k in self.done) / self.total)


def _dump_one(
    target: Target,
    work: Path,
    tools: pg.Tools,
    server_num: int,
    jobs: int,
    compression: Compression,
    task: Task,
    progress: Progress,
    cancel: threading.Event,
) -> DatabaseEntry:
    if cancel.is_set():
        raise OperationError("cancelled")
    conn = pg.Conn.of(target)
    out = work / target.service
    t0 = time.monotonic()
    task.written_fn = lambda: tree_size(out)
    progress.begin(task)
    try:
        with pg.snapshot(tools, conn) as snap:
            db_size, sizes = pg.table_sizes(tools, conn)
            tracker = _TableProgress(task, sizes, parallel=jobs > 1)
            argv = [
                tools.path("pg_dump"),
                "--format=directory",
                f"--jobs={jobs}",
                f"--compress={compression.pg_dump_level}",
                "--verbose",
                "--no-sync",
                f"--snapshot={snap}",
                f"--file={out}",
            ]
            child = Child(
                argv, conn.env(), what=f"pg_dump of {target.describe()}", on_line=tracker.line
            )
            try:
                # a failure elsewhere may have cancelled the run while this one started
                if cancel.is_set():
                    raise OperationError("cancelled")
                counts = pg.table_counts(tools, conn, snap)
                child.wait()
            except BaseException:
                child.kill()
                raise
        if compression.method == "zstd":
            data = sorted(p for p in out.iterdir() if compress.is_data_file(p.name))
            compress.compress_files(compress.zstd_path(), data, compression.level, jobs)
        files: list[FileEntry] = []
        for root, _dirs, names in os.walk(out):
            for fname in sorted(names):
                fpath = Path(root) / fname
                size, digest = hash_and_sync(fpath)
                files.append(FileEntry(str(fpath.relative_to(work)), size, digest))
            fsync_dir(Path(root))
    except ProcessError as exc:
        progress.end(task, False, "")
        raise pg.classify(conn, exc) from None
    except BaseException:
        progress.end(task, False, "")
        raise
    duration = time.monotonic() - t0
    entry = DatabaseEntry(
        service=target.service,
        database=target.database,
        user=target.user,
        dir=target.service,
        server_version=pg.version_string(server_num),
        server_version_num=server_num,
        pg_dump_version=tools.version,
        compression=str(compression),
        files=files,
        tables=counts,
        database_size=db_size,
        duration_s=duration,
    )
    progress.end(
        task,
        True,
        f"{len(counts)} tables, {sum(counts.values())} rows, {human(entry.dump_size)} "
        f"in {duration:.1f}s",
    )
    return entry


def preflight(targets: list[Target], tools: pg.Tools) -> tuple[dict[str, int], dict[str, int]]:
    """Connect to every database and check the client version before writing anything.
    Returns the server version numbers and database sizes."""
    versions: dict[str, int] = {}
    sizes: dict[str, int] = {}
    for t in targets:
        num, size = pg.server_info(tools, pg.Conn.of(t))
        pg.check_client(tools, num, t.service)
        versions[t.service] = num
        sizes[t.service] = size
    return versions, sizes


def create_backup(
    targets: list[Target],
    dest: Path,
    tools: pg.Tools,
    *,
    jobs: int,
    compression: Compression = DEFAULT_COMPRESSION,
    archive: bool = False,
    bars: bool = False,
) -> CreateResult:
    ensure_dest(dest)
    if compression.method == "zstd":
        compress.zstd_path()  # before anything is written
    with locked(dest, "create"):
        versions, sizes = preflight(targets, tools)
        started = now_utc()
        t0 = time.monotonic()
        name = unique_name(dest, started)
        work = dest / f"{INCOMPLETE_PREFIX}{name}-{os.getpid()}"
        try:
            work.mkdir()
        except OSError as exc:
            raise OperationError(f"cannot write in {dest}: {exc.strerror}") from None
        log.info(
            "creating backup %s of %s in %s", name, ", ".join(t.service for t in targets), dest
        )
        try:
            concurrency = max(1, min(jobs, len(targets)))
            per_dump = max(1, jobs // concurrency)
            with Progress("dump", bars) as progress:
                tasks = {t.service: progress.task(t.service) for t in targets}

                def dump(t: Target, cancel: threading.Event) -> DatabaseEntry:
                    return _dump_one(
                        t,
                        work,
                        tools,
                        versions[t.service],
                        per_dump,
                        compression,
                        tasks[t.service],
                        progress,
                        cancel,
                    )

                # largest first, so the small ones fill in beside it
                order = sorted(targets, key=lambda t: sizes[t.service], reverse=True)
                outcomes, error = run_all(dump, order, concurrency)
            if error is not None:
                raise error
            entries = {o.item.service: o.result for o in outcomes if o.result is not None}
            manifest = Manifest(
                name=name,
                tool_version=__version__,
                created_at=iso(started),
                finished_at=iso(now_utc()),
                duration_s=time.monotonic() - t0,
                databases={t.service: entries[t.service] for t in targets},
            )
            write_manifest(work, manifest)
            fsync_dir(work)
            final = dest / name
            work.rename(final)
            fsync_dir(dest)
        except OSError as exc:
            raise OperationError(f"writing backup {name} failed: {exc}") from None
        finally:
            if work.exists():
                remove_tree(work)
        log.info(
            "backup %s complete: %d databases, %s, %.1fs",
            name,
            len(entries),
            human(manifest.size),
            manifest.duration_s,
        )
        archive_path = make_archive(dest, name) if archive else None
        return CreateResult(final, manifest, archive_path)


def make_archive(dest: Path, name: str) -> Path:
    """`<name>.tar.gz` of the backup directory, built under a temporary name then renamed."""
    final = dest / f"{name}.tar.gz"
    tmp = dest / f"{INCOMPLETE_PREFIX}{name}.tar.gz-{os.getpid()}"
    try:
        with (
            tmp.open("wb") as raw,
            tarfile.open(fileobj=raw, mode="w:gz", compresslevel=1) as tar,
        ):
            tar.add(dest / name, arcname=name)
        with tmp.open("rb") as f:
            os.fsync(f.fileno())
        tmp.rename(final)
        fsync_dir(dest)
    except OSError as exc:
        raise OperationError(f"writing archive {final.name} failed: {exc}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    log.info("archive %s written (%s)", final, human(final.stat().st_size))
    return final
