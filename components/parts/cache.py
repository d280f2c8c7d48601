"""Redis: user sessions and a cache of frequent queries, on its own private network."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.engine import Engine
from components.engine.files import SecretFiles, SecretFilesArgs, secret_path
from components.engine.workload import (
    FileMount,
    ImageNeeds,
    Mount,
    Network,
    Workload,
    published_ports,
)
from components.parts.credentials import secret_or_generated
from stacks.settings import RedisSettings

PORT = 6379
DATA_MOUNT = "/data"
CONFIG_FILE = "redis.conf"
PASSWORD_FILE = "redis-password"
HOME = "redis"
"""Where its volume is (`swarm.placement.redis`)."""

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
    engine: Engine
    labels: Mapping[str, str]
    password: pulumi.Input[str] | None = None
    """Operator-set password; generated when absent and `settings.require_password` is on."""
    publish_ip: str = "127.0.0.1"
    protect_data: bool = True


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
        self._name, self._args = name, args
        s = args.settings
        self.password = None
        secrets = None
        if s.require_password:
            self.password = secret_or_generated(f"{name}-password", args.password, 32, self)
            secrets = self._secret_files(self.password)
        data = args.engine.volume(
            f"{name}-data",
            f"{args.docker_name}-data",
            args.labels,
            self,
            protect=args.protect_data,
        )
        self.container = self._server(data.name, secrets)
        self.host = args.alias
        self.port = PORT
        self.register_outputs({})

    def _secret_files(self, password: pulumi.Output[str]) -> SecretFiles:
        args = self._args
        return SecretFiles(
            f"{self._name}-secrets",
            SecretFilesArgs(
                docker_name=f"{args.docker_name}-secrets",
                image=args.settings.image,
                files={
                    # A config file keeps the password out of argv and `docker inspect`.
                    CONFIG_FILE: password.apply(lambda p: f"requirepass {p}\n"),
                    PASSWORD_FILE: password,
                },
                labels=args.labels,
                engine=args.engine,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _server(
        self, data: pulumi.Output[str], secrets: SecretFiles | None
    ) -> docker.Container | docker.Service:
        args, s = self._args, self._args.settings
        mounts: list[Mount | FileMount] = [Mount(data, DATA_MOUNT)]
        revision: dict[str, pulumi.Input[str]] = {}
        command = ["redis-server"]
        health = "redis-cli -h 127.0.0.1 ping | grep -q PONG"
        if secrets is not None:
            mounts.append(secrets.mount())
            revision = secrets.revision_label()
            command.append(secret_path(CONFIG_FILE))
            health = f'REDISCLI_AUTH="$(cat {secret_path(PASSWORD_FILE)})" {health}'
        command += ["--maxmemory", f"{s.max_memory_mb}mb", "--maxmemory-policy"]
        command += [s.max_memory_policy, "--appendonly", "yes" if s.append_only else "no"]
        return args.engine.run(
            Workload(
                name=self._name,
                docker_name=args.docker_name,
                image=s.image,
                command=command,
                mounts=mounts,
                networks=[Network(args.network, args.alias)],
                ports=published_ports(PORT, s.host_port, args.publish_ip),
                needs=REDIS_NEEDS,
                resources=s.resources,
                health_test=["CMD-SHELL", health],
                labels={**args.labels, **revision},
                stop_grace_seconds=s.stop_grace_seconds,
                pids_limit=s.pids_limit,
                home=HOME,
            ),
            self,
        ).container
