"""A workload as a Docker Swarm service (`engine: swarm`; docs/swarm.md).

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

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pulumi
import pulumi_docker as docker

from components.runtime import TMPFS_OPTIONS, RuntimeProfile
from components.workload import FileMount, Mount, Running, Workload
from provider import canonical

MB = 1024 * 1024
TMPFS_BYTES = 64 * MB
"""As the containers' tmpfs (runtime.TMPFS_OPTIONS)."""
assert f"size={TMPFS_BYTES // MB}m" in TMPFS_OPTIONS


@dataclass(frozen=True)
class Rollout:
    """How the service is spread and replaced: from the stack file's Swarm settings."""

    replicas: int = 1
    constraints: Sequence[str] = ()
    """Placement, e.g. `node.labels.ecommerce.order-db==true` for a volume's node."""
    endpoint_mode: Literal["vip", "dnsrr"] = "vip"
    start_first: bool = True
    """Start the new task before stopping the old one; never for a volume only one process may
    use, nor for a port published in host mode."""
    update_delay: str = "10s"
    monitor: str = "30s"
    """How long a new task must stay healthy before the update goes on (or rolls back)."""
    converge_timeout: str = "5m"


def run_service(workload: Workload, profile: RuntimeProfile, parent: pulumi.Resource) -> Running:
    """The workload as a Swarm service, a child of `parent` (RuntimeProfile.swarm is set)."""
    swarm = profile.swarm
    assert swarm is not None
    pinned = workload.pinned_to
    rollout = Rollout(
        replicas=workload.replicas,
        constraints=[f"node.labels.{pinned}==true"] if pinned else [],
        endpoint_mode=swarm.endpoint_mode,
        # Two tasks at once only where nothing pins one (a volume one server may use).
        start_first=workload.side_by_side,
        update_delay=f"{swarm.update_delay_seconds}s",
        monitor=f"{swarm.monitor_seconds}s",
        converge_timeout=f"{swarm.converge_timeout_seconds}s",
    )
    service = docker.Service(
        f"{workload.name}-service",
        **service_args(workload, profile, rollout),
        # A fixed name (and fixed published ports) cannot exist twice: a replaced service goes
        # first. Rolling happens inside the service, by its update_config.
        opts=pulumi.ResourceOptions(
            parent=parent, depends_on=list(workload.depends_on), delete_before_replace=True
        ),
    )
    return Running(service, workload.docker_name)


def service_args(w: Workload, profile: RuntimeProfile, rollout: Rollout) -> dict[str, Any]:
    """Keyword arguments of `docker.Service` for the workload."""
    hardening, health = profile.hardening, profile.health
    user = w.user or (w.needs.non_root_user if hardening.run_as_non_root else None)
    mounts = [
        docker.ServiceTaskSpecContainerSpecMountArgs(
            type="volume", source=m.volume, target=m.path, read_only=m.read_only
        )
        for m in w.mounts
        if isinstance(m, Mount)  # file sets are Swarm secrets
    ]
    if hardening.read_only_root:
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
    container = docker.ServiceTaskSpecContainerSpecArgs(
        image=w.image,
        args=list(w.command) if w.command is not None else None,
        env=dict(entry.split("=", 1) for entry in w.env or ()),
        user=user,
        read_only=hardening.read_only_root,
        cap_drops=["ALL"] if hardening.drop_all_capabilities else None,
        mounts=mounts,
        healthcheck=docker.ServiceTaskSpecContainerSpecHealthcheckArgs(
            tests=list(w.health_test),
            interval=canonical.short_duration(health.interval),
            timeout=canonical.short_duration(health.timeout),
            start_period=canonical.short_duration(health.start_period),
            retries=health.retries,
        ),
        stop_grace_period=canonical.short_duration(f"{w.stop_grace_seconds}s"),
        secrets=_secret_files(w),
    )
    limits = docker.ServiceTaskSpecResourcesLimitsArgs(
        nano_cpus=canonical.nano_cpus(w.resources.cpus), memory_bytes=w.resources.memory_mb * MB
    )
    order = "start-first" if rollout.start_first else "stop-first"
    return {
        "name": w.docker_name,
        "labels": [
            docker.ServiceLabelArgs(label=k, value=v)
            for k, v in sorted({**profile.labels, **w.labels}.items())
        ],
        "task_spec": docker.ServiceTaskSpecArgs(
            container_spec=container,
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
            placement=docker.ServiceTaskSpecPlacementArgs(constraints=list(rollout.constraints))
            if rollout.constraints
            else None,
            log_driver=docker.ServiceTaskSpecLogDriverArgs(
                name="json-file",
                options={
                    "max-size": profile.logs.max_size,
                    "max-file": str(profile.logs.max_files),
                },
            ),
            # By ID: the provider reads back only the ID (a name would replace the service on
            # every `up`).
            networks_advanceds=[
                docker.ServiceTaskSpecNetworksAdvancedArgs(id=n.network.id, aliases=[n.alias])
                for n in w.networks
            ],
        ),
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
        "endpoint_spec": docker.ServiceEndpointSpecArgs(
            mode=rollout.endpoint_mode,
            ports=[
                docker.ServiceEndpointSpecPortArgs(
                    target_port=p.internal,
                    published_port=p.external,
                    # The routing mesh needs virtual IPs; with DNS round robin each node
                    # publishes its own task's port.
                    publish_mode="ingress" if rollout.endpoint_mode == "vip" else "host",
                )
                for p in sorted(w.ports or (), key=lambda p: p.internal)
            ],
        ),
        # `pulumi up` waits until every replica runs (healthy, for a task with a health check).
        "converge_config": docker.ServiceConvergeConfigArgs(
            delay="7s", timeout=canonical.short_duration(rollout.converge_timeout)
        )
        if w.waits
        else None,
    }


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
        for file_name, secret in sorted(m.files.secrets.items())
    ]


def _rollout_fields(rollout: Rollout, order: str) -> dict[str, Any]:
    """One task at a time, each watched for `monitor`; no failure tolerated."""
    return {
        "parallelism": 1,
        "delay": canonical.short_duration(rollout.update_delay),
        "monitor": canonical.short_duration(rollout.monitor),
        "max_failure_ratio": "0.0",
        "order": order,
    }
