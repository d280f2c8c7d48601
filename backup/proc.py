"""Running child processes: argument lists only (never a shell), secrets only in the child's
environment, stderr captured and redacted, and every live child killed when the tool stops."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence

from backup.errors import OperationError

log = logging.getLogger(__name__)

_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def register_secret(value: str) -> None:
    """Remember a secret so `redact` masks it wherever it might appear."""
    if value:
        with _secrets_lock:
            _secrets.add(value)


def redact(text: str) -> str:
    with _secrets_lock:
        values = sorted(_secrets, key=len, reverse=True)
    for value in values:
        text = text.replace(value, "***")
    return text


class RedactingFilter(logging.Filter):
    """Masks registered secrets in every log record that passes the handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


class ProcessError(OperationError):
    """A child exited non-zero. `stderr` is redacted."""

    def __init__(self, what: str, returncode: int, stderr: str) -> None:
        super().__init__(what)
        self.what = what
        self.returncode = returncode
        self.stderr = stderr

    def __str__(self) -> str:
        tail = " | ".join(line for line in self.stderr.strip().splitlines()[-3:] if line.strip())
        how = f"killed by signal {-self.returncode}" if self.returncode < 0 else "failed"
        return f"{self.what} {how}" + (f": {tail}" if tail else f" (exit {self.returncode})")


_children: set[subprocess.Popen[bytes] | subprocess.Popen[str]] = set()
_children_lock = threading.Lock()


def _track(p: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    with _children_lock:
        _children.add(p)


def _untrack(p: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    with _children_lock:
        _children.discard(p)


def kill_all_children() -> None:
    """Kill every child still running (on a failure, Ctrl-C or SIGTERM)."""
    with _children_lock:
        live = list(_children)
    for p in live:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                p.kill()


def run(
    argv: Sequence[str],
    env: Mapping[str, str],
    *,
    what: str,
    input_text: str | None = None,
    timeout: float | None = None,
) -> str:
    """Run to completion and return stdout (text). Raises ProcessError on a non-zero exit."""
    log.debug("run: %s", " ".join(argv))
    p = subprocess.Popen(
        list(argv),
        env=dict(env),
        stdin=subprocess.PIPE if input_text is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _track(p)
    try:
        out, err = p.communicate(input_text, timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise ProcessError(what, -int(signal.SIGKILL), f"timed out after {timeout:.0f}s") from None
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        _untrack(p)
    if p.returncode != 0:
        raise ProcessError(what, p.returncode, redact(err))
    return out


class Child:
    """A long-running child (pg_dump, pg_restore) whose stderr lines go to `on_line` as they
    come; the last lines are kept for the error message."""

    def __init__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        *,
        what: str,
        on_line: Callable[[str], None] | None = None,
    ) -> None:
        log.debug("start: %s", " ".join(argv))
        self.what = what
        self._tail: deque[str] = deque(maxlen=20)
        self._on_line = on_line
        self._proc = subprocess.Popen(
            list(argv),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
        )
        _track(self._proc)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self._proc.pid

    def _read(self) -> None:
        assert self._proc.stderr is not None
        for raw in self._proc.stderr:
            line = redact(raw.rstrip("\n"))
            self._tail.append(line)
            if self._on_line is not None:
                try:
                    self._on_line(line)
                except Exception:  # a progress callback must never break the dump
                    log.debug("progress callback failed", exc_info=True)

    def poll(self) -> int | None:
        return self._proc.poll()

    def wait(self) -> None:
        """Wait for the exit; raise ProcessError unless it is 0."""
        try:
            code = self._proc.wait()
            self._reader.join(timeout=10)
        finally:
            if self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait()
            _untrack(self._proc)
        if code != 0:
            lines = [ln for ln in self._tail if "error" in ln.lower()] or list(self._tail)
            raise ProcessError(self.what, code, "\n".join(lines))

    def kill(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()


def install_signal_handlers() -> None:
    """SIGTERM behaves like Ctrl-C: the running command unwinds through its `finally` blocks
    (temporary files removed, children killed)."""

    def _term(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _term)


def base_env() -> dict[str, str]:
    """The tool's environment without any PG* connection variable (set explicitly per child)."""
    strip = {
        "PGPASSWORD",
        "PGPASSFILE",
        "PGHOST",
        "PGHOSTADDR",
        "PGPORT",
        "PGUSER",
        "PGDATABASE",
        "PGSERVICE",
        "PGSERVICEFILE",
        "PGOPTIONS",
    }
    return {k: v for k, v in os.environ.items() if k not in strip}
