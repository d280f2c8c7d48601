"""Host ports: every one the stack publishes, by the key that sets it, and the rules on them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stacks.catalogue import Catalogue
from stacks.settings.edge import edge_apps

if TYPE_CHECKING:
    from stacks.settings.platform import PlatformSettings


def host_ports(s: PlatformSettings) -> dict[str, int]:
    """Every published host port by the key that sets it."""
    ports: dict[str, int] = {}
    for name, svc in s.services.items():
        if svc.host_port is not None:
            ports[f"services.{name}.hostPort"] = svc.host_port
    for name, db in s.databases.items():
        if db.host_port is not None:
            ports[f"databases.{name}.hostPort"] = db.host_port
    if s.redis.host_port is not None:
        ports["redis.hostPort"] = s.redis.host_port
    if s.edge.hosts:
        ports["edge.httpPort"] = s.edge.http_port
    if s.edge.hosts and s.edge.tls is not None:
        ports["edge.httpsPort"] = s.edge.https_port
    m = s.monitoring
    if m.enabled and m.prometheus.host_port is not None:
        ports["monitoring.prometheus.hostPort"] = m.prometheus.host_port
    if m.enabled and m.grafana.enabled and m.grafana.host_port is not None:
        ports["monitoring.grafana.hostPort"] = m.grafana.host_port
    return ports


def duplicate_host_ports(s: PlatformSettings) -> list[str]:
    first_key: dict[int, str] = {}
    problems = []
    for key, port in host_ports(s).items():
        if port in first_key:
            problems.append(f"{key}: host port {port} is already used by {first_key[port]}")
        else:
            first_key[port] = key
    return problems


def unpublishable_ports(s: PlatformSettings, catalogue: Catalogue) -> list[str]:
    # Docker publishes no port of a container attached only to internal networks; everything but
    # the edge sits on private networks only, so a host port there needs them non-internal.
    if not s.networks.internal:
        return []
    return [
        f"{key}: cannot be published while networks.internal is true (Docker publishes no port "
        "on internal networks); remove the port or set networks.internal to false"
        for key in host_ports(s)
        if not published_by_the_edge(key, catalogue)
    ]


def published_by_the_edge(key: str, catalogue: Catalogue) -> bool:
    """Whether the edge proxy (on the edge network, never internal) publishes this port."""
    if key.startswith("edge.") or key == "monitoring.grafana.hostPort":
        return True
    return key.startswith("services.") and key.split(".")[1] in edge_apps(catalogue)
