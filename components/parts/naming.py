"""How the platform names what it runs: the Docker labels operators and the backup tool find
things by, the network aliases the parts call each other by, and the URLs the apps answer on."""

from __future__ import annotations

from stacks.catalogue import ServiceSpec
from stacks.settings import PlatformSettings

REDIS_ALIAS = "redis"


def docker_labels(stack: str, service: str, role: str) -> dict[str, str]:
    """Labels that let operators and the backup tool find containers by what they are."""
    return {
        "com.ecommerce.stack": stack,
        "com.ecommerce.service": service,
        "com.ecommerce.role": role,
    }


def database_alias(service: str) -> str:
    """Host name of a service's database on its private network."""
    return f"{service}-db"


def upstream(spec: ServiceSpec) -> str:
    """An app as the edge proxy dials it: its network alias and port."""
    return f"{spec.name}:{spec.container_port}"


def internal_url(spec: ServiceSpec) -> str:
    """An app's URL on the networks it serves on."""
    return f"http://{spec.name}:{spec.container_port}"


def service_url(spec: ServiceSpec, settings: PlatformSettings) -> str:
    """The published URL of a service (by host name first), or its in-network URL."""
    host = settings.edge.hosts.get(spec.name)
    if host is not None:
        return edge_url(host, settings)
    host_port = settings.services[spec.name].host_port
    if host_port is None:
        return internal_url(spec)
    return f"http://{settings.public_host}:{host_port}"


def edge_url(host: str, settings: PlatformSettings) -> str:
    """Where the edge serves a host name: HTTPS with `edge.tls`, else plain HTTP."""
    edge = settings.edge
    if edge.tls is not None:
        return f"https://{host}" + ("" if edge.https_port == 443 else f":{edge.https_port}")
    return f"http://{host}" + ("" if edge.http_port == 80 else f":{edge.http_port}")


def port_url(port: int, settings: PlatformSettings) -> str:
    """Where a port published on the stack's public host answers."""
    return f"http://{settings.public_host}:{port}"
