"""One environment of the platform (`ecommerce:platform`): the top-level settings, made of each
domain's, and the rule on the top-level origins.

Validating it judges every settings object by its own rules; the rules across domains and the
production profile's need the whole, so they run after it (stacks/settings/rules/): validate a
stack file with `validate_settings`, never with this model alone."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from stacks.settings.backup import BackupSettings
from stacks.settings.common import (
    Hardening,
    HealthCheck,
    Logs,
    Resources,
    StrictModel,
    reject_if_any,
)
from stacks.settings.databases import (
    Databases,
    DatabaseSettings,
    DatabaseTuning,
    PitrSettings,
    PostgresSettings,
    RedisSettings,
)
from stacks.settings.edge import EdgeSettings
from stacks.settings.monitoring import Monitoring, MonitoringSettings
from stacks.settings.registry import RegistrySettings
from stacks.settings.services import Services
from stacks.settings.swarm import SwarmSettings


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
    require_image_digests: bool = False
    """Every published image must be named by its digest (`name@sha256:...`), which no one can
    move to other content, unlike a tag (docs/reviewing.md, images by digest). Off by default:
    version tags are the readable form the stack files ship with."""

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

    def database(self, service: str) -> DatabaseSettings:
        return self.databases.get(service, DatabaseSettings())

    def tuning_of(self, service: str) -> DatabaseTuning:
        return self.database(service).tuning or self.postgres.tuning

    def database_resources(self, service: str) -> Resources:
        return self.database(service).resources or self.postgres.resources


_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$")
