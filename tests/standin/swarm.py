"""The stand-in's Swarm part: services and secrets as pulumi-docker creates, reads, updates and
deletes them (kreuzwerker/terraform-provider-docker v4.5.0).

- Spec (`service_spec`): `createServiceSpec` (resource_docker_service_structures.go). Durations
  are parsed to nanoseconds; the env map becomes `K=V` entries in a Go map's order, which is
  random on every call; `Init: false` and `Isolation: default` are always sent; a restart
  policy sends its four fields.
- Create: `ServiceCreate`, then with `converge_config` the provider's wait
  (`resourceDockerServiceCreateRefreshFunc`): after the converge delay, every 5 s, until one
  running task per replica (tasks listed with desired state running, one per slot); past the
  timeout the service is deleted again and the create fails, leaving nothing in the state.
- Update: `ServiceUpdate` with the whole new spec, then (`converge_config` set) the update wait
  (`resourceDockerServiceUpdateRefreshFunc`): after 7 s, every 5 s, `UpdateStatus` decides:
  completed is done; paused, rollback paused and rollback completed fail the update; otherwise
  the running tasks are counted as for a create. It never rolls back by itself: Docker does,
  by the service's `update_config.failure_action`.
- Read (`read_service`): `resourceDockerServiceReadRefreshFunc` and its flatteners, in
  Pulumi's names. `converge_config` is not read; durations come back in `shortDur` form.
- Delete (`deleteService`): the tasks' containers noted, the service removed, then each
  container waited for up to the stop grace period and removed.
- Secrets (resource_docker_secret.go): created from the standard base64 `data`; Read keeps
  only the name; delete removes it.

Not mirrored: the Docker client's image normalisation on create (`:latest` added to an
untagged name, a digest pinned when a registry answers). The program always sends a tagged
image, and no registry is reachable here.
"""

from __future__ import annotations

import base64
import random
import time
from collections.abc import Collection, Mapping
from typing import Any

import docker
import docker.errors

from provider.canonical import nanoseconds, short_duration_of

CREATE_POLL_S = 5.0
"""StateChangeConf's MinTimeout in the provider's waits."""
UPDATE_DELAY_S = 7.0
"""The update wait's hard-coded Delay (the converge delay is used only on create)."""
RUNNING = "running"
# swarmkit's task states in order (numberedStates in the provider).
TASK_STATES = [
    "new",
    "allocated",
    "pending",
    "assigned",
    "accepted",
    "preparing",
    "ready",
    "starting",
    "running",
    "complete",
    "shutdown",
    "failed",
    "rejected",
    "remove",
    "orphaned",
]


class ServiceError(Exception):
    """What the provider's create or update of a service reports as an error."""


# ----------------------------------------------------------------------------------------------
# Inputs -> Docker's service spec (createServiceSpec)


def service_spec(i: Mapping[str, Any], run_labels: Mapping[str, str]) -> dict[str, Any]:
    """The spec the provider sends for inputs `i` (Pulumi's names); `run_labels` are the test
    run's, added to the service and its containers so that a run's leftovers can be found."""
    task = i["taskSpec"]
    spec: dict[str, Any] = {
        "Name": i["name"],
        "Labels": {**_labels(i.get("labels")), **run_labels},
        "TaskTemplate": _task_template(task, run_labels),
        "Mode": {"Replicated": {"Replicas": _replicas(i)}},
    }
    if "updateConfig" in i:
        spec["UpdateConfig"] = _rollout(i["updateConfig"])
    if "rollbackConfig" in i:
        spec["RollbackConfig"] = _rollout(i["rollbackConfig"])
    endpoint = i.get("endpointSpec")
    if endpoint is not None:
        spec["EndpointSpec"] = {
            "Mode": endpoint.get("mode", "vip"),
            "Ports": [
                {
                    "Name": p.get("name", ""),
                    "Protocol": p.get("protocol", "tcp"),
                    "TargetPort": int(p["targetPort"]),
                    "PublishedPort": int(p.get("publishedPort", 0)),
                    "PublishMode": p.get("publishMode", "ingress"),
                }
                for p in endpoint.get("ports", [])
            ],
        }
    return spec


def _replicas(i: Mapping[str, Any]) -> int:
    return int(i.get("mode", {}).get("replicated", {}).get("replicas", 1))


def _task_template(task: Mapping[str, Any], run_labels: Mapping[str, str]) -> dict[str, Any]:
    c = task["containerSpec"]
    env = [f"{k}={v}" for k, v in c.get("env", {}).items()]
    random.shuffle(env)  # mapTypeMapValsToStringSlice walks a Go map
    container: dict[str, Any] = {
        "Image": c["image"],
        # The provider sets no container labels unless asked; the run's let a test find them.
        "Labels": dict(run_labels),
        "Env": env,
        "User": c.get("user", ""),
        "ReadOnly": bool(c.get("readOnly", False)),
        "Isolation": c.get("isolation", "default"),
        "Init": bool(c.get("init", False)),
        "StopGracePeriod": nanoseconds(c.get("stopGracePeriod") or "0s"),
        "Mounts": [_mount(m) for m in c.get("mounts", [])],
        "Secrets": [
            {
                "SecretID": s["secretId"],
                "SecretName": s.get("secretName", ""),
                "File": {
                    "Name": s["fileName"],
                    "UID": s.get("fileUid", "0"),
                    "GID": s.get("fileGid", "0"),
                    "Mode": int(s.get("fileMode", 0o444)),
                },
            }
            for s in c.get("secrets", [])
        ],
    }
    if c.get("args"):
        container["Args"] = list(c["args"])
    if c.get("commands"):
        container["Command"] = list(c["commands"])
    if c.get("capDrops"):
        container["CapabilityDrop"] = list(c["capDrops"])
    if c.get("capAdds"):
        container["CapabilityAdd"] = list(c["capAdds"])
    check = c.get("healthcheck")
    container["Healthcheck"] = (
        {
            "Test": list(check.get("tests", [])),
            "Interval": nanoseconds(check.get("interval", "0s")),
            "Timeout": nanoseconds(check.get("timeout", "0s")),
            "StartPeriod": nanoseconds(check.get("startPeriod", "0s")),
            "Retries": int(check.get("retries", 0)),
        }
        if check is not None
        else {}
    )
    template: dict[str, Any] = {
        "ContainerSpec": container,
        "ForceUpdate": int(task.get("forceUpdate", 0)),
        "Runtime": task.get("runtime", ""),
        "Networks": [
            {"Target": n["id"], "Aliases": list(n.get("aliases", []))}
            for n in task.get("networksAdvanceds", [])
        ],
    }
    resources = task.get("resources")
    if resources is not None:
        template["Resources"] = {
            "Limits": _limits(resources.get("limits")),
            "Reservations": _limits(resources.get("reservation")),
        }
    restart = task.get("restartPolicy")
    if restart is not None:
        template["RestartPolicy"] = {
            "Condition": restart.get("condition", ""),
            "Delay": nanoseconds(restart.get("delay") or "0s"),
            "MaxAttempts": int(restart.get("maxAttempts", 0)),
            "Window": nanoseconds(restart.get("window") or "0s"),
        }
    placement = task.get("placement")
    if placement is not None:
        template["Placement"] = {
            "Constraints": list(placement.get("constraints", [])),
            "MaxReplicas": int(placement.get("maxReplicas", 0)),
        }
    log = task.get("logDriver")
    if log is not None:
        template["LogDriver"] = {"Name": log["name"], "Options": dict(log.get("options", {}))}
    return template


def _mount(m: Mapping[str, Any]) -> dict[str, Any]:
    mount: dict[str, Any] = {
        "Type": m["type"],
        "Target": m["target"],
        "Source": m.get("source", ""),
        "ReadOnly": bool(m.get("readOnly")),
    }
    tmpfs = m.get("tmpfsOptions")
    if tmpfs is not None:
        mount["TmpfsOptions"] = {
            "SizeBytes": int(tmpfs.get("sizeBytes", 0)),
            "Mode": int(tmpfs.get("mode", 0)),
        }
    volume = m.get("volumeOptions")
    if volume is not None:
        mount["VolumeOptions"] = {
            "NoCopy": bool(volume.get("noCopy")),
            "Labels": _labels(volume.get("labels")),
        }
        if volume.get("driverName"):
            mount["VolumeOptions"]["DriverConfig"] = {"Name": volume["driverName"]}
    return mount


def _limits(block: Mapping[str, Any] | None) -> dict[str, int]:
    block = block or {}
    return {
        "NanoCPUs": int(block.get("nanoCpus", 0)),
        "MemoryBytes": int(block.get("memoryBytes", 0)),
    }


def _rollout(block: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "Parallelism": int(block.get("parallelism", 1)),
        "Delay": nanoseconds(block.get("delay", "0s")),
        "FailureAction": block.get("failureAction", "pause"),
        "Monitor": nanoseconds(block.get("monitor", "5s")),
        "MaxFailureRatio": float(block.get("maxFailureRatio", "0.0")),
        "Order": block.get("order", "stop-first"),
    }


def _labels(entries: Any) -> dict[str, str]:
    return {e["label"]: e["value"] for e in entries or []}


# ----------------------------------------------------------------------------------------------
# Read (resourceDockerServiceReadRefreshFunc and the flatteners)


def read_service(
    inspect: Mapping[str, Any], sent: Mapping[str, Any], own_labels: Collection[str]
) -> dict[str, Any]:
    """The state recorded for a service: what Read takes from `docker service inspect`, with
    the inputs it does not read (`convergeConfig`) as sent."""
    spec = inspect["Spec"]
    state: dict[str, Any] = {
        "name": spec["Name"],
        "labels": [
            {"label": k, "value": v}
            for k, v in sorted((spec.get("Labels") or {}).items())
            if k not in own_labels
        ],
        "taskSpec": _read_task(spec["TaskTemplate"], own_labels),
        "mode": {
            "replicated": {"replicas": spec["Mode"]["Replicated"]["Replicas"]},
            "global": "Global" in spec["Mode"],
        },
    }
    for key, api_key in (("updateConfig", "UpdateConfig"), ("rollbackConfig", "RollbackConfig")):
        if spec.get(api_key) is not None:
            state[key] = _read_rollout(spec[api_key])
    endpoint = inspect.get("Endpoint") or {}
    endpoint_spec = spec.get("EndpointSpec") or {}
    if (endpoint.get("Spec") or {}).get("Mode"):
        state["endpointSpec"] = {
            "mode": endpoint["Spec"]["Mode"],
            "ports": _read_ports(endpoint.get("Ports")),
        }
    elif endpoint_spec.get("Mode"):
        state["endpointSpec"] = {
            "mode": endpoint_spec["Mode"],
            "ports": _read_ports(endpoint_spec.get("Ports")),
        }
    if "convergeConfig" in sent:
        state["convergeConfig"] = sent["convergeConfig"]
    return state


def _read_task(task: Mapping[str, Any], own_labels: Collection[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"forceUpdate": task.get("ForceUpdate", 0)}
    if task.get("ContainerSpec") is not None:
        out["containerSpec"] = _read_container(task["ContainerSpec"], own_labels)
    if task.get("Resources") is not None:
        resources = task["Resources"]
        out["resources"] = {}
        if resources.get("Limits") is not None:
            out["resources"]["limits"] = _read_limits(resources["Limits"])
        if resources.get("Reservations") is not None:
            # No generic resources: the bridge gives an empty one-item block as nothing at all.
            out["resources"]["reservation"] = _read_limits(resources["Reservations"])
    if task.get("RestartPolicy") is not None:
        policy = task["RestartPolicy"]
        out["restartPolicy"] = {}
        if policy.get("Condition"):
            out["restartPolicy"]["condition"] = policy["Condition"]
        if policy.get("Delay") is not None:
            out["restartPolicy"]["delay"] = short_duration_of(policy["Delay"])
        if policy.get("MaxAttempts") is not None:
            out["restartPolicy"]["maxAttempts"] = policy["MaxAttempts"]
        if policy.get("Window") is not None:
            out["restartPolicy"]["window"] = short_duration_of(policy["Window"])
    if task.get("Placement") is not None:
        placement = task["Placement"]
        out["placement"] = {"maxReplicas": placement.get("MaxReplicas", 0)}
        if placement.get("Constraints"):
            out["placement"]["constraints"] = list(placement["Constraints"])
        if placement.get("Platforms"):
            out["placement"]["platforms"] = [
                {"architecture": p.get("Architecture", ""), "os": p.get("OS", "")}
                for p in placement["Platforms"]
            ]
    if task.get("Runtime"):
        out["runtime"] = task["Runtime"]
    if task.get("Networks"):
        out["networksAdvanceds"] = [
            {
                "id": n["Target"],
                "driverOpts": [f"{k}={v}" for k, v in (n.get("DriverOpts") or {}).items()],
            }
            | ({"aliases": list(n["Aliases"])} if n.get("Aliases") else {})
            for n in task["Networks"]
        ]
    if task.get("LogDriver") is not None:
        log = task["LogDriver"]
        out["logDriver"] = {"name": log.get("Name", "")}
        if log.get("Options"):
            out["logDriver"]["options"] = dict(log["Options"])
    return out


def _read_container(c: Mapping[str, Any], own_labels: Collection[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    simple = {
        "image": "Image",
        "commands": "Command",
        "args": "Args",
        "hostname": "Hostname",
        "user": "User",
        "dir": "Dir",
        "stopSignal": "StopSignal",
        "isolation": "Isolation",
        "capAdds": "CapabilityAdd",
        "capDrops": "CapabilityDrop",
    }
    for key, api_key in simple.items():
        if c.get(api_key):
            out[key] = c[api_key]
    if c.get("Env"):
        out["env"] = dict(entry.split("=", 1) for entry in c["Env"])
    if c.get("ReadOnly"):
        out["readOnly"] = True
    if c.get("Mounts"):
        out["mounts"] = [_read_mount(m) for m in c["Mounts"]]
    if c.get("StopGracePeriod") is not None:
        out["stopGracePeriod"] = short_duration_of(c["StopGracePeriod"])
    check = c.get("Healthcheck")
    if check is not None:
        out["healthcheck"] = {
            "interval": short_duration_of(check.get("Interval", 0)),
            "timeout": short_duration_of(check.get("Timeout", 0)),
            "startPeriod": short_duration_of(check.get("StartPeriod", 0)),
            "retries": check.get("Retries", 0),
        } | ({"tests": list(check["Test"])} if check.get("Test") else {})
    if c.get("Secrets"):
        out["secrets"] = [_read_secret_ref(s) for s in c["Secrets"]]
    if c.get("Init") is not None:  # the provider's client is newer than API 1.37
        out["init"] = c["Init"]
    labels = {k: v for k, v in (c.get("Labels") or {}).items() if k not in own_labels}
    if labels:
        raise ServiceError(f"container labels {sorted(labels)}: not described in the stand-in")
    return out


def _read_mount(m: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "target": m["Target"],
        "source": m.get("Source", ""),
        "type": m["Type"],
        "readOnly": bool(m.get("ReadOnly")),
    }
    if m.get("TmpfsOptions") is not None:
        out["tmpfsOptions"] = {
            "sizeBytes": m["TmpfsOptions"].get("SizeBytes", 0),
            "mode": m["TmpfsOptions"].get("Mode", 0) & 0o777,
        }
    volume = m.get("VolumeOptions")
    if volume is not None:  # flattenServiceMounts: no_copy and labels always, a driver if any
        out["volumeOptions"] = {
            "noCopy": bool(volume.get("NoCopy")),
            "labels": [
                {"label": k, "value": v} for k, v in sorted((volume.get("Labels") or {}).items())
            ],
        }
        driver = volume.get("DriverConfig") or {}
        if driver.get("Name"):
            out["volumeOptions"]["driverName"] = driver["Name"]
    if m.get("BindOptions") is not None:
        raise ServiceError(f"mount {m['Target']}: BindOptions not described in the stand-in")
    return out


def _read_secret_ref(s: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"secretId": s["SecretID"]}
    if s.get("SecretName"):
        out["secretName"] = s["SecretName"]
    file = s.get("File")
    if file is not None:
        out |= {"fileName": file["Name"], "fileMode": file.get("Mode", 0)}
        if file.get("UID"):
            out["fileUid"] = file["UID"]
        if file.get("GID"):
            out["fileGid"] = file["GID"]
    return out


def _read_limits(block: Mapping[str, Any]) -> dict[str, int]:
    return {"nanoCpus": block.get("NanoCPUs", 0), "memoryBytes": block.get("MemoryBytes", 0)}


def _read_rollout(block: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "parallelism": block.get("Parallelism", 0),
        "delay": short_duration_of(block.get("Delay", 0)),
        "failureAction": block.get("FailureAction", ""),
        "monitor": short_duration_of(block.get("Monitor", 0)),
        "maxFailureRatio": f"{float(block.get('MaxFailureRatio', 0)):.1f}",
        "order": block.get("Order", ""),
    }


def _read_ports(ports: Any) -> list[dict[str, Any]]:
    return [
        {
            "name": p.get("Name", ""),
            "protocol": p.get("Protocol", ""),
            "targetPort": p.get("TargetPort", 0),
            "publishedPort": p.get("PublishedPort", 0),
            "publishMode": p.get("PublishMode", ""),
        }
        for p in ports or []
    ]


# ----------------------------------------------------------------------------------------------
# Waiting, as the provider's StateChangeConf does


def tasks_running(client: docker.DockerClient, service_id: str) -> tuple[int, int]:
    """`replicatedConsoleLogUpdater.update`: one task per slot (the lowest desired state, then
    the lowest observed one), on nodes that are not down; how many run, and how many replicas
    the service asks for."""
    service = client.api.inspect_service(service_id)
    replicas = int(service["Spec"]["Mode"]["Replicated"]["Replicas"])
    tasks = client.api.tasks(filters={"service": service_id, "desired-state": "running"})
    down = {n["ID"] for n in client.api.nodes() if n["Status"]["State"] == "down"}
    by_slot: dict[int, Mapping[str, Any]] = {}
    for task in tasks:
        desired, observed = task["DesiredState"], task["Status"]["State"]
        if desired not in TASK_STATES or observed not in TASK_STATES:
            continue
        if task.get("NodeID") in down:
            continue
        kept = by_slot.get(task["Slot"])
        if kept is not None and _rank(kept) <= _rank(task):
            continue
        by_slot[task["Slot"]] = task
    running = sum(
        1
        for task in by_slot.values()
        if TASK_STATES.index(task["DesiredState"]) <= TASK_STATES.index(RUNNING)
        and task["Status"]["State"] == RUNNING
    )
    return running, replicas


def task_errors(client: docker.DockerClient, service_id: str) -> list[str]:
    """The last few tasks' states and errors (for a failure message)."""
    tasks = client.api.tasks(filters={"service": service_id})
    tasks.sort(key=lambda t: t["UpdatedAt"])
    return [
        f"{t['Status']['State']}: {t['Status'].get('Err') or t['Status'].get('Message')}"
        for t in tasks[-3:]
    ]


def _rank(task: Mapping[str, Any]) -> tuple[int, int]:
    return TASK_STATES.index(task["DesiredState"]), TASK_STATES.index(task["Status"]["State"])


def wait_created(
    client: docker.DockerClient, service_id: str, delay_s: float, timeout_s: float
) -> bool:
    """The create wait: whether every replica ran before the timeout."""
    deadline = time.monotonic() + timeout_s
    time.sleep(delay_s)
    while True:
        running, replicas = tasks_running(client, service_id)
        if running == replicas:
            return True
        if time.monotonic() + CREATE_POLL_S > deadline:
            return False
        time.sleep(CREATE_POLL_S)


def wait_updated(client: docker.DockerClient, service_id: str, timeout_s: float) -> None:
    """The update wait: done when the update completed (or, with no status yet, when every
    replica runs); an error when Docker paused it or rolled it back."""
    deadline = time.monotonic() + timeout_s
    time.sleep(UPDATE_DELAY_S)
    while True:
        status = client.api.inspect_service(service_id).get("UpdateStatus") or {}
        state, message = status.get("State"), status.get("Message", "")
        if state == "completed":
            return
        if state in ("paused", "rollback_paused", "rollback_completed"):
            what = {
                "paused": "service update paused",
                "rollback_paused": "service rollback paused",
                "rollback_completed": "service rollback completed",
            }[state]
            raise ServiceError(f"{what}: {message}")
        running, replicas = tasks_running(client, service_id)
        if running == replicas:
            if state == "rollback_started":
                raise ServiceError(f"service rollback completed: {message}")
            return
        if time.monotonic() + CREATE_POLL_S > deadline:
            raise ServiceError(
                f"Service with ID ({service_id}) did not converge after {timeout_s}s"
            )
        time.sleep(CREATE_POLL_S)


def delete_service(client: docker.DockerClient, service_id: str, grace: str) -> None:
    """`deleteService`: note the running tasks' containers, remove the service, then wait for
    each container to go for up to the grace period, and force its removal."""
    containers = []
    if grace and grace != "0s":
        for task in client.api.tasks(filters={"service": service_id}):
            container = (task["Status"].get("ContainerStatus") or {}).get("ContainerID", "")
            if container.strip() and task["Status"]["State"] != "shutdown":
                containers.append(container)
    client.api.remove_service(service_id)
    for container in containers:
        deadline = time.monotonic() + nanoseconds(grace) / 1e9
        while time.monotonic() < deadline:
            try:
                client.api.inspect_container(container)
            except docker.errors.NotFound:
                break
            time.sleep(0.25)
        try:
            client.api.remove_container(container, v=True, force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as err:
            if "is already in progress" not in str(err):
                raise


def create_secret(
    client: docker.DockerClient, i: Mapping[str, Any], run_labels: Mapping[str, str]
) -> str:
    """resourceDockerSecretCreate: the spec from the standard base64 `data`; returns the ID."""
    created = client.api.create_secret(
        i["name"],
        base64.b64decode(i["data"], validate=True),
        labels={**_labels(i.get("labels")), **run_labels},
    )
    return str(created["ID"])


def service_kwargs(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Docker's service spec as docker-py's create_service / update_service take it."""
    return {
        "task_template": spec["TaskTemplate"],
        "name": spec["Name"],
        "labels": spec["Labels"],
        "mode": spec["Mode"],
        "update_config": spec.get("UpdateConfig"),
        "rollback_config": spec.get("RollbackConfig"),
        "endpoint_spec": spec.get("EndpointSpec"),
    }


def grace_of(inputs: Mapping[str, Any]) -> str:
    """A service's stop grace period as the provider's delete waits for it."""
    return str(inputs.get("taskSpec", {}).get("containerSpec", {}).get("stopGracePeriod") or "0s")


def seconds(duration: str) -> float:
    return nanoseconds(duration) / 1e9
