"""What one running part of the platform is, said once, whatever engine runs it.

Components (a database, an app, the edge proxy, ...) describe their process as a `Workload`:
its image and command, its environment, volumes, networks and published ports, its health
check, its resources and stop grace. `run` turns that into what the engine needs. Today the
engine is a single Docker host, so a workload becomes a `docker.Container` (with the runtime
profile's hardening, limits, logs and health timing: runtime.container_args) and its PIDs
limit. The engine is decided here, in one place: a second one (Swarm services) maps the same
description, instead of a second copy of every component.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pulumi
import pulumi_docker as docker

from components.rolling import generation_name
from components.runtime import (
    ImageNeeds,
    RuntimeProfile,
    container_args,
    container_options,
    limit_processes,
)
from stacks.settings import Resources


@dataclass(frozen=True)
class Mount:
    """A named volume in the workload's filesystem."""

    volume: pulumi.Input[str]
    path: str
    read_only: bool = False


class FileSet(Protocol):
    """Files written for a workload before it starts (components/secret_files.py)."""

    @property
    def volume_name(self) -> pulumi.Output[str]: ...
    @property
    def seed(self) -> docker.Container: ...


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


@dataclass(frozen=True)
class Running:
    container: docker.Container
    docker_name: pulumi.Input[str]
    """Its current name: with a generation when it is replaced side by side."""


def run(workload: Workload, profile: RuntimeProfile, parent: pulumi.Resource) -> Running:
    """The workload on the stack's engine, as a child of `parent`."""
    w = workload
    inputs: dict[str, Any] = {"image": w.image}
    if w.command is not None:
        inputs["command"] = list(w.command)
    if w.env is not None:
        inputs["envs"] = list(w.env)
    inputs["volumes"] = [_volume(m) for m in w.mounts]
    seeds = [m.files.seed for m in w.mounts if isinstance(m, FileMount)]
    if w.networks:
        inputs["networks_advanced"] = [
            docker.ContainerNetworksAdvancedArgs(name=n.network.name, aliases=[n.alias])
            for n in w.networks
        ]
    else:
        inputs["network_mode"] = "none"
    if w.ports is not None:
        # In the order the provider reads them back (by inside port, `flattenContainerPorts`):
        # any other order would replace the container on every `up`.
        inputs["ports"] = [
            docker.ContainerPortArgs(internal=p.internal, external=p.external, ip=p.ip)
            for p in sorted(w.ports, key=lambda p: p.internal)
        ]
    if w.shm_size_mb is not None:
        inputs["shm_size"] = w.shm_size_mb
    inputs |= container_args(
        profile, w.needs, w.resources, health_test=list(w.health_test), labels=w.labels,
        stop_grace_seconds=w.stop_grace_seconds,
    )  # fmt: skip
    if w.user is not None:
        inputs["user"] = w.user
    if not w.waits:
        inputs["wait"] = False
    docker_name: pulumi.Input[str] = w.docker_name
    if w.side_by_side:
        docker_name = generation_name(w.name, w.docker_name, inputs, parent)
    container = docker.Container(
        f"{w.name}-container",
        name=docker_name,
        **inputs,
        opts=container_options(
            parent, depends_on=[*seeds, *w.depends_on], side_by_side=w.side_by_side
        ),
    )
    limit_processes(w.name, container, w.pids_limit, profile, parent)
    return Running(container, docker_name)


def _volume(mount: Mount | FileMount) -> docker.ContainerVolumeArgs:
    if isinstance(mount, FileMount):
        return docker.ContainerVolumeArgs(
            volume_name=mount.files.volume_name, container_path=mount.path, read_only=True
        )
    if mount.read_only:
        return docker.ContainerVolumeArgs(
            volume_name=mount.volume, container_path=mount.path, read_only=True
        )
    return docker.ContainerVolumeArgs(volume_name=mount.volume, container_path=mount.path)
