"""The provider's Read, mirrored: what pulumi-docker records for a resource it just created.

kreuzwerker/terraform-provider-docker v4.5.0 ends each create with its Read, and Pulumi stores
the result; the next `pulumi up` diffs the program's inputs against it. Read overwrites the
attributes it reads from the engine (in the provider's own formats) and keeps every other one
as the program sent it. Mirrored here for the inputs this program uses:

- containers: `resourceDockerContainerRead` (internal/provider/resource_docker_container_funcs.go)
  with `flattenContainerPorts` (resource_docker_container_structures.go) and
  `nanoInt64ToDecimalString` (helpers.go). It does not read `envs`, `labels`, `volumes`,
  `uploads`, and reads `networks_advanced` only when the program left it empty;
- networks: `resourceDockerNetworkReadRefreshFunc` (resource_docker_network_funcs.go);
- volumes: `resourceDockerVolumeRead` (resource_docker_volume.go).

The one deliberate difference: the stand-in labels networks and volumes with its test run's
labels (to clean up), and takes those back out of what Read finds, since a real deployment
has none of them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from provider.canonical import cpus_read_back, go_duration_string

MIB = 1024 * 1024


def read_container(inspect: Mapping[str, Any], sent: Mapping[str, Any]) -> dict[str, Any]:
    """The state recorded for a container: `sent` (the inputs, as Pulumi sent them) with what
    Read takes from `docker inspect`."""
    config, host = inspect["Config"], inspect["HostConfig"]
    running = bool(inspect["State"]["Running"])
    state = dict(sent)
    state |= {
        "name": inspect["Name"].lstrip("/"),
        # The provider keeps an image id as the id, and a name as the name it was given.
        "image": inspect["Image"]
        if str(sent["image"]).startswith("sha256:")
        else config.get("Image"),
        "readOnly": bool(host.get("ReadonlyRootfs")),
        "hostname": config.get("Hostname"),
        "command": config.get("Cmd"),
        "entrypoints": config.get("Entrypoint"),
        "user": config.get("User"),
        "securityOpts": host.get("SecurityOpt"),
        "restart": host["RestartPolicy"]["Name"],
        "maxRetryCount": host["RestartPolicy"]["MaximumRetryCount"],
        "init": bool(host.get("Init")),
        "workingDir": config.get("WorkingDir"),
        "runtime": host.get("Runtime"),
        "tmpfs": host.get("Tmpfs"),
        "privileged": bool(host.get("Privileged")),
        "memory": (host.get("Memory") or 0) // MIB,
        "memoryReservation": _megabytes_or_raw(host.get("MemoryReservation") or 0),
        "memorySwap": _megabytes_or_raw(host.get("MemorySwap") or 0),
        "shmSize": (host.get("ShmSize") or 0) // MIB,
        "cpuShares": host.get("CpuShares") or 0,
        "logDriver": host["LogConfig"]["Type"],
        # Read sets log options only when the program set some.
        "logOpts": host["LogConfig"]["Config"] if sent.get("logOpts") else None,
        "networkMode": host.get("NetworkMode"),
        "stopSignal": config.get("StopSignal") or "",
        "stopTimeout": config.get("StopTimeout"),
        "ipcMode": host.get("IpcMode"),
    }
    if host.get("CapAdd") or host.get("CapDrop"):
        state["capabilities"] = {
            "adds": host.get("CapAdd") or [],
            "drops": host.get("CapDrop") or [],
        }
    if (host.get("NanoCpus") or 0) > 0:
        state["cpus"] = cpus_read_back(host.get("NanoCpus"))
    # An exited container has no port bindings: Read keeps the ports then unless must_run.
    if sent.get("ports") and (running or sent.get("mustRun", True)):
        state["ports"] = _ports(inspect["NetworkSettings"]["Ports"] or {})
    if not running and sent.get("mustRun", True):
        state["mustRun"] = False  # the provider's way to have the next update start it
    check = config.get("Healthcheck")
    if check is not None:
        state["healthcheck"] = {
            "tests": check.get("Test"),
            "interval": go_duration_string(check.get("Interval", 0)),
            "timeout": go_duration_string(check.get("Timeout", 0)),
            "startPeriod": go_duration_string(check.get("StartPeriod", 0)),
            "startInterval": go_duration_string(check.get("StartInterval", 0)),
            "retries": check.get("Retries", 0),
        }
    return state


def _megabytes_or_raw(value: int) -> int:
    return value // MIB if value > 0 else value


def _ports(bindings: Mapping[str, Any]) -> list[dict[str, Any]]:
    """`flattenContainerPorts`: one entry per binding, ordered by port then protocol."""
    ports = []
    for key in sorted(bindings, key=lambda k: (int(k.split("/")[0]), k.split("/")[1])):
        internal, protocol = key.split("/")
        for binding in bindings[key] or []:
            ports.append(
                {
                    "internal": int(internal),
                    "external": int(binding["HostPort"] or 0),
                    "ip": binding["HostIp"],
                    "protocol": protocol,
                }
            )
    return ports


def read_network(
    inspect: Mapping[str, Any], sent: Mapping[str, Any], own_labels: Collection[str]
) -> dict[str, Any]:
    return dict(sent) | {
        "name": inspect["Name"],
        "labels": _labels(inspect["Labels"], own_labels),
        "driver": inspect["Driver"],
        "internal": inspect["Internal"],
        "attachable": inspect["Attachable"],
        "ingress": inspect["Ingress"],
        "ipv6": inspect["EnableIPv6"],
        "ipamDriver": inspect["IPAM"]["Driver"],
        "options": inspect["Options"],
        "ipamConfigs": [
            {"subnet": c.get("Subnet", ""), "gateway": c.get("Gateway", "")}
            for c in inspect["IPAM"]["Config"] or []
        ],
    }


def read_volume(
    inspect: Mapping[str, Any], sent: Mapping[str, Any], own_labels: Collection[str]
) -> dict[str, Any]:
    return dict(sent) | {
        "name": inspect["Name"],
        "labels": _labels(inspect["Labels"], own_labels),
        "driver": inspect["Driver"],
        "driverOpts": inspect["Options"],
    }


def _labels(found: Mapping[str, str] | None, own: Collection[str]) -> list[dict[str, str]]:
    return [{"label": k, "value": v} for k, v in sorted((found or {}).items()) if k not in own]
