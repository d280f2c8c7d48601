"""The operator's side of a restore, on the Docker host: the `docker` CLI around the
containers the stack made (`<prefix>-<service>-db` and its agent `<prefix>-<service>-db-pitr`),
or, on a swarm, around those services' tasks on this node (run it on the node labelled for
the database: its volumes are there). Which of the two is decided once, in `_server`.

No container of the stack holds the Docker socket, so stopping a server, restoring its volume
and starting it again is driven from here. The restore itself runs in a one-off container of
the server's own image with the server's own volumes, as `postgres`, with no network, no
capability and a read-only root: the same pgBackRest as the server, and nothing more.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pitr import layout
from pitr.errors import (
    EXIT_PASSPHRASE,
    EXIT_REFUSED,
    EXIT_VERIFY,
    PitrError,
    RefusedError,
    UsageError,
    last_line,
)
from pitr.pgbackrest import RestoreTarget

DOCKER = "docker"
READY_TIMEOUT_S = 3600
"""A server replays WAL up to the target before it takes writes; a long archive takes time."""
ROLE_LABEL = "com.ecommerce.role"
SWARM_SERVICE_LABEL = "com.docker.swarm.service.name"
"""Docker's label on a Swarm task's container: its service."""
# Exits of `restore-here` that mean nothing was touched: the server may start again as it was.
_UNTOUCHED = {EXIT_REFUSED, EXIT_VERIFY, EXIT_PASSPHRASE}


def stack_prefix(stack: str, folder: Path | None = None) -> str:
    """The `namePrefix` the stack file `Pulumi.<stack>.yaml` gives its containers."""
    # Host side only: the containers' copy of this package never reads a stack file, and their
    # image has no YAML library.
    import yaml

    path = (folder or Path.cwd()) / f"Pulumi.{stack}.yaml"
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError:
        raise UsageError(
            f"no {path.name} here: run from the project folder, or pass --prefix"
        ) from None
    except yaml.YAMLError as exc:
        raise UsageError(f"{path.name} is not valid YAML ({exc.__class__.__name__})") from None
    platform = (document.get("config") or {}).get("ecommerce:platform") or {}
    prefix = platform.get("namePrefix") if isinstance(platform, dict) else None
    if not isinstance(prefix, str):
        raise UsageError(f"{path.name} has no ecommerce:platform.namePrefix; pass --prefix")
    return prefix


def services(prefix: str) -> list[str]:
    """Every service of the stack whose database runs with PITR."""
    names = _docker("ps", "-a", "--filter", f"label={ROLE_LABEL}=database",
                    "--format", "{{.Names}}").split()  # fmt: skip
    if not names:  # a swarm's services, when this node manages one
        names = _docker_run(["service", "ls", "--filter", f"label={ROLE_LABEL}=database",
                             "--format", "{{.Name}}"]).stdout.split()  # fmt: skip
    found = sorted(m.group(1) for n in names if (m := re.fullmatch(rf"{prefix}-(.+)-db", n)))
    if not found:
        raise UsageError(f"no database container named {prefix}-<service>-db: check --prefix")
    return found


class Server:
    """A database server of the stack and its PITR agent, as one Docker host runs them:
    containers of those names."""

    def __init__(self, name: str, inspect: dict[str, Any]) -> None:
        self.name, self.agent, self.inspect = name, f"{name}-pitr", inspect

    def container(self) -> str:
        """The server's running container, to exec into."""
        return self.name

    def stop(self, what: str, *, check: bool = True) -> None:
        _docker("stop", what, check=check)

    def start(self, what: str) -> None:
        _docker("start", what)

    def exit_code(self) -> str:
        """How the server's process ended at its last stop."""
        return _docker("inspect", "-f", "{{.State.ExitCode}}", self.name).strip()

    def config_volume(self, _purpose: str) -> str:
        """A volume holding the configuration (with the repository passphrase)."""
        volumes = _volumes(self.inspect)
        return volumes[str(layout.CONFIG_DIR)]

    def drop_config(self, _purpose: str) -> None:
        """Nothing to drop: the configuration volume is the stack's own."""


class SwarmServer(Server):
    """The same on a swarm: services scaled to 0 and back, their task on this node.

    A Swarm secret reaches only a service's tasks, so a one-off container gets the
    configuration on a volume of its own, copied from the running server through stdin
    (never argv), and removed when the one-off is done."""

    def container(self) -> str:
        found = _docker("ps", "-q", "--filter", f"label={SWARM_SERVICE_LABEL}={self.name}",
                        "--filter", "status=running").split()  # fmt: skip
        if not found:
            raise PitrError(f"no running task of {self.name} on this node")
        return found[0]

    def stop(self, what: str, *, check: bool = True) -> None:
        _docker("service", "scale", "--detach=false", f"{what}=0", check=check)

    def start(self, what: str) -> None:
        _docker("service", "scale", "--detach=false", f"{what}=1")

    def exit_code(self) -> str:
        stopped = _docker("ps", "-aq", "--filter", f"label={SWARM_SERVICE_LABEL}={self.name}",
                          "--filter", "status=exited").split()  # fmt: skip
        if not stopped:
            return "unknown"
        return _docker("inspect", "-f", "{{.State.ExitCode}}", stopped[0]).strip()

    def config_volume(self, purpose: str) -> str:
        volume = f"{self.name}-{purpose}-config"
        text = _docker("exec", "-u", layout.PG_USER, self.container(), "cat",
                       str(layout.CONFIG_FILE))  # fmt: skip
        self.drop_config(purpose)  # a copy left by an interrupted run holds a read-only file
        _docker("volume", "create", "--label", f"{ROLE_LABEL}=pitr-scratch", volume)
        write = ["run", "--rm", "-i", "--network", "none", "--cap-drop", "ALL",
                 "--security-opt", "no-new-privileges:true", "-v",
                 f"{volume}:{layout.CONFIG_DIR}", "--entrypoint", "sh", self.inspect["Image"],
                 "-c", 'cat > "$0" && chmod 0444 "$0"', str(layout.CONFIG_FILE)]  # fmt: skip
        done = _docker_run(write, stdin=text)
        if done.returncode != 0:
            self.drop_config(purpose)
            raise PitrError(f"{volume}: could not write the configuration: "
                            f"{last_line(done.stderr)}")  # fmt: skip
        return volume

    def drop_config(self, purpose: str) -> None:
        _docker("volume", "rm", f"{self.name}-{purpose}-config", check=False)


def restore(prefix: str, service: str, target: RestoreTarget, *, force: bool) -> None:
    """Stop the server (and its agent), restore its volume to `target`, start it again and
    wait until it has replayed up to the target and takes writes."""
    server = _server(prefix, service)
    config = server.config_volume("restore")
    try:
        _restore(server, service, config, target, force=force)
    finally:
        server.drop_config("restore")


def _restore(
    server: Server, service: str, config: str, target: RestoreTarget, *, force: bool
) -> None:
    name, agent = server.name, server.agent
    if not force and _holds_a_cluster(server.inspect, name, config):
        where = "the latest archived state" if target.kind == "latest" else target.value
        raise RefusedError(
            f"{service}: restoring its database to {where} discards what it holds after that "
            "(for latest: what was not archived yet); pass --force to do so"
        )
    _print(f"{service}: stopping {agent} and {name}")
    server.stop(agent, check=False)
    # A clean stop archives everything written: with archiving on, PostgreSQL switches to a
    # new WAL segment at shutdown and its archiver runs once more.
    server.stop(name)
    exit_code = server.exit_code()
    if exit_code == str(EXIT_REFUSED):  # pitr/guard.py: its data directory is empty
        _print(f"{service}: {name} had refused to start on an empty data directory (its start "
               "guard); restoring into it")  # fmt: skip
    elif exit_code != "0":
        _print(f"{service}: warning: {name} did not stop cleanly (exit {exit_code}); what it "
               "wrote since its last archived WAL segment is not in the repository")  # fmt: skip
    command = ["python3", "-m", "pitr", "restore-here", "--stanza", service, "--to",
               target.text(), *(["--force"] if force else [])]  # fmt: skip
    done = _run_one_off(server.inspect, f"{name}-restore", command, config=config,
                        repo_read_only=False)  # fmt: skip
    if done.returncode in _UNTOUCHED:
        server.start(name)
        server.start(agent)
        raise PitrError(f"{service}: {last_line(done.stderr)}; the server runs as it was")
    if done.returncode != 0:
        raise PitrError(
            f"{service}: the restore failed ({last_line(done.stderr)}); {name} is left "
            f"stopped: run the command again once the cause is fixed"
        )
    _print(f"{service}: restored; starting {name}, which replays WAL up to the target")
    server.start(name)
    running = server.container()
    _wait_for_writes(running)
    # The checkpointer sleeps after recovery; a checkpoint wakes it so segments switch every
    # archive_timeout again (PgBackRest.resume_archiving, measured in benchmarks/pitr_rpo.py).
    _psql(running, "CHECKPOINT")
    # And the first segment of the new timeline archived now: until it is, a restore to the
    # latest state would replay the old timeline, discarded writes included.
    _archive_now(running, service)
    _wait_healthy(running)
    server.start(agent)
    _print(f"{service}: back, as of {target.text()}")


def inspect(prefix: str, service: str, target: RestoreTarget) -> None:
    """A server of its own (`<db>-scratch`, on its own volume, no network) restored to
    `target` from the live server's repository, for looking at what an older state held."""
    server = _server(prefix, service)
    scratch = f"{server.name}-scratch"
    if _docker("ps", "-aq", "--filter", f"name=^{scratch}$").strip():
        raise UsageError(
            f"{scratch} exists already: remove it with `python -m pitr inspect {service} "
            f"--prefix {prefix} --remove`"
        )
    _docker("volume", "create", "--label", f"{ROLE_LABEL}=pitr-scratch", scratch)
    if server.inspect["State"]["Running"]:
        _archive_now(server.container(), service)
    command = ["python3", "-m", "pitr", "serve-copy", "--stanza", service, "--to",
               target.text()]  # fmt: skip
    # The copy reads the configuration as long as it runs: a swarm's copy of it stays until
    # `--remove`.
    config = server.config_volume("scratch")
    _run_one_off(server.inspect, scratch, command, config=config, repo_read_only=True,
                 data_volume=scratch, detach=True)  # fmt: skip
    _wait_for_writes(scratch)
    database = _env(server.inspect).get("POSTGRES_DB", "postgres")
    _print(f"{scratch}: {service}'s database as of {target.text()}. Look with\n"
           f"  docker exec -it -u {layout.PG_USER} {scratch} psql -d {database}\n"
           f"and remove it with:\n  python -m pitr inspect {service} --prefix {prefix} "
           "--remove")  # fmt: skip


def remove_scratch(prefix: str, service: str) -> None:
    scratch = f"{prefix}-{service}-db-scratch"
    _docker("rm", "-f", scratch, check=False)
    _docker("volume", "rm", scratch, check=False)
    _docker("volume", "rm", f"{scratch}-config", check=False)  # a swarm's copy, if any
    _print(f"{scratch}: removed")


def _server(prefix: str, service: str) -> Server:
    """The one place that tells a container from a swarm's service."""
    name = f"{prefix}-{service}-db"
    as_service = _docker_run(["service", "inspect", name])
    if as_service.returncode == 0:
        task = _docker("ps", "-q", "--filter", f"label={SWARM_SERVICE_LABEL}={name}",
                       "--filter", "status=running").split()  # fmt: skip
        if not task:
            raise UsageError(
                f"no running task of {name} on this node: run the command on the node "
                "that holds its volumes (the one labelled for it)"
            )
        return SwarmServer(name, _database(task[0], name))
    return Server(name, _database(name, name))


def _database(container: str, name: str) -> dict[str, Any]:
    done = _docker_run(["inspect", "--type", "container", container])
    if done.returncode != 0:
        raise UsageError(f"no container {name}: check the service and --prefix")
    (found,) = json.loads(done.stdout)
    destinations = {m.get("Destination") for m in found.get("Mounts", [])}
    if str(layout.PGBACKREST_MOUNT) not in destinations:
        raise UsageError(f"{name} runs without PITR: turn `pitr` on in the stack first")
    info: dict[str, Any] = found
    return info


def _volumes(db: dict[str, Any]) -> dict[str, str]:
    """The container's named volumes by where they are mounted."""
    return {m["Destination"]: m["Name"] for m in db["Mounts"] if m.get("Type") == "volume"}


def _archive_now(name: str, service: str) -> None:
    """The running server's WAL segment in progress, archived: a recent target is then in the
    archive (a server that cannot reach its target refuses to end recovery)."""
    _docker("exec", "-u", layout.PG_USER, name, "python3", "-m", "pitr", "archive-now",
            "--stanza", service)  # fmt: skip


def _holds_a_cluster(db: dict[str, Any], name: str, config: str) -> bool:
    probe = ["test", "-s", str(layout.PG_PATH / "PG_VERSION")]
    done = _run_one_off(db, f"{name}-probe", probe, config=config, repo_read_only=True)
    return done.returncode == 0


def _run_one_off(
    db: dict[str, Any],
    name: str,
    command: Sequence[str],
    *,
    config: str,
    repo_read_only: bool,
    data_volume: str | None = None,
    detach: bool = False,
) -> subprocess.CompletedProcess[str]:
    """A container of the server's image with its volumes and the configuration volume
    `config`, hardened like prod's."""
    volumes = _volumes(db)
    data = data_volume or volumes[str(layout.DATA_MOUNT)]
    mounts = [
        f"{data}:{layout.DATA_MOUNT}",
        f"{volumes[str(layout.PGBACKREST_MOUNT)]}:{layout.PGBACKREST_MOUNT}"
        + (":ro" if repo_read_only else ""),
        f"{config}:{layout.CONFIG_DIR}:ro",
    ]
    argv = ["run", "--name", name, "--label", f"{ROLE_LABEL}=pitr-restore",
            "--network", "none", "--user", layout.PG_USER, "--read-only",
            "--tmpfs", "/tmp", "--tmpfs", str(layout.SOCKET_DIR), "--cap-drop", "ALL",
            "--security-opt", "no-new-privileges:true"]  # fmt: skip
    argv += ["-d"] if detach else ["--rm"]
    for mount in mounts:
        argv += ["-v", mount]
    done = _docker_run([*argv, db["Image"], *command])
    if detach and done.returncode != 0:
        raise PitrError(f"{name}: could not start: {last_line(done.stderr)}")
    if not detach and done.stderr.strip() and done.returncode != 0:
        print(done.stderr.strip())
    return done


def _wait_for_writes(name: str) -> None:
    """Until the server answers and has left recovery (it reached its target)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        state = _docker_run(["inspect", "-f", "{{.State.Running}}", name]).stdout.strip()
        if state != "true":
            logs = _docker_run(["logs", "--tail", "5", name])
            raise PitrError(f"{name} stopped: {last_line(logs.stderr or logs.stdout)}")
        done = _docker_run(["exec", "-u", layout.PG_USER, name, "psql", "-XAtq", "-c",
                            "SELECT pg_is_in_recovery()"])  # fmt: skip
        if done.returncode == 0 and done.stdout.strip() == "f":
            return
        time.sleep(1)
    raise PitrError(f"{name} still replays WAL after {READY_TIMEOUT_S} s")


def _wait_healthy(name: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        status = _docker_run(["inspect", "-f", "{{.State.Health.Status}}", name]).stdout.strip()
        if status == "healthy":
            return
        time.sleep(1)
    raise PitrError(f"{name} is not healthy after {READY_TIMEOUT_S} s")


def _psql(name: str, sql: str) -> None:
    _docker("exec", "-u", layout.PG_USER, name, "psql", "-XAtq", "-c", sql)


def _env(db: dict[str, Any]) -> dict[str, str]:
    pairs = (item.partition("=") for item in db["Config"].get("Env") or [])
    return {key: value for key, _, value in pairs}


def _docker(*args: str, check: bool = True) -> str:
    done = _docker_run(list(args))
    if check and done.returncode != 0:
        raise PitrError(f"docker {args[0]} {args[-1]}: {last_line(done.stderr)}")
    return done.stdout


def _docker_run(args: Sequence[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run([DOCKER, *args], capture_output=True, text=True, input=stdin,
                              errors="replace", check=False)  # fmt: skip
    except FileNotFoundError:
        raise UsageError("the docker CLI is not on PATH") from None




def _print(line: str) -> None:
    print(line, flush=True)
