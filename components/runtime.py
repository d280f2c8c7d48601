"""How every container of a stack runs: security, limits, logs, restarts and health timing.

One function turns the stack's settings into the pulumi-docker container arguments they imply,
so the dev/prod difference is decided in one place and every container gets the same treatment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_docker as docker
import pulumi_random as random

from components.pids_limit import PidsLimit
from provider import canonical, schema
from provider.diff import INIT_ERROR
from stacks.settings import Hardening, HealthCheck, Logs, Resources, SwarmSettings

# Writable scratch space on a read-only root; noexec/nosuid because nothing should run from there.
TMPFS_OPTIONS = "rw,noexec,nosuid,size=64m"


@dataclass(frozen=True)
class RuntimeProfile:
    """The stack-wide part of every container's definition."""

    hardening: Hardening
    logs: Logs
    restart: str
    health: HealthCheck
    wait_timeout_seconds: int
    labels: Mapping[str, str] = field(default_factory=dict)
    docker_host: str | None = None
    """The stack's `docker:host`, for what the program sends Docker itself (the PIDs limit)."""
    swarm: SwarmSettings | None = None
    """Set when the stack runs on a swarm (`engine: swarm`): the one place the engine is
    decided (components/workload.py and secret_files.py read it)."""


@dataclass(frozen=True)
class ImageNeeds:
    """What one image needs from the runtime to start under the profile."""

    non_root_user: str
    """The image's unprivileged user, used from the start when `runAsNonRoot` is on."""
    writable_paths: Sequence[str] = ("/tmp",)
    """Paths the process writes outside its volumes: tmpfs when the root is read-only."""


def container_args(
    profile: RuntimeProfile,
    needs: ImageNeeds,
    resources: Resources,
    health_test: Sequence[str],
    labels: Mapping[str, pulumi.Input[str]],
    stop_grace_seconds: int,
) -> dict[str, Any]:
    """Keyword arguments for `docker.Container` that every container of the stack shares.

    Values go in the form the provider reads back (provider/canonical.py), so a second
    `pulumi up` finds nothing to change.
    """
    hardening = profile.hardening
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
        "read_only": hardening.read_only_root,
    }
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


def limit_processes(
    name: str,
    container: docker.Container,
    limit: int,
    profile: RuntimeProfile,
    parent: pulumi.Resource,
) -> PidsLimit:
    """The PIDs limit of the container `<name>-container` (components/pids_limit.py: the
    provider has no input for it), as the resource `<name>-pids`."""
    return PidsLimit(
        f"{name}-pids", container, limit, profile.docker_host, pulumi.ResourceOptions(parent=parent)
    )


def container_options(
    parent: pulumi.Resource, depends_on: Sequence[pulumi.Resource] = (), side_by_side: bool = False
) -> pulumi.ResourceOptions:
    """Resource options every container needs, because of how Docker behaves.

    The order of a replacement is always explicit (the option wins over pulumi-docker's
    delete-first default for containers). Delete first where a replacement cannot exist beside
    the old container: a fixed name, a fixed host port, a volume only one server may use
    (databases, Redis, the backup job). `side_by_side`: the replacement is created and healthy
    before the old container is stopped (components/rolling.py gives it another name).
    """
    return pulumi.ResourceOptions(
        parent=parent,
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


def docker_labels(stack: str, service: str, role: str) -> dict[str, str]:
    """Labels that let operators and the backup tool find containers by what they are."""
    return {
        "com.ecommerce.stack": stack,
        "com.ecommerce.service": service,
        "com.ecommerce.role": role,
    }


def labelled_volume(
    name: str, docker_name: str, labels: Mapping[str, str], opts: pulumi.ResourceOptions
) -> docker.Volume:
    """A named volume carrying the stack's labels."""
    return docker.Volume(
        name,
        name=docker_name,
        labels=[docker.VolumeLabelArgs(label=k, value=v) for k, v in labels.items()],
        opts=opts,
    )


def secret_or_generated(
    name: str, override: pulumi.Input[str] | None, length: int, parent: pulumi.Resource
) -> pulumi.Output[str]:
    """The operator's secret when set, else a generated one; a Pulumi secret either way.

    Letters and digits only, so the value is safe in URLs, config files and SQL literals.
    """
    if override is not None:
        return pulumi.Output.secret(override)
    generated = random.RandomPassword(
        name, length=length, special=False, opts=pulumi.ResourceOptions(parent=parent)
    )
    return pulumi.Output.secret(generated.result)
