"""The edge proxy: its settings, its HTTPS, and the rules on its host names and ports."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field

from stacks.catalogue import Catalogue, Role
from stacks.settings.common import BuildSettings, PidsLimit, Port, Resources, StrictModel

if TYPE_CHECKING:
    from stacks.settings.platform import PlatformSettings


_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
HostName = Annotated[str, Field(pattern=rf"^{_LABEL}(\.{_LABEL})+$")]
"""A fully qualified DNS name in lower case, e.g. `shop.example.com` (no wildcard, no port)."""


class EdgeTls(StrictModel):
    """HTTPS on the edge: where its certificates come from."""

    certificates: Literal["auto", "files", "internal"] = "auto"
    """`auto`: the proxy obtains and renews them from an ACME CA (Let's Encrypt); the host names
    must resolve to this host and `httpPort`/`httpsPort` reach it from the internet. `files`: one
    certificate chain for every host name, from the secrets `ecommerce:edgeTlsCertificate` and
    `ecommerce:edgeTlsKey` (PEM). `internal`: the proxy's own local CA, which no browser trusts
    (staging, tests)."""
    email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+$")
    """ACME account contact (`auto` only): the CA writes there before a certificate expires."""


class EdgeSettings(StrictModel):
    """The edge proxy (Caddy, images/edge-proxy): the one container that publishes the web apps
    and the gateway, by host name over HTTPS and/or on their `hostPort` over plain HTTP."""

    image: str | None = Field(default=None, min_length=1)
    """A published image of images/edge-proxy; exactly one of `image` and `build`."""
    build: BuildSettings | None = None
    """Build images/edge-proxy on the Docker host instead (dev)."""
    hosts: dict[str, HostName] = Field(default_factory=dict)
    """Host name per edge app (`gateway`, `frontend`, `backoffice`), e.g.
    `frontend: shop.example.com`; served on `httpsPort` with `tls`, else on `httpPort`."""
    tls: EdgeTls | None = None
    """HTTPS for the host names, plain HTTP redirecting to it; None: plain HTTP only."""
    http_port: Port = 80
    """Host port of plain HTTP for the host names (a redirect to HTTPS when `tls` is on)."""
    https_port: Port = 443
    """Host port of HTTPS for the host names."""
    resources: Resources = Resources(memory_mb=256, cpus=0.5)
    """The proxy container's limits."""
    user: str = "1000:1000"
    """The image's unprivileged user (images/edge-proxy/Dockerfile)."""
    stop_grace_seconds: int = Field(default=30, ge=1, le=3600)
    """From SIGTERM to SIGKILL: Caddy finishes the requests in flight within it."""
    pids_limit: PidsLimit = 256
    """Most processes (threads included) the container may run: a fork bomb or a thread leak
    stops there instead of exhausting the host."""
    upstream_retry_seconds: int = Field(default=5, ge=0, le=60)
    """How long a request keeps trying the app's other addresses when one refuses (while an
    app is replaced side by side, Docker's DNS answers with both containers)."""
    replicas: int = Field(default=1, ge=1, le=100)
    """Tasks of the proxy on a swarm (`engine: swarm`), all on its pinned node."""


def edge_apps(catalogue: Catalogue) -> list[str]:
    """The services the edge proxy serves: the gateway and the web apps."""
    return [spec.name for spec in catalogue.services if spec.role is not Role.BUSINESS]


def edge_problems(s: PlatformSettings, catalogue: Catalogue) -> list[str]:
    edge, problems = s.edge, []
    if (edge.image is None) == (edge.build is None):
        problems.append(
            "edge: set exactly one of image (a published image of images/edge-proxy) and build "
            "(e.g. build: { context: images/edge-proxy })"
        )
    apps = edge_apps(catalogue)
    for app in edge.hosts:
        if app not in apps:
            problems.append(f"edge.hosts.{app}: only {', '.join(apps)} sit behind the edge")
    first_app: dict[str, str] = {}
    for app, host in edge.hosts.items():
        if host in first_app:
            problems.append(f"edge.hosts.{app}: {host} is already the host of {first_app[host]}")
        first_app.setdefault(host, app)
    if edge.tls is not None and not edge.hosts:
        problems.append(
            "edge.tls: HTTPS needs the host names to serve; set edge.hosts (e.g. "
            "frontend: shop.example.com) or remove tls"
        )
    if edge.tls is not None and edge.tls.email is not None and edge.tls.certificates != "auto":
        problems.append(
            f"edge.tls.email: only used with certificates: auto (ACME), not "
            f"{edge.tls.certificates}; remove it"
        )
    if edge.tls is not None and edge.tls.certificates == "auto":
        problems += _acme_unreachable(s)
    if edge.stop_grace_seconds > s.wait_timeout_seconds:
        problems.append(
            f"edge.stopGraceSeconds: {edge.stop_grace_seconds} is longer than "
            f"waitTimeoutSeconds ({s.wait_timeout_seconds}); keep it within"
        )
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
