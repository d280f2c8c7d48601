"""A new container takes traffic only once it is healthy: its aliases are given by this gate.

A side-by-side app (components/engine/rolling.py) is created beside the one it replaces, joined
to its networks under its own name only, which nobody calls. Docker answers for a network alias from
the moment a container holds it, healthy or not, so a container created with its service's alias
would take requests while it starts, and keep taking them if it never turns healthy. This Pulumi
dynamic resource, created right after the container, waits for Docker's health check to pass
(within the stack's `waitTimeoutSeconds`), then reconnects the container to each network with
the service's alias: from then on callers resolve it beside the old container, which the engine
stops once the run is done. A container that does not turn healthy never gets the alias: the
deploy fails naming it and how to read its logs, the old container goes on serving, and the next
`pulumi up` (with a fix, or the previous image) replaces it.

Docker cannot add an alias to an endpoint, so each network the app serves on is left and joined
again (the new container serves no one on it yet). The networks it calls out on (its database's,
the gateway's to the business services) are never left: a request that reached it while it
rejoined one would find its upstreams gone (the first version of this gate did that to the
gateway, and the test under load saw three 502s). The provider's Read does not read a
container's networks when the program gives them, so the alias given here is no drift.

Like the PIDs limit (components/dynamic/pids_limit.py), Pulumi keeps this provider in the state
as a reference to this module's class: the module keeps its name and place (states written
before it moved here name components/traffic_gate.py, a re-export).
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult

from components.dynamic.engine_api import DockerApiError, engine_api

CONTAINER_ID = "containerId"
CONTAINER_NAME = "containerName"
NETWORKS = "networks"
"""[{"name": network, "aliases": [alias, ...]}, ...]"""
WAIT_SECONDS = "waitSeconds"
DOCKER_HOST = "dockerHost"
POLL_SECONDS = 1.0
SETTLE_SECONDS = 10.0
"""How long the gate holds, once the alias is given, before the deploy goes on (and stops the
old container at its end): callers that still reach for the new container's address through a
stale neighbour entry (Docker hands a new endpoint an address a removed container had just
freed, and Linux keeps sending to the old MAC for about 5 s) time out on it and fall back to
the old container meanwhile. Without it, the test under load saw a request fail."""


class TrafficGateError(DockerApiError):
    """The container did not turn healthy (or could not be joined); the message says which
    container, why, and how to read its logs."""


def open_gate(props: dict[str, Any]) -> None:
    """Wait for the container's health, then join each network again with its aliases."""
    import time

    container, name = str(props[CONTAINER_ID]), str(props[CONTAINER_NAME])
    api = engine_api(props.get(DOCKER_HOST), f"traffic gate of {name}", TrafficGateError)
    wait = int(props[WAIT_SECONDS])
    deadline = time.monotonic() + wait
    while True:
        state = api("GET", f"/containers/{container}/json")["State"]
        health = (state.get("Health") or {}).get("Status")
        if health == "healthy":
            break
        if state.get("Status") in ("exited", "dead") or time.monotonic() > deadline:
            said = _last_check((state.get("Health") or {}).get("Log") or [])
            how = (
                f"exited with code {state.get('ExitCode')}"
                if state.get("Status") in ("exited", "dead")
                else f"not healthy after {wait} s (status {health})"
            )
            raise TrafficGateError(
                f"container {name} {how}; {said}. It takes no "
                f"traffic: the one it replaces goes on serving. Its logs: `docker logs {name}`. "
                "Fix the release (or deploy the previous image) and run `pulumi up` again."
            )
        time.sleep(POLL_SECONDS)
    for network in props[NETWORKS]:
        path = f"/networks/{network['name']}"
        api("POST", f"{path}/disconnect", {"Container": container, "Force": False})
        endpoint = {"Aliases": list(network["aliases"])}
        api("POST", f"{path}/connect", {"Container": container, "EndpointConfig": endpoint})
    time.sleep(SETTLE_SECONDS)


def _last_check(log: list[dict[str, Any]]) -> str:
    """What Docker's last health check of the container said, for the error."""
    if not log:
        return "no health check result yet"
    output = str(log[-1].get("Output") or "").strip()[-300:]
    said = f"last health check: exit code {log[-1].get('ExitCode')}"
    return f"{said}, {output!r}" if output else f"{said}, no output"


class TrafficGateProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        open_gate(props)
        return CreateResult(id_=str(props[CONTAINER_ID]), outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        # A new container is a new gate; new aliases join the same container again. The wait
        # and the serialized provider (`__provider`) change nothing on the engine.
        changed = [k for k in (CONTAINER_ID, NETWORKS, DOCKER_HOST) if olds.get(k) != news.get(k)]
        replaces = [CONTAINER_ID] if CONTAINER_ID in changed else []
        return DiffResult(changes=bool(changed), replaces=replaces, delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        open_gate(news)
        return UpdateResult(outs=news)

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing to undo: the aliases go with the container."""


class TrafficGate(pulumi.dynamic.Resource, module="ecommerce", name="TrafficGate"):
    """The aliases of one container, given once it is healthy (type
    `pulumi-python:dynamic/ecommerce:TrafficGate`)."""

    def __init__(
        self,
        name: str,
        container: pulumi.CustomResource,
        container_name: pulumi.Input[str],
        networks: list[dict[str, Any]],
        wait_seconds: int,
        docker_host: str | None,
        opts: pulumi.ResourceOptions,
    ) -> None:
        props: dict[str, Any] = {
            CONTAINER_ID: container.id,
            CONTAINER_NAME: container_name,
            NETWORKS: networks,
            WAIT_SECONDS: wait_seconds,
        }
        if docker_host is not None:
            props[DOCKER_HOST] = docker_host
        super().__init__(TrafficGateProvider(), name, props, opts)
