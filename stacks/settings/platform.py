"""One environment of the platform (`ecommerce:platform`): the top-level settings, the rules
across them, and the production profile's rules."""

from __future__ import annotations

import re
from typing import Literal, Self

from pydantic import Field, ValidationInfo, model_validator

from stacks.catalogue import Catalogue
from stacks.images import is_pinned
from stacks.settings.backup import BackupSettings, backup_problems
from stacks.settings.common import (
    Hardening,
    HealthCheck,
    Logs,
    Resources,
    StrictModel,
    hardening_problems,
)
from stacks.settings.databases import (
    DatabaseSettings,
    DatabaseTuning,
    PitrSettings,
    PostgresSettings,
    RedisSettings,
    archiving_overridden,
    pitr_problems,
    postgres_process_room,
    redis_problems,
    unknown_databases,
)
from stacks.settings.edge import EdgeSettings, edge_apps, edge_problems
from stacks.settings.monitoring import (
    MonitoringSettings,
    monitoring_images,
    monitoring_problems,
)
from stacks.settings.ports import duplicate_host_ports, host_ports, unpublishable_ports
from stacks.settings.registry import RegistrySettings, registry_problems
from stacks.settings.services import ServiceSettings, service_problems
from stacks.settings.swarm import SwarmSettings, swarm_problems


class Networks(StrictModel):
    """The stack's private networks."""

    internal: bool = True
    """Private networks (backend, cache, one per database) have no route out of the host."""


class PlatformSettings(StrictModel):
    """One environment of the platform, as the stack file `ecommerce:platform` describes it."""

    profile: Literal["dev", "prod"]
    """`prod` turns on the production rules (the last column of this reference)."""
    name_prefix: str = Field(pattern=r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")
    """Prefix of every container, network and volume name, e.g. `shop-dev`."""
    publish_ip: str = "127.0.0.1"
    """Host address published ports bind to; loopback unless the stack opens it up."""
    public_host: str = "localhost"
    """Host name in the exported URLs of published services."""
    cors_origins: tuple[str, ...] = Field(min_length=1)
    """Origins the apps accept cross-origin requests from (`https://shop.example.com`)."""
    services: dict[str, ServiceSettings]
    """Every app of the catalogue by name: gateway, customer, product, order, cart, content,
    frontend, backoffice."""
    postgres: PostgresSettings
    """What every database server shares."""
    databases: dict[str, DatabaseSettings] = Field(default_factory=dict)
    """Per database server, by its service's name (customer, product, order, content)."""
    redis: RedisSettings
    """The Redis server."""
    edge: EdgeSettings
    """The edge proxy that publishes the gateway and the web apps."""
    hardening: Hardening = Hardening()
    """The security profile of every container."""
    logs: Logs = Logs()
    """Log rotation of every container."""
    restart: Literal["no", "on-failure", "always", "unless-stopped"] = "unless-stopped"
    """Docker's restart policy of every long-running container."""
    health_check: HealthCheck = HealthCheck()
    """Health check timing of every container."""
    wait_timeout_seconds: int = Field(default=180, ge=10)
    """How long `pulumi up` waits for a container to become healthy."""
    networks: Networks = Networks()
    """The private networks."""
    protect_data: bool = True
    """Pulumi refuses to delete database and Redis volumes while this is on."""
    backup: BackupSettings = BackupSettings()
    """The scheduled logical backups."""
    pitr: PitrSettings = PitrSettings()
    """Point-in-time recovery."""
    monitoring: MonitoringSettings = MonitoringSettings()
    """Metrics, alert rules and where alerts go (docs/monitoring.md)."""
    engine: Literal["containers", "swarm"] = "containers"
    """`containers`: one Docker host; `swarm`: services on a Docker Swarm (docs/swarm.md)."""
    swarm: SwarmSettings = SwarmSettings()
    """Placement and rollout on a swarm (`engine: swarm`)."""
    registry: RegistrySettings | None = None
    """Credentials for pulling the stack's private images; none for local or public images."""

    @model_validator(mode="after")
    def _check_against_catalogue(self, info: ValidationInfo) -> Self:
        context = info.context or {}
        catalogue: Catalogue | None = context.get("catalogue")
        if catalogue is None:
            raise ValueError("internal: settings must be validated with a catalogue context")
        problems = _problems(self, catalogue)
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def database(self, service: str) -> DatabaseSettings:
        return self.databases.get(service, DatabaseSettings())

    def tuning_of(self, service: str) -> DatabaseTuning:
        return self.database(service).tuning or self.postgres.tuning

    def database_resources(self, service: str) -> Resources:
        return self.database(service).resources or self.postgres.resources


def _problems(s: PlatformSettings, catalogue: Catalogue) -> list[str]:
    """Cross-field rules, each message starting with the key it is about: each domain's, from
    its module, and those on the top-level keys."""
    problems = service_problems(s, catalogue)
    problems += unknown_databases(s.databases, catalogue)
    problems += backup_problems(s.backup)
    problems += postgres_process_room(s, catalogue)
    problems += pitr_problems(s.pitr)
    problems += archiving_overridden(s, catalogue)
    problems += redis_problems(s.redis)
    problems += [
        f"corsOrigins: {o!r} is not an origin like https://shop.example.com"
        for o in s.cors_origins
        if not _ORIGIN.match(o)
    ]
    problems += hardening_problems(s.hardening)
    problems += edge_problems(s, catalogue)
    problems += monitoring_problems(s)
    problems += swarm_problems(s, catalogue)
    problems += duplicate_host_ports(s)
    problems += unpublishable_ports(s, catalogue)
    if s.registry is not None:
        problems += registry_problems(s.registry, images(s).values())
    if s.profile == "prod":
        problems += production_problems(s, catalogue)
    return problems


_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$")


def images(s: PlatformSettings) -> dict[str, str]:
    """Every image of the stack by the key that sets it."""
    found = {f"services.{n}.image": svc.image for n, svc in s.services.items() if svc.image}
    found["postgres.image"] = s.postgres.image
    found["redis.image"] = s.redis.image
    if s.backup.image is not None:
        found["backup.image"] = s.backup.image
    if s.edge.image is not None:
        found["edge.image"] = s.edge.image
    if s.pitr.enabled and s.pitr.image is not None:
        found["pitr.image"] = s.pitr.image
    return found | monitoring_images(s.monitoring)


_UNPINNED = "an image without a version tag (with a digit) or a digest"
_BUILT = "any: prod runs pinned published images, built and pushed in CI"
PROD_REFUSES: dict[str, str] = {
    "services.<name>.build": _BUILT,
    "services.<name>.image": _UNPINNED,
    "services.<name>.hostPort": "any: only the edge proxy publishes ports (`edge.hosts`)",
    "postgres.image": _UNPINNED,
    "databases.<name>.hostPort": "any: databases are never published",
    "redis.image": _UNPINNED,
    "redis.hostPort": "any: Redis is never published",
    "redis.requirePassword": "`false`",
    "edge.image": _UNPINNED,
    "edge.build": _BUILT,
    "edge.tls": "unset: prod serves HTTPS",
    "backup.image": _UNPINNED,
    "pitr.image": _UNPINNED,
    "pitr.build": _BUILT,
    "monitoring.prometheus.image": _UNPINNED,
    "monitoring.alertmanager.image": _UNPINNED,
    "monitoring.postgresExporter.image": _UNPINNED,
    "monitoring.redisExporter.image": _UNPINNED,
    "monitoring.grafana.image": _UNPINNED,
    "monitoring.healthProbe.image": _UNPINNED,
    "monitoring.grafana.hostPort": "any: Grafana is served by its host name",
    "monitoring.prometheus.hostPort": "any: it is served by its host name, behind basic auth",
    "hardening.readOnlyRoot": "`false`",
    "hardening.dropAllCapabilities": "`false`",
    "hardening.noNewPrivileges": "`false`",
    "hardening.runAsNonRoot": "`false`",
    "networks.internal": "`false`",
    "corsOrigins": "an origin that is not `https://`",
}
"""What the prod profile refuses, by key (`<name>`: any service or database), for the settings
reference (stacks/reference.py); a unit test holds it to `production_problems` below."""


def production_problems(s: PlatformSettings, catalogue: Catalogue) -> list[str]:
    problems = [
        f"services.{name}.build: prod runs pinned published images; build and push them in CI, "
        f"then set services.{name}.image"
        for name, svc in s.services.items()
        if svc.build is not None
    ]
    for key, image in images(s).items():
        if not is_pinned(image):
            problems.append(
                f"{key}: {image!r} is not pinned; prod needs a version tag (with a digit, e.g. "
                "1.4.2) or a digest"
            )
    if s.pitr.build is not None:
        problems.append(
            "pitr.build: prod runs a pinned published image; build pitr/Dockerfile in CI on "
            "postgres.image, push it and set pitr.image"
        )
    if s.edge.build is not None:
        problems.append(
            "edge.build: prod runs a pinned published image; build images/edge-proxy in CI, "
            "push it and set edge.image"
        )
    if s.edge.tls is None:
        problems.append(
            "edge.tls: must be set in prod: the edge serves HTTPS for edge.hosts (certificates: "
            "auto, files or internal)"
        )
    apps = edge_apps(catalogue)
    for key in host_ports(s):
        if key.startswith("databases.") or key == "redis.hostPort":
            problems.append(f"{key}: databases and Redis are never published in prod")
        elif key == "monitoring.prometheus.hostPort":
            problems.append(
                f"{key}: prod never publishes Prometheus; remove it (serve it by "
                "monitoring.prometheus.host, behind basic auth)"
            )
        elif key == "monitoring.grafana.hostPort":
            problems.append(
                f"{key}: prod serves Grafana by host name over HTTPS only; remove "
                "it and set monitoring.grafana.host"
            )
        elif key.startswith("services.") and key.split(".")[1] in apps:
            app = key.split(".")[1]
            problems.append(
                f"{key}: prod serves the edge apps by host name over HTTPS only; remove it and "
                f"set edge.hosts.{app}"
            )
        elif key.startswith("services."):
            problems.append(
                f"{key}: only the edge proxy publishes ports in prod (edge.hosts, edge.tls)"
            )
    for flag, on in s.hardening.model_dump(by_alias=True).items():
        if not on:
            problems.append(f"hardening.{flag}: must be true in prod")
    if not s.networks.internal:
        problems.append("networks.internal: must be true in prod")
    if not s.redis.require_password:
        problems.append("redis.requirePassword: must be true in prod")
    problems += [
        f"corsOrigins: {o!r} must use https in prod"
        for o in s.cors_origins
        if not o.startswith("https://")
    ]
    return problems
