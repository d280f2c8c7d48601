"""A PIDs limit on a running container: the one runtime limit pulumi-docker cannot set.

pulumi-docker 5.2.0's container (kreuzwerker/docker v4.5.0) has no `pids_limit` input. Docker
applies one to a running container through its Engine API's container update
(`POST /containers/{id}/update` with `{"PidsLimit": n}`, what `docker update --pids-limit`
sends) and keeps it in the container's host config, so restarts keep it. A Pulumi dynamic
resource sends it right after the container is created, keyed by the container's ID: a replaced
container gets a new one (and the limit again); an edited limit is updated in place; deleting it
does nothing (the container's removal takes its limit along). The provider never reads the
limit back, so it never sees a difference to undo.

The window: between the container's start and this update (its health wait, at deploy time
only) it runs without the limit.

Pulumi keeps the provider in the state as a reference to this module's class (dill pickles an
importable class by reference), and its dynamic-provider host imports it again for every diff,
update and delete: the module must keep its name and place, and be importable from the
program's virtualenv (`make install` installs the project into it). States written before it
moved here name `components.pids_limit`, which stays as a re-export (components/pids_limit.py).

It reaches the Docker host the stack's `docker:host` names, else `DOCKER_HOST`, else the local
socket: `unix://` and `tcp://` (TLS with `DOCKER_TLS_VERIFY`/`DOCKER_CERT_PATH`, as the Docker
CLI reads them; engine_api.py); the settings refuse what it cannot follow.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult

from components.dynamic.engine_api import DockerApiError, engine_api

CONTAINER_ID = "containerId"
LIMIT = "pidsLimit"
DOCKER_HOST = "dockerHost"


class PidsLimitError(DockerApiError):
    """The limit could not be set; the message names the container and the cause."""


def update_pids_limit(container_id: str, limit: int, docker_host: str | None) -> None:
    """Set the container's PIDs limit through the Engine API of `docker_host`."""
    what = f"PIDs limit of container {container_id}"
    api = engine_api(docker_host, what, PidsLimitError)
    answer = api("POST", f"/containers/{container_id}/update", {"PidsLimit": limit}) or {}
    warnings = answer.get("Warnings") or []
    if any("pids" in str(w).lower() for w in warnings):  # e.g. no pids cgroup in the kernel
        raise PidsLimitError(f"{what}: {'; '.join(warnings)}")


class PidsLimitProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        update_pids_limit(props[CONTAINER_ID], int(props[LIMIT]), props.get(DOCKER_HOST))
        return CreateResult(id_=str(props[CONTAINER_ID]), outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        # The serialized provider itself (`__provider`) is no reason to touch the container.
        changed = [k for k in (CONTAINER_ID, LIMIT, DOCKER_HOST) if olds.get(k) != news.get(k)]
        replaces = [CONTAINER_ID] if CONTAINER_ID in changed else []
        return DiffResult(changes=bool(changed), replaces=replaces, delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        update_pids_limit(news[CONTAINER_ID], int(news[LIMIT]), news.get(DOCKER_HOST))
        return UpdateResult(outs=news)

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing to undo: the limit goes with the container."""


class PidsLimit(pulumi.dynamic.Resource, module="ecommerce", name="PidsLimit"):
    """The PIDs limit of one container (type `pulumi-python:dynamic/ecommerce:PidsLimit`)."""

    def __init__(
        self,
        name: str,
        container: pulumi.CustomResource,
        limit: int,
        docker_host: str | None,
        opts: pulumi.ResourceOptions,
    ) -> None:
        props: dict[str, Any] = {CONTAINER_ID: container.id, LIMIT: limit}
        if docker_host is not None:
            props[DOCKER_HOST] = docker_host
        super().__init__(PidsLimitProvider(), name, props, opts)
