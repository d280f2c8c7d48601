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
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components import caddyfile, engine
from components.built_image import service_image
from components.monitoring_config import EDGE_METRICS_ALIAS
from components.runtime import ImageNeeds, RuntimeProfile, labelled_volume
from components.secret_files import SecretFiles, SecretFilesArgs
from components.workload import FileMount, Mount, Network, Port, Workload
from stacks.settings import EdgeSettings

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


@dataclass(frozen=True)
class EdgeArgs:
    settings: EdgeSettings
    docker_name: str
    routes: caddyfile.EdgeRoutes
    ports: Sequence[Port]
    network: docker.Network
    runtime: RuntimeProfile
    labels: Mapping[str, str]
    protect_data: bool = True
    certificate: pulumi.Output[str] | None = None
    key: pulumi.Output[str] | None = None
    node_label: str | None = None
    """On a swarm: the label of the node holding its volume (`swarm.placement`)."""
    metrics_network: docker.Network | None = None
    """The monitoring network, where it serves its request metrics (`routes.metrics_bind`) and
    reaches the monitoring UIs it serves."""
    auth_files: Mapping[str, pulumi.Output[str]] | None = None
    """Secret files beside the Caddyfile by name (the basic-auth users of `routes`)."""


class EdgeProxy(pulumi.ComponentResource):
    container: docker.Container | docker.Service
    """What runs it: a container, or a service on a swarm."""
    config: str
    """The Caddyfile it runs."""

    def __init__(
        self, name: str, args: EdgeArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ecommerce:index:EdgeProxy", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        image = service_image(f"{name}-image", args.settings, args.docker_name, self)
        self.config = caddyfile.render(args.routes)
        metrics = []
        if args.metrics_network is not None:
            metrics = [Network(args.metrics_network, EDGE_METRICS_ALIAS)]
        secret: dict[str, pulumi.Input[str]] = {}
        if args.certificate is not None and args.key is not None:
            secret = {caddyfile.CERTIFICATE_FILE: args.certificate, caddyfile.KEY_FILE: args.key}
        files = SecretFiles(
            f"{name}-config",
            SecretFilesArgs(
                docker_name=f"{args.docker_name}-config",
                image=image,
                files=secret,
                plain_files={caddyfile.CADDYFILE: self.config},
                labels=args.labels,
                swarm=args.runtime.swarm is not None,
            ),
            opts=child,
        )
        # Kept across restarts and protected like the databases: certificates obtained again on
        # every start would soon hit the CA's rate limits. The image gives the directory to its
        # user, and Docker copies that ownership into the new volume.
        # Login files in a set of their own: the Caddyfile's set stays plain, so previews show it.
        mounts: list[Mount | FileMount] = []
        revisions: dict[str, pulumi.Input[str]] = {}
        if args.auth_files:
            auth = SecretFiles(
                f"{name}-auth",
                SecretFilesArgs(
                    docker_name=f"{args.docker_name}-auth",
                    image=image,
                    files=dict(args.auth_files),
                    labels=args.labels,
                    swarm=args.runtime.swarm is not None,
                ),
                opts=child,
            )
            mounts.append(auth.mount(caddyfile.AUTH_DIR))
            revisions = auth.revision_label("auth")
        data = labelled_volume(
            f"{name}-data",
            f"{args.docker_name}-data",
            args.labels,
            pulumi.ResourceOptions(parent=self, protect=args.protect_data),
        )
        self.container = engine.run(
            Workload(
                name=name,
                docker_name=args.docker_name,
                image=image,
                mounts=[files.mount(caddyfile.CONFIG_DIR), Mount(data.name, DATA_PATH), *mounts],
                networks=[Network(args.network, "edge"), *metrics],
                ports=args.ports,
                # /config: Caddy saves the configuration it runs there (XDG_CONFIG_HOME).
                needs=ImageNeeds(
                    non_root_user=args.settings.user, writable_paths=("/tmp", "/config")
                ),
                resources=args.settings.resources,
                health_test=list(HEALTH_TEST),
                labels={**args.labels, **files.revision_label(), **revisions},
                stop_grace_seconds=args.settings.stop_grace_seconds,
                pids_limit=args.settings.pids_limit,
                replicas=args.settings.replicas,
                pinned_to=args.node_label,
                # Holds fixed host ports: replaced delete-first.
            ),
            args.runtime,
            self,
        ).container
        self.register_outputs({})
