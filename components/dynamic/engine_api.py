"""The Docker Engine API as the program's dynamic resources call it (components/dynamic/): the
PIDs limit, the traffic gate and the exporter's role each send Docker what the provider has no
input for. Standard library only.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

DEFAULT_HOST = "unix:///var/run/docker.sock"


class DockerApiError(Exception):
    """A call of the Docker Engine API failed; the message names what was being done."""


def engine_api(
    docker_host: str | None,
    what: str,
    error: type[DockerApiError] = DockerApiError,
    timeout: float = 60,
) -> Callable[..., Any]:
    """`call(method, path, body=None, raw=False)` on the Engine API of `docker_host`, else
    `DOCKER_HOST`, else the local socket: the answer's JSON (None when empty). Every failure
    raises `error` with a message that starts with `what`; `timeout`: of each socket call."""
    host = docker_host or os.environ.get("DOCKER_HOST") or DEFAULT_HOST
    where = urlsplit(host)
    if where.scheme not in ("unix", "tcp") or (where.scheme == "tcp" and not where.hostname):
        raise error(
            f"{what}: Docker host {host!r} is not supported; "
            "use unix:// or tcp:// in docker:host or DOCKER_HOST"
        )

    def call(method: str, path: str, body: Any = None, raw: bool = False) -> Any:
        """`raw`: the answer's bytes as they came (an exec's multiplexed output)."""
        connection = _connection(where, timeout)
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


def _connection(where: SplitResult, timeout: float) -> http.client.HTTPConnection:
    """A connection to the engine at `where` (`unix://` or `tcp://`, TLS from the environment
    as the Docker CLI reads it)."""
    if where.scheme == "unix":
        socket_path = where.path

        class UnixConnection(http.client.HTTPConnection):
            def connect(self) -> None:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.settimeout(self.timeout)
                self.sock.connect(socket_path)

        return UnixConnection("localhost", timeout=timeout)
    assert where.hostname is not None
    certs = os.environ.get("DOCKER_CERT_PATH", "")
    if os.environ.get("DOCKER_TLS_VERIFY") or certs:
        folder = Path(certs) if certs else Path.home() / ".docker"  # as the Docker CLI
        context = ssl.create_default_context(cafile=folder / "ca.pem")
        context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
        return http.client.HTTPSConnection(
            where.hostname, where.port or 2376, context=context, timeout=timeout
        )
    return http.client.HTTPConnection(where.hostname, where.port or 2375, timeout=timeout)
