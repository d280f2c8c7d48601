"""One environment of the platform (`ecommerce:platform`): the top-level settings, the rules
across them, and the production profile's rules."""

from __future__ import annotations

import re
from typing import Literal, Self

from pydantic import Field, ValidationInfo, field_validator, model_validator

from stacks.catalogue import Catalogue
from stacks.images import is_pinned
from stacks.settings.backup import BackupSettings
from stacks.settings.common import (
    Hardening,
    HealthCheck,
    Logs,
    Resources,
    StrictModel,
    catalogue_of,
    reject_if_any,
)
from stacks.settings.databases import (
    Databases,
    DatabaseSettings,
    DatabaseTuning,
    PitrSettings,
    PostgresSettings,
    RedisSettings,
    archiving_overridden,
    postgres_process_room,
)
from stacks.settings.edge import EdgeSettings, edge_apps
from stacks.settings.monitoring import (
    Monitoring,
    MonitoringSettings,
    monitoring_hosts,
    monitoring_images,
)
from stacks.settings.ports import duplicate_host_ports, host_ports, unpublishable_ports
from stacks.settings.registry import RegistrySettings, registry_problems
from stacks.settings.services import Services
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
    services: Services
    """Every app of the catalogue by name: gateway, customer, product, order, cart, content,
    frontend, backoffice."""
    postgres: PostgresSettings
    """What every database server shares."""
    databases: Databases = Field(default_factory=dict)
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
    # Judged when left out too: its default breaks its rules until a stack says how Grafana is
    # reached (stacks/settings/monitoring.py).
    monitoring: Monitoring = Field(default=MonitoringSettings(), validate_default=True)
    """Metrics, alert rules and where alerts go (docs/monitoring.md)."""
    engine: Literal["containers", "swarm"] = "containers"
    """`containers`: one Docker host; `swarm`: services on a Docker Swarm (docs/swarm.md)."""
    swarm: SwarmSettings = SwarmSettings()
    """Placement and rollout on a swarm (`engine: swarm`)."""
    registry: RegistrySettings | None = None
    """Credentials for pulling the stack's private images; none for local or public images."""

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, origins: tuple[str, ...]) -> tuple[str, ...]:
        reject_if_any(
            [
                ("", f"{o!r} is not an origin like https://shop.example.com")
                for o in origins
                if not _ORIGIN.match(o)
            ]
        )
        return origins

    @model_validator(mode="after")
    def _check_against_catalogue(self, info: ValidationInfo) -> Self:
        problems = _problems(self, catalogue_of(info))
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
    """Rules across domains, each message starting with the key it is about."""
    problems = [
        f"services.{name}.stopGraceSeconds: {svc.stop_grace_seconds} is longer than "
        f"waitTimeoutSeconds ({s.wait_timeout_seconds}): a deploy would give an old "
        "container longer to finish its requests than a new one to start; keep it within"
        for name, svc in s.services.items()
        if svc.stop_grace_seconds > s.wait_timeout_seconds
    ]
    problems += postgres_process_room(s, catalogue)
    problems += archiving_overridden(s, catalogue)
    if s.edge.tls is not None and s.edge.tls.certificates == "auto":
        problems += _acme_unreachable(s)
    if s.edge.stop_grace_seconds > s.wait_timeout_seconds:
        problems.append(
            f"edge.stopGraceSeconds: {s.edge.stop_grace_seconds} is longer than "
            f"waitTimeoutSeconds ({s.wait_timeout_seconds}); keep it within"
        )
    problems += _monitoring_hosts_taken(s)
    problems += swarm_problems(s, catalogue)
    problems += duplicate_host_ports(s)
    problems += unpublishable_ports(s, catalogue)
    if s.registry is not None:
        problems += registry_problems(s.registry, images(s).values())
    if s.profile == "prod":
        problems += production_problems(s, catalogue)
    return problems


def _acme_unreachable(s: PlatformSettings) -> list[str]:
    """Why an ACME CA could never reach this host to hand out certificates, if it could not."""
    edge = s.edge
    if s.publish_ip.startswith("127.") or s.publish_ip == "::1":
        return [
            f"edge.tls.certificates: auto needs the ACME CA to reach the edge, but publishIp is "
            f"{s.publish_ip} (loopback); publish on the host's address, or use certificates: "
            "files or internal"
        ]
    if edge.http_port != 80 and edge.https_port != 443:
        return [
            f"edge.tls.certificates: auto needs port 80 or 443 (the ACME challenges), but "
            f"httpPort is {edge.http_port} and httpsPort {edge.https_port}; use the standard "
            "ports, or certificates: files or internal"
        ]
    return []


def _monitoring_hosts_taken(s: PlatformSettings) -> list[str]:
    problems = []
    apps = {host: f"edge.hosts.{app}" for app, host in s.edge.hosts.items()}
    for key, host in monitoring_hosts(s.monitoring).items():
        if host in apps:
            problems.append(f"{key}: {host} is already the host of {apps[host]}")
        apps.setdefault(host, key)
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
