"""How every workload of a stack runs, whatever the engine: security, logs, restarts and health
timing, from the stack's settings, decided once for every workload alike."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from stacks.settings import Hardening, HealthCheck, Logs

TMPFS_SIZE_MB = 64
"""Writable scratch space per path on a read-only root."""
TMPFS_OPTIONS = f"rw,noexec,nosuid,size={TMPFS_SIZE_MB}m"
"""noexec/nosuid: nothing should run from there."""


@dataclass(frozen=True)
class RuntimeProfile:
    """The stack-wide part of every workload's definition."""

    hardening: Hardening
    logs: Logs
    restart: str
    health: HealthCheck
    wait_timeout_seconds: int
    labels: Mapping[str, str] = field(default_factory=dict)
