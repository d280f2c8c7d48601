"""One run at a time per backup directory: flock on `DIR/.lock`, holder info written inside."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from backup.errors import LockHeldError, OperationError

LOCK_NAME = ".lock"


def _holder_text(path: Path) -> str:
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return "another process"
    if not isinstance(info, dict) or not info:
        return "another process"
    return (
        f"pid {info.get('pid', '?')} on {info.get('host', '?')} "
        f"({info.get('command', '?')}, since {info.get('since', '?')})"
    )


@contextlib.contextmanager
def locked(dest: Path, command: str, wait_s: float = 0.0) -> Iterator[None]:
    """Hold the lock of `dest` for the block; LockHeldError names the holder if it is taken."""
    path = dest / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise OperationError(f"cannot open lock file {path}: {exc.strerror}") from None
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockHeldError(
                        f"{dest} is locked by {_holder_text(path)}: wait for it to finish"
                    ) from None
                time.sleep(0.5)
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": command,
            "since": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
