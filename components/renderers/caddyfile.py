"""The edge proxy's configuration, a Caddyfile written from the stack's settings.

Caddy runs as an unprivileged user with no capabilities, so everything listens on high ports
inside the container and Docker publishes them on the ports the stack names (80 and 443 in
prod). The admin API is off: the configuration only changes by a new container, which the
program makes whenever this text changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from stacks.settings import EdgeTls

HTTP_PORT = 8080
"""Where Caddy listens for plain HTTP to the host names (published on `edge.httpPort`)."""
HTTPS_PORT = 8443
"""Where Caddy listens for HTTPS (published on `edge.httpsPort`)."""
HEALTH_PORT = 8079
"""Loopback-only listener of the container's health check."""
HEALTH_PATH = "/health"
METRICS_PORT = 9180
METRICS_PATH = "/metrics"
CONFIG_DIR = "/etc/caddy"
"""Where the image's default command reads `Caddyfile`; the secrets volume is mounted here."""
CADDYFILE = "Caddyfile"
AUTH_DIR = "/etc/caddy-auth"
"""Where the basic-auth users files are mounted (a secret set apart from the Caddyfile's)."""
CERTIFICATE_FILE = "tls-certificate.pem"
KEY_FILE = "tls-key.pem"


@dataclass(frozen=True)
class EdgeRoutes:
    """What the edge serves: upstreams are in-network addresses, e.g. `gateway:3000`."""

    by_port: Mapping[int, str] = field(default_factory=dict)
    """Port inside the container -> upstream, over plain HTTP (the dev port map)."""
    by_host: Mapping[str, str] = field(default_factory=dict)
    """Host name -> upstream, over HTTPS when `tls` is set, else plain HTTP."""
    tls: EdgeTls | None = None
    https_port: int = 443
    """The published HTTPS port, for the redirects (browsers know nothing of HTTPS_PORT)."""
    retry_seconds: int = 5
    answer_seconds: int = 4
    """How long a GET waits for an upstream to start answering before it is tried again."""
    grace_seconds: int = 30
    basic_auth: Mapping[str, str] = field(default_factory=dict)
    """Host name -> the file of `user bcrypt-hash` lines its visitors must log in as (a secret
    file beside the Caddyfile, imported, so the Caddyfile itself stays plain)."""
    metrics_bind: str | None = None
    """Serve request metrics on METRICS_PORT at this address (the edge's name on the
    monitoring network, so nothing on the edge network reaches them); "" for every address
    (a swarm, where the name is the service's, not the task's)."""


def render(routes: EdgeRoutes) -> str:
    """The whole Caddyfile, deterministic (the same settings give the same text)."""
    blocks = [_global_options(routes), _health_site()]
    if routes.metrics_bind is not None:
        bind = [f"bind {routes.metrics_bind}"] if routes.metrics_bind else []
        blocks.append(_block(f"http://:{METRICS_PORT}", [*bind, f"metrics {METRICS_PATH}"]))
    # `log`: an access log line per request on stderr, where Docker collects and rotates it
    # (Caddy redacts cookies and authorization headers).
    blocks += [
        _block(f"http://:{port}", ["log", *_reverse_proxy(upstream, routes)])
        for port, upstream in sorted(routes.by_port.items())
    ]
    scheme = "" if routes.tls is not None else "http://"
    for host, upstream in sorted(routes.by_host.items()):
        proxy = _reverse_proxy(upstream, routes)
        auth = (
            [_block("basicauth", [f"import {routes.basic_auth[host]}"])]
            if (host in routes.basic_auth)
            else []
        )
        blocks.append(_block(f"{scheme}{host}", [*_tls_lines(routes.tls), "log", *auth, *proxy]))
    if routes.tls is not None and routes.by_host:
        port = "" if routes.https_port == 443 else f":{routes.https_port}"
        addresses = ", ".join(f"http://{host}" for host in sorted(routes.by_host))
        blocks.append(_block(addresses, [f"redir https://{{host}}{port}{{uri}} 308"]))
    header = "# Written by the platform program (components/caddyfile.py); edit the stack file.\n"
    return header + "\n".join(blocks)


def _global_options(routes: EdgeRoutes) -> str:
    servers = ["protocols h1 h2"]
    if routes.metrics_bind is not None:
        # Request counts and durations by answer code (Caddy 2.8 counts them only if asked).
        servers.append("metrics")
    options = [
        "admin off",
        f"http_port {HTTP_PORT}",
        f"https_port {HTTPS_PORT}",
        # On SIGTERM, requests in flight get this long (Docker kills at the stop grace).
        f"grace_period {max(1, routes.grace_seconds - 1)}s",
        # No HTTP/3: only TCP is published, and Caddy would advertise its inside port
        # (`Alt-Svc: h3=":8443"`) to browsers.
        _block("servers", servers),
    ]
    tls = routes.tls
    if tls is None:
        options.append("auto_https off")
    else:
        # The redirects are written out below, to the published HTTPS port.
        options.append("auto_https disable_redirects")
        if tls.certificates == "internal":
            options.append("skip_install_trust")  # no system trust store to write to
        if tls.email is not None:
            options.append(f"email {tls.email}")
    return _block("", options)


def _health_site() -> str:
    return _block(f"http://:{HEALTH_PORT}", ["bind 127.0.0.1", f'respond {HEALTH_PATH} "ok" 200'])


def _tls_lines(tls: EdgeTls | None) -> list[str]:
    if tls is None:
        return []
    if tls.certificates == "files":
        return [f"tls {CONFIG_DIR}/{CERTIFICATE_FILE} {CONFIG_DIR}/{KEY_FILE}", _HSTS]
    if tls.certificates == "internal":
        return ["tls internal"]  # no HSTS: browsers could not click through the warning
    return [_HSTS]  # auto: Caddy's default, an ACME CA


_HSTS = 'header Strict-Transport-Security "max-age=31536000"'


def _reverse_proxy(upstream: str, routes: EdgeRoutes) -> list[str]:
    # One name, several addresses while an app is replaced side by side: a refused dial moves
    # on to the next address, and for `retry_seconds` the request is tried again. A GET also
    # gets `answer_seconds` for the answer to start, then is tried again (Caddy sends a GET
    # again after any failure, other methods only after one to connect): an address on a
    # machine just gone takes the request and answers nothing. Other methods wait, without a
    # limit, as before: they may have been acted on.
    if not routes.retry_seconds:  # no second try: a GET waits for its answer like the rest
        return [_block(f"reverse_proxy {upstream}", [])]
    tries = [f"lb_try_duration {routes.retry_seconds}s", "lb_try_interval 250ms"]
    answer_limit = _block("transport http", [f"response_header_timeout {routes.answer_seconds}s"])
    return [
        "@get method GET",
        _block(f"reverse_proxy @get {upstream}", [*tries, answer_limit]),
        _block(f"reverse_proxy {upstream}", tries),
    ]


def _block(head: str, lines: list[str]) -> str:
    """`head {`, each line (or nested block) indented by a tab, `}`."""
    body = "".join(f"\t{row}\n" for line in lines for row in line.rstrip("\n").split("\n"))
    opening = f"{head} {{" if head else "{"
    return f"{opening}\n{body}}}\n"
