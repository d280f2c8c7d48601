"""Containers, networks, volumes and built images as pulumi-docker makes them on the engine.

From kreuzwerker/terraform-provider-docker v4.5.0 (the provider pulumi-docker 5.x bridges),
internal/provider/resource_docker_container_funcs.go:
- create (`resourceDockerContainerCreate`): the container with its image, command, env, user,
  labels, mounts, tmpfs, `read_only`, capabilities, `security_opts`, memory and swap (MB),
  `cpus`, `shm_size` (MB), restart policy (always sent, `no` by default), init (always sent),
  log driver and options, published ports, health check, `network_mode` (always sent, `bridge`
  by default) and `stop_timeout`; then it leaves Docker's default bridge and joins each
  network with its aliases; each upload is put as its own tar at `/` (Docker refuses that on
  a read-only root); it starts unless `start` is false; with `wait`, it polls until healthy
  within `wait_timeout`. A failure after the container exists returns its ID with the error,
  which the bridge hands Pulumi as an initialisation error;
- update (`resourceDockerContainerUpdate`): memory, swap and restart policy by `docker
  update`, a stopped container started when `must_run`; nothing else reaches the container;
- delete (`resourceDockerContainerDelete`): stop with `destroy_grace_seconds` as the timeout
  (0 when unset: SIGKILL at once), remove with its anonymous volumes.
Networks (resource_docker_network_funcs.go) and volumes (resource_docker_volume.go) are created
with their driver, `internal`, `attachable` and labels, and removed.

pulumi-docker's `Image` is its own resource (provider/image.go): with `skipPush` a local build of
the context, tagged with `imageName`, whose ID is `repoDigest`; deleting it leaves the image.

Everything created carries the test run's labels, so a test removes it all even when a check
fails midway; Read takes them back out (read.py).
"""

from __future__ import annotations

import io
import os
import tarfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import docker
import docker.errors
import docker.types

from provider.canonical import nano_cpus, nanoseconds

# Inputs the stand-in understands; anything else is an error, not a silent skip.
KNOWN_CONTAINER_INPUTS = {
    "name",
    "image",
    "command",
    "envs",
    "user",
    "labels",
    "volumes",
    "tmpfs",
    "readOnly",
    "capabilities",
    "securityOpts",
    "memory",
    "memorySwap",
    "cpus",
    "shmSize",
    "restart",
    "logDriver",
    "logOpts",
    "ports",
    "healthcheck",
    "networkMode",
    "networksAdvanced",
    "uploads",
    "start",
    "mustRun",
    "wait",
    "waitTimeout",
    "destroyGraceSeconds",
    "stopTimeout",
    "privileged",
}
# What the provider's update applies to a running container (resourceDockerContainerUpdate).
UPDATED_IN_PLACE = {
    "restart",
    "maxRetryCount",
    "cpuShares",
    "memory",
    "memoryReservation",
    "memorySwap",
}
LOOPBACK = "127.0.0.1"
ANY_ADDRESS = "0.0.0.0"  # noqa: S104 (a test host's network namespace: its link only)
MIB = 1024 * 1024


class CreateError(Exception):
    """The container exists but the rest of its create failed (the message says how)."""

    def __init__(self, container_id: str, message: str) -> None:
        super().__init__(message)
        self.container_id = container_id


def create_container(
    client: docker.DockerClient,
    i: Mapping[str, Any],
    run_labels: Mapping[str, str],
    on_test_host: bool = False,
) -> str:
    """Create, join, upload, start and await a container as the provider does; its ID. Raises
    `CreateError` with the ID when it fails once the container exists."""
    api = client.api
    name = i["name"]
    host_config = api.create_host_config(
        binds=[_bind(v) for v in i.get("volumes", [])],
        tmpfs=i.get("tmpfs"),
        read_only=i.get("readOnly", False),
        cap_drop=i.get("capabilities", {}).get("drops"),
        cap_add=i.get("capabilities", {}).get("adds"),
        security_opt=i.get("securityOpts"),
        mem_limit=_megabytes(i.get("memory")),
        memswap_limit=_megabytes(i.get("memorySwap")),
        nano_cpus=nano_cpus(i["cpus"]) if "cpus" in i else None,
        shm_size=_megabytes(i.get("shmSize")),
        privileged=bool(i.get("privileged", False)),
        # The provider always sends a restart policy and init: its defaults are "no", false.
        restart_policy={"Name": i.get("restart", "no"), "MaximumRetryCount": 0},
        init=False,
        log_config=docker.types.LogConfig(type=i["logDriver"], config=i.get("logOpts", {}))
        if "logDriver" in i
        else None,
        port_bindings=_port_bindings(name, i.get("ports", []), on_test_host),
        # The provider always sends one: its default is "bridge".
        network_mode=i.get("networkMode", "bridge"),
    )
    created = api.create_container(
        image=i["image"],
        name=name,
        command=i.get("command"),
        environment=i.get("envs"),
        user=i.get("user"),
        labels={**labels_of(i), **run_labels},
        host_config=host_config,
        healthcheck=_healthcheck(i.get("healthcheck")),
        ports=[p["internal"] for p in i.get("ports", [])] or None,
        stop_timeout=i.get("stopTimeout"),
    )
    container_id = str(created["Id"])
    try:
        _finish_create(client, container_id, i)
    except Exception as err:
        raise CreateError(container_id, str(err)) from err
    return container_id


def _finish_create(client: docker.DockerClient, container_id: str, i: Mapping[str, Any]) -> None:
    api = client.api
    if i.get("networksAdvanced"):
        # As the provider: leave Docker's default bridge, then join each network.
        try:
            api.disconnect_container_from_network(container_id, "bridge")
        except docker.errors.APIError as err:
            if "is not connected to the network bridge" not in str(err):
                raise
        for net in i["networksAdvanced"]:
            api.connect_container_to_network(container_id, net["name"], aliases=net.get("aliases"))
    # The provider copies each upload as its own tar into `/` of the created container.
    for upload in i.get("uploads", []):
        if not api.put_archive(container_id, "/", _upload_tar(upload)):
            raise RuntimeError(f"{i['name']}: Docker refused the upload of {upload['file']}")
    if i.get("start", True) is False:
        return
    api.start(container_id)
    if i.get("wait"):
        wait_healthy(client, container_id, int(i.get("waitTimeout", 60)))


def update_container(
    client: docker.DockerClient, container_id: str, old: Mapping[str, Any], new: Mapping[str, Any]
) -> None:
    """The provider's update: resources and restart policy in place, a stopped container
    started; everything else is only recorded."""
    if any(old.get(k) != new.get(k) for k in UPDATED_IN_PLACE):
        client.api.update_container(
            container_id,
            mem_limit=_megabytes(new.get("memory")) or 0,
            memswap_limit=_megabytes(new.get("memorySwap")) or 0,
            restart_policy={"Name": new.get("restart", "no")},
        )
    if old.get("mustRun") is False and new.get("mustRun", True) and new.get("start", True):
        client.api.start(container_id)


def delete_container(
    client: docker.DockerClient, container_id: str, state: Mapping[str, Any]
) -> None:
    """Stop with the grace as timeout (0, SIGKILL at once, when unset), remove with the
    anonymous volumes."""
    grace = int(state.get("destroyGraceSeconds") or 0)
    try:
        client.api.stop(container_id, timeout=grace)
        client.api.remove_container(container_id, v=state.get("removeVolumes", True), force=True)
    except docker.errors.NotFound:
        pass


def create_network(
    client: docker.DockerClient, i: Mapping[str, Any], run_labels: Mapping[str, str]
) -> str:
    network = client.networks.create(
        i["name"],
        driver=i.get("driver", "bridge"),
        internal=bool(i.get("internal", False)),
        attachable=bool(i.get("attachable", False)),
        labels={**labels_of(i), **run_labels},
    )
    return str(network.id)


def create_volume(
    client: docker.DockerClient, i: Mapping[str, Any], run_labels: Mapping[str, str]
) -> str:
    volume = client.volumes.create(name=i["name"], labels={**labels_of(i), **run_labels})
    return str(volume.name)


def build_image(
    client: docker.DockerClient, i: Mapping[str, Any], project: Path, run_labels: Mapping[str, str]
) -> str:
    """A local build of `build.context` (relative to the project folder, as the provider reads
    it), tagged `imageName`; the image's ID."""
    build = i["build"]
    context = project / build["context"]
    # The provider reads `dockerfile` from the project folder; docker's API, from the context.
    dockerfile = (
        os.path.relpath(project / build["dockerfile"], context)
        if build.get("dockerfile")
        else "Dockerfile"
    )
    stream = client.api.build(
        path=str(context),
        dockerfile=dockerfile,
        buildargs=build.get("args"),
        tag=i["imageName"],
        labels=dict(run_labels),
        platform=build.get("platform"),
        pull=False,
        rm=True,
        forcerm=True,
        decode=True,
    )
    errors = [chunk["error"] for chunk in stream if "error" in chunk]
    if errors:
        raise RuntimeError(f"{i['imageName']}: build failed: {errors[-1].strip()}")
    return str(client.images.get(i["imageName"]).id)


def labels_of(inputs: Mapping[str, Any]) -> dict[str, str]:
    return {entry["label"]: entry["value"] for entry in inputs.get("labels", [])}


def wait_healthy(client: docker.DockerClient, container_id: str, timeout_s: int) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        inspect = client.api.inspect_container(container_id)
        state, name = inspect["State"], inspect["Name"].lstrip("/")
        health = state.get("Health", {}).get("Status")
        if health == "healthy":
            return
        if state["Status"] in ("exited", "dead"):
            raise RuntimeError(
                f"{name} exited (code {state.get('ExitCode')}) before it was healthy; "
                f"last log lines:\n{_tail(client, container_id)}"
            )
        if time.monotonic() > deadline:
            last = (state.get("Health", {}).get("Log") or [{}])[-1].get("Output", "").strip()
            raise RuntimeError(
                f"{name} not healthy after {timeout_s}s (status {health}, last check: "
                f"{last!r}); last log lines:\n{_tail(client, container_id)}"
            )
        time.sleep(0.25)


def _tail(client: docker.DockerClient, container_id: str, lines: int = 15) -> str:
    try:
        return str(client.api.logs(container_id, tail=lines).decode(errors="replace"))
    except docker.errors.APIError:
        return "(no logs)"


def _bind(volume: Mapping[str, Any]) -> str:
    mode = "ro" if volume.get("readOnly") else "rw"
    return f"{volume['volumeName']}:{volume['containerPath']}:{mode}"


def _megabytes(value: Any) -> int | None:
    return None if value is None else int(value) * MIB


def _port_bindings(
    name: str, ports: list[dict[str, Any]], on_test_host: bool
) -> dict[str, tuple[str, int]]:
    """Loopback only on this machine's engine; on a test host's, every address of its network
    namespace too (its loopback and its link: nothing else reaches it)."""
    allowed = {LOOPBACK, ANY_ADDRESS} if on_test_host else {LOOPBACK}
    bindings = {}
    for port in ports:
        if port.get("ip") not in allowed:
            raise RuntimeError(
                f"{name}: tests publish on {LOOPBACK} only (any address on a test host), "
                f"not {port.get('ip')}"
            )
        bindings[f"{port['internal']}/tcp"] = (str(port["ip"]), int(port["external"]))
    return bindings


def _healthcheck(check: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if check is None:
        return None
    return {
        "test": check["tests"],
        "interval": nanoseconds(check.get("interval", "0s")),
        "timeout": nanoseconds(check.get("timeout", "0s")),
        "retries": int(check.get("retries", 0)),
        "start_period": nanoseconds(check.get("startPeriod", "0s")),
    }


def _upload_tar(upload: Mapping[str, Any]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = upload["content"].encode()
        info = tarfile.TarInfo(upload["file"].lstrip("/"))
        info.size = len(data)
        info.mode = int(upload.get("permissions", "0644"), 8)
        info.mtime = int(time.time())
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
