"""The edge proxy: the one container that holds the published ports of the gateway and web apps.

Caddy (images/edge-proxy) routes each host name or port to its app over the edge network and
nothing else: it is attached to no other network (but the monitoring network, where it only
serves its metrics), and it needs no Docker socket (its routes
are written here, not discovered). Because it holds the host ports, the apps behind it hold
none and are replaced side by side; the proxy itself cannot be (two containers cannot bind one
host port), so a new proxy image or configuration restarts it: a gap of about a second.

Its Caddyfile and certificate reach it the way secrets reach every container (SecretFiles): a
volume written before it starts, mounted read-only where the image reads its configuration.
A changed Caddyfile (a new host, another port) draws a new revision and replaces the proxy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_docker as docker

from components.engine import Engine
from components.engine.files import SecretFiles, SecretFilesArgs
from components.engine.workload import FileMount, ImageNeeds, Mount, Network, Port, Workload
from components.parts.built_image import service_image
from components.parts.naming import upstream
from components.renderers import caddyfile
from components.renderers.monitoring_config import EDGE_METRICS_ALIAS
from stacks.catalogue import Catalogue
from stacks.settings import PlatformSettings, edge_apps

DATA_PATH = "/data"
"""Caddy's data (XDG_DATA_HOME of the image): certificates, ACME account, its local CA."""
# Official image: wget is busybox's; Caddy's admin API is off, so the probe asks a listener
# of its own on loopback.
HEALTH_TEST = (
    "CMD",
    "wget",
    "-q",
    "-O",
    "/dev/null",
    f"http://127.0.0.1:{caddyfile.HEALTH_PORT}{caddyfile.HEALTH_PATH}",
)
HOME = "edge"
"""Where its volume is (`swarm.placement.edge`)."""


@dataclass(frozen=True)
class Sites:
    """What another part asks the edge to serve beside the apps (the monitoring UIs)."""

    by_host: Mapping[str, str] = field(default_factory=dict)
    """Host name -> upstream."""
    by_port: Mapping[int, tuple[str, int]] = field(default_factory=dict)
    """Port inside the edge -> (upstream, the host port that publishes it)."""
    basic_auth: Mapping[str, str] = field(default_factory=dict)
    """Host name -> the name of its users file (`user bcrypt-hash` lines) in `auth_files`."""
    auth_files: Mapping[str, pulumi.Output[str]] = field(default_factory=dict)
    """Users files by name: secret files beside the Caddyfile."""


@dataclass(frozen=True)
class EdgeArgs:
    settings: PlatformSettings
    """The edge's own settings, and the apps' host ports it publishes (the dev port map)."""
    catalogue: Catalogue
    docker_name: str
    network: docker.Network
    engine: Engine
    labels: Mapping[str, str]
    certificate: pulumi.Output[str] | None = None
    key: pulumi.Output[str] | None = None
    sites: Sites = Sites()
    metrics_network: docker.Network | None = None
    """The monitoring network, where it serves its request metrics and reaches the monitoring
    UIs it serves."""


class EdgeProxy(pulumi.ComponentResource):
    container: docker.Container | docker.Service
    """What runs it: a container, or a service on a swarm."""
    config: str
    """The Caddyfile it runs."""

    def __init__(
        self, name: str, args: EdgeArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ecommerce:index:EdgeProxy", name, None, opts)
        self._name, self._args = name, args
        edge = args.settings.edge
        image = service_image(f"{name}-image", edge, args.docker_name, self)
        routes, ports = self._routes()
        self.config = caddyfile.render(routes)
        files = self._files(image)
        # Login files in a set of their own: the Caddyfile's set stays plain, so previews
        # show it.
        auth = self._auth_files(image) if args.sites.auth_files else None
        # Kept across restarts and protected like the databases: certificates obtained again
        # on every start would soon hit the CA's rate limits. The image gives the directory to
        # its user, and Docker copies that ownership into the new volume.
        data = args.engine.volume(
            f"{name}-data",
            f"{args.docker_name}-data",
            args.labels,
            self,
            protect=args.settings.protect_data,
        )
        mounts: list[Mount | FileMount] = [
            files.mount(caddyfile.CONFIG_DIR),
            Mount(data.name, DATA_PATH),
        ]
        revisions = files.revision_label()
        if auth is not None:
            mounts.append(auth.mount(caddyfile.AUTH_DIR))
            revisions |= auth.revision_label("auth")
        self.container = self._run(image, mounts, ports, revisions)
        self.register_outputs({})

    def _routes(self) -> tuple[caddyfile.EdgeRoutes, list[Port]]:
        """What it serves, and the ports it publishes for that: the apps' by port (dev) and
        by host name, then the other parts' sites."""
        args = self._args
        s, sites = args.settings, args.sites
        by_port, ports = {}, []
        for app in edge_apps(args.catalogue):
            spec = args.catalogue.get(app)
            host_port = s.services[app].host_port
            if host_port is not None:
                # Inside the proxy, each app's port map entry listens on the app's own port.
                by_port[spec.container_port] = upstream(spec)
                ports.append(Port(spec.container_port, host_port, s.publish_ip))
        for inner, (target, host_port) in sites.by_port.items():
            by_port[inner] = target
            ports.append(Port(inner, host_port, s.publish_ip))
        by_host = {host: upstream(args.catalogue.get(app)) for app, host in s.edge.hosts.items()}
        by_host |= sites.by_host
        if by_host:
            ports.append(Port(caddyfile.HTTP_PORT, s.edge.http_port, s.publish_ip))
        if by_host and s.edge.tls is not None:
            ports.append(Port(caddyfile.HTTPS_PORT, s.edge.https_port, s.publish_ip))
        routes = caddyfile.EdgeRoutes(
            by_port=by_port,
            by_host=by_host,
            tls=s.edge.tls,
            https_port=s.edge.https_port,
            retry_seconds=s.edge.upstream_retry_seconds,
            answer_seconds=s.edge.upstream_answer_seconds,
            basic_auth={host: f"{caddyfile.AUTH_DIR}/{f}" for host, f in sites.basic_auth.items()},
            grace_seconds=s.edge.stop_grace_seconds,
            # By its name on the monitoring network, where the engine can bind it.
            metrics_bind=None
            if args.metrics_network is None
            else args.engine.listen_address(EDGE_METRICS_ALIAS),
        )
        return routes, ports

    def _files(self, image: pulumi.Input[str]) -> SecretFiles:
        """Its Caddyfile, and the certificate and key it serves (`certificates: files`)."""
        args = self._args
        secret: dict[str, pulumi.Input[str]] = {}
        if args.certificate is not None and args.key is not None:
            secret = {caddyfile.CERTIFICATE_FILE: args.certificate, caddyfile.KEY_FILE: args.key}
        return SecretFiles(
            f"{self._name}-config",
            SecretFilesArgs(
                docker_name=f"{args.docker_name}-config",
                image=image,
                files=secret,
                plain_files={caddyfile.CADDYFILE: self.config},
                labels=args.labels,
                engine=args.engine,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _auth_files(self, image: pulumi.Input[str]) -> SecretFiles:
        args = self._args
        return SecretFiles(
            f"{self._name}-auth",
            SecretFilesArgs(
                docker_name=f"{args.docker_name}-auth",
                image=image,
                files=dict(args.sites.auth_files),
                labels=args.labels,
                engine=args.engine,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _run(
        self,
        image: pulumi.Input[str],
        mounts: Sequence[Mount | FileMount],
        ports: list[Port],
        revisions: Mapping[str, pulumi.Input[str]],
    ) -> docker.Container | docker.Service:
        args = self._args
        edge = args.settings.edge
        metrics = []
        if args.metrics_network is not None:
            metrics = [Network(args.metrics_network, EDGE_METRICS_ALIAS)]
        return args.engine.run(
            Workload(
                name=self._name,
                docker_name=args.docker_name,
                image=image,
                mounts=mounts,
                networks=[Network(args.network, "edge"), *metrics],
                ports=ports,
                # /config: Caddy saves the configuration it runs there (XDG_CONFIG_HOME).
                needs=ImageNeeds(non_root_user=edge.user, writable_paths=("/tmp", "/config")),
                resources=edge.resources,
                health_test=list(HEALTH_TEST),
                labels={**args.labels, **revisions},
                stop_grace_seconds=edge.stop_grace_seconds,
                pids_limit=edge.pids_limit,
                replicas=edge.replicas,
                home=HOME,
                # Holds fixed host ports: replaced delete-first.
            ),
            self,
        ).container
