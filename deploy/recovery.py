"""The recovery of a lost Docker host: the stack back on a new host, every database restored from
the repositories that outlived the old one (the off-host repository, docs/operations.md).

The stack's state (kept off the lost host: the generated passwords, the repository's passphrase,
the certificates) says what to bring back; the operator has pointed the stack at the new host
(`docker:host`, `pitr.offHost.databasesAddress`). Then, in order:

1. A refresh, with the program run so the providers reach the new host: the state forgets the
   containers, volumes, networks and images that went with the old one.
2. A preview names the database servers the stack would create there: containers labelled as
   databases. A server still running on the host refuses the recovery: that host is not lost.
   (One that a failed recovery left refusing to start is made again.)
3. An `up` of everything but those servers and what depends on them: the images, the volumes,
   the configuration files, the networks and the repository's side are in place.
4. Each server's data volume, still empty, gets a recovery request: the restore target
   (pitr/layout.py RECOVERY_REQUEST); a volume that holds a database already is refused. Then
   the server's start guard (pitr/guard.py) runs on it in a one-off container with the
   server's image, volumes and networks: it restores the server from the repository with the
   newest backup, taking what time that needs, and removes the request once done.
5. The whole `up`: the servers start on their restored data, replay the archive up to the
   target and turn healthy; the apps follow, as in any `up`.
6. Each restored server: out of recovery, a checkpoint (as `python -m pitr restore` does), its
   agent's first check passed (repo1's stanza made again, a WAL segment of the new timeline
   archived), then the drill's checks (amcheck, rows per table).

The restores run in containers of the servers' own because only those reach the off-host
repository, with their own certificates; this side drives the engine and the Docker CLI only.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pulumi import automation as auto

from pitr import layout
from pitr.docker_host import ROLE_LABEL
from pitr.errors import last_line
from pitr.pgbackrest import RestoreTarget

CONTAINER_TYPE = "docker:index/container:Container"
SERVICE_TYPE = "docker:index/service:Service"
STANZA_ENV = "PITR_STANZA="
"""A server with PITR names its stanza to its start guard (components/parts/database.py)."""
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
"""How the engine shows a value a preview cannot know yet."""
READY_TIMEOUT_S = 3600
"""A server replays WAL up to the target before it takes writes; a long archive takes time."""
AGENT_CHECK_TIMEOUT_S = 600
"""The agent's first check: a stanza made and a WAL segment archived, seconds when all is well."""

Say = Callable[[str], None]


class RecoveryError(Exception):
    """The recovery cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class DatabaseServer:
    """A database server the stack creates, as a preview shows it."""

    urn: str
    name: str
    """Its container's name."""
    stanza: str | None
    """Its PITR stanza (None: it runs without PITR)."""
    image: str | None
    data_volume: str | None
    """The volume on its data directory's mount (None: not known before the volumes exist)."""
    mounts: tuple[str, ...] = ()
    """Its volumes as `docker run -v` takes them (`name:path[:ro]`)."""
    networks: tuple[str, ...] = ()


@dataclass
class Docker:
    """The `docker` CLI, on the stack's Docker host."""

    host: str

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["docker", "--host", self.host, *args], capture_output=True,
                              text=True, errors="replace", check=False)  # fmt: skip

    def check(self, *args: str) -> str:
        done = self.run(*args)
        if done.returncode != 0:
            raise RecoveryError(f"docker {args[0]} on {self.host}: {last_line(done.stderr)}")
        return done.stdout


@dataclass(frozen=True)
class Recovered:
    server: str
    checks: str
    """What the drill's checks found in it, a line per database."""


def recover(
    stack: auto.Stack,
    docker: Docker,
    target: RestoreTarget,
    say: Say,
    engine_options: Mapping[str, Any] | None = None,
) -> list[Recovered]:
    """Bring the stack back on the host `docker` reaches (the steps: the module's docstring).
    `engine_options`: more keyword arguments of every preview and up (the policy packs)."""
    options = dict(engine_options or {})
    if on_a_swarm(resources_of(stack.export_stack().deployment)):
        raise RecoveryError(
            "the stack's databases are swarm services: a lost node is recovered by "
            "deploy/swarm_recovery.py (`make recover` chooses it)"
        )
    answered = docker.run("version", "--format", "{{.Server.Version}}")
    if answered.returncode != 0:
        raise RecoveryError(
            f"the stack's Docker host {docker.host} does not answer "
            f"({last_line(answered.stderr)}): point docker:host at the new host, then retry"
        )
    say(f"recovery: 1/6 refresh: the state forgets what the lost host ran ({docker.host})")
    stack.refresh(run_program=True, on_output=say)
    recorded = database_servers(resources_of(stack.export_stack().deployment))
    still = [s.name for s in recorded if _serving(docker, s.name)]
    if still:
        raise RecoveryError(
            f"{', '.join(still)} still run on {docker.host}: that host is not lost; restore a "
            "database in place with `python -m pitr restore` (docs/pitr.md)"
        )
    say("recovery: 2/6 the database servers to bring back")
    servers = _planned(stack, options, say)
    say(f"recovery: 3/6 up without {', '.join(s.name for s in servers)} and what needs them")
    stack.up(exclude=[s.urn for s in servers], exclude_dependents=True, on_output=say, **options)
    # Again, now that its volumes, networks and image exist: their names are known.
    servers = _planned(stack, options, say)
    for server in servers:
        say(f"recovery: 4/6 {server.name}: restore to {target.text()} from its repositories")
        request_restore(docker, server, target)
        restore(docker, server)
    say("recovery: 5/6 up: the servers replay the archive, then everything starts")
    stack.up(on_output=say, **options)
    recovered = []
    for server in servers:
        say(f"recovery: 6/6 {server.name}: out of recovery, archiving, checked")
        recovered.append(Recovered(server.name, settle(docker, server)))
    return recovered


def database_servers(resources: Iterable[Mapping[str, Any]]) -> list[DatabaseServer]:
    """The database servers among resources as the engine shows them (`type`, `urn`,
    `inputs`): containers labelled with the database role."""
    found = []
    for resource in resources:
        inputs = resource.get("inputs") or {}
        if resource.get("type") != CONTAINER_TYPE or role_of(inputs) != "database":
            continue
        stanzas = [
            e[len(STANZA_ENV) :] for e in inputs.get("envs") or [] if e.startswith(STANZA_ENV)
        ]
        mounted = inputs.get("volumes") or []
        volumes = {v.get("containerPath"): v.get("volumeName") for v in mounted}
        networks = [n.get("name") for n in inputs.get("networksAdvanced") or []]
        found.append(
            DatabaseServer(
                urn=str(resource["urn"]),
                name=str(inputs.get("name")),
                stanza=stanzas[0] if stanzas else None,
                image=_known(inputs.get("image")),
                data_volume=_known(volumes.get(str(layout.DATA_MOUNT))),
                mounts=tuple(
                    f"{v.get('volumeName')}:{v.get('containerPath')}"
                    + (":ro" if v.get("readOnly") else "")
                    for v in mounted
                ),
                networks=tuple(str(n) for n in networks),
            )
        )
    return found


_MADE = (auto.OpType.CREATE, auto.OpType.REPLACE, auto.OpType.CREATE_REPLACEMENT)
"""A server made new: created on the new host, or one a failed recovery left refusing to start
(recorded with an initialisation error, so the next `up` replaces it)."""


def on_a_swarm(resources: Iterable[Mapping[str, Any]]) -> bool:
    return any(
        r.get("type") == SERVICE_TYPE and role_of(r.get("inputs") or {}) == "database"
        for r in resources
    )


def role_of(inputs: Mapping[str, Any]) -> str | None:
    labels = {item.get("label"): item.get("value") for item in inputs.get("labels") or []}
    return labels.get(ROLE_LABEL)


def _serving(docker: Docker, container: str) -> bool:
    """Whether the container runs on the host (a server refusing to start restarts instead)."""
    state = docker.run("inspect", "-f", "{{.State.Running}} {{.State.Restarting}}", container)
    return state.returncode == 0 and state.stdout.strip() == "true false"


def _planned(stack: auto.Stack, options: Mapping[str, Any], say: Say) -> list[DatabaseServer]:
    """The database servers the stack would create now; each must have PITR."""
    creates: list[Mapping[str, Any]] = []

    def collect(event: auto.EngineEvent) -> None:
        step = event.resource_pre_event.metadata if event.resource_pre_event else None
        if step is not None and step.op in _MADE and step.new is not None:
            creates.append({"type": step.type, "urn": step.urn, "inputs": step.new.inputs})

    stack.preview(on_event=collect, on_output=lambda _line: None, **options)
    servers = database_servers(creates)
    if not servers:
        raise RecoveryError(
            "the stack would create no database server on this host: nothing to recover"
        )
    without = [s.name for s in servers if s.stanza is None]
    if without:
        raise RecoveryError(
            f"{', '.join(without)} run without PITR: no repository holds them; turn `pitr` "
            "and `pitr.offHost` on before a host is lost"
        )
    for server in servers:
        say(f"  {server.name} (stanza {server.stanza})")
    return servers


# The request, written as the server's user into its data volume; refused over a database
# (exit 3), which a recovery must never overwrite. A restore cut off midway has no pg_control
# yet (pgBackRest writes it last): it is done again.
REQUEST_SCRIPT = (
    'if [ -e "$1/pgdata/global/pg_control" ]; then echo "it holds a database" >&2; exit 3; fi; '
    'printf "%s\\n" "$0" > "$2"'
)


def request_restore(docker: Docker, server: DatabaseServer, target: RestoreTarget) -> None:
    """Write the recovery request into the server's data volume."""
    if server.image is None or server.data_volume is None:
        raise RecoveryError(
            f"{server.name}: its image or data volume is not known after the first up; run "
            "the recovery again"
        )
    done = docker.run(
        "run", "--rm", "--network", "none", "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges:true", "--user", layout.PG_USER,
        "--entrypoint", "sh", "-v", f"{server.data_volume}:{layout.DATA_MOUNT}",
        server.image, "-c", REQUEST_SCRIPT, target.text(), str(layout.DATA_MOUNT),
        str(layout.RECOVERY_REQUEST),
    )  # fmt: skip
    if done.returncode != 0:
        raise RecoveryError(
            f"{server.name}: no recovery request written into {server.data_volume} "
            f"({last_line(done.stderr)}); a recovery restores into empty volumes only"
        )


def restore(docker: Docker, server: DatabaseServer) -> None:
    """The server's start guard, run on its request in a one-off container with the server's
    image, volumes and networks (the off-host repository answers its link network, with its
    keys): the restore takes what time it needs, where a server's own start has `up`'s wait."""
    if server.image is None:
        raise RecoveryError(f"{server.name}: its image is not known; run the recovery again")
    one_off = f"{server.name}-recovery"
    docker.run("rm", "-f", one_off)  # what an interrupted recovery left
    # The server's own data directory (the image's PGDATA is the volume's root).
    create = ["create", "--name", one_off, "--user", layout.PG_USER, "--cap-drop", "ALL",
              "--env", f"PGDATA={layout.PG_PATH}", "--security-opt", "no-new-privileges:true",
              "--network", server.networks[0] if server.networks else "none"]  # fmt: skip
    for mount in server.mounts:
        create += ["-v", mount]
    docker.check(*create, server.image, "python3", "-m", "pitr", "guard", "--stanza",
                 str(server.stanza))  # fmt: skip
    try:
        for network in server.networks[1:]:
            docker.check("network", "connect", network, one_off)
        done = docker.run("start", "--attach", one_off)
        if done.returncode != 0:
            said = last_line(done.stderr or done.stdout)
            raise RecoveryError(
                f"{server.name}: the restore failed ({said}); its request stays in "
                f"{server.data_volume}: fix the cause and run the recovery again"
            )
    finally:
        docker.run("rm", "-f", one_off)


def settle(docker: Docker, server: DatabaseServer) -> str:
    """Wait until the restored server takes writes and archives again, then run the checks."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while psql_in(docker, server.name, "SELECT pg_is_in_recovery()") != "f":
        if not _serving(docker, server.name):
            logs = docker.run("logs", "--tail", "3", server.name)
            raise RecoveryError(
                f"{server.name} is not running: {last_line(logs.stderr or logs.stdout)}"
            )
        if time.monotonic() > deadline:
            raise RecoveryError(f"{server.name} still replays WAL after {READY_TIMEOUT_S} s")
        time.sleep(1)
    # As after `python -m pitr restore` (pitr/docker_host.py): the checkpointer sleeps after
    # recovery until woken, and archiving resumes only then.
    psql_in(docker, server.name, "CHECKPOINT")
    # Then the agent's first check: repo1 is as new as the host, and the agent makes its stanza
    # before the check archives a segment of the new timeline (into both repositories: until
    # one is, a later restore to `latest` would follow the old timeline).
    agent = f"{server.name}-pitr"
    deadline = time.monotonic() + AGENT_CHECK_TIMEOUT_S
    while not agent_checked(docker, agent):
        if time.monotonic() > deadline:
            raise RecoveryError(
                f"{agent} has not passed its first check after {AGENT_CHECK_TIMEOUT_S} s: "
                f"`docker logs {agent}` says why"
            )
        time.sleep(2)
    pitr = ["exec", "-u", layout.PG_USER, server.name, "python3", "-m", "pitr"]
    return docker.check(*pitr, "check-here").strip()


def agent_checked(docker: Docker, agent: str) -> bool:
    """Whether the agent's status file says its last check passed."""
    done = docker.run("exec", agent, "cat", str(layout.STATUS_FILE))
    try:
        tasks = json.loads(done.stdout) if done.returncode == 0 else {}
    except ValueError:
        return False
    return bool(tasks.get("check", {}).get("ok") is True)


def psql_in(docker: Docker, container: str, sql: str) -> str:
    done = docker.run("exec", "-u", layout.PG_USER, container, "psql", "-XAtq", "-c", sql)
    return done.stdout.strip() if done.returncode == 0 else ""


def resources_of(deployment: Mapping[str, Any] | None) -> Sequence[Mapping[str, Any]]:
    resources: Sequence[Mapping[str, Any]] = (deployment or {}).get("resources") or []
    return resources


def _known(value: object) -> str | None:
    return value if isinstance(value, str) and value != UNKNOWN else None
