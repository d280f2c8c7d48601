"""The failures of the PITR tool, each with its exit code and a one-line message."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_VERIFY = 4
EXIT_PASSPHRASE = 5
EXIT_UNHEALTHY = 6


class PitrError(Exception):
    exit_code = EXIT_FAILED


class UsageError(PitrError):
    exit_code = EXIT_USAGE


class RefusedError(PitrError):
    """Doing it would lose data; the message says which flag allows it."""

    exit_code = EXIT_REFUSED


class VerifyError(PitrError):
    """The repository is damaged: a backup or WAL file fails its checksum."""

    exit_code = EXIT_VERIFY


class PassphraseError(PitrError):
    """The repository cannot be decrypted with the passphrase given."""

    exit_code = EXIT_PASSPHRASE


class UnhealthyError(PitrError):
    """The health check's verdict: archiving, backups or drills are failing or overdue."""

    exit_code = EXIT_UNHEALTHY


def last_line(text: str) -> str:
    """The last line with something on it: what a failed command said last."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
