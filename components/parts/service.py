"""One platform service (a Node.js app from another repository) and its wiring.

The contract between the platform and every app image is the environment set here:
`PORT`, `SERVICE_NAME`, `NODE_ENV`, `CORS_ORIGINS` (comma-separated), and where they apply
`DATABASE_HOST`/`DATABASE_PORT`/`DATABASE_NAME`/`DATABASE_USER`/`DATABASE_PASSWORD_FILE`,
`REDIS_HOST`/`REDIS_PORT`/`REDIS_PASSWORD_FILE`, `JWT_SECRET_FILE`, and for the gateway
`UPSTREAMS` (`name=url` pairs) and for the web apps `GATEWAY_URL`. Secrets arrive only as files
under /run/secrets. The app answers `GET /health` on `PORT`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

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
from components.parts.built_image import service_image
from stacks.catalogue import ServiceSpec
from stacks.settings import ServiceSettings

HEALTH_PATH = "/health"
"""Every app's health endpoint (the monitoring's health probe asks it too)."""

# `node` is in every Node.js image, so the probe needs no curl or wget.
NODE_HEALTH_PROBE = (
    f"require('http').get('http://127.0.0.1:'+process.env.PORT+'{HEALTH_PATH}',"
    "r=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1))"
)


@dataclass(frozen=True)
class DatabaseConnection:
    host: str
    port: int
    name: str
    user: str
    password: pulumi.Output[str]


@dataclass(frozen=True)
class RedisConnection:
    host: str
    port: int
    password: pulumi.Output[str] | None


@dataclass(frozen=True)
class ServiceArgs:
    spec: ServiceSpec
    settings: ServiceSettings
    docker_name: str
    networks: Sequence[Network]
    engine: Engine
    labels: Mapping[str, str]
    cors_origins: Sequence[str]
    node_env: str
    database: DatabaseConnection | None = None
    redis: RedisConnection | None = None
    jwt_secret: pulumi.Output[str] | None = None
    upstreams: Mapping[str, str] = field(default_factory=dict)
    """Gateway only: service name -> in-network URL."""
    gateway_url: str | None = None
    """Web apps only: the gateway's in-network URL."""
    host_port: int | None = None
    """The port this container publishes itself (None: private, or behind the edge proxy)."""
    publish_ip: str = "127.0.0.1"
    depends_on: Sequence[pulumi.Resource] = ()
    """Containers that must be healthy before this one starts."""


class Service(pulumi.ComponentResource):
    container: docker.Container | docker.Service
    """What runs it: a container, or a service on a swarm."""
    docker_name: pulumi.Input[str]
    """The container's name: fixed, or with a generation for one that rolls."""

    def __init__(
        self, name: str, args: ServiceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ecommerce:index:Service", name, None, opts)
        self._args = args
        env, files = service_environment(args)
        image = service_image(f"{name}-image", args.settings, args.docker_name, self)
        mounts: list[Mount | FileMount] = []
        revision: dict[str, pulumi.Input[str]] = {}
        if files:
            secrets = self._secret_files(name, image, files)
            mounts.append(secrets.mount())
            revision = secrets.revision_label()
        health = args.settings.health_command or ("CMD", "node", "-e", NODE_HEALTH_PROBE)
        running = args.engine.run(
            Workload(
                name=name,
                docker_name=args.docker_name,
                image=image,
                env=[f"{key}={value}" for key, value in sorted(env.items())],
                mounts=mounts,
                networks=args.networks,
                ports=published_ports(args.spec.container_port, args.host_port, args.publish_ip),
                needs=ImageNeeds(non_root_user=args.settings.user),
                resources=args.settings.resources,
                health_test=list(health),
                labels={**args.labels, **revision},
                stop_grace_seconds=args.settings.stop_grace_seconds,
                pids_limit=args.settings.pids_limit,
                replicas=args.settings.replicas,
                # An app that holds no host port is replaced side by side; one that publishes
                # a port cannot have two containers at once.
                side_by_side=args.host_port is None,
                depends_on=args.depends_on,
            ),
            self,
        )
        self.container, self.docker_name = running.container, running.docker_name
        self.register_outputs({})

    def _secret_files(
        self, name: str, image: pulumi.Input[str], files: dict[str, pulumi.Input[str]]
    ) -> SecretFiles:
        args = self._args
        return SecretFiles(
            f"{name}-secrets",
            SecretFilesArgs(
                docker_name=f"{args.docker_name}-secrets",
                image=image,
                files=files,
                labels=args.labels,
                engine=args.engine,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )


DATABASE_PASSWORD_FILE = "database-password"
REDIS_PASSWORD_FILE = "redis-password"
JWT_SECRET_FILE = "jwt-secret"


def service_environment(
    args: ServiceArgs,
) -> tuple[dict[str, str], dict[str, pulumi.Input[str]]]:
    """The app's plain environment, and the secret files it points to."""
    env = {
        "PORT": str(args.spec.container_port),
        "SERVICE_NAME": args.spec.name,
        "NODE_ENV": args.node_env,
        "CORS_ORIGINS": ",".join(args.cors_origins),
    }
    files: dict[str, pulumi.Input[str]] = {}
    if args.database is not None:
        db = args.database
        env |= {
            "DATABASE_HOST": db.host,
            "DATABASE_PORT": str(db.port),
            "DATABASE_NAME": db.name,
            "DATABASE_USER": db.user,
            "DATABASE_PASSWORD_FILE": secret_path(DATABASE_PASSWORD_FILE),
        }
        files[DATABASE_PASSWORD_FILE] = db.password
    if args.redis is not None:
        env |= {"REDIS_HOST": args.redis.host, "REDIS_PORT": str(args.redis.port)}
        if args.redis.password is not None:
            env["REDIS_PASSWORD_FILE"] = secret_path(REDIS_PASSWORD_FILE)
            files[REDIS_PASSWORD_FILE] = args.redis.password
    if args.jwt_secret is not None:
        env["JWT_SECRET_FILE"] = secret_path(JWT_SECRET_FILE)
        files[JWT_SECRET_FILE] = args.jwt_secret
    if args.upstreams:
        env["UPSTREAMS"] = ",".join(f"{k}={v}" for k, v in sorted(args.upstreams.items()))
    if args.gateway_url is not None:
        env["GATEWAY_URL"] = args.gateway_url
    # The settings reject extras that would shadow these (stacks.catalogue.SERVICE_ENV_NAMES).
    return env | dict(args.settings.env), files
