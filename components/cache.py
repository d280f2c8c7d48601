"""Redis: user sessions and a cache of frequent queries, on its own private network."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components import engine
from components.runtime import (
    ImageNeeds,
    RuntimeProfile,
    labelled_volume,
    secret_or_generated,
)
from components.secret_files import SecretFiles, SecretFilesArgs, secret_path
from components.workload import FileMount, Mount, Network, Workload, published_ports
from stacks.settings import RedisSettings

PORT = 6379
DATA_MOUNT = "/data"
CONFIG_FILE = "redis.conf"
PASSWORD_FILE = "redis-password"

REDIS_NEEDS = ImageNeeds(
    non_root_user="redis",
    writable_paths=("/tmp",),
)


@dataclass(frozen=True)
class CacheArgs:
    docker_name: str
    settings: RedisSettings
    network: docker.Network
    alias: str
    runtime: RuntimeProfile
    labels: Mapping[str, str]
    password: pulumi.Input[str] | None = None
    """Operator-set password; generated when absent and `settings.require_password` is on."""
    publish_ip: str = "127.0.0.1"
    protect_data: bool = True
    node_label: str | None = None
    """On a swarm: the label of the node holding its volume (`swarm.placement`)."""


class Cache(pulumi.ComponentResource):
    container: docker.Container | docker.Service
    """What runs it: a container, or a service on a swarm."""
    password: pulumi.Output[str] | None
    """None when the stack runs Redis without a password (dev)."""
    host: str
    port: int

    def __init__(
        self, name: str, args: CacheArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ecommerce:index:Cache", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        s = args.settings
        self.password = None
        mounts: list[Mount | FileMount] = []
        revision: dict[str, pulumi.Input[str]] = {}
        command = ["redis-server"]
        health = "redis-cli -h 127.0.0.1 ping | grep -q PONG"
        if s.require_password:
            self.password = secret_or_generated(f"{name}-password", args.password, 32, self)
            secrets = SecretFiles(
                f"{name}-secrets",
                SecretFilesArgs(
                    docker_name=f"{args.docker_name}-secrets",
                    image=s.image,
                    files={
                        # A config file keeps the password out of argv and `docker inspect`.
                        CONFIG_FILE: self.password.apply(lambda p: f"requirepass {p}\n"),
                        PASSWORD_FILE: self.password,
                    },
                    labels=args.labels,
                    swarm=args.runtime.swarm is not None,
                ),
                opts=child,
            )
            mounts.append(secrets.mount())
            revision = secrets.revision_label()
            command.append(secret_path(CONFIG_FILE))
            health = f'REDISCLI_AUTH="$(cat {secret_path(PASSWORD_FILE)})" {health}'
        command += [
            "--maxmemory",
            f"{s.max_memory_mb}mb",
            "--maxmemory-policy",
            s.max_memory_policy,
            "--appendonly",
            "yes" if s.append_only else "no",
        ]
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
                image=s.image,
                command=command,
                mounts=[Mount(data.name, DATA_MOUNT), *mounts],
                networks=[Network(args.network, args.alias)],
                ports=published_ports(PORT, s.host_port, args.publish_ip),
                needs=REDIS_NEEDS,
                resources=s.resources,
                health_test=["CMD-SHELL", health],
                labels={**args.labels, **revision},
                stop_grace_seconds=s.stop_grace_seconds,
                pids_limit=s.pids_limit,
                pinned_to=args.node_label,
            ),
            args.runtime,
            self,
        ).container
        self.host = args.alias
        self.port = PORT
        self.register_outputs({})
