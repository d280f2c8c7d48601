"""The settings of one app of the catalogue (gateway, business service or web app), and the
rules on the apps: one entry per app of the catalogue, an image or a build, the platform's
environment names left alone."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from stacks.catalogue import SERVICE_ENV_NAMES, Catalogue
from stacks.settings.common import BuildSettings, PidsLimit, Port, Resources, StrictModel

if TYPE_CHECKING:
    from stacks.settings.platform import PlatformSettings


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


def service_problems(s: PlatformSettings, catalogue: Catalogue) -> list[str]:
    known = catalogue.names()
    problems: list[str] = []
    for name in s.services:
        if name not in known:
            problems.append(f"services.{name}: unknown service; known: {', '.join(known)}")
    for name in known:
        if name not in s.services:
            problems.append(
                f"services.{name}: missing; every service needs an entry with an image or a build"
            )
    for name, svc in s.services.items():
        if (svc.image is None) == (svc.build is None):
            problems.append(
                f"services.{name}: set exactly one of image (a published image) and build "
                "(a source folder to build)"
            )
        if svc.stop_grace_seconds > s.wait_timeout_seconds:
            problems.append(
                f"services.{name}.stopGraceSeconds: {svc.stop_grace_seconds} is longer than "
                f"waitTimeoutSeconds ({s.wait_timeout_seconds}): a deploy would give an old "
                "container longer to finish its requests than a new one to start; keep it within"
            )
        for key in sorted(set(svc.env) & SERVICE_ENV_NAMES):
            problems.append(f"services.{name}.env.{key}: set by the platform; choose another name")
    return problems
