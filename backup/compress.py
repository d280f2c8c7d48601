"""How the table data of a dump is compressed.

`gzip:N` is pg_dump's own compression (`--compress=N`, files `N.dat.gz`, format version 1).
`zstd:N` (the default) dumps uncompressed and compresses every data file with the `zstd`
program (files `N.dat.zst`, format version 2): about 30 % smaller than gzip 1 and cheaper in
CPU. PostgreSQL 15's pg_restore cannot read `.zst`, so restore and deep verify first
decompress into a scratch directory (`readable_dump`). `toc.dat` is never compressed, so
`pg_restore --list` reads either kind as it is."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from backup.errors import ConnectError
from backup.fsutil import remove_tree
from backup.proc import base_env, run

ZSTD_SUFFIX = ".zst"
METHODS = ("zstd", "gzip")
LEVELS = {"zstd": (1, 19), "gzip": (0, 9)}
ZSTD_MISSING = (
    "zstd not found: install the Debian package `zstd` (zstd-compressed backups need it), "
    "or create with --compress gzip:1"
)


@dataclass(frozen=True)
class Compression:
    method: str
    level: int

    def __str__(self) -> str:
        return f"{self.method}:{self.level}"

    @property
    def pg_dump_level(self) -> int:
        """The level pg_dump itself compresses with (0: zstd compresses afterwards)."""
        return self.level if self.method == "gzip" else 0

    @classmethod
    def parse(cls, text: str) -> Compression:
        """`zstd`, `zstd:3`, `gzip:1`, or a bare gzip level `0`-`9` (the older option)."""
        method, _, level_text = text.strip().lower().partition(":")
        if method.isdigit() and not level_text:
            method, level_text = "gzip", method
        if method not in METHODS:
            raise ValueError(f"unknown compression {method!r}: use zstd[:LEVEL] or gzip[:LEVEL]")
        lo, hi = LEVELS[method]
        try:
            level = int(level_text) if level_text else DEFAULT_LEVELS[method]
        except ValueError:
            raise ValueError(f"bad level {level_text!r}") from None
        if not lo <= level <= hi:
            raise ValueError(f"{method} level must be {lo}..{hi}")
        return cls(method, level)


# A bare method takes its level here: zstd's own default, and gzip's fastest useful level.
DEFAULT_LEVELS = {"zstd": 3, "gzip": 1}
DEFAULT = Compression("zstd", DEFAULT_LEVELS["zstd"])


def zstd_path() -> str:
    """The zstd program, or a one-line error naming the package."""
    found = shutil.which("zstd")
    if found is None:
        raise ConnectError(ZSTD_MISSING)
    return found


def is_data_file(name: str) -> bool:
    """Files pg_dump -Fd writes table and large-object data into (`3375.dat`, `blob_7.dat`)."""
    return name.endswith(".dat") and name != "toc.dat"


def compress_files(zstd: str, files: Sequence[Path], level: int, threads: int) -> None:
    """Compress each file to `<file>.zst` and remove the original."""
    if not files:
        return
    argv = [zstd, "-q", f"-{level}", f"-T{max(1, threads)}", "--rm", "--no-progress"]
    run([*argv, "--", *map(str, files)], base_env(), what="zstd")


def uses_zstd(paths: Sequence[str]) -> bool:
    return any(p.endswith(ZSTD_SUFFIX) for p in paths)


@contextlib.contextmanager
def readable_dump(
    dump_dir: Path, paths: Sequence[str], label: str, scratch_in: Path
) -> Iterator[Path]:
    """A directory pg_restore can read: `dump_dir` itself for gzip dumps; for zstd dumps a
    scratch directory with the files decompressed, removed afterwards. It is made in
    `scratch_in`, the backup directory, which has room for a dump: not in $TMPDIR, a small
    tmpfs in the hardened backup container. Its name (`.scratch-*.tmp`) is one `list` and
    `prune` pass over."""
    if not uses_zstd(paths):
        yield dump_dir
        return
    zstd = zstd_path()
    scratch = Path(tempfile.mkdtemp(prefix=f".scratch-{label}-", suffix=".tmp", dir=scratch_in))
    try:
        packed: list[str] = []
        for src in sorted(dump_dir.iterdir()):
            if src.name.endswith(ZSTD_SUFFIX):
                packed.append(str(src))
            else:
                shutil.copyfile(src, scratch / src.name)
        if packed:
            run(
                [zstd, "-d", "-q", "--no-progress", f"--output-dir-flat={scratch}", "--", *packed],
                base_env(),
                what="zstd -d",
            )
        yield scratch
    finally:
        remove_tree(scratch)
