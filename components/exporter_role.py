"""The PostgreSQL exporter's login: a role with `pg_monitor` and nothing else, on every server.

The role is made by a script among the server's secret files (its password beside it, read
inside psql, so it is never on a command line). The image's entrypoint runs it when it
initialises an empty volume. A server whose volume was initialised before monitoring was on
(or before its password changed) never runs init scripts again: on one Docker host a small
dynamic resource runs the same script in the running server through the Engine API's exec
(as `docker exec -u postgres`), after every new container, over the local socket where the
image trusts `postgres`. The script is idempotent: it creates the role when missing and sets
its password and grants every time.

What the role can do: log in to the `postgres` maintenance database (the service databases
grant no CONNECT to PUBLIC: their role script revokes it), read the statistics views and
settings (`pg_monitor`), at most 3 sessions at once. It owns nothing and reads no table.

Pulumi keeps the provider in the state as a reference to this module's class: the module must
keep its name and place (as components/pids_limit.py).
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult

from components.pids_limit import DockerApiError, engine_api

EXPORTER_USER = "exporter"
PASSWORD_FILE = "exporter-password"
SCRIPT_FILE = "create-exporter-role.sh"
MAINTENANCE_DATABASE = "postgres"
CONNECTION_LIMIT = 3

CONTAINER_ID = "containerId"
COMMAND = "command"
DOCKER_HOST = "dockerHost"


def role_script(password_path: str) -> str:
    psql = 'psql -v ON_ERROR_STOP=1 --no-psqlrc --no-password --username "$POSTGRES_USER"'
    # Constants only, nothing from outside: the password is read by psql from its file.
    return f"""# The exporter's role (components/exporter_role.py): sourced by the postgres
# entrypoint when it initialises an empty data dir, and run again by deploys; idempotent.
{psql} --dbname {MAINTENANCE_DATABASE} <<'SQL'
\\set exporter_password `cat {password_path}`
SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{EXPORTER_USER}') AS missing \\gset
\\if :missing
CREATE ROLE {EXPORTER_USER};
\\endif
ALTER ROLE {EXPORTER_USER} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION
  NOBYPASSRLS CONNECTION LIMIT {CONNECTION_LIMIT} PASSWORD :'exporter_password';
GRANT pg_monitor TO {EXPORTER_USER};
SQL
"""  # noqa: S608


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
        script_path: str,
        docker_host: str | None,
        opts: pulumi.ResourceOptions,
    ) -> None:
        props: dict[str, Any] = {
            CONTAINER_ID: container.id,
            COMMAND: ["sh", script_path],
        }
        if docker_host is not None:
            props[DOCKER_HOST] = docker_host
        super().__init__(ExporterRoleProvider(), name, props, opts)
