"""The private keys of pgBackRest's TLS (the off-host repository, docs/pitr.md), where it accepts
them: pgBackRest refuses a key file that its group or others may read, and the platform writes
every configuration file readable by all (one file set per consumer, whatever its user's uid).
So each container copies the keys beside its configuration into a folder of its own tmpfs that
only its user reads, before anything reads them (pitr/entrypoint.sh runs `install-keys`)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

KEY_SUFFIX = ".key"


def install_keys(source: Path, target: Path) -> list[str]:
    """Copy every `*.key` of `source` into `target` (made 0700), each 0600, owned by whoever
    runs this; the names copied. Nothing to copy: nothing made."""
    keys = sorted(p for p in source.glob(f"*{KEY_SUFFIX}") if p.is_file())
    if not keys:
        return []
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    target.chmod(0o700)
    for key in keys:
        copy = target / key.name
        # Written under a private mode from the first byte, not chmod-ed after.
        fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out, key.open("rb") as src:
            shutil.copyfileobj(src, out)
        copy.chmod(0o600)
    return [key.name for key in keys]
