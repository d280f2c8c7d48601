"""The container engine (`engine: containers`): every workload a container on one Docker host.

- A workload is pulumi-docker's `Container` with the runtime profile's hardening, limits, logs
  and health timing, and its PIDs limit (components/dynamic/pids_limit.py: the provider has no
  input for it); a side-by-side app gets a generation in its name (rolling.py) and its traffic
  gate (components/dynamic/traffic_gate.py).
- A file set is a named volume written by a seed container that never runs (files.py says why).
- Networks are bridges; a listener binds its alias, which Docker resolves on one network only.
- A command runs in each new container through the Engine API's exec (the exporter's role).

Values go in the form the provider reads back (provider/canonical.py), so a second
`pulumi up` finds nothing to change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_docker as docker

from components.dynamic.exporter_role import ExporterRole
from components.dynamic.pids_limit import PidsLimit
from components.dynamic.traffic_gate import TrafficGate
from components.engine.base import Delivery, Endpoint, Engine, FileContents, HomeLinks
from components.engine.profile import TMPFS_OPTIONS, RuntimeProfile
from components.engine.rolling import generation_name
from components.engine.workload import (
    FileMount,
    ImageNeeds,
    Mount,
    Network,
    Port,
    Running,
    Workload,
)
from provider import canonical, schema
from provider.diff import INIT_ERROR
from stacks.settings import Resources

FILES_PATH = "/run/secrets"
"""Where a seed writes its files into the volume (the consumer mounts it wherever it reads)."""


@dataclass(frozen=True)
class VolumeFiles(Delivery):
    """A file set written into a volume by its seed container."""

    volume: pulumi.Output[str]
    seed: docker.Container
    """Consumers depend on it, so the files exist before they start."""

    @property
    def volume_name(self) -> pulumi.Output[str] | None:
        return self.volume


@dataclass(frozen=True)
class OtherHost:
    """A Docker host besides the stack's own, where the workloads of some homes run (the
    off-host backup repository's)."""

    docker_host: str
    """Its address, for what the program sends Docker itself (the dynamic resources)."""
    provider: pulumi.ProviderResource
    """The Docker provider of that host."""


EVERY_ADDRESS = "0.0.0.0"  # noqa: S104 (a port the other host dials, on whatever route)


class HostLinks(HomeLinks):
    """Homes on different Docker hosts reach one another through the hosts: each home joins a
    network of its own with a route out, and a listener is dialled at its host's name on the
    port it publishes there."""

    def __init__(self, engine: ContainerEngine, hub: str) -> None:
        self.engine, self.hub = engine, hub

    def spoke_network(
        self,
        home: str,
        name: str,
        docker_name: str,
        labels: Mapping[str, str],
        parent: pulumi.Resource,
    ) -> docker.Network:
        return self.engine.network(name, docker_name, False, labels, parent, home=home)

    def hub_networks(
        self, name: str, docker_name: str, labels: Mapping[str, str], parent: pulumi.Resource
    ) -> list[docker.Network]:
        return [self.engine.network(name, docker_name, False, labels, parent, home=self.hub)]

    def endpoint(
        self, docker_name: str, port: int, host_address: str | None, host_port: int | None
    ) -> Endpoint:
        if host_address is None or host_port is None:  # the settings' rules ask for both
            raise ValueError(
                f"{docker_name}: a listener dialled from another Docker host needs its host's "
                "name and published port"
            )
        return Endpoint(host_address, host_port, (Port(port, host_port, EVERY_ADDRESS),))


class ContainerEngine(Engine):
    """Containers on one Docker host: the stack's `docker:host`, else `DOCKER_HOST`, else the
    local socket; and those of the homes `elsewhere` names on theirs."""

    network_driver = "bridge"

    def __init__(
        self,
        profile: RuntimeProfile,
        docker_host: str | None = None,
        providers: Sequence[pulumi.ProviderResource] = (),
        elsewhere: Mapping[str, OtherHost] | None = None,
    ) -> None:
        super().__init__(profile, providers)
        self.docker_host = docker_host
        """For what the program sends Docker itself (the dynamic resources)."""
        self.elsewhere = dict(elsewhere or {})
        """Home (`Workload.home`) -> the other host its workloads, volumes and files are on."""

    def _other_host(self, home: str | None) -> OtherHost | None:
        return self.elsewhere.get(home) if home else None

    def links_between_homes(
        self,
        name: str,
        docker_name: str,
        labels: Mapping[str, str],
        parent: pulumi.Resource,
        hub: str,
        spokes: Sequence[str],
    ) -> HomeLinks:
        del name, docker_name, labels, parent, spokes  # nothing shared: a network per home
        return HostLinks(self, hub)

    def provider_of(self, home: str | None) -> pulumi.ProviderResource | None:
        other = self._other_host(home)
        return other.provider if other else None

    def docker_host_of(self, home: str | None) -> str | None:
        """The address of the host `home`'s workloads run on, for the dynamic resources."""
        other = self._other_host(home)
        return other.docker_host if other else self.docker_host

    def run(self, workload: Workload, parent: pulumi.Resource) -> Running:
        """The workload as a container (and its PIDs limit), a child of `parent`, on its
        home's host."""
        w = workload
        docker_host = self.docker_host_of(w.home)
        inputs = container_inputs(w, self.profile)
        # A side-by-side app answers to its callers only once healthy (its traffic gate): it
        # joins the networks they call it on under its own name, and the gate waits for it and
        # gives it the alias there.
        gated = _gated(w)
        if gated:  # the gate waits for it
            inputs["wait"] = False
        docker_name: pulumi.Input[str] = w.docker_name
        if w.side_by_side:
            docker_name = generation_name(w.name, w.docker_name, inputs, parent)
        seeds = [_delivered(m).seed for m in w.mounts if isinstance(m, FileMount)]
        container = docker.Container(
            f"{w.name}-container",
            name=docker_name,
            **inputs,
            opts=container_options(
                parent,
                depends_on=[*seeds, *w.depends_on],
                side_by_side=w.side_by_side,
                provider=self.provider_of(w.home),
            ),
        )
        child = pulumi.ResourceOptions(parent=parent)
        PidsLimit(f"{w.name}-pids", container, w.pids_limit, docker_host, child)
        if gated:
            TrafficGate(
                f"{w.name}-traffic",
                container,
                docker_name,
                networks=[{"name": n.network.name, "aliases": [n.alias]} for n in gated],
                wait_seconds=self.profile.wait_timeout_seconds,
                docker_host=docker_host,
                opts=child,
            )
        return Running(container, docker_name, w.home)

    def deliver_files(
        self,
        name: str,
        contents: FileContents,
        revision: pulumi.Output[str],
        parent: pulumi.Resource,
    ) -> Delivery:
        volume = self.volume(
            f"{name}-volume", contents.docker_name, contents.labels, parent, home=contents.home
        )
        seed = _seed(name, contents, volume, parent, self.provider_of(contents.home))
        return VolumeFiles(volume.name, seed)

    def listen_address(self, alias: str) -> str:
        # Docker resolves a container's alias, inside it, to its address on that network.
        return alias

    def run_in_each_instance(
        self, name: str, running: Running, command: Sequence[str], parent: pulumi.Resource
    ) -> None:
        assert isinstance(running.container, docker.Container)  # this engine runs containers
        ExporterRole(
            name,
            running.container,
            command,
            self.docker_host_of(running.home),
            pulumi.ResourceOptions(parent=parent),
        )


def _gated(w: Workload) -> list[Network]:
    """The networks a side-by-side workload serves on: its alias there waits for its health."""
    return [n for n in w.networks if n.serves] if w.side_by_side else []


def _delivered(mount: FileMount) -> VolumeFiles:
    delivered = mount.files.delivered
    assert isinstance(delivered, VolumeFiles)  # this engine wrote it
    return delivered


def container_inputs(w: Workload, profile: RuntimeProfile) -> dict[str, Any]:
    """Keyword arguments of `docker.Container` for the workload (all but its name)."""
    gated = _gated(w)
    inputs: dict[str, Any] = {"image": w.image}
    if w.command is not None:
        inputs["command"] = list(w.command)
    if w.env is not None:
        inputs["envs"] = list(w.env)
    inputs["volumes"] = [_volume(m) for m in w.mounts]
    if w.networks:
        inputs["networks_advanced"] = [
            docker.ContainerNetworksAdvancedArgs(
                name=n.network.name, aliases=None if n in gated else [n.alias]
            )
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
        profile,
        w.needs,
        w.resources,
        # Docker on one host only shows health: the workload's fullest check.
        list(w.state_test or w.health_test),
        w.labels,
        w.stop_grace_seconds,
    )
    if w.user is not None:
        inputs["user"] = w.user
    if not w.waits:
        inputs["wait"] = False
    return inputs


def _volume(mount: Mount | FileMount) -> docker.ContainerVolumeArgs:
    if isinstance(mount, FileMount):
        return docker.ContainerVolumeArgs(
            volume_name=_delivered(mount).volume, container_path=mount.path, read_only=True
        )
    if mount.read_only:
        return docker.ContainerVolumeArgs(
            volume_name=mount.volume, container_path=mount.path, read_only=True
        )
    return docker.ContainerVolumeArgs(volume_name=mount.volume, container_path=mount.path)


def container_args(
    profile: RuntimeProfile,
    needs: ImageNeeds,
    resources: Resources,
    health_test: Sequence[str],
    labels: Mapping[str, pulumi.Input[str]],
    stop_grace_seconds: int,
) -> dict[str, Any]:
    """Keyword arguments for `docker.Container` that every container of the stack shares."""
    health = profile.health
    args: dict[str, Any] = {
        "restart": profile.restart,
        "memory": resources.memory_mb,
        "memory_swap": resources.memory_mb,  # equal to memory: no swap on top of the limit
        "cpus": canonical.cpus(resources.cpus),
        "log_driver": "json-file",
        "log_opts": {"max-size": profile.logs.max_size, "max-file": str(profile.logs.max_files)},
        "healthcheck": docker.ContainerHealthcheckArgs(
            tests=list(health_test),
            interval=canonical.duration(health.interval),
            timeout=canonical.duration(health.timeout),
            retries=health.retries,
            start_period=canonical.duration(health.start_period),
        ),
        # The provider stops a container it deletes or replaces with this timeout, then kills
        # it; unset, it kills at once. `stop_timeout` gives `docker stop`/`docker restart` and
        # the daemon's own shutdown the same grace.
        "destroy_grace_seconds": stop_grace_seconds,
        "stop_timeout": stop_grace_seconds,
        # `pulumi up` returns only once the container reports healthy.
        "wait": True,
        "wait_timeout": profile.wait_timeout_seconds,
        "labels": [
            docker.ContainerLabelArgs(label=k, value=v)
            for k, v in sorted({**profile.labels, **labels}.items())
        ],
    }
    return args | _hardening(profile, needs)


def _hardening(profile: RuntimeProfile, needs: ImageNeeds) -> dict[str, Any]:
    """The container arguments of the stack's hardening, for one image."""
    hardening = profile.hardening
    args: dict[str, Any] = {"read_only": hardening.read_only_root}
    if hardening.read_only_root:
        args["tmpfs"] = {path: TMPFS_OPTIONS for path in needs.writable_paths}
    if hardening.drop_all_capabilities:
        # None added back: the settings allow this only together with runAsNonRoot, and no
        # image here needs a capability once it starts as its own user.
        args["capabilities"] = docker.ContainerCapabilitiesArgs(drops=["ALL"])
    if hardening.no_new_privileges:
        args["security_opts"] = ["no-new-privileges:true"]
    if hardening.run_as_non_root:
        args["user"] = needs.non_root_user
    return args


def container_options(
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource] = (),
    side_by_side: bool = False,
    provider: pulumi.ProviderResource | None = None,
) -> pulumi.ResourceOptions:
    """Resource options every container needs, because of how Docker behaves.

    The order of a replacement is always explicit (the option wins over pulumi-docker's
    delete-first default for containers). Delete first where a replacement cannot exist beside
    the old container: a fixed name, a fixed host port, a volume only one server may use
    (databases, Redis, the backup job). `side_by_side`: the replacement is created and healthy
    before the old container is stopped (rolling.py gives it another name). `provider`: that
    of another host than the stack's (None: the one inherited from the platform).
    """
    return pulumi.ResourceOptions(
        parent=parent,
        provider=provider,
        depends_on=list(depends_on),
        delete_before_replace=not side_by_side,
        replace_on_changes=CONTAINER_REPLACE_ON_CHANGES,
    )


# Docker applies these only when it creates a container (the health check, tmpfs mounts, ...),
# and the provider's update does not touch them: a change must replace the container. And a
# container recorded with an initialisation error (it never turned healthy within
# `wait_timeout`) is replaced by the next `pulumi up`, which waits for it again, instead of
# being "updated" by a no-op that would report success.
CONTAINER_REPLACE_ON_CHANGES = [*schema.container_inputs_never_applied(), INIT_ERROR]


def _seed(
    name: str,
    contents: FileContents,
    volume: docker.Volume,
    parent: pulumi.Resource,
    provider: pulumi.ProviderResource | None,
) -> docker.Container:
    """The container, never started, whose uploads write the files into the volume."""
    return docker.Container(
        f"{name}-seed",
        name=f"{contents.docker_name}-seed",
        image=contents.image,
        start=False,
        must_run=False,
        network_mode="none",
        capabilities=docker.ContainerCapabilitiesArgs(drops=["ALL"]),
        volumes=[docker.ContainerVolumeArgs(volume_name=volume.name, container_path=FILES_PATH)],
        uploads=[
            docker.ContainerUploadArgs(
                file=f"{FILES_PATH}/{file_name}",
                content=content,
                # World-readable inside the one container that mounts the volume, so the
                # image's unprivileged user can read it whatever its uid.
                permissions="0444",
            )
            for file_name, content in sorted(contents.files.items())
        ],
        labels=[docker.ContainerLabelArgs(label=k, value=v) for k, v in contents.labels.items()],
        # A seed whose uploads failed after it was created is recorded with an initialisation
        # error: the next `pulumi up` writes the files again instead of a no-op update.
        # Its image only has to exist when the seed is created (it never runs), so a new
        # image of the consumer does not rewrite the secrets: Docker keeps an image a
        # container was created from, and a replaced seed reuses it.
        opts=pulumi.ResourceOptions(
            parent=parent,
            provider=provider,
            delete_before_replace=True,
            replace_on_changes=[INIT_ERROR],
            ignore_changes=["image"],
        ),
    )
