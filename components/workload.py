"""What one running part of the platform is, said once, whatever engine runs it.

Components (a database, an app, the edge proxy, ...) describe their process as a `Workload`:
its image and command, its environment, volumes, file sets, networks and published ports, its
health check, its resources, stop grace and rollout. components/engine.py hands it to the
stack's engine: a container on one Docker host (components/containers.py) or a service on a
swarm (components/swarm.py), instead of a copy of every component per engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import pulumi
import pulumi_docker as docker

from components.runtime import (
    ImageNeeds,
)
from stacks.settings import Resources


@dataclass(frozen=True)
class Mount:
    """A named volume in the workload's filesystem."""

    volume: pulumi.Input[str]
    path: str
    read_only: bool = False


class FileSet(Protocol):
    """Files written for a workload before it starts (components/secret_files.py): a volume
    and its seed on one Docker host, Swarm secrets on a swarm."""

    @property
    def volume_name(self) -> pulumi.Output[str] | None: ...
    @property
    def seed(self) -> docker.Container | None: ...
    @property
    def secrets(self) -> Mapping[str, docker.Secret]: ...


@dataclass(frozen=True)
class FileMount:
    """A file set, read-only at `path` in the workload's filesystem."""

    files: FileSet
    path: str


@dataclass(frozen=True)
class Network:
    """A network the workload joins, and the host name it answers to there."""

    network: docker.Network
    alias: str
    serves: bool = True
    """Whether callers reach the workload by its alias here (False on a network where only it
    calls out: an app on its database's, the gateway on the business services'). A side-by-side
    app is given the alias of a network it serves on once healthy, by leaving and joining it
    again (components/traffic_gate.py); the networks it calls out on are never left."""


@dataclass(frozen=True)
class Port:
    """A port published on the host: `external` on `ip` reaches `internal` inside."""

    internal: int
    external: int
    ip: str


def published_ports(internal: int, host_port: int | None, publish_ip: str) -> list[Port]:
    """A workload's one published port, or none when it stays private."""
    if host_port is None:
        return []
    return [Port(internal, host_port, publish_ip)]


@dataclass(frozen=True)
class Workload:
    name: str
    """Base of its Pulumi names: `<name>-container`, `<name>-pids`."""
    docker_name: str
    image: pulumi.Input[str]
    needs: ImageNeeds
    resources: Resources
    health_test: Sequence[str]
    labels: Mapping[str, pulumi.Input[str]]
    stop_grace_seconds: int
    pids_limit: int
    command: Sequence[str] | None = None
    env: Sequence[str] | None = None
    """`NAME=value` entries, in the order given (never secrets: they go in files)."""
    mounts: Sequence[Mount | FileMount] = ()
    """Volumes and file sets, in order; a file set is written before the workload starts."""
    networks: Sequence[Network] = ()
    """None at all: the workload has no network (not even Docker's default bridge)."""
    ports: Sequence[Port] | None = None
    """None: the workload never publishes (no `ports` input at all)."""
    shm_size_mb: int | None = None
    user: str | None = None
    """Run as this user whatever the profile says (it needs no root even in dev)."""
    waits: bool = True
    """Whether a deploy waits for it to turn healthy."""
    side_by_side: bool = False
    """Replaced by starting the new one first (components/rolling.py): nothing pins it to one
    instance (no host port, no volume only one process may use)."""
    depends_on: Sequence[pulumi.Resource] = ()
    replicas: int = 1
    """Tasks on a swarm; one Docker host runs one."""
    pinned_to: str | None = None
    """On a swarm, the node label of the node holding its volumes (`swarm.placement`)."""


@dataclass(frozen=True)
class Running:
    container: docker.Container | docker.Service
    """What runs it: a container (one Docker host) or a service (a swarm)."""
    docker_name: pulumi.Input[str]
    """Its current name: with a generation when it is replaced side by side."""
