"""What the stack holds across its domains, by the key that sets it: every image and every
published host port, and which of those ports the edge proxy publishes."""

from __future__ import annotations

from stacks.catalogue import Catalogue
from stacks.settings.edge import edge_apps
from stacks.settings.monitoring import monitoring_images
from stacks.settings.platform import PlatformSettings


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


def published_by_the_edge(key: str, catalogue: Catalogue) -> bool:
    """Whether the edge proxy (on the edge network, never internal) publishes this port."""
    if key.startswith("edge.") or key == "monitoring.grafana.hostPort":
        return True
    return key.startswith("services.") and key.split(".")[1] in edge_apps(catalogue)
