"""A stand-in for the pulumi-docker provider and Pulumi's engine, for machines without the CLI.

It takes the resource graph the real program records under mocks (`plan.recorder.Graph`) and
deploys it on a real Docker engine the way `pulumi up` with pulumi-docker would, keeping a state
as Pulumi does, so that a second graph can be planned and applied against it:

- Create, as the provider's create code does it (resource_docker_container_funcs.go, v4.5.0):
  a `Network` (bridge, `internal`, labels) or `Volume` (labels); a `Container` once everything
  it depends on exists (and is healthy), in waves of independent containers as the engine runs
  them: created with its image, command, env, user, labels, mounts, tmpfs, `read_only`,
  capabilities, `security_opts`, memory and swap (MB), `cpus`, `shm_size` (MB), restart policy,
  log driver and options, published ports, health check, `network_mode` and `stop_timeout`;
  disconnected from Docker's default bridge and joined to each network with its aliases; each
  upload put as a tar at `/` (refused by Docker on a read-only root, as for the provider);
  started unless `start` is false; with `wait`, polled until healthy within `waitTimeout`.
- Record: what the provider's Read finds on the engine (`provider_read.py`), which is what
  Pulumi keeps and diffs the next run against. A container that never turned healthy is
  recorded with an initialisation error, as pulumi-terraform-bridge's Create reports a
  provider create that failed after setting the id, and the run fails.
- Plan: each resource of a new graph against the state, with the provider's diff and Pulumi's
  engine rules (`provider.diff`): create, same, update, replace (delete first or create first),
  delete.
- Apply a plan: replacements in the order the plan says; in-place updates as the provider's
  update does them (restart policy and memory by `docker update`, a stopped container started);
  deletes as the provider's delete: stop with `destroyGraceSeconds` as the timeout (SIGKILL at
  once when unset), then remove with its anonymous volumes.

It is not a second way to deploy: it reads only the inputs this program uses, refuses what it
does not know, and publishes ports on loopback only. Everything it creates carries the test
run's labels, so the fixtures remove it all even when a check fails midway.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import tarfile
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Any

import docker
import docker.errors
import docker.types

from components.pids_limit import CONTAINER_ID, DOCKER_HOST, LIMIT, update_pids_limit
from plan.compare import Change as Step
from plan.compare import decide, outputs_change
from plan.recorder import (
    GENERATION_SEPARATOR,
    ROOT,
    Graph,
    Resource,
    mock_container_id,
    mock_image_id,
    mock_random_hex,
)
from provider.canonical import nano_cpus, nanoseconds
from provider.schema import (
    CONTAINER,
    IMAGE,
    NETWORK,
    PIDS_LIMIT,
    RANDOM_ID,
    SECRET,
    SERVICE,
    VOLUME,
)
from tests.integration import standin_swarm as swarm
from tests.integration.provider_read import read_container, read_network, read_volume

# Inputs the stand-in understands; anything else in the graph is an error, not a silent skip.
KNOWN_CONTAINER_INPUTS = {
    "name", "image", "command", "envs", "user", "labels", "volumes", "tmpfs", "readOnly",
    "capabilities", "securityOpts", "memory", "memorySwap", "cpus", "shmSize", "restart",
    "logDriver", "logOpts", "ports", "healthcheck", "networkMode", "networksAdvanced", "uploads",
    "start", "mustRun", "wait", "waitTimeout", "destroyGraceSeconds", "stopTimeout",
}  # fmt: skip
# What the provider's update applies to a running container (resourceDockerContainerUpdate).
UPDATED_IN_PLACE = {"restart", "maxRetryCount", "cpuShares", "memory", "memoryReservation",
                    "memorySwap"}  # fmt: skip
WORKLOADS = (CONTAINER, SERVICE)
"""Scheduled in waves by their dependencies, as the engine runs them."""
LOOPBACK = "127.0.0.1"
MIB = 1024 * 1024


class StandInError(Exception):
    """The graph asks for something the stand-in cannot do as the provider would, or a
    deployment failed as `pulumi up` would fail."""


@dataclass
class Timing:
    """When the stand-in asked for a container and when it reached each state (epoch seconds,
    comparable with the timestamps of Docker's logs)."""

    requested: float = 0.0
    created: float = 0.0
    started: float = 0.0
    healthy: float = 0.0


@dataclass
class Recorded:
    """What the state holds for one resource, as Pulumi keeps it after the provider's Read."""

    resource: Resource
    """The graph resource it was made from (its resource options among others)."""
    state: dict[str, Any]
    docker_id: str = ""
    init_errors: list[str] = field(default_factory=list)


@dataclass
class Plan:
    steps: list[Step]

    def changes(self) -> list[Step]:
        return [s for s in self.steps if s.action != "same"]

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)


class Deployment:
    """One stack on the engine, and its state."""

    def __init__(
        self,
        client: docker.DockerClient,
        labels: Mapping[str, str],
        log: Callable[[str], None] = lambda _line: None,
    ) -> None:
        self.client = client
        self.labels = dict(labels)
        """Added to everything the stand-in creates (the test run's labels)."""
        self.log = log
        self.state: dict[str, Recorded] = {}
        self.containers: dict[str, Any] = {}
        """Docker name -> container object (seeds included)."""
        self.timings: dict[str, Timing] = {}
        self.real: dict[str, str] = {}
        """What the mocks made up -> the real value: a built image's ID, a random value."""
        self.replaced: list[Recorded] = []
        """Resources replaced create-first in this run, deleted at its end."""

    def container(self, name: str) -> Any:
        """The one container of `name`, the generation of one replaced side by side aside."""
        found = [c for n, c in self.containers.items() if n.split(GENERATION_SEPARATOR)[0] == name]
        if len(found) != 1:
            raise LookupError(f"expected one container {name}, found {len(found)}")
        return found[0]

    # ------------------------------------------------------------------------------------------
    # Planning

    def plan(self, graph: Graph) -> Plan:
        """What `pulumi up` with `graph` would do to this deployment."""
        steps = []
        pending: set[str] = set()  # outputs known only after the run, as in the engine
        for resource in graph.resources:
            if resource.type.startswith("ecommerce:"):
                continue  # components hold no state of their own
            recorded = self.state.get(resource.urn)
            if recorded is None:
                steps.append(Step(resource.urn, resource.type, resource.name, "create"))
                pending.add(resource.urn)
                continue
            desired = replace(resource, inputs=self.resolved(resource.inputs))
            found = decide(recorded.state, desired, pending, bool(recorded.init_errors))
            if outputs_change(resource.type, found.action):
                pending.add(resource.urn)
            steps.append(Step(resource.urn, resource.type, resource.name, found.action,
                              found.paths, found.replace_reasons,
                              delete_before_replace=found.delete_before_replace))  # fmt: skip
        wanted = {r.urn for r in graph.resources}
        steps += [Step(urn, r.resource.type, r.resource.name, "delete")
                  for urn, r in self.state.items() if urn not in wanted]  # fmt: skip
        return Plan(steps)

    # ------------------------------------------------------------------------------------------
    # Applying

    def up(self, graph: Graph) -> Plan:
        """Plan `graph` against the state and carry the plan out, as `pulumi up` does."""
        plan = self.plan(graph)
        steps = {s.urn: s for s in plan.steps}
        for resource in graph.resources:
            step = steps.get(resource.urn)
            if step is None or resource.type in (*WORKLOADS, PIDS_LIMIT):
                continue
            self._apply_other(resource, step)
        limits = {next(iter(r.property_dependencies["containerId"])): r  # its one container
                  for r in graph.of_type(PIDS_LIMIT)}  # fmt: skip
        workloads = [r for r in graph.resources if r.type in WORKLOADS]
        self._apply_containers(workloads, steps, limits)
        for step in plan.steps:
            if step.action == "delete" and step.type in WORKLOADS:
                self._delete_workload(self.state.pop(step.urn))
        for step in plan.steps:
            if step.action == "delete" and step.type not in WORKLOADS:
                self._delete_other(self.state.pop(step.urn))
        # Replaced create-first (a secret under its new name): the old one goes last, once
        # nothing uses it.
        while self.replaced:
            self._delete_other(self.replaced.pop())
        return plan

    def _apply_containers(
        self,
        containers: list[Resource],
        steps: Mapping[str, Step],
        limits: Mapping[str, Resource],
    ) -> None:
        """Each container as soon as every container it depends on is done, side by side where
        independent, as Pulumi's engine schedules its steps, and its PIDs limit (in `limits`, by
        container URN) right after it. On a failure, what runs finishes and nothing new
        starts, then the run fails (as `pulumi up` does)."""

        def apply(container: Resource, step: Step) -> None:
            if step.action != "same" and container.type == SERVICE:
                self._apply_service(container, step)
            elif step.action != "same":
                self._apply_container(container, step)
            limit = limits.get(container.urn)
            if limit is not None:
                self._apply_pids_limit(limit, steps[limit.urn])

        by_urn = {c.urn: c for c in containers}
        waiting, done = dict(by_urn), set[str]()
        running: dict[Future[None], str] = {}
        errors: list[BaseException] = []
        with ThreadPoolExecutor(max_workers=max(1, len(by_urn))) as pool:
            while (waiting and not errors) or running:
                ready = [] if errors else [c for c in waiting.values()
                                           if (c.depends_on & by_urn.keys()) <= done]  # fmt: skip
                for container in ready:
                    del waiting[container.urn]
                    step = steps[container.urn]
                    limit = limits.get(container.urn)
                    if step.action == "same" and (
                        limit is None or steps[limit.urn].action == "same"
                    ):
                        done.add(container.urn)
                        continue
                    self.log(f"{step.action} {container.inputs['name']}")
                    running[pool.submit(apply, container, step)] = container.urn
                if ready and not running:
                    continue  # only unchanged ones: look again
                if not running:
                    raise StandInError("the containers' dependencies form a cycle")
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    urn = running.pop(future)
                    if (err := future.exception()) is not None:
                        errors.append(err)
                    else:
                        done.add(urn)
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise StandInError("\n".join(str(err) for err in errors))

    def _apply_other(self, resource: Resource, step: Step) -> None:
        if step.action == "same":
            return
        if resource.type == SECRET:
            if step.action == "replace":  # create-first: the old one is still in use
                self.replaced.append(self.state[resource.urn])
            self._create_secret(resource)
            return
        if step.action == "replace" and resource.type in (NETWORK, VOLUME):
            raise StandInError(
                f"{resource.name}: the stand-in does not replace networks or volumes"
            )
        if step.action == "update" and resource.type in (NETWORK, VOLUME):
            raise StandInError(f"{resource.name}: networks and volumes have no in-place update")
        if resource.type == IMAGE:
            self._build_image(resource)
        elif step.action == "create" and resource.type == NETWORK:
            self._create_network(resource)
        elif step.action == "create" and resource.type == VOLUME:
            self._create_volume(resource)
        else:
            # Random values, the explicit provider: no engine object, only state.
            self.state[resource.urn] = Recorded(resource, dict(resource.inputs))
            if resource.type == RANDOM_ID:
                # A new random value, as the provider draws one: the mocks' stays the same, and
                # a rolling container's generation name must not.
                size = int(resource.inputs["byteLength"])
                self.real[mock_random_hex(resource.name, size)] = secrets.token_hex(size)

    def _apply_pids_limit(self, resource: Resource, step: Step) -> None:
        """The program's dynamic provider (components/pids_limit.py) does it: its own code."""
        if step.action == "same":
            return
        i = self.resolved(resource.inputs)
        self.log(f"{step.action} {resource.name} ({i[LIMIT]})")
        update_pids_limit(i[CONTAINER_ID], int(i[LIMIT]), i.get(DOCKER_HOST))
        self.state[resource.urn] = Recorded(resource, i, i[CONTAINER_ID])

    def resolved(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """The inputs with what the mocks made up (built image IDs, random values) replaced by
        the real values, wherever they appear (a generation is part of a container's name)."""
        resolved = _substituted(dict(inputs), self.real)
        assert isinstance(resolved, dict)
        return resolved

    def _apply_container(self, resource: Resource, step: Step) -> None:
        resource = replace(resource, inputs=self.resolved(resource.inputs))
        if step.action == "replace" and resource.ignore_changes:
            # The engine creates the replacement with the recorded values of ignored inputs.
            recorded = self.state[resource.urn].state
            kept = {k: recorded[k] for k in resource.ignore_changes if k in recorded}
            resource = replace(resource, inputs={**resource.inputs, **kept})
        if step.action == "create":
            self._create_container(resource)
        elif step.action == "replace" and step.delete_before_replace:
            self._delete_container(self.state[resource.urn])
            self._create_container(resource)
        elif step.action == "replace":
            old = self.state[resource.urn]
            self._create_container(resource)  # Docker refuses a second container of one name
            self._delete_container(old)
        else:
            self._update_container(resource)

    # ------------------------------------------------------------------------------------------
    # Networks and volumes

    def _create_network(self, resource: Resource) -> None:
        i = resource.inputs
        network = self.client.networks.create(
            i["name"], driver=i.get("driver", "bridge"), internal=bool(i.get("internal", False)),
            attachable=bool(i.get("attachable", False)), labels={**_labels(i), **self.labels},
        )  # fmt: skip
        inspect = self.client.api.inspect_network(network.id)
        state = read_network(inspect, i, self.labels)
        self.state[resource.urn] = Recorded(resource, state, network.id)
        self.real[mock_container_id(resource.name)] = network.id  # a service joins by ID

    def _create_secret(self, resource: Resource) -> None:
        i = self.resolved(resource.inputs)
        secret_id = swarm.create_secret(self.client, i, self.labels)
        # Read keeps only the name: the data is not readable back.
        self.state[resource.urn] = Recorded(resource, dict(i), secret_id)
        self.real[mock_container_id(resource.name)] = secret_id

    def _create_volume(self, resource: Resource) -> None:
        i = resource.inputs
        volume = self.client.volumes.create(name=i["name"], labels={**_labels(i), **self.labels})
        inspect = self.client.api.inspect_volume(volume.name)
        self.state[resource.urn] = Recorded(
            resource, read_volume(inspect, i, self.labels), i["name"]
        )

    def _build_image(self, resource: Resource) -> None:
        """pulumi-docker's `Image` with `skipPush`: a local build; the ID is its `repoDigest`.
        (Deleting one leaves the image on the host, as the provider does.)"""
        i = resource.inputs
        build = i["build"]
        self.log(f"build {i['imageName']} from {build['context']}")
        context = ROOT / build["context"]
        # The provider reads `dockerfile` from the project folder; docker's API, from the context.
        dockerfile = os.path.relpath(ROOT / build["dockerfile"], context) if build.get(
            "dockerfile") else "Dockerfile"  # fmt: skip
        stream = self.client.api.build(
            path=str(context), dockerfile=dockerfile,
            buildargs=build.get("args"), tag=i["imageName"], labels=self.labels,
            pull=False, rm=True, forcerm=True, decode=True,
        )  # fmt: skip
        errors = [chunk["error"] for chunk in stream if "error" in chunk]
        if errors:
            raise StandInError(f"{resource.name}: build failed: {errors[-1].strip()}")
        image_id = self.client.images.get(i["imageName"]).id
        self.real[mock_image_id(resource.name)] = image_id
        self.state[resource.urn] = Recorded(resource, dict(i), image_id)

    def _delete_other(self, recorded: Recorded) -> None:
        if recorded.resource.type == SECRET:
            self.client.api.remove_secret(recorded.docker_id)
        elif recorded.resource.type == NETWORK:
            self.client.networks.get(recorded.docker_id).remove()
        elif recorded.resource.type == VOLUME:
            self.client.volumes.get(recorded.docker_id).remove()

    # ------------------------------------------------------------------------------------------
    # Swarm services (standin_swarm.py)

    def tasks(self, name: str) -> list[Any]:
        """The running containers of service `name`'s tasks (one that stops meanwhile left
        out: the low-level listing inspects nothing)."""
        found = []
        label = f"com.docker.swarm.service.name={name}"
        for entry in self.client.api.containers(filters={"label": label, "status": "running"}):
            with contextlib.suppress(docker.errors.NotFound):
                found.append(self.client.containers.get(entry["Id"]))
        return found

    def _apply_service(self, resource: Resource, step: Step) -> None:
        resource = replace(resource, inputs=self.resolved(resource.inputs))
        if step.action == "create":
            self._create_service(resource)
        elif step.action == "replace":
            # The program asks for delete-first: a fixed name cannot exist twice.
            self._delete_workload(self.state[resource.urn])
            self._create_service(resource)
        else:
            self._update_service(resource)

    def _create_service(self, resource: Resource) -> None:
        i = resource.inputs
        spec = swarm.service_spec(i, self.labels)
        created = self.client.api.create_service(**_service_kwargs(spec))
        service_id = created["ID"]
        converge = i.get("convergeConfig")
        if converge is not None:
            delay = nanoseconds(converge.get("delay", "7s")) / 1e9
            timeout = nanoseconds(converge.get("timeout", "3m")) / 1e9
            if not swarm.wait_created(self.client, service_id, delay, timeout):
                # The provider deletes a service that did not converge; nothing is recorded.
                # (The tasks' errors are the stand-in's addition, for whoever reads the test.)
                why = swarm.task_errors(self.client, service_id)
                swarm.delete_service(self.client, service_id, _grace(i))
                raise StandInError(
                    f"{i['name']}: Service with ID ({service_id}) did not converge after "
                    f"{converge.get('timeout', '3m')}; tasks: {why}"
                )
        inspect = self.client.api.inspect_service(service_id)
        self.state[resource.urn] = Recorded(
            resource, swarm.read_service(inspect, i, self.labels), service_id
        )

    def _update_service(self, resource: Resource) -> None:
        """`ServiceUpdate` with the whole spec; Docker rolls the tasks by `update_config`."""
        recorded = self.state[resource.urn]
        i = resource.inputs
        version = self.client.api.inspect_service(recorded.docker_id)["Version"]["Index"]
        spec = swarm.service_spec(i, self.labels)
        self.client.api.update_service(
            recorded.docker_id, version, **_service_kwargs(spec), fetch_current_spec=False
        )
        converge = i.get("convergeConfig")
        if converge is not None:
            try:
                swarm.wait_updated(
                    self.client,
                    recorded.docker_id,
                    nanoseconds(converge.get("timeout", "3m")) / 1e9,
                )
            except swarm.ServiceError as err:
                # The SDK hands back the planned values with the error: the state holds the
                # new inputs, though Docker may have rolled the service back.
                recorded.resource, recorded.state = resource, dict(i)
                recorded.init_errors = [str(err)]
                raise StandInError(f"{i['name']}: {err}") from None
        inspect = self.client.api.inspect_service(recorded.docker_id)
        recorded.resource, recorded.init_errors = resource, []
        recorded.state = swarm.read_service(inspect, i, self.labels)

    def _delete_workload(self, recorded: Recorded) -> None:
        if recorded.resource.type == SERVICE:
            swarm.delete_service(self.client, recorded.docker_id, _grace(recorded.state))
        else:
            self._delete_container(recorded)

    # ------------------------------------------------------------------------------------------
    # Containers

    def _create_container(self, resource: Resource) -> None:
        i = resource.inputs
        unknown = set(i) - KNOWN_CONTAINER_INPUTS
        if unknown:
            raise StandInError(
                f"{resource.name}: inputs the stand-in does not handle: {sorted(unknown)}"
            )
        api = self.client.api
        name = i["name"]
        timing = self.timings[name] = Timing(requested=time.time())
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
            # The provider always sends a restart policy and init: its defaults are "no", false.
            restart_policy={"Name": i.get("restart", "no"), "MaximumRetryCount": 0},
            init=False,
            log_config=docker.types.LogConfig(type=i["logDriver"], config=i.get("logOpts", {}))
            if "logDriver" in i
            else None,
            port_bindings=_port_bindings(name, i.get("ports", [])),
            # The provider always sends one: its default is "bridge".
            network_mode=i.get("networkMode", "bridge"),
        )
        created = api.create_container(
            image=i["image"],
            name=name,
            command=i.get("command"),
            environment=i.get("envs"),
            user=i.get("user"),
            labels={**_labels(i), **self.labels},
            host_config=host_config,
            healthcheck=_healthcheck(i.get("healthcheck")),
            ports=[p["internal"] for p in i.get("ports", [])] or None,
            stop_timeout=i.get("stopTimeout"),
        )
        # Recorded from here on: a create that fails once the container exists returns its id
        # with the error, and the bridge hands Pulumi an initialisation error with the state
        # as the provider had it, the inputs sent (its Read comes only after a success).
        recorded = self.state[resource.urn] = Recorded(resource, dict(i), created["Id"])
        # The mocks' ID of the container (what a PIDs limit is given) is this one from now on.
        self.real[mock_container_id(resource.name)] = created["Id"]
        container = self.client.containers.get(created["Id"])
        self.containers[name] = container
        try:
            self._finish_create(container, i, timing)
        except Exception as err:
            recorded.init_errors.append(str(err))
            raise
        recorded.state = read_container(api.inspect_container(created["Id"]), i)

    def _finish_create(self, container: Any, i: Mapping[str, Any], timing: Timing) -> None:
        api = self.client.api
        if i.get("networksAdvanced"):
            # As the provider: leave Docker's default bridge, then join each network.
            try:
                api.disconnect_container_from_network(container.id, "bridge")
            except docker.errors.APIError as err:
                if "is not connected to the network bridge" not in str(err):
                    raise
            for net in i["networksAdvanced"]:
                api.connect_container_to_network(container.id, net["name"],
                                                 aliases=net.get("aliases"))  # fmt: skip
        # The provider copies each upload as its own tar into `/` of the created container.
        for upload in i.get("uploads", []):
            if not api.put_archive(container.id, "/", _upload_tar(upload)):
                raise StandInError(f"{i['name']}: Docker refused the upload of {upload['file']}")
        timing.created = time.time()
        if i.get("start", True) is False:
            return
        container.start()
        timing.started = time.time()
        if i.get("wait"):
            _wait_healthy(container, int(i.get("waitTimeout", 60)))
            timing.healthy = time.time()

    def _update_container(self, resource: Resource) -> None:
        """The provider's update: resources and restart policy in place, a stopped container
        started; everything else only recorded. It reads nothing back."""
        recorded = self.state[resource.urn]
        old, new = recorded.state, resource.inputs
        if any(old.get(k) != new.get(k) for k in UPDATED_IN_PLACE):
            self.client.api.update_container(
                recorded.docker_id,
                mem_limit=_megabytes(new.get("memory")) or 0,
                memswap_limit=_megabytes(new.get("memorySwap")) or 0,
                restart_policy={"Name": new.get("restart", "no")},
            )
        if old.get("mustRun") is False and new.get("mustRun", True) and new.get("start", True):
            self.client.api.start(recorded.docker_id)
        recorded.state = {**old, **new}
        recorded.resource = resource
        recorded.init_errors = []

    def delete(self, urn: str, *, grace_seconds: int | None = None) -> None:
        """Delete one container as the provider does (for tests of the stop path);
        `grace_seconds` stands for what an older state recorded instead."""
        recorded = self.state.pop(urn)
        if grace_seconds is not None:
            recorded.state = {**recorded.state, "destroyGraceSeconds": grace_seconds}
        self._delete_container(recorded)

    def _delete_container(self, recorded: Recorded) -> None:
        """resourceDockerContainerDelete: stop with the grace as timeout (0, SIGKILL at once,
        when unset), remove with anonymous volumes, wait until it no longer runs."""
        api = self.client.api
        grace = int(recorded.state.get("destroyGraceSeconds") or 0)
        self.log(f"stopping {recorded.state['name']} (grace {grace} s)")
        try:
            api.stop(recorded.docker_id, timeout=grace)
            api.remove_container(
                recorded.docker_id, v=recorded.state.get("removeVolumes", True), force=True
            )
        except docker.errors.NotFound:
            pass
        self.containers.pop(recorded.state["name"], None)


def apply(
    graph: Graph,
    client: docker.DockerClient,
    labels: Mapping[str, str],
    log: Callable[[str], None] = lambda _line: None,
) -> Deployment:
    """A first `pulumi up` of `graph`: create everything; return when all is up."""
    deployment = Deployment(client, labels, log)
    deployment.up(graph)
    return deployment


def _service_kwargs(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Docker's service spec as docker-py's create_service / update_service take it."""
    return {
        "task_template": spec["TaskTemplate"], "name": spec["Name"], "labels": spec["Labels"],
        "mode": spec["Mode"], "update_config": spec.get("UpdateConfig"),
        "rollback_config": spec.get("RollbackConfig"), "endpoint_spec": spec.get("EndpointSpec"),
    }  # fmt: skip


def _grace(inputs: Mapping[str, Any]) -> str:
    return str(inputs.get("taskSpec", {}).get("containerSpec", {}).get("stopGracePeriod") or "0s")


def _labels(inputs: Mapping[str, Any]) -> dict[str, str]:
    return {entry["label"]: entry["value"] for entry in inputs.get("labels", [])}


def _substituted(value: Any, real: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        for made_up, actual in real.items():
            value = value.replace(made_up, actual)
        return value
    if isinstance(value, dict):
        return {k: _substituted(v, real) for k, v in value.items()}
    if isinstance(value, list):
        return [_substituted(v, real) for v in value]
    return value


def _bind(volume: Mapping[str, Any]) -> str:
    mode = "ro" if volume.get("readOnly") else "rw"
    return f"{volume['volumeName']}:{volume['containerPath']}:{mode}"


def _megabytes(value: Any) -> int | None:
    return None if value is None else int(value) * MIB


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
