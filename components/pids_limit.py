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
program's virtualenv (`make install` installs the project into it). It reaches the Docker host
the stack's `docker:host` names, else `DOCKER_HOST`, else the local socket: `unix://` and
`tcp://` (TLS with `DOCKER_TLS_VERIFY`/`DOCKER_CERT_PATH`, as the Docker CLI reads them); the
settings refuse what it cannot follow (stacks/loader.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult

DEFAULT_HOST = "unix:///var/run/docker.sock"
CONTAINER_ID = "containerId"
LIMIT = "pidsLimit"
DOCKER_HOST = "dockerHost"


class DockerApiError(Exception):
    """A call of the Docker Engine API failed; the message names what was being done."""


class PidsLimitError(DockerApiError):
    """The limit could not be set; the message names the container and the cause."""


def engine_api(
    docker_host: str | None, what: str, error: type[DockerApiError] = DockerApiError
) -> Callable[..., Any]:
    """`call(method, path, body=None, raw=False)` on the Engine API of `docker_host`, else
    `DOCKER_HOST`, else the local socket: the answer's JSON (None when empty). Every failure
    raises `error` with a message that starts with `what`."""
    import http.client
    import json
    import os
    import socket
    import ssl
    from pathlib import Path
    from urllib.parse import urlsplit

    host = docker_host or os.environ.get("DOCKER_HOST") or DEFAULT_HOST
    where = urlsplit(host)
    if where.scheme not in ("unix", "tcp") or (where.scheme == "tcp" and not where.hostname):
        raise error(
            f"{what}: Docker host {host!r} is not supported; "
            "use unix:// or tcp:// in docker:host or DOCKER_HOST"
        )

    def connect() -> http.client.HTTPConnection:
        if where.scheme == "unix":
            socket_path = where.path

            class UnixConnection(http.client.HTTPConnection):
                def connect(self) -> None:
                    self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    self.sock.settimeout(self.timeout)
                    self.sock.connect(socket_path)

            return UnixConnection("localhost", timeout=60)
        assert where.hostname is not None
        certs = os.environ.get("DOCKER_CERT_PATH", "")
        if os.environ.get("DOCKER_TLS_VERIFY") or certs:
            folder = Path(certs) if certs else Path.home() / ".docker"  # as the Docker CLI
            context = ssl.create_default_context(cafile=folder / "ca.pem")
            context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
            return http.client.HTTPSConnection(
                where.hostname, where.port or 2376, context=context, timeout=60
            )
        return http.client.HTTPConnection(where.hostname, where.port or 2375, timeout=60)

    def call(method: str, path: str, body: Any = None, raw: bool = False) -> Any:
        """`raw`: the answer's bytes as they came (an exec's multiplexed output)."""
        connection = connect()
        try:
            connection.request(
                method,
                path,
                None if body is None else json.dumps(body),
                {"Content-Type": "application/json"},
            )
            answer = connection.getresponse()
            content = answer.read()
        except OSError as err:
            raise error(f"{what}: {host}: {err}") from None
        finally:
            connection.close()
        text = content.decode(errors="replace")
        if answer.status >= 300:
            raise error(f"{what}: Docker answered {answer.status}: {text.strip()}")
        if raw:
            return content
        return json.loads(text) if text.strip() else None

    return call


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
