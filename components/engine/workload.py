"""What one running part of the platform is, said once, whatever engine runs it.

The parts (a database, an app, the edge proxy, ...) describe their process as a `Workload`:
its image and command, its environment, volumes, file sets, networks and published ports, its
health check, its resources, stop grace and rollout. The stack's engine (components/engine/)
turns it into provider resources: a container on one Docker host or a service on a swarm,
instead of a copy of every part per engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pulumi
import pulumi_docker as docker

from stacks.settings import Resources

if TYPE_CHECKING:  # files.py builds on this module's types
    from components.engine.files import SecretFiles


@dataclass(frozen=True)
class ImageNeeds:
    """What one image needs from the runtime to start under the stack's hardening."""

    non_root_user: str
    """The image's unprivileged user, used from the start when `runAsNonRoot` is on."""
    writable_paths: Sequence[str] = ("/tmp",)
    """Paths the process writes outside its volumes: tmpfs when the root is read-only."""


@dataclass(frozen=True)
class Mount:
    """A named volume in the workload's filesystem."""

    volume: pulumi.Input[str]
    path: str
    read_only: bool = False


@dataclass(frozen=True)
class FileMount:
    """A file set (components/engine/files.py), read-only at `path` in the workload's
    filesystem; the workload starts once the files are written."""

    files: SecretFiles
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
    again (components/dynamic/traffic_gate.py); the networks it calls out on are never left."""


@dataclass(frozen=True)
class Port:
    """A port published on the host: `external` on `ip` reaches `internal` inside."""

    internal: int
    external: int
    ip: str


def answers_http(url: str, timeout_seconds: int = 5) -> list[str]:
    """A health test: a GET of `url` answers with a success (python3 in the image)."""
    return [
        "python3",
        "-c",
        f"import urllib.request as r; r.urlopen({url!r}, timeout={timeout_seconds})",
    ]


def published_ports(internal: int, host_port: int | None, publish_ip: str) -> list[Port]:
    """A workload's one published port, or none when it stays private."""
    if host_port is None:
        return []
    return [Port(internal, host_port, publish_ip)]


@dataclass(frozen=True)
class Workload:
    name: str
    """Base of its Pulumi names: `<name>-container`, `<name>-pids`, `<name>-service`."""
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
    """Run as this user whatever the hardening says (it needs no root even in dev)."""
    waits: bool = True
    """Whether a deploy waits for it to turn healthy."""
    side_by_side: bool = False
    """Replaced by starting the new one first: nothing pins it to one instance (no host port,
    no volume only one process may use)."""
    depends_on: Sequence[pulumi.Resource] = ()
    replicas: int = 1
    """Instances at once where the engine runs several (a swarm); one Docker host runs one."""
    state_test: Sequence[str] | None = None
    """A fuller check of its state than `health_test` (fresh backups, passed drills), where it
    has one. On one Docker host it is the container's health check: shown and alerted on, never
    acted on. A swarm acts on health (it restarts an unhealthy task and names a task in its DNS
    only once healthy), so a task's health there is `health_test` alone: for a workload with a
    `state_test`, that it serves."""
    home: str | None = None
    """The stateful part whose volumes it uses (`redis`, `order-db`, `prometheus`, ...): the
    engine runs it where those volumes are (on a swarm, the node `swarm.placement` names).
    None: it holds nothing and may run anywhere."""


@dataclass(frozen=True)
class Running:
    container: docker.Container | docker.Service
    """What runs it: a container (one Docker host) or a service (a swarm)."""
    docker_name: pulumi.Input[str]
    """Its current name: with a generation when it is replaced side by side."""
    home: str | None = None
    """The workload's home (`Workload.home`): where the engine placed it."""
