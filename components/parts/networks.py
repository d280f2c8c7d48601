"""The private networks that make the isolation real.

- `edge`: the gateway and the web apps; never internal (it carries the published ports).
- `backend`: the gateway and the business services.
- `cache`: Redis and only the services that use it.
- one network per database: that database, its own service, the backup job and the database's
  metrics exporter, nothing else.
- `monitoring` (with monitoring on): Prometheus, Alertmanager, the exporters and the edge's
  metrics listener. Prometheus is on no other network: it reaches the exporters, never a
  database.
- `alerting` (with monitoring on): Alertmanager alone, never internal: its way out to the
  webhook and the SMTP relay.
So a service reaches its own database and no other, and the gateway and web apps reach none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.engine import Engine


@dataclass(frozen=True)
class NetworksArgs:
    name_prefix: str
    database_services: Sequence[str]
    """Services that own a database: each gets its own database network."""
    internal: bool
    """Whether the private networks (all but edge) are cut off from outside the host."""
    labels: Mapping[str, str]
    engine: Engine
    """Makes each network: one host's bridges, or overlays spanning a swarm's nodes."""
    monitoring: bool = False
    """The monitoring and alerting networks too."""


class Networks(pulumi.ComponentResource):
    edge: docker.Network
    backend: docker.Network
    cache: docker.Network
    databases: dict[str, docker.Network]
    monitoring: docker.Network | None
    alerting: docker.Network | None

    def __init__(
        self, name: str, args: NetworksArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ecommerce:index:Networks", name, None, opts)

        def network(key: str, internal: bool) -> docker.Network:
            return args.engine.network(
                f"{name}-{key}", f"{args.name_prefix}-{key}", internal, args.labels, self
            )

        self.edge = network("edge", internal=False)
        self.backend = network("backend", args.internal)
        self.cache = network("cache", args.internal)
        self.databases = {
            svc: network(f"{svc}-db", args.internal) for svc in args.database_services
        }
        self.monitoring = self.alerting = None
        if args.monitoring:
            self.monitoring = network("monitoring", args.internal)
            self.alerting = network("alerting", internal=False)
        self.register_outputs({})

    def names(self) -> dict[str, pulumi.Output[str]]:
        """Every network's Docker name by its role, for the stack outputs."""
        named = {"edge": self.edge, "backend": self.backend, "cache": self.cache}
        named |= {f"{svc}-db": net for svc, net in self.databases.items()}
        if self.monitoring is not None and self.alerting is not None:
            named |= {"monitoring": self.monitoring, "alerting": self.alerting}
        return {key: net.name for key, net in named.items()}
