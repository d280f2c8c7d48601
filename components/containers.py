"""A workload as a container on one Docker host, with its PIDs limit: pulumi-docker's
`Container` with the runtime profile's hardening, limits, logs and health timing
(runtime.container_args); a side-by-side app with its traffic gate (traffic_gate.py)."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_docker as docker

from components.rolling import generation_name
from components.runtime import RuntimeProfile, container_args, container_options, limit_processes
from components.traffic_gate import TrafficGate
from components.workload import FileMount, Mount, Running, Workload


def run_container(workload: Workload, profile: RuntimeProfile, parent: pulumi.Resource) -> Running:
    """The workload as a container (and its PIDs limit), a child of `parent`."""
    w = workload
    inputs: dict[str, Any] = {"image": w.image}
    if w.command is not None:
        inputs["command"] = list(w.command)
    if w.env is not None:
        inputs["envs"] = list(w.env)
    inputs["volumes"] = [_volume(m) for m in w.mounts]
    seeds = [m.files.seed for m in w.mounts if isinstance(m, FileMount) and m.files.seed]
    # A side-by-side app answers to its callers only once healthy (components/traffic_gate.py):
    # it joins the networks they call it on under its own name, and its gate waits for it and
    # gives it the alias there.
    gated = [n for n in w.networks if n.serves] if w.side_by_side else []
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
        health_test=list(w.health_test),
        labels=w.labels,
        stop_grace_seconds=w.stop_grace_seconds,
    )
    if w.user is not None:
        inputs["user"] = w.user
    if not w.waits or gated:  # the gate waits for a gated one
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
    if gated:
        TrafficGate(
            f"{w.name}-traffic",
            container,
            docker_name,
            networks=[{"name": n.network.name, "aliases": [n.alias]} for n in gated],
            wait_seconds=profile.wait_timeout_seconds,
            docker_host=profile.docker_host,
            opts=pulumi.ResourceOptions(parent=parent),
        )
    return Running(container, docker_name)


def _volume(mount: Mount | FileMount) -> docker.ContainerVolumeArgs:
    if isinstance(mount, FileMount):
        assert mount.files.volume_name is not None  # written into a volume on one host
        return docker.ContainerVolumeArgs(
            volume_name=mount.files.volume_name, container_path=mount.path, read_only=True
        )
    if mount.read_only:
        return docker.ContainerVolumeArgs(
            volume_name=mount.volume, container_path=mount.path, read_only=True
        )
    return docker.ContainerVolumeArgs(volume_name=mount.volume, container_path=mount.path)
