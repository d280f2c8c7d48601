"""A Docker Swarm (`engine: swarm`): placement and rollout settings. What a swarm cannot run
spans the other domains: stacks/settings/rules/swarm.py."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from stacks.settings.common import StrictModel

NodeLabel = Annotated[str, Field(pattern=r"^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$")]
"""A Swarm node label's key, e.g. `ecommerce.db`."""


class SwarmSettings(StrictModel):
    """How the services of a swarm (`engine: swarm`) are placed, published and rolled."""

    endpoint_mode: Literal["vip", "dnsrr"] = "vip"
    """How a service's name resolves inside the swarm: `vip`, one virtual address balanced by
    IPVS; `dnsrr`, the address of every task in turn (hosts without IPVS). Either way the
    edge publishes its ports on each of its own nodes (host mode: no routing mesh)."""
    placement: dict[str, NodeLabel] = Field(default_factory=dict)
    """The node label that pins each workload with a volume to the node holding it (`redis`,
    `<service>-db` per database, and when on, `backup`, `pitr-repository` (the off-host
    backup repository, `pitr.offHost`; in prod on another node than every database),
    `prometheus`, `alertmanager` and `grafana`), and the nodes the edge may run on (`edge`, one
    task per node); e.g. `order-db: ecommerce.db` runs it on the node labelled with
    `docker node update --label-add ecommerce.db=true`."""
    update_delay_seconds: int = Field(default=10, ge=0, le=3600)
    """Between two tasks of a rolling update."""
    monitor_seconds: int = Field(default=30, ge=5, le=3600)
    """How long a new task must stay healthy before the update goes on; one that fails within
    it rolls the service back."""
    converge_timeout_seconds: int = Field(default=300, ge=30, le=1140)
    """How long `pulumi up` waits for a service's tasks to run (within the provider's own
    20-minute limit)."""
