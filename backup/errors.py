"""Exit codes and the exceptions that carry them. Every failure the tool expects is a
`BackupToolError` with a one-line message (no secrets) and the exit code it maps to."""

from __future__ import annotations

from typing import ClassVar

OK = 0
INTERNAL_ERROR = 1
USAGE = 2
CANNOT_CONNECT = 3
FAILED = 4
VERIFY_FAILED = 5
LOCK_HELD = 6
REFUSED = 7
UNHEALTHY = 8

EXIT_CODES: dict[int, str] = {
    OK: "success",
    INTERNAL_ERROR: "unexpected internal error (a bug: rerun with --verbose and report it)",
    USAGE: "usage error: bad option, bad targets file, unknown service, missing directory",
    CANNOT_CONNECT: "cannot connect to a database server (host, port, password) or the"
    " PostgreSQL client (or zstd) is missing or too old",
    FAILED: "backup, restore or prune failed (dump/restore error, disk, permissions)",
    VERIFY_FAILED: "verification failed: a file is missing or corrupt, or row counts differ",
    LOCK_HELD: "another run holds the lock on the backup directory",
    REFUSED: "restore refused: the target database already holds tables (use --force)",
    UNHEALTHY: "status: the last scheduled run failed, is missing or is too old",
}


class BackupToolError(Exception):
    """An expected failure: printed as one line, mapped to `exit_code`."""

    exit_code: ClassVar[int] = FAILED


class UsageError(BackupToolError):
    exit_code = USAGE


class ConnectError(BackupToolError):
    exit_code = CANNOT_CONNECT


class OperationError(BackupToolError):
    exit_code = FAILED


class VerifyError(BackupToolError):
    exit_code = VERIFY_FAILED


class LockHeldError(BackupToolError):
    exit_code = LOCK_HELD


class RefusedError(BackupToolError):
    exit_code = REFUSED


class UnhealthyError(BackupToolError):
    exit_code = UNHEALTHY


def exit_code_table() -> str:
    """The exit codes as text, for --help and the docs."""
    return "\n".join(f"  {code}  {text}" for code, text in EXIT_CODES.items())
