"""The exporter's role in a running server: runs the role script (components/parts/
exporter_login.py) through the Engine API's exec (as `docker exec -u postgres`), after every new
server container on one Docker host, over the local socket where the image trusts `postgres`.

Pulumi keeps the provider in the state as a reference to this module's class: the module must
keep its name and place (states written before it moved here name components/exporter_role.py,
a re-export).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult

from components.dynamic.engine_api import DockerApiError, engine_api

CONTAINER_ID = "containerId"
COMMAND = "command"
DOCKER_HOST = "dockerHost"


class ExporterRoleError(DockerApiError):
    """The role script failed in the server; the message names the container and the cause."""


def run_script(props: dict[str, Any]) -> None:
    """Run the role script in the container, as `postgres`; raise with its output on failure."""
    container = str(props[CONTAINER_ID])
    what = f"exporter role in container {container[:12]}"
    api = engine_api(props.get(DOCKER_HOST), what, ExporterRoleError)
    created = api(
        "POST",
        f"/containers/{container}/exec",
        {
            "Cmd": list(props[COMMAND]),
            "User": "postgres",
            "AttachStdout": True,
            "AttachStderr": True,
        },
    )
    exec_id = created["Id"]
    output = _demultiplex(api("POST", f"/exec/{exec_id}/start", {"Detach": False}, raw=True))
    code = (api("GET", f"/exec/{exec_id}/json") or {}).get("ExitCode")
    if code != 0:
        last = output.strip().splitlines()[-1] if output.strip() else "no output"
        raise ExporterRoleError(
            f"{what}: the role script exited with {code}: {last}; the exporter cannot log in "
            "until it passes (fix the cause and run the deploy again)"
        )


def _demultiplex(stream: bytes) -> str:
    """stdout and stderr of an exec without a TTY: frames of an 8-byte header (stream, 0, 0,
    0, big-endian size) and the bytes."""
    text, at = [], 0
    while at + 8 <= len(stream):
        size = int.from_bytes(stream[at + 4 : at + 8], "big")
        text.append(stream[at + 8 : at + 8 + size].decode(errors="replace"))
        at += 8 + size
    return "".join(text)


class ExporterRoleProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        run_script(props)
        return CreateResult(id_=str(props[CONTAINER_ID]), outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        keys = (CONTAINER_ID, COMMAND, DOCKER_HOST)
        changed = [k for k in keys if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(changed), replaces=[], delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        run_script(news)
        return UpdateResult(outs=news)

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing to undo: the role stays with the data (a later deploy sets it again)."""


class ExporterRole(pulumi.dynamic.Resource, module="ecommerce", name="ExporterRole"):
    """The exporter's role in one running server (type
    `pulumi-python:dynamic/ecommerce:ExporterRole`), run again for every new container (a new
    password is a new container: the server carries its secret files' revision)."""

    def __init__(
        self,
        name: str,
        container: pulumi.CustomResource,
        command: Sequence[str],
        docker_host: str | None,
        opts: pulumi.ResourceOptions,
    ) -> None:
        props: dict[str, Any] = {CONTAINER_ID: container.id, COMMAND: list(command)}
        if docker_host is not None:
            props[DOCKER_HOST] = docker_host
        super().__init__(ExporterRoleProvider(), name, props, opts)
