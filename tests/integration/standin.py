"""A stand-in for the pulumi-docker provider, for tests on machines without the Pulumi CLI.

It takes the resource graph the real program records under mocks (`tests.graph.Graph`) and
creates it on a real Docker engine with the semantics pulumi-docker gives those inputs:

- `Network`: a bridge network, `internal` as given, with its labels.
- `Volume`: a named volume with its labels.
- `Container`, once everything it depends on exists (and, for containers created with
  `wait`, is healthy), in waves of independent containers as the engine runs them in parallel:
  created with image, command, env, user, labels, mounts (`volumes`), `tmpfs`, `read_only`,
  capabilities, `security_opts`, memory (MB) and swap, `cpus`, `shm_size` (MB), restart policy,
  log driver and options, published ports, health check, `network_mode`; then, as the
  provider does, disconnected from Docker's default bridge and connected to each of its
  networks with its aliases; each of `uploads` copied in as a tar at `/`
  of the created container (refused by Docker when the root is read-only, as the provider
  is); started unless `start` is false; with `wait`, polled until healthy within `waitTimeout`.

It is not a second way to deploy: it reads only the inputs this program uses, refuses what it
does not know, and publishes ports on loopback only. Everything it creates carries the test
run's labels, so the fixtures remove it all even when a check fails midway.
"""

from __future__ import annotations

import io
import re
import tarfile
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import docker
import docker.errors
import docker.types

from tests.graph import Graph, Resource

CONTAINER = "docker:index/container:Container"
NETWORK = "docker:index/network:Network"
VOLUME = "docker:index/volume:Volume"

# Inputs the stand-in understands; anything else in the graph is an error, not a silent skip.
KNOWN_CONTAINER_INPUTS = {
    "name", "image", "command", "envs", "user", "labels", "volumes", "tmpfs", "readOnly",
    "capabilities", "securityOpts", "memory", "memorySwap", "cpus", "shmSize", "restart",
    "logDriver", "logOpts", "ports", "healthcheck", "networkMode", "networksAdvanced", "uploads",
    "start", "mustRun", "wait", "waitTimeout",
}  # fmt: skip
LOOPBACK = "127.0.0.1"
_DURATION = re.compile(r"^([0-9]+)(ms|s|m|h)$")
_NS = {"ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}


class StandInError(Exception):
    """The graph asks for something the stand-in cannot do as the provider would."""


def nanoseconds(duration: str) -> int:
    match = _DURATION.match(duration)
    if match is None:
        raise StandInError(f"cannot read duration {duration!r}")
    return int(match.group(1)) * _NS[match.group(2)]


@dataclass
class Timing:
    """When the stand-in asked for a container and when it reached each state (epoch seconds,
    comparable with the timestamps of Docker's logs)."""

    requested: float = 0.0
    created: float = 0.0
    started: float = 0.0
    healthy: float = 0.0


@dataclass
class Deployment:
    """What one `apply` created, for checks and for the bring-up benchmark."""

    client: docker.DockerClient
    containers: dict[str, Any] = field(default_factory=dict)
    """Docker name -> container object (seeds included)."""
    timings: dict[str, Timing] = field(default_factory=dict)


def apply(
    graph: Graph,
    client: docker.DockerClient,
    labels: Mapping[str, str],
    log: Callable[[str], None] = lambda _line: None,
) -> Deployment:
    """Create every network, volume and container of `graph`; return when all are up."""
    deployment = Deployment(client)
    for net in graph.of_type(NETWORK):
        i = net.inputs
        client.networks.create(
            i["name"], driver=i.get("driver", "bridge"), internal=bool(i.get("internal", False)),
            labels={**_labels(i), **labels},
        )  # fmt: skip
    for vol in graph.of_type(VOLUME):
        client.volumes.create(name=vol.inputs["name"], labels={**_labels(vol.inputs), **labels})
    for wave in _waves(graph):
        log("creating " + ", ".join(c.inputs["name"] for c in wave))
        with ThreadPoolExecutor(max_workers=max(1, len(wave))) as pool:
            futures = [pool.submit(_create, deployment, c, labels) for c in wave]
            for future in futures:
                future.result()  # re-raises the first failure
    return deployment


def _labels(inputs: Mapping[str, Any]) -> dict[str, str]:
    return {entry["label"]: entry["value"] for entry in inputs.get("labels", [])}


def _waves(graph: Graph) -> list[list[Resource]]:
    """Containers grouped so that each one comes after every container it depends on."""
    containers = {c.urn: c for c in graph.containers()}
    done: set[str] = set()
    waves: list[list[Resource]] = []
    while len(done) < len(containers):
        ready = [c for urn, c in containers.items()
                 if urn not in done and (c.depends_on & containers.keys()) <= done]  # fmt: skip
        if not ready:
            raise StandInError("the containers' dependencies form a cycle")
        waves.append(ready)
        done |= {c.urn for c in ready}
    return waves


def _create(deployment: Deployment, resource: Resource, labels: Mapping[str, str]) -> None:
    i = resource.inputs
    unknown = set(i) - KNOWN_CONTAINER_INPUTS
    if unknown:
        raise StandInError(
            f"{resource.name}: inputs the stand-in does not handle: {sorted(unknown)}"
        )
    api = deployment.client.api
    name = i["name"]
    timing = deployment.timings.setdefault(name, Timing())
    timing.requested = time.time()
    networks = i.get("networksAdvanced", [])
    host_config = api.create_host_config(
        binds=[_bind(v) for v in i.get("volumes", [])],
        tmpfs=i.get("tmpfs"),
        read_only=i.get("readOnly", False),
        cap_drop=i.get("capabilities", {}).get("drops"),
        cap_add=i.get("capabilities", {}).get("adds"),
        security_opt=i.get("securityOpts"),
        mem_limit=_megabytes(i.get("memory")),
        memswap_limit=_megabytes(i.get("memorySwap")),
        nano_cpus=int(float(i["cpus"]) * 1e9) if "cpus" in i else None,
        shm_size=_megabytes(i.get("shmSize")),
        restart_policy={"Name": i["restart"]} if i.get("restart") else None,
        log_config=docker.types.LogConfig(type=i["logDriver"], config=i.get("logOpts", {}))
        if "logDriver" in i
        else None,
        port_bindings=_port_bindings(name, i.get("ports", [])),
        network_mode=i.get("networkMode"),
    )
    created = api.create_container(
        image=i["image"],
        name=name,
        command=i.get("command"),
        environment=i.get("envs"),
        user=i.get("user"),
        labels={**_labels(i), **labels},
        host_config=host_config,
        healthcheck=_healthcheck(i.get("healthcheck")),
        ports=[p["internal"] for p in i.get("ports", [])] or None,
    )
    container = deployment.client.containers.get(created["Id"])
    deployment.containers[name] = container
    if networks:
        # As the provider: leave Docker's default bridge, then join each network with its aliases.
        try:
            api.disconnect_container_from_network(container.id, "bridge")
        except docker.errors.APIError as err:
            if "is not connected to the network bridge" not in str(err):
                raise
        for net in networks:
            api.connect_container_to_network(container.id, net["name"], aliases=net.get("aliases"))
    # The provider copies each upload as its own tar into `/` of the created container.
    for upload in i.get("uploads", []):
        if not api.put_archive(container.id, "/", _upload_tar(upload)):
            raise StandInError(f"{name}: Docker refused the upload of {upload['file']}")
    timing.created = time.time()
    if i.get("start", True) is False:
        return
    container.start()
    timing.started = time.time()
    if i.get("wait"):
        _wait_healthy(container, int(i.get("waitTimeout", 60)))
        timing.healthy = time.time()


def _bind(volume: Mapping[str, Any]) -> str:
    mode = "ro" if volume.get("readOnly") else "rw"
    return f"{volume['volumeName']}:{volume['containerPath']}:{mode}"


def _megabytes(value: Any) -> int | None:
    return None if value is None else int(value) * 1024 * 1024


def _port_bindings(name: str, ports: list[dict[str, Any]]) -> dict[str, tuple[str, int]]:
    bindings = {}
    for port in ports:
        if port.get("ip") != LOOPBACK:
            raise StandInError(f"{name}: tests publish on {LOOPBACK} only, not {port.get('ip')}")
        bindings[f"{port['internal']}/tcp"] = (LOOPBACK, int(port["external"]))
    return bindings


def _healthcheck(check: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if check is None:
        return None
    return {
        "test": check["tests"],
        "interval": nanoseconds(check.get("interval", "30s")),
        "timeout": nanoseconds(check.get("timeout", "30s")),
        "retries": int(check.get("retries", 3)),
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


def _wait_healthy(container: Any, timeout_s: int) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        container.reload()
        state = container.attrs["State"]
        health = state.get("Health", {}).get("Status")
        if health == "healthy":
            return
        if state["Status"] in ("exited", "dead"):
            raise StandInError(
                f"{container.name} exited (code {state.get('ExitCode')}) before it was healthy; "
                f"last log lines:\n{_tail(container)}"
            )
        if time.monotonic() > deadline:
            last = (state.get("Health", {}).get("Log") or [{}])[-1].get("Output", "").strip()
            raise StandInError(
                f"{container.name} not healthy after {timeout_s}s (status {health}, last check: "
                f"{last!r}); last log lines:\n{_tail(container)}"
            )
        time.sleep(0.25)


def _tail(container: Any, lines: int = 15) -> str:
    try:
        return str(container.logs(tail=lines).decode(errors="replace"))
    except docker.errors.APIError:
        return "(no logs)"
