"""The swarm engine (`engine: swarm`; docs/swarm.md): every workload a Docker Swarm service.

- A workload is a service placed on the nodes labelled for its home (`swarm.placement`),
  its replicas never two on one node, rolled by Swarm's own update and rollback
  configuration. Published ports (the edge's) are each node's own (host mode).
- A file set is a Swarm secret per file (Swarm secrets never change: a new content is a new
  secret under a new name).
- Networks are overlays; a listener binds every address of its task (an alias is the
  service's name, which resolves to the service, not to one task's own address).
- Nothing runs in a task by exec: the program cannot reach a node's tasks.

What pulumi-docker's service (kreuzwerker v4.5.0, resource_docker_service*.go) does with each
input decides how it is written here:
- `command` in a service spec replaces the image's ENTRYPOINT; a container's `command` is the
  CMD. The workload's command is the CMD, so it goes in `args`.
- `stop_grace_period` left out is sent as 0: SIGKILL right after SIGTERM. Always set.
- Every duration is read back through `shortDur` (provider/canonical.short_duration).
- `restart_policy` sends all four fields whenever the block is there: all four are set.
- `max_failure_ratio` is a string read back with one decimal.
- Networks are attached by ID (the provider reads back only the ID; a name would replace the
  service on every `up`).
- There is no no-new-privileges, no PIDs limit and no security option in a service spec:
  dockerd's own `no-new-privileges` setting covers the first (docs/swarm.md).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pulumi
import pulumi_docker as docker

from components.engine.base import Delivery, Endpoint, Engine, FileContents, HomeLinks
from components.engine.profile import TMPFS_SIZE_MB, RuntimeProfile
from components.engine.workload import FileMount, Mount, Running, Workload
from provider import canonical
from stacks.settings import SwarmSettings

MB = 1024 * 1024
TMPFS_BYTES = TMPFS_SIZE_MB * MB
"""As the containers' tmpfs."""


@dataclass(frozen=True)
class Rollout:
    """How the service is spread and replaced: from the stack file's Swarm settings."""

    replicas: int = 1
    constraints: Sequence[str] = ()
    """Placement, e.g. `node.labels.ecommerce.order-db==true` for a volume's node."""
    max_per_node: int = 0
    """At most this many tasks of the service on one node (0: no limit)."""
    endpoint_mode: Literal["vip", "dnsrr"] = "vip"
    start_first: bool = True
    """Start the new task before stopping the old one; never for a volume only one process may
    use, nor for a port published in host mode."""
    update_delay: str = "10s"
    monitor: str = "30s"
    """How long a new task must stay healthy before the update goes on (or rolls back)."""
    converge_timeout: str = "5m"


@dataclass(frozen=True)
class SwarmSecrets(Delivery):
    """A file set as Swarm secrets."""

    secrets: dict[str, docker.Secret]
    """File name -> its Swarm secret."""


class OverlayLinks(HomeLinks):
    """The nodes of a swarm share its overlays: each spoke's home and the hub's meet on an
    internal overlay of their own (the hub joins every one; no spoke another's), and a
    listener is dialled at its service's name on its own port; nothing is published."""

    def __init__(self, overlays: Mapping[str, docker.Network]) -> None:
        self.overlays = dict(overlays)
        """Spoke home -> the overlay it shares with the hub."""

    def spoke_network(
        self,
        home: str,
        name: str,
        docker_name: str,
        labels: Mapping[str, str],
        parent: pulumi.Resource,
    ) -> docker.Network:
        del name, docker_name, labels, parent  # made with the links, for the hub to join first
        return self.overlays[home]

    def hub_networks(
        self, name: str, docker_name: str, labels: Mapping[str, str], parent: pulumi.Resource
    ) -> list[docker.Network]:
        del name, docker_name, labels, parent
        return list(self.overlays.values())

    def endpoint(
        self, docker_name: str, port: int, host_address: str | None, host_port: int | None
    ) -> Endpoint:
        del host_address, host_port  # a swarm's service name reaches its task on any node
        return Endpoint(docker_name, port)


class SwarmEngine(Engine):
    """Services on a Docker Swarm, through one of its managers."""

    network_driver = "overlay"

    def __init__(
        self,
        profile: RuntimeProfile,
        swarm: SwarmSettings,
        providers: Sequence[pulumi.ProviderResource] = (),
    ) -> None:
        super().__init__(profile, providers)
        self.swarm = swarm
        self.volume_labels: dict[str, Mapping[str, str]] = {}
        """Each volume's labels by its Docker name, for the mounts that name it."""

    def volume(
        self,
        name: str,
        docker_name: str,
        labels: Mapping[str, str],
        parent: pulumi.Resource,
        protect: bool = False,
        home: str | None = None,
    ) -> docker.Volume:
        """As on one host, and the mounts of it carry its labels: Swarm makes the volume on
        each node a task of it lands on, labelled as the program labels it (a later manager's
        refresh then finds it unchanged, and cleanup by label finds it)."""
        self.volume_labels[docker_name] = dict(labels)
        return super().volume(name, docker_name, labels, parent, protect, home)

    def run(self, workload: Workload, parent: pulumi.Resource) -> Running:
        """The workload as a Swarm service, a child of `parent`."""
        service = docker.Service(
            f"{workload.name}-service",
            **service_args(workload, self.profile, self.rollout(workload), self.volume_labels),
            # A fixed name (and fixed published ports) cannot exist twice: a replaced service
            # goes first. Rolling happens inside the service, by its update_config.
            opts=pulumi.ResourceOptions(
                parent=parent, depends_on=list(workload.depends_on), delete_before_replace=True
            ),
        )
        return Running(service, workload.docker_name, workload.home)

    def rollout(self, workload: Workload) -> Rollout:
        """How the workload's service is placed and rolled."""
        swarm = self.swarm
        node_label = swarm.placement.get(workload.home) if workload.home else None
        return Rollout(
            replicas=workload.replicas,
            constraints=[f"node.labels.{node_label}==true"] if node_label else [],
            # Replicas are there to outlive a node: never two of one service on the same one.
            # Swarm's scheduler already prefers the node with the fewest, but puts a second
            # task beside the first when no other node fits at that moment (a node down for a
            # minute), and never moves it back: the next loss would take both.
            max_per_node=1 if workload.replicas > 1 else 0,
            endpoint_mode=swarm.endpoint_mode,
            # Two tasks at once only where nothing pins one (a volume one server may use).
            start_first=workload.side_by_side,
            update_delay=f"{swarm.update_delay_seconds}s",
            monitor=f"{swarm.monitor_seconds}s",
            converge_timeout=f"{swarm.converge_timeout_seconds}s",
        )

    def links_between_homes(
        self,
        name: str,
        docker_name: str,
        labels: Mapping[str, str],
        parent: pulumi.Resource,
        hub: str,
        spokes: Sequence[str],
    ) -> HomeLinks:
        del hub  # it joins every spoke's overlay
        return OverlayLinks(
            {
                home: self.network(f"{name}-{home}", f"{docker_name}-{home}", True, labels, parent)
                for home in spokes
            }
        )

    def deliver_files(
        self,
        name: str,
        contents: FileContents,
        revision: pulumi.Output[str],
        parent: pulumi.Resource,
    ) -> Delivery:
        """A Swarm secret per file. Swarm secrets never change: a new content is a new secret
        under a new name (the revision is in it), created before the services move to it, and
        the old one deleted after them (Pulumi's create-before-delete)."""
        return SwarmSecrets(
            {
                file_name: docker.Secret(
                    f"{name}-{file_name}",
                    name=revision.apply(
                        functools.partial(swarm_secret_name, contents.docker_name, file_name)
                    ),
                    # Standard base64 with padding: the provider's validator and create both
                    # decode with Go's StdEncoding, whatever its documentation says.
                    data=pulumi.Output.from_input(content).apply(
                        lambda text: base64.b64encode(text.encode()).decode()
                    ),
                    labels=[
                        docker.SecretLabelArgs(label=k, value=v) for k, v in contents.labels.items()
                    ],
                    opts=pulumi.ResourceOptions(parent=parent),
                )
                for file_name, content in sorted(contents.files.items())
            }
        )

    def listen_address(self, alias: str) -> str:
        # The alias is the service's name: it resolves to the service (its virtual IP, or every
        # task with dnsrr), never to this task's own address alone, so bind every address.
        del alias
        return ""

    def run_in_each_instance(
        self, name: str, running: Running, command: Sequence[str], parent: pulumi.Resource
    ) -> None:
        """Nothing: the program reaches the swarm through one manager, never a task on another
        node; what must run in every instance runs from its image's entrypoint instead."""


def service_args(
    w: Workload,
    profile: RuntimeProfile,
    rollout: Rollout,
    volume_labels: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, Any]:
    """Keyword arguments of `docker.Service` for the workload; `volume_labels`: each volume's
    labels by its Docker name (`SwarmEngine.volume`)."""
    order = "start-first" if rollout.start_first else "stop-first"
    return {
        "name": w.docker_name,
        "labels": [
            docker.ServiceLabelArgs(label=k, value=v)
            for k, v in sorted({**profile.labels, **w.labels}.items())
        ],
        "task_spec": _task_spec(w, profile, rollout, volume_labels or {}),
        "mode": docker.ServiceModeArgs(
            replicated=docker.ServiceModeReplicatedArgs(replicas=rollout.replicas)
        ),
        # A task that fails its health check within `monitor` rolls the update back on its own;
        # a rollback that fails too stops where it is, for an operator.
        "update_config": docker.ServiceUpdateConfigArgs(
            **_rollout_fields(rollout, order), failure_action="rollback"
        ),
        "rollback_config": docker.ServiceRollbackConfigArgs(
            **_rollout_fields(rollout, order), failure_action="pause"
        ),
        "endpoint_spec": _endpoint_spec(w, rollout),
        # `pulumi up` waits until every replica runs (healthy, for a task with a health check).
        "converge_config": docker.ServiceConvergeConfigArgs(
            delay="7s", timeout=canonical.short_duration(rollout.converge_timeout)
        )
        if w.waits
        else None,
    }


def _task_spec(
    w: Workload,
    profile: RuntimeProfile,
    rollout: Rollout,
    volume_labels: Mapping[str, Mapping[str, str]],
) -> docker.ServiceTaskSpecArgs:
    limits = docker.ServiceTaskSpecResourcesLimitsArgs(
        nano_cpus=canonical.nano_cpus(w.resources.cpus), memory_bytes=w.resources.memory_mb * MB
    )
    return docker.ServiceTaskSpecArgs(
        container_spec=_container_spec(w, profile, volume_labels),
        resources=docker.ServiceTaskSpecResourcesArgs(
            limits=limits,
            # Memory reserved in full, so the scheduler never packs a node past what its
            # tasks may use (memory cannot be shared: past it, the kernel kills). CPU is
            # not reserved: it is shared under each task's limit, and reserving every
            # limit would ask for a CPU per app (a 2-CPU node would run two).
            reservation=docker.ServiceTaskSpecResourcesReservationArgs(
                memory_bytes=limits.memory_bytes
            ),
        ),
        restart_policy=docker.ServiceTaskSpecRestartPolicyArgs(
            condition="any", delay="5s", max_attempts=0, window="0s"
        ),
        placement=docker.ServiceTaskSpecPlacementArgs(
            constraints=list(rollout.constraints) or None,
            max_replicas=rollout.max_per_node or None,
        )
        if rollout.constraints or rollout.max_per_node
        else None,
        log_driver=docker.ServiceTaskSpecLogDriverArgs(
            name="json-file",
            options={"max-size": profile.logs.max_size, "max-file": str(profile.logs.max_files)},
        ),
        # By ID: the provider reads back only the ID (a name would replace the service on
        # every `up`).
        networks_advanceds=[
            docker.ServiceTaskSpecNetworksAdvancedArgs(id=n.network.id, aliases=[n.alias])
            for n in w.networks
        ],
    )


def _container_spec(
    w: Workload, profile: RuntimeProfile, volume_labels: Mapping[str, Mapping[str, str]]
) -> docker.ServiceTaskSpecContainerSpecArgs:
    hardening, health = profile.hardening, profile.health
    user = w.user or (w.needs.non_root_user if hardening.run_as_non_root else None)
    return docker.ServiceTaskSpecContainerSpecArgs(
        image=w.image,
        args=list(w.command) if w.command is not None else None,
        env=dict(entry.split("=", 1) for entry in w.env or ()),
        user=user,
        read_only=hardening.read_only_root,
        cap_drops=["ALL"] if hardening.drop_all_capabilities else None,
        mounts=_mounts(w, profile, volume_labels),
        healthcheck=docker.ServiceTaskSpecContainerSpecHealthcheckArgs(
            tests=list(w.health_test),  # not `state_test`: Swarm acts on health
            interval=canonical.short_duration(health.interval),
            timeout=canonical.short_duration(health.timeout),
            start_period=canonical.short_duration(health.start_period),
            retries=health.retries,
        ),
        stop_grace_period=canonical.short_duration(f"{w.stop_grace_seconds}s"),
        secrets=_secret_files(w),
    )


def _mounts(
    w: Workload, profile: RuntimeProfile, volume_labels: Mapping[str, Mapping[str, str]]
) -> list[docker.ServiceTaskSpecContainerSpecMountArgs]:
    """Its volumes (each made with its labels where Swarm makes it), and tmpfs where it writes
    on a read-only root (file sets are secrets)."""
    mounts = [
        docker.ServiceTaskSpecContainerSpecMountArgs(
            type="volume",
            source=m.volume,
            target=m.path,
            read_only=m.read_only,
            volume_options=pulumi.Output.from_input(m.volume).apply(
                lambda name: _volume_options(volume_labels.get(name, {}))
            ),
        )
        for m in w.mounts
        if isinstance(m, Mount)
    ]
    if profile.hardening.read_only_root:
        mounts += [
            docker.ServiceTaskSpecContainerSpecMountArgs(
                type="tmpfs",
                target=path,
                tmpfs_options=docker.ServiceTaskSpecContainerSpecMountTmpfsOptionsArgs(
                    size_bytes=TMPFS_BYTES
                ),
            )
            for path in w.needs.writable_paths
        ]
    return mounts


def _volume_options(
    labels: Mapping[str, str],
) -> docker.ServiceTaskSpecContainerSpecMountVolumeOptionsArgs:
    return docker.ServiceTaskSpecContainerSpecMountVolumeOptionsArgs(
        no_copy=False,
        labels=[
            docker.ServiceTaskSpecContainerSpecMountVolumeOptionsLabelArgs(label=k, value=v)
            for k, v in sorted(labels.items())
        ],
    )


def _endpoint_spec(w: Workload, rollout: Rollout) -> docker.ServiceEndpointSpecArgs:
    return docker.ServiceEndpointSpecArgs(
        mode=rollout.endpoint_mode,
        ports=[
            docker.ServiceEndpointSpecPortArgs(
                target_port=p.internal,
                published_port=p.external,
                # Each node that runs a task publishes its port itself: no routing mesh, whose
                # IPVS some kernels lack and which hides the client's address; what is in front
                # (DNS or a balancer) checks each node's edge (docs/swarm.md).
                publish_mode="host",
            )
            for p in sorted(w.ports or (), key=lambda p: p.internal)
        ],
    )


def _secret_files(w: Workload) -> list[docker.ServiceTaskSpecContainerSpecSecretArgs]:
    """Each file of each file set, as the Swarm secret holding it, at its path."""
    return [
        docker.ServiceTaskSpecContainerSpecSecretArgs(
            secret_id=secret.id,
            secret_name=secret.name,  # Swarm refuses a reference without both
            file_name=f"{m.path}/{file_name}",
            # Root-owned and world-readable, like the volume's files: the image's user reads
            # them whatever its uid.
            file_uid="0",
            file_gid="0",
            file_mode=0o444,
        )
        for m in w.mounts
        if isinstance(m, FileMount)
        for file_name, secret in sorted(_delivered(m).secrets.items())
    ]


def _delivered(mount: FileMount) -> SwarmSecrets:
    delivered = mount.files.delivered
    assert isinstance(delivered, SwarmSecrets)  # this engine wrote it
    return delivered


def _rollout_fields(rollout: Rollout, order: str) -> dict[str, Any]:
    """One task at a time, each watched for `monitor`; no failure tolerated."""
    return {
        "parallelism": 1,
        "delay": canonical.short_duration(rollout.update_delay),
        "monitor": canonical.short_duration(rollout.monitor),
        "max_failure_ratio": "0.0",
        "order": order,
    }


SWARM_NAME_MAX = 64
"""Swarm refuses a longer secret name (swarmkit's validateName: 64 of [a-zA-Z0-9-_.])."""


def swarm_secret_name(docker_name: str, file_name: str, revision: str) -> str:
    """`<consumer>-<file>-<revision>` within Swarm's 64 characters: a long consumer and file
    name is cut and ends in a digest of what was cut, so that two never meet. The revision
    is kept whole: it is what makes a new value a new name."""
    base = f"{docker_name}-{_slug(file_name)}"
    room = SWARM_NAME_MAX - 1 - len(revision)
    if len(base) > room:
        digest = hashlib.sha256(base.encode()).hexdigest()[:6]
        base = f"{base[: room - 7].rstrip('-')}-{digest}"
    return f"{base}-{revision}"


def _slug(file_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", file_name).strip("-")
