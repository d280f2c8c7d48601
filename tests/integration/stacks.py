"""Bring a real stack file up through the real Pulumi engine, and always take it down again.

The stack's own file is used as it is, with only what a test machine needs changed, the way an
operator would override it: local images instead of registry ones (no registry is reachable,
so no registry login either), a unique name prefix (so runs never collide), and published
ports on loopback. Images the stack builds (dev's apps) are built from its file as they are,
FROM the local stand-in of the official image they name.

The engine is the pinned Pulumi CLI with the stand-in provider plugins (engine.py); each run
has its own project folder, state backend and labels, and everything it made is removed at the
end, whether the checks passed or not.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import os
import runpy
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests
from pulumi import automation as auto

from deploy.workspace import policy_options
from plan.recorder import GENERATION_SEPARATOR, Graph, run_program, stack_config
from tests.integration.engine import (
    EngineHome,
    Run,
    is_secret_key,
    open_stack,
    project_view,
    set_config,
)
from tests.integration.slots import SLOTS_ENV, stack_slot

RUN_LABEL = "ecommerce-test.run"
PLATFORM = "ecommerce:platform"
IMAGES = {
    "service": "ecommerce-test/reference-service:1",
    "postgres": "ecommerce-test/postgres:15",
    "redis": "ecommerce-test/redis:7",
    "backup": "ecommerce-test/backup:1",
    "edge": "ecommerce-test/edge-proxy:1",
    "pitr": "ecommerce-test/postgres-pitr:15",
}
# The monitoring parts' images, by their key under `monitoring`.
MONITORING_IMAGES = {
    "prometheus": "ecommerce-test/prometheus:2",
    "alertmanager": "ecommerce-test/alertmanager:0",
    "postgresExporter": "ecommerce-test/postgres-exporter:0",
    "redisExporter": "ecommerce-test/redis-exporter:1",
    "healthProbe": "ecommerce-test/python:3",
}
# Alertmanager sends every alert to a receiver the test runs on the stack's alerting network.
ALERT_HOOK_ALIAS = "alert-hook"
ALERT_HOOK_PORT = 8080
ALERT_WEBHOOK_KEY = "ecommerce:alertWebhookUrl"
SCRAPE_INTERVAL_SECONDS = 10
"""Shorter than the stack files' 30 s: the alert tests wait a `for` plus a scrape or two."""
# No ACME CA is reachable: a stack with TLS serves a certificate made for the run, on ports
# that need no privilege and collide with nothing.
EDGE_HTTP_PORT = 18080
EDGE_HTTPS_PORT = 18443
CERTIFICATE_KEY = "ecommerce:edgeTlsCertificate"
KEY_KEY = "ecommerce:edgeTlsKey"

Edit = Callable[[dict[str, Any]], None]


@dataclass
class LiveStack:
    """One stack deployed by the engine, and the Docker objects of its run."""

    stack: str
    prefix: str
    config: dict[str, Any]
    """The stack's config as deployed last (edits and rotated secrets included)."""
    engine: auto.Stack
    client: docker.DockerClient
    run_id: str
    folder: Path
    policies: dict[str, Any] = field(default_factory=dict)
    """What `make up` runs with: for a prod profile, the policy pack with every rule mandatory."""
    log: Callable[[str], None] = print
    runs: list[Run] = field(default_factory=list)
    first_preview: Run | None = None
    """The preview before the first `up`, when nothing is known yet."""
    nodes: list[docker.DockerClient] = field(default_factory=list)
    """Every engine of a swarm of several test hosts (its tasks run on all of them); empty
    when `client` is the only one."""

    # -- the engine -------------------------------------------------------------------------------

    def configured(
        self, edit: Edit | None = None, secrets: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """This stack's config edited by `edit`, with `secrets` (config keys set with
        `--secret`) added: what a next `pulumi up` is given."""
        config = copy.deepcopy(self.config) | dict(secrets or {})
        if edit is not None:
            edit(config[PLATFORM])
        return config

    def _run(self, command: str, config: dict[str, Any] | None, **options: Any) -> Run:
        run = Run()
        if config is not None:
            set_config(self.engine, self.folder, config)
        call = getattr(self.engine, command)
        if command in ("up", "preview"):
            options = self.policies | options
        try:
            call(on_event=run.on_event, on_output=run.on_output, color="never", **options)
        except auto.CommandError:
            self.log(run.text[-6000:])
            raise
        finally:
            self.runs.append(run)
        return run

    def up(
        self, edit: Edit | None = None, secrets: Mapping[str, str] | None = None, **options: Any
    ) -> Run:
        """`pulumi up` with the config edited; the config is kept as the deployed one (also
        when the update fails: the stack file holds it)."""
        config = self.configured(edit, secrets)
        try:
            return self._run("up", config, **options)
        finally:
            self.config = config

    def preview(
        self, edit: Edit | None = None, secrets: Mapping[str, str] | None = None, **options: Any
    ) -> Run:
        """`pulumi preview` of the config edited (the stack file is put back after)."""
        try:
            return self._run("preview", self.configured(edit, secrets), **options)
        finally:
            if edit is not None or secrets:
                set_config(self.engine, self.folder, self.config)

    def refresh(self, **options: Any) -> Run:
        return self._run("refresh", None, **options)

    def extended(self, body: Callable[[dict[str, Any]], None]) -> Callable[[], None]:
        """A program (`up(program=...)`) that runs the project's and then `body` with its
        globals (`platform`, ...): what a change of the program itself would add."""

        def run() -> None:
            body(runpy.run_path(str(self.folder / "__main__.py"), run_name="__main__"))

        return run

    def outputs(self) -> dict[str, Any]:
        """The stack's outputs as plain values, secrets included."""
        return {k: v.value for k, v in self.engine.outputs().items()}

    def state(self) -> list[dict[str, Any]]:
        """The resources the engine's state holds (`pulumi stack export`)."""
        return list((self.engine.export_stack().deployment or {}).get("resources", []))

    def graph(self, edit: Edit | None = None) -> Graph:
        """The graph the program records for this config under mocks (the offline plan's)."""
        return record(self.stack, self.configured(edit))

    # -- what runs --------------------------------------------------------------------------------

    def containers(self, running_only: bool = True) -> dict[str, Any]:
        """The run's containers by Docker name (a rolling app's generation included)."""
        found = self.client.containers.list(
            all=not running_only, filters={"label": f"{RUN_LABEL}={self.run_id}"}
        )
        return {c.name: c for c in found}

    def running(self) -> dict[str, Any]:
        """The running containers by name, a rolling app's without its generation."""
        return {n.split(GENERATION_SEPARATOR)[0]: c for n, c in self.containers().items()}

    def container(self, role: str) -> Any:
        """The one container of a role, e.g. `customer-db` or `gateway` (a rolling app's
        current generation: the running one)."""
        name = f"{self.prefix}-{role}"
        found = [
            c
            for n, c in self.containers(running_only=False).items()
            if n.split(GENERATION_SEPARATOR)[0] == name
        ]
        if len(found) > 1:
            found = [c for c in found if c.status == "running"]
        if len(found) != 1:
            raise LookupError(f"expected one container {name}, found {len(found)}")
        return found[0]

    def engines(self) -> list[docker.DockerClient]:
        return self.nodes or [self.client]

    def build_image(self, tag: str, dockerfile: str) -> None:
        """A local image (FROM a test image, say) on every engine, removed with the run."""
        for engine in self.engines():
            engine.images.build(
                fileobj=io.BytesIO(dockerfile.encode()),
                tag=tag,
                pull=False,
                rm=True,
                labels={RUN_LABEL: self.run_id},
            )

    def tasks(self, name: str) -> list[Any]:
        """The running containers of Swarm service `name`'s tasks, on every engine."""
        found = []
        label = f"com.docker.swarm.service.name={name}"
        for engine in self.engines():
            with contextlib.suppress(docker.errors.APIError, requests.ConnectionError):
                entries = engine.api.containers(filters={"label": label, "status": "running"})
                for entry in entries:
                    with contextlib.suppress(docker.errors.NotFound):
                        found.append(engine.containers.get(entry["Id"]))
        return found


def record(stack: str, config: dict[str, Any]) -> Graph:
    """The program's graph under mocks; every `ecommerce:` key but the settings is a secret."""
    return run_program(stack, config, secret_keys=[k for k in config if is_secret_key(k)])


@functools.cache
def edge_certificate(hosts: tuple[str, ...]) -> tuple[str, str]:
    """A self-signed certificate (PEM) for the host names, and its key: made once per run."""
    with tempfile.TemporaryDirectory() as folder:
        cert, key = Path(folder) / "cert.pem", Path(folder) / "key.pem"
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-days",
                "2",
                "-subj",
                f"/CN={hosts[0]}",
                "-addext",
                "subjectAltName=" + ",".join(f"DNS:{h}" for h in hosts),
                "-keyout",
                str(key),
                "-out",
                str(cert),
            ],
            check=True,
            capture_output=True,
        )
        return cert.read_text(), key.read_text()


def engine_config(stack: str, prefix: str) -> dict[str, Any]:
    """The stack file's config with local images, the given prefix and loopback publishing."""
    config = copy.deepcopy(stack_config(stack))
    platform = config[PLATFORM]
    platform["namePrefix"] = prefix
    if platform.get("engine") == "swarm":
        # No IPVS in the test kernel: no routing mesh. The edge publishes in host mode (on
        # every address: Swarm binds no single one); tasks are found by DNS round robin.
        platform["swarm"]["endpointMode"] = "dnsrr"
    else:
        platform["publishIp"] = "127.0.0.1"
    for service in platform["services"].values():
        if "image" in service:  # dev builds the reference service from its own folder
            service["image"] = IMAGES["service"]
    platform["postgres"]["image"] = IMAGES["postgres"]
    platform["redis"]["image"] = IMAGES["redis"]
    if "backup" in platform:
        platform["backup"]["image"] = IMAGES["backup"]
    if "image" in platform.get("pitr", {}):  # dev builds pitr/ on postgres.image, as its file says
        platform["pitr"]["image"] = IMAGES["pitr"]
    edge = platform["edge"]
    if "image" in edge:  # dev builds images/edge-proxy as its file says
        edge["image"] = IMAGES["edge"]
    if edge.get("tls"):
        edge |= {
            "tls": {"certificates": "files"},
            "httpPort": EDGE_HTTP_PORT,
            "httpsPort": EDGE_HTTPS_PORT,
        }
        hosts = [*edge["hosts"].values(), *monitoring_hosts(platform.get("monitoring", {}))]
        certificate, key = edge_certificate(tuple(sorted(hosts)))
        config |= {CERTIFICATE_KEY: certificate, KEY_KEY: key}
    monitoring = platform.setdefault("monitoring", {})
    for part, image in MONITORING_IMAGES.items():
        monitoring[part] = monitoring.get(part, {}) | {"image": image}
    monitoring["prometheus"]["scrapeIntervalSeconds"] = SCRAPE_INTERVAL_SECONDS
    # No Grafana image can be had here (docs/monitoring.md says what that leaves untested).
    monitoring["grafana"] = {"enabled": False}
    if platform.get("engine") == "swarm":
        platform["swarm"]["placement"].pop("grafana", None)
    # The off-host repository needs another host (prod) or another node (swarm) than this
    # session's one engine: its own tests deploy it on test hosts (test_off_host_repository.py,
    # test_off_host_swarm.py).
    if platform.get("pitr", {}).get("offHost", {}).get("enabled"):
        platform["pitr"]["offHost"] = {"enabled": False}
        platform.get("swarm", {}).get("placement", {}).pop("pitr-repository", None)
    monitoring["alerts"] = monitoring.get("alerts", {}) | {"webhook": True}
    config[ALERT_WEBHOOK_KEY] = f"http://{ALERT_HOOK_ALIAS}:{ALERT_HOOK_PORT}/alerts"
    platform.pop("registry", None)
    return config


def monitoring_hosts(monitoring: dict[str, Any]) -> list[str]:
    """The host names the edge serves monitoring UIs on (Prometheus's, in the stack files)."""
    return [
        part["host"] for part in monitoring.values() if isinstance(part, dict) and part.get("host")
    ]


def remove_run(client: docker.DockerClient, run_id: str) -> list[str]:
    """Remove every container, network and volume of a run; return what is still there."""
    label = f"{RUN_LABEL}={run_id}"
    swarm = client.info()["Swarm"]["LocalNodeState"] == "active"
    services = client.services.list(filters={"label": label}) if swarm else []
    for service in services:
        service.remove()
    # Swarm stops and removes the tasks' containers itself (each with its grace): give it the
    # time, for its removal and ours would race ("removal ... is already in progress"). (The
    # low-level listing: a task's container may vanish between a listing and its inspect.)
    deadline = time.monotonic() + 150
    while services and time.monotonic() < deadline and swarm_tasks(client, label):
        time.sleep(1)
    for c in client.api.containers(all=True, filters={"label": label}):
        remove_container(client, c["Id"])
    for secret in client.secrets.list(filters={"label": label}) if swarm else []:
        secret.remove()
    for n in client.networks.list(filters={"label": label}):
        _remove_network(n)
    for v in client.volumes.list(filters={"label": label}):
        v.remove(force=True)
    for image in client.images.list(filters={"label": label}):  # what the stand-in built
        client.images.remove(image.id, force=True)
    left = [c["Names"][0] for c in client.api.containers(all=True, filters={"label": label})]
    left += [n.name for n in client.networks.list(filters={"label": label})]
    if swarm:
        left += [str(s.name) for s in client.services.list(filters={"label": label})]
        left += [str(s.name) for s in client.secrets.list(filters={"label": label})]
    left += [v.name for v in client.volumes.list(filters={"label": label})]
    left += [str(i.tags or i.id) for i in client.images.list(filters={"label": label})]
    return left


SWARM_TASK_LABEL = "com.docker.swarm.task.id"


def swarm_tasks(client: docker.DockerClient, label: str) -> list[dict[str, Any]]:
    """The containers of Swarm tasks carrying `label`, stopped ones included."""
    containers = client.api.containers(all=True, filters={"label": label})
    return [c for c in containers if SWARM_TASK_LABEL in (c.get("Labels") or {})]


def remove_container(client: docker.DockerClient, container_id: str) -> None:
    """Remove a container; one that its engine is removing already is waited for instead."""
    try:
        client.api.remove_container(container_id, force=True, v=True)
        return
    except docker.errors.NotFound:
        return
    except docker.errors.APIError as err:
        if err.status_code != 409 or "already in progress" not in str(err):
            raise
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            client.api.inspect_container(container_id)
        except docker.errors.NotFound:
            return
        time.sleep(0.5)


def _remove_network(network: Any) -> None:
    """An overlay network keeps the endpoints of removed tasks for a moment: retry a while."""
    for _ in range(40):
        try:
            network.remove()
            return
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as err:
            if "active endpoints" not in str(err):
                raise
            time.sleep(0.5)
    network.remove()


STACK_SLOTS = int(os.environ.get(SLOTS_ENV, "1"))
"""How many stacks may live at once on this machine, whichever engine each is on: a stack
standing idle keeps a good part of a core busy with its health checks (some thirty containers
checked every 5 or 10 s, each check a `runc exec`). One unless told (a plain pytest run);
`make test` (tests/parallel.py) says two (docs/testing.md#where-the-time-goes)."""


@contextlib.contextmanager
def engine_run(
    client: docker.DockerClient,
    home: EngineHome,
    stack: str,
    edit: Edit = lambda _platform: None,
    log: Callable[[str], None] = print,
    minutes: float = 1,
    nodes: Sequence[docker.DockerClient] = (),
    docker_host: str | None = None,
) -> Iterator[LiveStack]:
    """The stack selected in a project folder and a state backend of the run's own, with
    nothing deployed yet, for a test to `up` itself; everything the run created is removed on
    exit, failure or not. `minutes`: about how long the stack lives, which decides who of the
    runs waiting for a stack slot goes first (tests/integration/slots.py). `nodes`: every engine
    of a swarm of test hosts; `docker_host`: the address of `client`, the manager the stack is
    deployed through, when it is not this process's DOCKER_HOST."""
    run_id = uuid.uuid4().hex[:8]
    prefix = f"ect{run_id}-{stack}"
    config = engine_config(stack, prefix)
    edit(config[PLATFORM])
    if docker_host is not None:  # the program's and its provider's engine
        config["docker:host"] = docker_host
    with (
        contextlib.ExitStack() as slot,
        tempfile.TemporaryDirectory(prefix=f"ect{run_id}-") as scratch,
    ):
        slot.enter_context(stack_slot(Path(tempfile.gettempdir()), STACK_SLOTS, minutes))
        folder = project_view(Path(scratch) / "project", stack, config)
        (Path(scratch) / "state").mkdir()
        env = home.env(Path(scratch) / "state", {RUN_LABEL: run_id}, Path(scratch) / "standin.log")
        live: LiveStack | None = None
        try:
            engine = open_stack(folder, stack, home, env)
            set_config(engine, folder, config)
            policies = policy_options(folder, stack)
            live = LiveStack(
                stack, prefix, config, engine, client, run_id, folder, policies, log, nodes=[*nodes]
            )
            yield live
        finally:
            # The slot first: removing the stack is mostly waiting for its containers to stop,
            # and the next stack's bring-up, the busy part of its life, can begin beside it.
            slot.close()
            # Through the engine the stack was last deployed through (a swarm's manager may
            # have been lost and another taken over).
            left = remove_run(live.client if live is not None else client, run_id)
            if left:
                raise RuntimeError(f"could not remove {', '.join(left)}")


@contextlib.contextmanager
def deployed(
    client: docker.DockerClient,
    home: EngineHome,
    stack: str,
    edit: Edit = lambda _platform: None,
    log: Callable[[str], None] = print,
    minutes: float = 1,
    nodes: Sequence[docker.DockerClient] = (),
    docker_host: str | None = None,
    **options: Any,
) -> Iterator[LiveStack]:
    """The stack, up and healthy (a first `pulumi up`, after a preview as `make up` of a prod
    stack shows one), removed again on exit. `minutes`, `nodes`, `docker_host` as for
    `engine_run`."""
    with engine_run(client, home, stack, edit, log, minutes, nodes, docker_host) as live:
        live.first_preview = live.preview()
        live.up(**options)
        yield live
