"""The edge proxy: its settings, its HTTPS, and the rules on its image, host names and
certificates."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, ValidationInfo, model_validator

from stacks.catalogue import Catalogue, Role
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
    upstream_answer_seconds: int = Field(default=4, ge=1, le=300)
    """How long an app has to start answering a GET before the edge sends it again, dialing
    the app's name anew (within `upstreamRetrySeconds`): a replica on a machine that has just
    gone answers nothing, not even a refusal. A GET slower than this is answered 504 once the
    retries are spent; other methods are never sent twice and wait for their answer. Unused
    when `upstreamRetrySeconds` is 0."""
    replicas: int = Field(default=1, ge=1, le=100)
    """Tasks of the proxy on a swarm (`engine: swarm`), each on its own node labelled for the
    edge (`swarm.placement.edge`), publishing the shop's ports there; 2 or more in prod."""

    @model_validator(mode="after")
    def _servable(self, info: ValidationInfo) -> Self:
        reject_if_any(self._problems(edge_apps(catalogue_of(info))))
        return self

    def _problems(self, apps: list[str]) -> list[Problem]:
        problems: list[Problem] = []
        if (self.image is None) == (self.build is None):
            problems.append(
                (
                    "",
                    "set exactly one of image (a published image of images/edge-proxy) and "
                    "build (e.g. build: { context: images/edge-proxy })",
                )
            )
        for app in self.hosts:
            if app not in apps:
                problems.append((f"hosts.{app}", f"only {', '.join(apps)} sit behind the edge"))
        first_app: dict[str, str] = {}
        for app, host in self.hosts.items():
            if host in first_app:
                taken = f"{host} is already the host of {first_app[host]}"
                problems.append((f"hosts.{app}", taken))
            first_app.setdefault(host, app)
        if self.tls is not None and not self.hosts:
            problems.append(
                (
                    "tls",
                    "HTTPS needs the host names to serve; set edge.hosts (e.g. "
                    "frontend: shop.example.com) or remove tls",
                )
            )
        if self.tls is not None and self.tls.email is not None and self.tls.certificates != "auto":
            problems.append(
                (
                    "tls.email",
                    f"only used with certificates: auto (ACME), not {self.tls.certificates}; "
                    "remove it",
                )
            )
        retry, answer = self.upstream_retry_seconds, self.upstream_answer_seconds
        if retry and answer >= retry:
            problems.append(
                (
                    "upstreamAnswerSeconds",
                    f"{answer} leaves a GET no time to be tried on another address within "
                    f"edge.upstreamRetrySeconds ({retry}); set it below that",
                )
            )
        return problems


def edge_apps(catalogue: Catalogue) -> list[str]:
    """The services the edge proxy serves: the gateway and the web apps."""
    return [spec.name for spec in catalogue.services if spec.role is not Role.BUSINESS]
