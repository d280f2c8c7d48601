"""The recovery of a lost swarm node that held databases: each database back on the node the
stack's `docker:host` names, restored from the off-host repository (docs/operations.md).

On a swarm what holds a volume is pinned to the node labelled for it; when that node is gone
for good its tasks wait for the label, and the shop's data is in the off-host repository
(repo2, on another node). The operator points `docker:host` at a manager that will hold the
databases now (a node without the repository's label), then, in order:

1. The services pinned to the labels that no ready node carries any more (the databases, their
   agents, Redis, the backups) are scaled to 0: nothing starts on the new node before its
   volumes are ready.
2. Every volume of the stack is made on the new node as the program makes it (its labels,
   its driver); one that Swarm made there already, unlabelled, is replaced while empty, and a
   volume that holds something is refused, never overwritten.
3. The new node gets the lost node's labels.
4. Each database's data volume gets a recovery request (pitr/layout.py RECOVERY_REQUEST: the
   restore target), then its start guard (pitr/guard.py) runs in a one-off Swarm job made
   from the database service's own spec (its image, volumes, secrets and overlays: only they
   reach the off-host repository) with no health check, so that the restore takes what time it
   needs: it restores from the repository with the newest backup and removes the request.
5. The services are scaled back: the servers start on their restored data, replay the archive
   up to the target and turn healthy.
6. Each restored server: out of recovery, a checkpoint, its agent's first check passed, the
   drill's checks. Then a refresh and an `up`: the state reads the volumes on the new node.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from pulumi import automation as auto

from components.dynamic.engine_api import DockerApiError, engine_api
from deploy.recovery import (
    AGENT_CHECK_TIMEOUT_S,
    READY_TIMEOUT_S,
    REQUEST_SCRIPT,
    SERVICE_TYPE,
    STANZA_ENV,
    Docker,
    Recovered,
    RecoveryError,
    Say,
    agent_checked,
    psql_in,
    resources_of,
    role_of,
)
from pitr import layout
from pitr.docker_host import SWARM_SERVICE_LABEL
from pitr.errors import last_line
from pitr.pgbackrest import RestoreTarget

VOLUME_TYPE = "docker:index/volume:Volume"
LABEL_CONSTRAINT = "node.labels."
JOB_SUFFIX = "-recovery"
REPOSITORY = "-pitr-repository"
"""The off-host backup repository's service name ends so (components/parts/off_host.py)."""
SCALE_TIMEOUT_S = 120


class ManagerError(RecoveryError, DockerApiError):
    """A call of the manager's API failed: the recovery stops, saying which."""


@dataclass(frozen=True)
class PinnedService:
    """A service of the stack held on the nodes of a label."""

    name: str
    labels: tuple[str, ...]
    """The node labels its constraints ask for."""
    stanza: str | None = None
    """For a database server: its PITR stanza (None: not a database, or one without PITR)."""
    database: bool = False
    replicas: int = 1
    """As the program declares it (what is scaled back to, whatever runs now)."""


@dataclass(frozen=True)
class StackVolume:
    name: str
    labels: Mapping[str, str]
    driver: str = "local"


def pinned_services(resources: Iterable[Mapping[str, Any]]) -> list[PinnedService]:
    """The stack's services with a node-label constraint, as the engine's state holds them."""
    found = []
    for resource in resources:
        inputs = resource.get("inputs") or {}
        if resource.get("type") != SERVICE_TYPE:
            continue
        task = inputs.get("taskSpec") or {}
        constraints = (task.get("placement") or {}).get("constraints") or []
        labels = tuple(
            c[len(LABEL_CONSTRAINT) :].split("==")[0]
            for c in constraints
            if c.startswith(LABEL_CONSTRAINT) and c.endswith("==true")
        )
        if not labels:
            continue
        env = (task.get("containerSpec") or {}).get("env") or {}
        stanza = env.get(STANZA_ENV.rstrip("="))
        replicated = (inputs.get("mode") or {}).get("replicated") or {}
        found.append(
            PinnedService(
                name=str(inputs.get("name")),
                labels=labels,
                stanza=stanza,
                database=role_of(inputs) == "database",
                replicas=int(replicated.get("replicas", 1)),
            )
        )
    return found


def stack_volumes(resources: Iterable[Mapping[str, Any]]) -> list[StackVolume]:
    """The stack's volumes as the program declares them."""
    return [
        StackVolume(
            name=str(inputs.get("name")),
            labels={i["label"]: i["value"] for i in inputs.get("labels") or []},
            driver=str(inputs.get("driver") or "local"),
        )
        for resource in resources
        if resource.get("type") == VOLUME_TYPE
        for inputs in [resource.get("inputs") or {}]
    ]


def lost_labels(
    services: Sequence[PinnedService], nodes: Iterable[Mapping[str, Any]], here: str
) -> tuple[set[str], list[str]]:
    """The labels the stack pins by that only down nodes carry (or none at all), and the nodes
    that carry one in a state that does not say they are gone (unknown, disconnected, paused,
    drained): a recovery must not restore what may still run. `here`: this node's ID, whose
    labels do not count (a recovery that stopped midway may have moved none yet)."""
    pinned = {label for s in services for label in s.labels}
    carriers: dict[str, list[Mapping[str, Any]]] = {label: [] for label in pinned}
    for node in nodes:
        labels = (node.get("Spec") or {}).get("Labels") or {}
        for label in pinned:
            if labels.get(label) == "true" and node.get("ID") != here:
                carriers[label].append(node)
    lost, unsure = set(), []
    for label, found in carriers.items():
        states = [_state(node) for node in found]
        if all(state == "down" for state in states):
            lost.add(label)
        elif "up" not in states:
            unsure += [_describe(node) for node in found if _state(node) != "down"]
    return lost, sorted(set(unsure))


def _state(node: Mapping[str, Any]) -> str:
    """`up` (ready and active), `down`, or what else it is."""
    status = (node.get("Status") or {}).get("State")
    availability = (node.get("Spec") or {}).get("Availability", "active")
    if status == "ready" and availability == "active":
        return "up"
    return "down" if status == "down" else f"{status}/{availability}"


def _describe(node: Mapping[str, Any]) -> str:
    name = (node.get("Description") or {}).get("Hostname") or node.get("ID", "?")
    return f"{name} ({_state(node)})"


def restore_job(service: Mapping[str, Any], stanza: str, node_id: str) -> dict[str, Any]:
    """The spec of a one-off Swarm job made from the database service's spec (as `GET
    /services/<name>` shows it): its start guard on the recovery request, nothing else, with
    no health check and no restart, on node `node_id`."""
    spec = copy.deepcopy(service["Spec"])
    task = spec["TaskTemplate"]
    container = task["ContainerSpec"]
    container["Args"] = ["python3", "-m", "pitr", "guard", "--stanza", stanza]
    container["Env"] = [*container.get("Env", []), f"PGDATA={layout.PG_PATH}"]
    container["Healthcheck"] = {"Test": ["NONE"]}
    container["User"] = layout.PG_USER  # pgBackRest's files stay the server's own
    task["RestartPolicy"] = {"Condition": "none", "MaxAttempts": 0}
    # On this node, before the lost node's labels move here (a recovery run again finds them
    # still lost, as long as no server has started).
    task["Placement"] = {"Constraints": [f"node.id=={node_id}"]}
    task.pop("ForceUpdate", None)
    return {
        "Name": f"{spec['Name']}{JOB_SUFFIX}",
        "Labels": spec.get("Labels", {}),
        "TaskTemplate": task,
        "Mode": {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}},
    }


def recover_node(
    stack: auto.Stack,
    docker: Docker,
    target: RestoreTarget,
    say: Say,
    engine_options: Mapping[str, Any] | None = None,
) -> list[Recovered]:
    """Bring the databases of a lost node back on the node `docker` reaches (the steps: the
    module's docstring)."""
    api = engine_api(docker.host, "swarm recovery", ManagerError)
    info = api("GET", "/info")
    node_id = (info.get("Swarm") or {}).get("NodeID")
    if not (info.get("Swarm") or {}).get("ControlAvailable"):
        raise RecoveryError(
            f"{docker.host} is not a manager of a swarm: point docker:host at the manager that "
            "will hold the databases"
        )
    resources = resources_of(stack.export_stack().deployment)
    services = pinned_services(resources)
    nodes = api("GET", "/nodes")
    lost, unsure = lost_labels(services, nodes, str(node_id))
    if unsure:
        raise RecoveryError(
            f"node {', '.join(unsure)} is neither ready nor down: what it runs may still run; "
            "power it off, or wait until the managers mark it down, then run the recovery again"
        )
    if not lost:
        raise RecoveryError(
            "every node label the stack pins by is on a ready node: no node is lost; restore "
            "a database in place with `python -m pitr restore` (docs/pitr.md)"
        )
    moving = [s for s in services if set(s.labels) & lost]
    databases = [s for s in moving if s.database]
    without = [s.name for s in databases if s.stanza is None]
    if without:
        raise RecoveryError(
            f"{', '.join(without)} run without PITR: no repository holds them; turn `pitr` "
            "and `pitr.offHost` on before a node is lost"
        )
    if not databases:
        raise RecoveryError(
            f"no database is pinned to the lost labels ({', '.join(sorted(lost))}): label a "
            "ready node for them and Swarm starts the rest there on its own"
        )
    here: Mapping[str, Any] = next((n for n in nodes if n.get("ID") == node_id), {})
    mine = {k for k, v in ((here.get("Spec") or {}).get("Labels") or {}).items() if v == "true"}
    repository = {label for s in services if s.name.endswith(REPOSITORY) for label in s.labels}
    if repository & mine:
        raise RecoveryError(
            f"{docker.host} is the off-host repository's node ({', '.join(sorted(repository))}): "
            "one lost node would lose the databases and their backups again; point docker:host "
            "at another manager"
        )
    say(f"recovery: 1/6 scale to 0 what the lost node held: {', '.join(s.name for s in moving)}")
    for service in moving:
        docker.check("service", "scale", "--detach", f"{service.name}=0")
    for service in moving:
        _wait_stopped(api, service.name, nodes)
    say(f"recovery: 2/6 their volumes on this node ({docker.host})")
    image = api("GET", f"/services/{quote(databases[0].name)}")["Spec"]["TaskTemplate"]
    mounted = {m for s in moving for m in _volumes_of(api, s.name)}
    for volume in stack_volumes(resources):
        _make_volume(
            docker, volume, str(image["ContainerSpec"]["Image"]), volume.name in mounted, say
        )
    for db in databases:
        say(f"recovery: 3/6 {db.name}: restore to {target.text()} from its repositories")
        spec = api("GET", f"/services/{quote(db.name)}")
        _request(docker, db.name, spec, target)
        _run_job(docker, api, restore_job(spec, str(db.stanza), str(node_id)))
    say(f"recovery: 4/6 this node labelled {', '.join(sorted(lost))}, the lost node no more")
    for node in nodes:
        gone = sorted(lost & set((node.get("Spec") or {}).get("Labels") or {}))
        if gone and node.get("ID") != node_id:
            rms = [arg for label in gone for arg in ("--label-rm", label)]
            docker.check("node", "update", *rms, str(node["ID"]))
    adds = [arg for label in sorted(lost) for arg in ("--label-add", f"{label}=true")]
    docker.check("node", "update", *adds, str(node_id))
    say("recovery: 5/6 scaled back: the servers replay the archive, then everything starts")
    for service in moving:
        docker.check("service", "scale", "--detach", f"{service.name}={service.replicas}")
    recovered = []
    for db in databases:
        say(f"recovery: 6/6 {db.name}: out of recovery, archiving, checked")
        recovered.append(Recovered(db.name, _settle(docker, db.name)))
    # With the program run, so that the provider reaches this manager, not the lost one.
    stack.refresh(run_program=True, on_output=say)
    stack.up(on_output=say, **dict(engine_options or {}))
    return recovered


def _volumes_of(api: Any, name: str) -> list[str]:
    spec = api("GET", f"/services/{quote(name)}")["Spec"]["TaskTemplate"]["ContainerSpec"]
    return [m["Source"] for m in spec.get("Mounts", []) if m.get("Type") == "volume"]


def _task_containers(docker: Docker, service: str) -> list[str]:
    found = docker.check("ps", "-q", "--filter", f"label={SWARM_SERVICE_LABEL}={service}")
    return found.split()


def _wait_stopped(api: Any, service: str, nodes: Iterable[Mapping[str, Any]]) -> None:
    """Until no task of the service runs on a node that is up (a down node's tasks show as
    running until it returns)."""
    down = {n.get("ID") for n in nodes if _state(n) == "down"}
    filters = quote(json.dumps({"service": [service]}))
    deadline = time.monotonic() + SCALE_TIMEOUT_S
    while True:
        tasks = api("GET", f"/tasks?filters={filters}")
        live = [
            t
            for t in tasks
            if t.get("NodeID") not in down
            and (t.get("Status") or {}).get("State") in _RUNNING_STATES
        ]
        if not live:
            return
        if time.monotonic() > deadline:
            raise RecoveryError(
                f"{service} still runs {SCALE_TIMEOUT_S} s after scaling it to 0: "
                f"`docker service ps {service}` says where; stop it, then run the recovery again"
            )
        time.sleep(1)


_RUNNING_STATES = {"assigned", "accepted", "preparing", "ready", "starting", "running"}


def _make_volume(docker: Docker, volume: StackVolume, image: str, moving: bool, say: Say) -> None:
    """The volume on this node as the program makes it. One of the moving services' that
    Swarm made here unlabelled is made again while empty, and refused when it holds anything;
    another one is left as it is (said: the next `up` would want it replaced)."""
    found = docker.run("volume", "inspect", "--format", "{{json .Labels}}", volume.name)
    if found.returncode == 0:
        if (json.loads(found.stdout) or {}) == dict(volume.labels):
            return
        if not moving:
            say(f"  {volume.name}: here with other labels than the stack's; left as it is")
            return
        if not _empty(docker, volume.name, image):
            raise RecoveryError(
                f"volume {volume.name} on this node holds data but not the stack's labels: "
                "the recovery restores into empty volumes only; point docker:host at another "
                "manager, or move that volume's data away yourself"
            )
        docker.check("volume", "rm", volume.name)
    labels = [arg for k, v in sorted(volume.labels.items()) for arg in ("--label", f"{k}={v}")]
    docker.check("volume", "create", "--driver", volume.driver, *labels, volume.name)


EMPTY, NOT_EMPTY = 0, 1


def _empty(docker: Docker, volume: str, image: str) -> bool:
    """Whether the volume holds nothing (looked at by a container with no network)."""
    done = docker.run(
        "run", "--rm", "--network", "none", "--entrypoint", "sh", "-v", f"{volume}:/v",
        image, "-c", 'test -z "$(ls -A /v)"',
    )  # fmt: skip
    if done.returncode not in (EMPTY, NOT_EMPTY):
        raise RecoveryError(
            f"volume {volume}: could not look into it ({last_line(done.stderr)}); fix that, "
            "then run the recovery again"
        )
    return done.returncode == EMPTY


def _request(docker: Docker, name: str, spec: Mapping[str, Any], target: RestoreTarget) -> None:
    """The recovery request in the server's data volume; refused over a database."""
    container = spec["Spec"]["TaskTemplate"]["ContainerSpec"]
    image = str(container["Image"])
    mounts = container.get("Mounts", [])
    data = [m["Source"] for m in mounts if m.get("Target") == str(layout.DATA_MOUNT)]
    if not data:
        raise RecoveryError(f"{name}: no data volume at {layout.DATA_MOUNT} in its spec")
    done = docker.run(
        "run", "--rm", "--network", "none", "--cap-drop", "ALL", "--user", layout.PG_USER,
        "--entrypoint", "sh", "-v", f"{data[0]}:{layout.DATA_MOUNT}", image, "-c",
        REQUEST_SCRIPT, target.text(), str(layout.DATA_MOUNT), str(layout.RECOVERY_REQUEST),
    )  # fmt: skip
    if done.returncode != 0:
        raise RecoveryError(
            f"{name}: no recovery request written into {data[0]} ({last_line(done.stderr)}); "
            "a recovery restores into empty volumes only"
        )


def _run_job(docker: Docker, api: Any, job: Mapping[str, Any]) -> None:
    """Create the job, wait for its one task to complete, remove it; its logs on a failure."""
    name = str(job["Name"])
    docker.run("service", "rm", name)  # what an interrupted recovery left
    while _task_containers(docker, name):
        time.sleep(1)
    api("POST", "/services/create", job)
    filters = quote(json.dumps({"service": [name]}))
    deadline = time.monotonic() + READY_TIMEOUT_S
    try:
        while True:
            states = [t.get("Status") or {} for t in api("GET", f"/tasks?filters={filters}")]
            if any(s.get("State") == "complete" for s in states):
                return
            failed = [s for s in states if s.get("State") in ("failed", "rejected")]
            if failed:
                logs = docker.run("service", "logs", "--raw", "--tail", "5", name)
                said = last_line(logs.stderr or logs.stdout or failed[0].get("Err", ""))
                raise RecoveryError(
                    f"{name}: the restore failed ({said}); the request stays in the data "
                    "volume: fix the cause and run the recovery again"
                )
            if time.monotonic() > deadline:
                raise RecoveryError(f"{name}: no restore done after {READY_TIMEOUT_S} s")
            time.sleep(2)
    finally:
        docker.run("service", "rm", name)
        # Removed, its task's container may still stop: never two restores on one volume.
        stopping = time.monotonic() + SCALE_TIMEOUT_S
        while _task_containers(docker, name) and time.monotonic() < stopping:
            time.sleep(1)


def _settle(docker: Docker, name: str) -> str:
    """Wait until the restored server takes writes here and archives again, then check it."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        found = _task_containers(docker, name)
        if found and psql_in(docker, found[0], "SELECT pg_is_in_recovery()") == "f":
            server = found[0]
            break
        if time.monotonic() > deadline:
            raise RecoveryError(f"{name} takes no writes {READY_TIMEOUT_S} s after the restore")
        time.sleep(2)
    psql_in(docker, server, "CHECKPOINT")  # archiving resumes once the checkpointer wakes
    deadline = time.monotonic() + AGENT_CHECK_TIMEOUT_S
    while not any(agent_checked(docker, c) for c in _task_containers(docker, f"{name}-pitr")):
        if time.monotonic() > deadline:
            raise RecoveryError(
                f"{name}-pitr has not passed its first check after {AGENT_CHECK_TIMEOUT_S} s: "
                f"`docker service logs {name}-pitr` says why"
            )
        time.sleep(2)
    pitr = ["exec", "-u", layout.PG_USER, server, "python3", "-m", "pitr"]
    return docker.check(*pitr, "check-here").strip()
