"""The settings of one app of the catalogue: gateway, business service or web app."""

from __future__ import annotations

from pydantic import Field

from stacks.settings.common import BuildSettings, PidsLimit, Port, Resources, StrictModel


class ServiceSettings(StrictModel):
    """One app of the catalogue (the gateway, a business service or a web app)."""

    image: str | None = Field(default=None, min_length=1)
    """A published image; exactly one of `image` and `build`."""
    build: BuildSettings | None = None
    """Build the image from source instead (dev)."""
    host_port: Port | None = None
    """Published on `publishIp`; None keeps the service private."""
    resources: Resources = Resources()
    """The app container's limits."""
    user: str = "1000:1000"
    """Unprivileged user the container runs as when `hardening.runAsNonRoot` is on."""
    env: dict[str, str] = Field(default_factory=dict)
    """Extra non-secret environment for the app (feature flags, log level)."""
    health_command: tuple[str, ...] | None = None
    """Overrides the default `node` probe of `GET /health`, in Docker's `CMD` form."""
    stop_grace_seconds: int = Field(default=30, ge=1, le=3600)
    """From SIGTERM to SIGKILL when the container is stopped, replaced or removed: time to
    finish in-flight requests."""
    pids_limit: PidsLimit = 256
    """Most processes (threads included) the container may run: a fork bomb or a thread leak
    stops there instead of exhausting the host."""
    replicas: int = Field(default=1, ge=1, le=100)
    """Tasks of the app on a swarm (`engine: swarm`); one Docker host runs one."""
