"""The settings of one app of the catalogue (gateway, business service or web app), and the
rules on the apps: one entry per app of the catalogue, an image or a build, the platform's
environment names left alone."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import AfterValidator, Field, ValidationInfo, model_validator

from stacks.catalogue import SERVICE_ENV_NAMES
from stacks.settings.common import (
    BuildSettings,
    PidsLimit,
    Port,
    Problem,
    Resources,
    StrictModel,
    catalogue_of,
    reject_if_any,
)


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
    """Tasks of the app on a swarm (`engine: swarm`), never two on one node; 2 or more in
    prod. One Docker host runs one."""

    @model_validator(mode="after")
    def _one_image_and_its_own_env(self) -> Self:
        problems: list[Problem] = []
        if (self.image is None) == (self.build is None):
            problems.append(
                (
                    "",
                    "set exactly one of image (a published image) and build (a source folder "
                    "to build)",
                )
            )
        problems += [
            (f"env.{key}", "set by the platform; choose another name")
            for key in sorted(set(self.env) & SERVICE_ENV_NAMES)
        ]
        reject_if_any(problems)
        return self


def _every_app_once(
    services: dict[str, ServiceSettings], info: ValidationInfo
) -> dict[str, ServiceSettings]:
    known = catalogue_of(info).names()
    problems = [
        (name, f"unknown service; known: {', '.join(known)}")
        for name in services
        if name not in known
    ]
    problems += [
        (name, "missing; every service needs an entry with an image or a build")
        for name in known
        if name not in services
    ]
    reject_if_any(problems)
    return services


Services = Annotated[dict[str, ServiceSettings], AfterValidator(_every_app_once)]
"""Every app of the catalogue by name, each once (checked against the catalogue)."""
