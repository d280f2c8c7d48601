"""The one interface between the parts and the engine that runs them.

A part says what it needs (a workload, a file set, a network, a volume, a listener's address,
a command run in each new instance); the stack's engine, chosen once (components/engine/
__init__.py), says how Docker or Swarm does it. So the parts hold no engine test, and a new
way of running (a workload on a named Docker host or swarm node: `Workload.home`) is a change
here, not in every part.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import pulumi
import pulumi_docker as docker

from components.engine.profile import RuntimeProfile
from components.engine.workload import Port, Running, Workload


@dataclass(frozen=True)
class FileContents:
    """What a file set writes, as its component (components/engine/files.py) hands it over."""

    docker_name: str
    """Base of the Docker names of what holds the files."""
    image: pulumi.Input[str]
    """An image already on the host (the consumer's), where the engine needs one."""
    files: Mapping[str, pulumi.Input[str]]
    """File name -> content; the secret ones already Pulumi secrets."""
    labels: Mapping[str, str]
    home: str | None = None
    """The consumer's home (`Workload.home`): the files are written where it runs."""


class Delivery:
    """How an engine delivered a file set: only that engine reads it back (`Engine.run`)."""

    @property
    def volume_name(self) -> pulumi.Output[str] | None:
        """The volume holding the files, where they are in one (one Docker host)."""
        return None


@dataclass(frozen=True)
class Endpoint:
    """Where a listener of one home is dialled from the others (`HomeLinks.endpoint`)."""

    address: str
    """The name its clients dial, which its TLS certificate carries."""
    port: int
    published: Sequence[Port] = ()
    """What its workload publishes for it (nothing where the homes share a network)."""


class HomeLinks(ABC):
    """How the workloads of one home (the hub: the off-host backup repository's) and of several
    others (the spokes: the database servers') reach one another, and never the spokes each
    other: the networks each joins for it, and where each listener is dialled. Made once by
    `Engine.links_between_homes`."""

    @abstractmethod
    def spoke_network(
        self,
        home: str,
        name: str,
        docker_name: str,
        labels: Mapping[str, str],
        parent: pulumi.Resource,
    ) -> docker.Network:
        """The network the workloads of the spoke `home` join to reach the hub and be reached
        from it; `name` and `docker_name` name it where the engine makes it here."""

    @abstractmethod
    def hub_networks(
        self, name: str, docker_name: str, labels: Mapping[str, str], parent: pulumi.Resource
    ) -> list[docker.Network]:
        """The networks the hub's workload joins to reach every spoke and be reached from
        them; `name` and `docker_name` name one where the engine makes it here."""

    @abstractmethod
    def endpoint(
        self, docker_name: str, port: int, host_address: str | None, host_port: int | None
    ) -> Endpoint:
        """Where the listener on `port` of the workload `docker_name` is dialled from the
        other homes; `host_address` and `host_port`: its host's name and published port, for
        an engine whose homes are separate hosts."""


class Engine(ABC):
    """Runs the parts' workloads and makes what they need, on the stack's engine."""

    network_driver: ClassVar[str]
    """Docker's driver of the stack's networks: one host's bridges, or a swarm's overlays."""

    def __init__(
        self, profile: RuntimeProfile, providers: Sequence[pulumi.ProviderResource] = ()
    ) -> None:
        self.profile = profile
        self.providers: list[pulumi.ProviderResource] = list(providers)
        """The Docker providers every part's resources use (the registry's login, when the
        stack names a registry); the parts inherit them from the platform."""

    @abstractmethod
    def run(self, workload: Workload, parent: pulumi.Resource) -> Running:
        """The workload running, as a child of `parent`."""

    @abstractmethod
    def deliver_files(
        self,
        name: str,
        contents: FileContents,
        revision: pulumi.Output[str],
        parent: pulumi.Resource,
    ) -> Delivery:
        """The files written where a workload mounting them will find them; `revision`
        changes whenever any content does."""

    @abstractmethod
    def listen_address(self, alias: str) -> str:
        """What a listener binds to be reached by `alias` on one network only ("" for every
        address, where the engine cannot tell the networks apart)."""

    @abstractmethod
    def run_in_each_instance(
        self, name: str, running: Running, command: Sequence[str], parent: pulumi.Resource
    ) -> None:
        """Run `command` in every new instance of `running` once it is up, where the engine
        can reach its instances (the exporter's role in a server whose volume is older)."""

    @abstractmethod
    def links_between_homes(
        self,
        name: str,
        docker_name: str,
        labels: Mapping[str, str],
        parent: pulumi.Resource,
        hub: str,
        spokes: Sequence[str],
    ) -> HomeLinks:
        """How the workloads of the home `hub` and of each home of `spokes` reach one another;
        `name` and `docker_name` are the base of the names of what the engine makes for it
        at once, a child of `parent`."""

    def provider_of(self, home: str | None) -> pulumi.ProviderResource | None:
        """The Docker provider of the place `home`'s workloads run, where it is not the one
        every part inherits (None)."""
        return None

    def volume(
        self,
        name: str,
        docker_name: str,
        labels: Mapping[str, str],
        parent: pulumi.Resource,
        protect: bool = False,
        home: str | None = None,
    ) -> docker.Volume:
        """A named volume carrying `labels`, where `home`'s workloads run; `protect`: Pulumi
        refuses to delete it. On a swarm it is node-local: Docker makes it on the node where a
        task first mounts it."""
        return docker.Volume(
            name,
            name=docker_name,
            labels=[docker.VolumeLabelArgs(label=k, value=v) for k, v in labels.items()],
            opts=pulumi.ResourceOptions(
                parent=parent, protect=protect, provider=self.provider_of(home)
            ),
        )

    def network(
        self,
        name: str,
        docker_name: str,
        internal: bool,
        labels: Mapping[str, str],
        parent: pulumi.Resource,
        home: str | None = None,
    ) -> docker.Network:
        """A network the workloads join by alias, where `home`'s workloads run; `internal`: no
        route out of its hosts."""
        return docker.Network(
            name,
            name=docker_name,
            driver=self.network_driver,
            internal=internal,
            labels=[docker.NetworkLabelArgs(label=k, value=v) for k, v in labels.items()],
            opts=pulumi.ResourceOptions(parent=parent, provider=self.provider_of(home)),
        )
