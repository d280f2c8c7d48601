"""The scheduled logical backup job (docs/backup.md): its settings and their rule."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from stacks.settings.common import PidsLimit, Resources, StrictModel, reject_if_any


class BackupSettings(StrictModel):
    """The scheduled logical backup job (docs/backup.md)."""

    enabled: bool = False
    """Run the backup job container."""
    image: str | None = None
    """Image with the backup tool (built from backup/Dockerfile); required when enabled."""
    every_hours: int = Field(default=24, ge=1, le=24 * 7)
    """A backup of every database this often."""
    keep_last: int = Field(default=7, ge=1)
    """Backups kept, at least, whatever their age."""
    keep_days: int | None = Field(default=30, ge=1)
    """Older backups beyond `keepLast` are pruned; unset: by count only."""
    resources: Resources = Resources(memory_mb=512, cpus=1.0)
    """The job container's limits."""
    user: str = "dbbackup"
    """The backup image's unprivileged user (backup/Dockerfile)."""
    stop_grace_seconds: int = Field(default=60, ge=5, le=3600)
    """From SIGTERM to SIGKILL: a run in progress aborts, ends its dumps and removes its
    partial backup in that time."""
    pids_limit: PidsLimit = 128
    """Most processes (threads included) the container may run: a fork bomb or a thread leak
    stops there instead of exhausting the host."""

    @model_validator(mode="after")
    def _an_image_to_run(self) -> Self:
        if self.enabled and self.image is None:
            reject_if_any([("image", "required when backup.enabled is true")])
        return self
