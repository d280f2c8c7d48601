"""Both stacks, as their files describe them, deployed by the real Pulumi engine on a real
Docker engine.

Each stack's program runs through the pinned Pulumi CLI with the stand-in provider plugins
(tests/standin/) and local images; then the checks below run against the running containers and
the engine's own answers (refresh, a second `up`, previews of edits). Each stack is up once per
module and removed at the end, even on failure.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import queue
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import docker
import pulumi
import pytest
from pulumi import automation as auto

from components.outputs import database_targets
from components.renderers import dashboards
from pitr.layout import DATA_MOUNT as PITR_DATA_MOUNT
from pitr.layout import PG_PATH as PITR_PG_PATH
from plan.compare import compare
from plan.recorder import GENERATION_SEPARATOR
from provider.schema import CONTAINER, IMAGE
from stacks.catalogue import PLATFORM as PLATFORM_APPS
from tests.integration.conftest import exec_in, http_get, wait_for
from tests.integration.engine import EngineHome
from tests.integration.load import Load, Target
from tests.integration.monitoring import (
    alertmanager_alerts,
    hook_alerts,
    prometheus_api,
    start_alert_hook,
)
from tests.integration.stacks import (
    CERTIFICATE_KEY,
    EDGE_HTTP_PORT,
    EDGE_HTTPS_PORT,
    IMAGES,
    PLATFORM,
    RUN_LABEL,
    LiveStack,
    deployed,
)

pytestmark = [pytest.mark.integration, pytest.mark.docker]

DATABASES = ("customer", "product", "order", "content")
SERVICES = ("gateway", "customer", "product", "order", "cart", "content", "frontend", "backoffice")
BUSINESS = ("customer", "product", "order", "cart", "content")
DEV_SERVICE_PORTS = {
    "gateway": 13000,
    "customer": 13001,
    "product": 13002,
    "order": 13003,
    "cart": 13004,
    "content": 13005,
    "frontend": 13008,
    "backoffice": 13009,
}
DEV_DATABASE_PORTS = {"customer": 15432, "product": 15433, "order": 15434, "content": 15436}
EDGE_APPS = ("gateway", "frontend", "backoffice")


STACK_MINUTES = {"dev": 13, "prod": 17}
"""About how long each stack lives in this module (docs/testing.md), for the stack slots."""


def stacks_to_test() -> list[str]:
    """Both stacks, or those `ECOMMERCE_TEST_STACKS` names (tests/parallel.py runs each in a
    session of its own)."""
    wanted = os.environ.get("ECOMMERCE_TEST_STACKS", "dev,prod").split(",")
    unknown = set(wanted) - {"dev", "prod"}
    assert not unknown, f"ECOMMERCE_TEST_STACKS names no such stack: {sorted(unknown)}"
    return [stack for stack in ("dev", "prod") if stack in wanted]


@pytest.fixture(scope="module", params=stacks_to_test())
def live(
    request: pytest.FixtureRequest, docker_client: docker.DockerClient, engine_home: EngineHome
) -> Iterator[LiveStack]:
    minutes = STACK_MINUTES[request.param]
    with deployed(docker_client, engine_home, request.param, minutes=minutes) as stack:
        yield stack


def running_containers(live: LiveStack) -> dict[str, Any]:
    """The started containers by name (an app replaced side by side: without its generation)."""
    return live.running()


def tcp_from(container: Any, host: str, port: int) -> bool:
    """Whether `container` opens a TCP connection to host:port (every test image has bash)."""
    probe = """timeout 3 bash -c '</dev/tcp/$0/$1' "$0" "$1" 2>/dev/null"""
    code, _ = exec_in(container, ["bash", "-c", probe, host, str(port)])
    return code == 0


PROBES_AT_ONCE = 24
"""Waiting, not working: 24 probes at once cost the CPU of 24 one after another (and fit the
session client's connection pool, tests/integration/conftest.py)."""


def reachability(
    containers: dict[str, Any],
    targets: list[tuple[str, int]],
    *,
    now_running: Callable[[str], Any] | None = None,
) -> dict[tuple[str, str, int], bool]:
    """`tcp_from` for every container and target, probed side by side: a name that does not
    resolve on a container's networks waits for the probe's timeout (on a test host the engine's
    DNS forwards it to no server), and most probes are of those, so the probes wait together.

    On a swarm, the container a probe was given can stop before the probe runs in it (the swarm
    kills a task that turned unhealthy, as a loaded machine can make it, and starts another): a
    probe that finds its container gone runs once in `now_running(name)`, the task running now,
    since what is probed is the service's networks, not one task's."""

    def probe(name: str, host: str, port: int) -> bool:
        try:
            return tcp_from(containers[name], host, port)
        except docker.errors.APIError as error:
            if now_running is None or error.status_code not in (404, 409):
                raise
            print(f"{name}: {error.explanation}; probing the task running now instead")
            return tcp_from(now_running(name), host, port)

    probes = [(name, host, port) for name in containers for host, port in targets]
    with ThreadPoolExecutor(max_workers=PROBES_AT_ONCE) as pool:
        results = pool.map(lambda p: probe(*p), probes)
        return dict(zip(probes, results, strict=True))


def tcp_from_host(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def psql_ok(run_in: Any | None, host: str, port: int, user: str, db: str, password: str) -> bool:
    """Whether these credentials open `db`: psql inside `run_in`, or on this machine if None."""
    command = ["psql", "-h", host, "-p", str(port), "-U", user, "-d", db, "-tAc", "SELECT 1"]
    env = {"PGPASSWORD": password, "PGCONNECT_TIMEOUT": "5"}
    if run_in is None:
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        return result.returncode == 0 and result.stdout.strip() == "1"
    code, output = exec_in(run_in, command, env=env)
    return code == 0 and output.strip() == "1"


@functools.cache
def _pem_file(pem: str) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False) as file:
        file.write(pem)
    return file.name


def edge_target(live: LiveStack, app: str, path: str) -> Target:
    """An app as its users reach it through the edge: dev's port map over plain HTTP, prod's
    host name over HTTPS (the run's certificate verified)."""
    if live.stack == "dev":
        return Target.http(f"http://127.0.0.1:{DEV_SERVICE_PORTS[app]}{path}")
    host = live.config[PLATFORM]["edge"]["hosts"][app]
    return Target(EDGE_HTTPS_PORT, path, host=host, cafile=_pem_file(live.config[CERTIFICATE_KEY]))


def test_each_pitr_agent_archives_backs_up_and_passes_a_drill(live: LiveStack) -> None:
    # `pulumi up` does not wait for the agents: each turns healthy once its first archive
    # check, full backup and restore drill have passed.
    for db in DATABASES:
        agent = wait_for_agent(live, db)
        code, status = exec_in(agent, ["cat", "/var/lib/pgbackrest/work/agent-status.json"])
        assert code == 0, status
        tasks = json.loads(status)
        assert tasks["check"]["detail"] == "a WAL segment archived", tasks
        assert tasks["backup"]["detail"].startswith("full backup"), tasks
        assert "restored: 3 databases" in tasks["drill"]["detail"], tasks
    # The repository is encrypted: an archived segment starts as aes-256-cbc output does, not
    # as zstd (28 b5 2f fd).
    agent = live.container("order-db-pitr")
    script = "head -c 8 $(find /var/lib/pgbackrest/repo/archive -name '*.zst' | head -1)"
    code, magic = exec_in(agent, ["sh", "-c", script])
    assert (code, magic) == (0, "Salted__"), magic


def wait_for_agent(live: LiveStack, service: str, timeout: float = 180) -> Any:
    agent = live.container(f"{service}-db-pitr")
    deadline = time.monotonic() + timeout
    while True:
        agent.reload()
        health = agent.attrs["State"]["Health"]
        if health["Status"] == "healthy":
            return agent
        if time.monotonic() > deadline:
            last = health["Log"][-1]["Output"] if health.get("Log") else ""
            raise AssertionError(
                f"{agent.name}: {health['Status']}: {last}\n{agent.logs()[-2000:]!r}"
            )
        time.sleep(1)


def test_a_preview_prints_no_warning(live: LiveStack) -> None:
    # Neither the engine nor a provider has anything to warn about (a build without a
    # `platform` would: dev builds ten images).
    assert live.first_preview is not None
    assert live.first_preview.diagnostics("warning") == []


def test_prod_deploys_under_its_mandatory_policy_pack(live: LiveStack) -> None:
    if live.stack != "prod":
        assert live.policies == {}  # dev is not held to the production rules
        return
    # `make up STACK=prod`: the pack ran, mandatory, at the first preview (when nothing was
    # known yet) and at the `up`, and found nothing: every rule judged what it could see.
    assert live.first_preview is not None
    for run in (live.first_preview, live.runs[1]):
        assert run.policy_violations() == [], [e.message for e in run.policy_violations()]
        assert "can't run policy" not in run.text, run.text[-3000:]
        assert "Policies:" in run.text and "ecommerce-production-rules" in run.text


def rogue(live: LiveStack, **container: Any) -> Callable[[dict[str, Any]], None]:
    """Adds a container `<prefix>-rogue` of the given inputs to the program (never started)."""

    def body(program: dict[str, Any]) -> None:
        import pulumi_docker as docker

        password = database_targets(program["platform"])["customer"]["password"]
        inputs = {k: v(password) if callable(v) else v for k, v in container.items()}
        docker.Container(
            "rogue", name=f"{live.prefix}-rogue", image=IMAGES["redis"], start=False, **inputs
        )

    return body


def test_the_pack_refuses_a_rogue_container_and_nothing_else(live: LiveStack) -> None:
    if live.stack != "prod":
        return
    # A privileged container added to the program: the engine refuses to create it.
    with pytest.raises(auto.CommandError):
        live.up(program=live.extended(rogue(live, privileged=True)))
    found = [
        (e.policy_name, e.enforcement_level, e.resource_urn)
        for e in live.runs[-1].policy_violations()
    ]
    assert found == [("no-privileged", "mandatory", rogue_urn(live))], found
    assert f"{live.prefix}-rogue" not in live.containers(running_only=False)
    # A database password in an environment variable, a command line and a label: found by
    # its value, in each of the three, at the stack's end of the preview.
    leak = rogue(
        live,
        envs=lambda p: [pulumi.Output.concat("PGPASSWORD=", p)],
        command=lambda p: ["psql", p],
        labels=lambda p: [docker_label("com.example.token", p)],
    )
    with pytest.raises(auto.CommandError):
        live.preview(program=live.extended(leak))
    leaks = [
        (e.policy_name, e.enforcement_level, e.resource_urn, e.message)
        for e in live.runs[-1].policy_violations()
    ]
    assert {f[:3] for f in leaks} == {("secrets-only-in-files", "mandatory", rogue_urn(live))}
    messages = sorted(f[3] for f in leaks)
    assert [m.split("'")[1] for m in messages] == ["command.1", "envs.0", "labels.0.value"]
    # A running container on a database network that is not that database's own: refused at
    # the preview, the network's name known from the state.
    with pytest.raises(auto.CommandError):
        live.preview(program=live.extended(database_network_intruder(live)))
    intruder = [
        (e.policy_name, e.message)
        for e in live.runs[-1].policy_violations()
        if e.resource_urn == rogue_urn(live)
    ]
    # The pack's message: the rule's description, then what this resource did.
    assert [m.strip().splitlines()[-1] for n, m in intruder if n == "database-networks-closed"] == [
        f"joins the database network {live.prefix}-customer-db as prometheus prometheus: only "
        "that database's server, its service, its exporter and the backup job may"
    ]
    # The stack's own secret outputs and the generators' results are where secrets belong.
    assert live.up().policy_violations() == []


def database_network_intruder(live: LiveStack) -> Callable[[dict[str, Any]], None]:
    """Adds a running container `<prefix>-rogue`, labelled as Prometheus, on the customer
    database's network."""

    def body(program: dict[str, Any]) -> None:
        import pulumi_docker as docker

        network = program["platform"].networks.databases["customer"]
        docker.Container(
            "rogue",
            name=f"{live.prefix}-rogue",
            image=IMAGES["redis"],
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=network.name)],
            labels=[
                docker_label("com.ecommerce.role", "prometheus"),
                docker_label("com.ecommerce.service", "prometheus"),
            ],
        )

    return body


def rogue_urn(live: LiveStack) -> str:
    return f"urn:pulumi:{live.stack}::ecommerce::docker:index/container:Container::rogue"


def docker_label(label: str, value: Any) -> Any:
    import pulumi_docker as docker

    return docker.ContainerLabelArgs(label=label, value=value)


def test_every_container_is_healthy(live: LiveStack) -> None:
    containers = running_containers(live)
    # With 4 PITR agents, Prometheus, Alertmanager, 5 exporters and the apps' health probe.
    assert len(containers) == (27 if live.stack == "prod" else 26)
    for db in DATABASES:
        wait_for_agent(live, db)
    for name, container in containers.items():
        container.reload()
        assert container.status == "running", name
        assert container.attrs["State"]["Health"]["Status"] == "healthy", name


def test_dev_runs_the_apps_it_built_from_its_file(live: LiveStack) -> None:
    if live.stack == "prod":  # published images only
        assert [r for r in live.state() if r["type"] == IMAGE] == []
        return
    # No app image was prepared: each was built from images/reference-service as the stack
    # file says, FROM the stand-in of the official node image, and runs by its ID.
    for service in DEV_SERVICE_PORTS:
        built = live.client.images.get(f"{live.prefix}-{service}:local")
        container = live.container(service)
        container.reload()
        assert container.attrs["Image"] == built.id, service
        assert built.attrs["Config"]["Cmd"] == ["node", "/app/server.js"]
    edge = live.client.images.get(f"{live.prefix}-edge:local")  # images/edge-proxy
    live.container("edge").reload()
    assert live.container("edge").attrs["Image"] == edge.id


def test_each_database_is_reachable_from_its_own_service_only(live: LiveStack) -> None:
    allowed = {
        db: {
            f"{live.prefix}-{db}",
            f"{live.prefix}-{db}-db",
            f"{live.prefix}-backup",
            f"{live.prefix}-{db}-db-exporter",
        }
        for db in DATABASES
    }
    containers = running_containers(live)
    found = reachability(containers, [(f"{db}-db", 5432) for db in DATABASES])
    assert len(found) == len(containers) * len(DATABASES)
    for (name, host, _), reachable in found.items():
        db = host.removesuffix("-db")
        assert reachable is (name in allowed[db]), f"{name} -> {host}: {reachable}"


def test_redis_is_reachable_from_its_users_only(live: LiveStack) -> None:
    users = {f"{live.prefix}-{s}" for s in ("redis", "cart", "gateway", "redis-exporter")}
    found = reachability(running_containers(live), [("redis", 6379)])
    assert len(found) == len(running_containers(live))
    for (name, _, _), reachable in found.items():
        assert reachable is (name in users), name


def test_service_credentials_open_their_own_database_and_no_other(live: LiveStack) -> None:
    targets = live.outputs()["databases"]
    # Dev: from this machine through the published ports. Prod: from the backup job, the one
    # container on every database network.
    run_in = live.container("backup") if live.stack == "prod" else None
    assert_credentials_open_their_own_database_only(run_in, targets)


def assert_credentials_open_their_own_database_only(
    run_in: Any | None, targets: dict[str, Any]
) -> None:
    """Every service's credentials (the `databases` output) against every database."""
    for owner, creds in targets.items():
        for db, where in targets.items():
            opened = psql_ok(
                run_in,
                where["host"],
                where["port"],
                creds["user"],
                where["database"],
                creds["password"],
            )
            assert opened is (owner == db), f"{creds['user']} on {where['database']}: {opened}"


def test_service_roles_are_not_superusers(live: LiveStack) -> None:
    for db in DATABASES:
        creds = live.outputs()["databases"][db]
        code, output = exec_in(
            live.container(f"{db}-db"),
            [
                "psql",
                "-h",
                "127.0.0.1",
                "-U",
                creds["user"],
                "-d",
                creds["database"],
                "-tAc",
                "SELECT rolsuper, rolcreatedb FROM pg_roles WHERE rolname = current_user",
            ],
            env={"PGPASSWORD": creds["password"]},
        )
        assert (code, output.strip()) == (0, "f|t"), db


def test_published_ports_are_the_stacks_own(live: LiveStack) -> None:
    if live.stack == "prod":
        assert_prod_publishes_the_edge_only(live)
    else:
        assert_dev_answers_on_every_port_of_the_spec_map(live)


def published_by(live: LiveStack) -> dict[str, set[int]]:
    """The host ports each running container binds."""
    found = {}
    for name, container in running_containers(live).items():
        container.reload()
        bindings = container.attrs["NetworkSettings"]["Ports"].values()
        found[name] = {int(b["HostPort"]) for binding in bindings if binding for b in binding}
    return found


def assert_dev_answers_on_every_port_of_the_spec_map(live: LiveStack) -> None:
    for port in [*DEV_SERVICE_PORTS.values(), *DEV_DATABASE_PORTS.values(), 6379]:
        assert tcp_from_host(port), port
    for service, port in DEV_SERVICE_PORTS.items():
        status, body, _ = http_get(f"http://127.0.0.1:{port}/health")
        assert (status, body["service"]) == (200, service)
    # The gateway and web apps answer through the edge proxy, which holds their ports.
    ports = published_by(live)
    assert ports.pop(f"{live.prefix}-edge") == {DEV_SERVICE_PORTS[app] for app in EDGE_APPS}
    assert not any(ports[f"{live.prefix}-{app}"] for app in EDGE_APPS)


def test_health_endpoints_answer_through_the_edge_and_the_gateway(live: LiveStack) -> None:
    for service in BUSINESS:
        status, body = edge_target(live, "gateway", f"/{service}/health").get_json()
        assert (status, body["service"]) == (200, service)


def assert_prod_publishes_the_edge_only(live: LiveStack) -> None:
    hosts = live.config[PLATFORM]["edge"]["hosts"]
    for app in EDGE_APPS:
        status, body = edge_target(live, app, "/health").get_json()
        assert (status, body["service"]) == (200, app)
        # Plain HTTP to the same name is sent to HTTPS, on the port the edge publishes.
        status, _, headers = Target(EDGE_HTTP_PORT, "/health?x=1", hosts[app], tls=False).get()
        assert status == 308, app
        assert headers["Location"] == f"https://{hosts[app]}:{EDGE_HTTPS_PORT}/health?x=1"
    for port in [*DEV_SERVICE_PORTS.values(), *DEV_DATABASE_PORTS.values(), 6379]:
        assert not tcp_from_host(port), port
    ports = published_by(live)
    assert ports.pop(f"{live.prefix}-edge") == {EDGE_HTTP_PORT, EDGE_HTTPS_PORT}
    assert not any(ports.values()), ports


def test_the_edge_proxy_reaches_the_edge_apps_only(live: LiveStack) -> None:
    edge = live.container("edge")
    apps = {"gateway": 3000, "frontend": 3008, "backoffice": 3009}
    business = {"customer": 3001, "product": 3002, "order": 3003, "cart": 3004, "content": 3005}
    found = reachability({"edge": edge}, [*apps.items(), *business.items()])
    assert found == {
        ("edge", host, port): host in apps for host, port in {**apps, **business}.items()
    }


def test_hardening_holds_at_run_time(live: LiveStack) -> None:
    for name, container in running_containers(live).items():
        container.reload()
        host = container.attrs["HostConfig"]
        assert "no-new-privileges:true" in host["SecurityOpt"], name
        assert host["Memory"] > 0 and host["MemorySwap"] == host["Memory"], name
        if live.stack == "dev":
            # Dev starts images as their authors intend: as root, dropping privileges itself.
            assert host["ReadonlyRootfs"] is False and not host["CapDrop"], name
            continue
        assert host["ReadonlyRootfs"] is True, name
        assert host["CapDrop"] == ["ALL"] and not host["CapAdd"], name
        assert host["NanoCpus"] > 0, name
        user = container.attrs["Config"]["User"]
        assert user and user not in ("root", "0", "0:0"), name
        # And the process really is unprivileged: no effective capabilities at all.
        code, status = exec_in(container, ["grep", "^CapEff:", "/proc/1/status"])
        assert code == 0 and status.split()[1] == "0000000000000000", name
        code, _ = exec_in(container, ["touch", "/probe-of-read-only-root"])
        assert code != 0, name


PIDS_BY_ROLE = {
    "database": 1024,
    "cache": 64,
    "backup": 128,
    "pitr": 256,
    "edge": 256,
    "business": 256,
    "gateway": 256,
    "web": 256,
    "prometheus": 256,
    "alertmanager": 128,
    "exporter": 128,
    "probe": 64,
}


def test_every_container_has_the_pids_limit_of_its_role(live: LiveStack) -> None:
    for name, container in running_containers(live).items():
        container.reload()
        role = container.labels["com.ecommerce.role"]
        assert container.attrs["HostConfig"]["PidsLimit"] == PIDS_BY_ROLE[role], name
    # And the kernel holds it: Redis's container (64) cannot start 100 processes.
    script = "i=0; while [ $i -lt 100 ]; do sleep 2 & i=$((i+1)); done; wait"
    code, output = exec_in(live.container("redis"), ["sh", "-c", script])
    assert code != 0 and "Cannot fork" in output, (code, output)


def test_backup_job_made_a_complete_backup_in_prod(live: LiveStack) -> None:
    if live.stack == "dev":
        assert f"{live.prefix}-backup" not in live.containers(running_only=False)  # off in dev
        return
    code, output = exec_in(
        live.container("backup"), ["python3", "-m", "backup", "list", "--dest", "/backups"]
    )
    assert code == 0, output
    for db in DATABASES:
        assert db in output


def order_sql(container: Any, sql: str) -> str:
    """As `postgres` on the server's socket (trusted there), in the order database."""
    code, out = exec_in(container, ["psql", "-XAtq", "-U", "postgres", "-d", "order_db", "-c", sql])
    assert code == 0, out
    return out.strip()


def pitr_command(
    *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m pitr <args>`, with `env` over this process's environment."""
    return subprocess.run(
        [sys.executable, "-m", "pitr", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, **(env or {})},
    )


def rows_around_a_time(db: Any) -> str:
    """Rows 1-100 in a new table `pitr_probe` of the order database, then a time T (returned),
    then rows 101-150."""
    order_sql(db, "CREATE TABLE pitr_probe (id int PRIMARY KEY)")
    order_sql(db, "INSERT INTO pitr_probe SELECT generate_series(1, 100)")  # rows A
    time.sleep(1)
    target = order_sql(db, "SELECT now()")  # T
    time.sleep(1)
    order_sql(db, "INSERT INTO pitr_probe SELECT generate_series(101, 150)")  # rows B
    return target


def test_a_database_is_put_back_as_it_was_at_a_time(live: LiveStack) -> None:
    wait_for_agent(live, "order")
    db = live.container("order-db")
    target = rows_around_a_time(db)
    where = ["--prefix", live.prefix]

    # Refused without --force, and nothing was stopped.
    started = db.attrs["State"]["StartedAt"]
    refused = pitr_command("restore", "order", *where, "--to", f"time:{target}")
    assert refused.returncode == 3 and "pass --force" in refused.stderr, refused.stderr
    db.reload()
    assert db.attrs["State"]["StartedAt"] == started and db.status == "running"

    # B's commit was in the segment being written: the server's clean stop archives it (a
    # server that cannot find where T ends refuses to end recovery).
    done = pitr_command("restore", "order", *where, "--to", f"time:{target}", "--force")
    assert done.returncode == 0, done.stdout + done.stderr
    db.reload()
    assert db.attrs["State"]["Health"]["Status"] == "healthy"
    assert order_sql(db, "SELECT count(*), max(id) FROM pitr_probe") == "100|100"
    # It takes writes on its new timeline, and the service works with it again.
    order_sql(db, "INSERT INTO pitr_probe VALUES (1000)")
    service = live.container("order")
    deadline = time.monotonic() + 60
    while service.reload() or service.attrs["State"]["Health"]["Status"] != "healthy":
        assert time.monotonic() < deadline, "the order service did not turn healthy"
        time.sleep(1)
    assert wait_for_agent(live, "order").status == "running"

    # A scratch server beside the live one, at its latest state: the row just written too.
    name = f"{live.prefix}-order-db-scratch"
    try:
        done = pitr_command("inspect", "order", *where, "--to", "latest")
        assert done.returncode == 0, done.stderr
        scratch = live.client.containers.get(name)
        assert scratch.attrs["HostConfig"]["NetworkMode"] == "none"
        assert order_sql(scratch, "SELECT count(*), max(id) FROM pitr_probe") == "101|1000"
    finally:  # not labelled with the run: removed here whatever happened
        assert pitr_command("inspect", "order", *where, "--remove").returncode == 0
    client = live.client
    assert not client.containers.list(all=True, filters={"name": name})
    assert not client.volumes.list(filters={"name": name})


def lose_the_data_directory(live: LiveStack, service: str) -> None:
    server = live.container(f"{service}-db")
    server.stop(timeout=60)
    data_mount, pg_path = str(PITR_DATA_MOUNT), str(PITR_PG_PATH)
    (volume,) = [m["Name"] for m in server.attrs["Mounts"] if m["Destination"] == data_mount]
    live.client.containers.run(
        server.attrs["Config"]["Image"],
        ["rm", "-rf", pg_path],
        volumes={volume: {"bind": data_mount, "mode": "rw"}},
        network_mode="none",
        user="root",
        labels={RUN_LABEL: live.run_id},
        remove=True,
    )
    server.start()
    refusal = f"{pg_path} is empty but stanza {service} holds backups"
    wait_for(
        lambda: refusal in server.logs().decode(errors="replace"),
        timeout=60,
        what=f"{server.name} to refuse an empty start",
        describe=lambda: server.logs()[-2000:].decode(errors="replace"),
    )
    assert "python -m pitr restore" in server.logs().decode(errors="replace")
    server.reload()
    assert server.attrs["State"]["Health"]["Status"] != "healthy"


def test_every_database_is_restored_to_its_latest_state_at_once(live: LiveStack) -> None:
    if live.stack == "prod":
        return  # one stack is enough for a minute of restarts; prod restored one above
    db = live.container("order-db")
    before = order_sql(db, "SELECT count(*) FROM pitr_probe")
    started = {s: live.container(f"{s}-db").attrs["State"]["StartedAt"] for s in DATABASES}
    # The order database's data lost (after a clean stop: everything archived), the server
    # started again on the empty volume refuses to initialise a new database over its stanza's
    # backups, and says how to get them back (pitr/guard.py).
    lose_the_data_directory(live, "order")
    done = pitr_command("restore", "--all", "--prefix", live.prefix, "--to", "latest", "--force")
    assert done.returncode == 0, done.stdout + done.stderr
    for service in DATABASES:
        server = live.container(f"{service}-db")
        server.reload()
        assert server.attrs["State"]["StartedAt"] != started[service], service  # restarted
        assert server.attrs["State"]["Health"]["Status"] == "healthy", service
        assert f"{service}: back, as of latest" in done.stdout
    # A clean stop archived everything: nothing the order database held is lost.
    assert order_sql(db, "SELECT count(*) FROM pitr_probe") == before


def test_a_refresh_finds_no_drift_and_a_second_up_changes_nothing(live: LiveStack) -> None:
    # The engine's refresh: every resource read back by the provider equals its state.
    refresh = live.refresh()
    assert set(refresh.summary()) == {"same"}, refresh.summary()
    # The program run again, planned against what the provider's Read recorded from the engine.
    again = live.up()
    assert [step.describe() for step in again.changes().values()] == []
    assert set(again.summary()) == {"same"}, again.summary()


def test_the_plan_sees_what_an_edit_changes(live: LiveStack) -> None:
    def edits(platform: dict[str, Any]) -> None:
        platform["services"]["customer"]["resources"] = {"memoryMb": 768, "cpus": 1.0}
        order = platform["services"]["order"]
        if "build" in order:  # dev: the same source built with another argument
            order["build"]["args"] = {"REVISION": "next"}
        else:
            order["image"] = IMAGES["service"] + "-next"
        platform["services"]["cart"]["stopGraceSeconds"] = 45

    run = live.preview(edits)
    changes = run.changes()
    # The order service's secrets seed, created from its image, ignores a new one.
    expected = {
        "platform-customer-container",
        "platform-order-container",
        "platform-cart-container",
    }
    # A replaced container is a new one: its PIDs limit is set again.
    expected |= {"platform-order-pids", "platform-cart-pids"}
    rolling = live.stack == "prod"  # business services hold no host port there
    if rolling:  # a new generation, and with it a new name, for each one replaced, and the
        # gate that gives the new container its traffic once healthy (a new container, a new gate)
        expected |= {
            "platform-order-generation",
            "platform-cart-generation",
            "platform-order-traffic",
            "platform-cart-traffic",
        }
    else:
        expected.add("platform-order-image")  # built again: an update of the image resource
        assert changes["platform-order-image"].action == "update"
    assert set(changes) == expected
    customer, cart = changes["platform-customer-container"], changes["platform-cart-container"]
    # Memory is updated in place, rolling or not (it does not make a new generation).
    assert (customer.action, customer.paths) == ("update", ("memory", "memorySwap"))
    name = ("name",) if rolling else ()
    order = changes["platform-order-container"]
    assert (order.action, order.replace_reasons, order.delete_before_replace) == (
        "replace",
        ("image", *name),
        not rolling,
    )
    # Docker fixes a container's stop timeout when it creates it.
    assert (cart.action, cart.replace_reasons) == ("replace", (*name, "stopTimeout"))
    assert {"destroyGraceSeconds", "stopTimeout"} <= set(cart.paths)
    if rolling:
        assert changes["platform-order-traffic"].replace_reasons == ("containerId",)

    # The offline plan (`make diff`) predicts the engine, resource by resource, by URN: the
    # URNs it prints can be given to `pulumi up --target/--replace`.
    offline = compare(live.stack, live.graph(), live.graph(edits))
    predicted = {c.urn: c.action for c in offline.changed()}
    assert predicted == {s.urn: s.action for s in changes.values()}
    stateful = {c.urn for c in offline.changes if not c.type.startswith(("ecommerce:", "pulumi:"))}
    assert stateful == set(run.steps())


def dirty_the_buffers(live: LiveStack, db: str) -> None:
    """Write some 35 MB into a database, left in shared buffers: its shutdown checkpoint must
    write them, so a stop that does not wait for it is seen (an idle server stops in a blink)."""
    creds = live.outputs()["databases"][db]
    sql = (
        "CREATE TABLE IF NOT EXISTS ballast (g int, t text); "
        "INSERT INTO ballast SELECT g, md5(g::text) FROM generate_series(1, 500000) g"
    )
    code, output = exec_in(
        live.container(f"{db}-db"),
        ["psql", "-h", "127.0.0.1", "-U", creds["user"], "-d", creds["database"], "-c", sql],
        env={"PGPASSWORD": creds["password"]},
    )
    assert code == 0, output


def container_urn(live: LiveStack, docker_name: str) -> str:
    """The URN the engine's state gives the container named `docker_name`."""
    (urn,) = [
        r["urn"]
        for r in live.state()
        if r["type"] == CONTAINER and r.get("outputs", {}).get("name") == docker_name
    ]
    return str(urn)


def test_a_database_stopped_by_the_provider_shuts_down_cleanly(live: LiveStack) -> None:
    # It replaces a database (same volume) the way a deploy would.
    urn = container_urn(live, f"{live.prefix}-customer-db")
    (state,) = [r for r in live.state() if r["urn"] == urn]
    assert state["outputs"]["destroyGraceSeconds"] >= 60
    dirty_the_buffers(live, "customer")
    # The engine replaces it delete-first: the provider stops it with the recorded grace.
    live.up(replace=[urn])
    log = live.container("customer-db").logs().decode(errors="replace")
    assert "database system was shut down at" in log, log
    assert "not properly shut down" not in log, log
    # What the check tells apart, shown once, on dev (the server's log is the same in both
    # stacks): a server killed with dirty buffers says so when it starts again. The kill is sent
    # directly: a stop without a grace (the provider's default, 0) races the shutdown checkpoint,
    # and a fast machine writes these buffers before Docker's SIGKILL follows its stop signal.
    if live.stack != "dev":
        return
    dirty_the_buffers(live, "customer")
    server = live.container("customer-db")
    server.kill(signal="SIGKILL")
    server.start()
    wait_for(
        lambda: healthy(server),
        timeout=120,
        what="the killed customer database healthy again",
    )
    log = server.logs().decode(errors="replace")
    assert "not properly shut down; automatic recovery in progress" in log, log


ROLLED_APPS = ("gateway", "order", "frontend")


def test_a_deploy_under_load_drops_no_request(
    live: LiveStack, docker_client: docker.DockerClient
) -> None:
    # While requests go through the edge to the gateway and on to the order service,
    # and to the frontend, one deploy ships new images of the gateway, the order service and the
    # frontend, and rotates the JWT secret (which replaces its users: the gateway and the cart).
    # What holds no host port is replaced side by side: every app in prod; in dev the gateway
    # and web apps, while the order service, holding a host port there, is deleted first: the
    # failures measured through it are what side by side prevents.
    def new_versions(platform: dict[str, Any]) -> None:
        for app in ROLLED_APPS:
            service = platform["services"][app]
            if "build" in service:
                service["build"]["args"] = {"REVISION": "next"}
            else:
                service["image"] = IMAGES["service"] + "-next"

    repository, tag = (IMAGES["service"] + "-next").rsplit(":", 1)
    docker_client.images.get(IMAGES["service"]).tag(repository, tag)
    rotated = {"ecommerce:jwtSecret": "rotated" + uuid.uuid4().hex}
    api = Load(edge_target(live, "gateway", "/order/"))
    shop = Load(edge_target(live, "frontend", "/"))
    with api as api_report, shop as shop_report:
        time.sleep(1)  # traffic before the deploy starts
        run = live.up(new_versions, secrets=rotated)
        time.sleep(1)  # and after it ends
    print(f"{live.stack}: edge -> gateway -> order: {api_report.describe()}")
    print(f"{live.stack}: edge -> frontend: {shop_report.describe()}")
    replaced = {name for name, s in run.changes().items() if s.action == "replace"}
    assert {f"platform-{app}-container" for app in (*ROLLED_APPS, "cart")} <= replaced
    assert api_report.requests > 100 and shop_report.requests > 100
    logs = live.container("gateway").logs().decode(errors="replace")[-3000:]
    assert shop_report.failures == [], shop_report.failures[:5]
    if live.stack == "prod":
        assert api_report.failures == [], [api_report.failures[:5], logs]
    else:
        assert api_report.failures, "delete-before-replace should leave a gap the load test sees"
    # The old containers are gone: one container per app, the new generation where it rolled.
    rolling = ("gateway", "frontend", "order", "cart") if live.stack == "prod" else EDGE_APPS
    for app in rolling:
        containers = {
            n: c
            for n, c in live.containers(running_only=False).items()
            if n.split(GENERATION_SEPARATOR)[0] == f"{live.prefix}-{app}"
        }
        assert list(containers) == [state_name(live, app)], app
        # The new container has its PIDs limit too (a new container, a new limit resource).
        container = next(iter(containers.values()))
        container.reload()
        assert (
            container.attrs["HostConfig"]["PidsLimit"]
            == PIDS_BY_ROLE[container.labels["com.ecommerce.role"]]
        ), app


def state_name(live: LiveStack, service: str) -> str:
    """The Docker name the engine's state gives a service's container."""
    (name,) = [
        r["outputs"]["name"]
        for r in live.state()
        if r["urn"].endswith(f"::platform-{service}-container")
    ]
    return str(name)


BROKEN = IMAGES["service"] + "-answers-500"
SLOW = IMAGES["service"] + "-slow-start"
BAD_RELEASE_WAIT_S = 40
"""The stack's wait for a new container, shortened so that a failed release fails sooner."""
AFTER_FAILURE_S = 60
"""How long the load goes on after a failed release: a failed container must not take over."""


def test_a_bad_release_never_takes_traffic(live: LiveStack) -> None:
    # Prod, load through the edge to the gateway and on to the order service, and
    # to the frontend, while three releases go out: an order service and a gateway that start
    # but answer 500 to everything (their health checks too), in one release (neither waits for
    # the other, so the engine starts both side by side), then both back on their image, then an
    # order service that is healthy only after 15 s. Not one request may fail, during the
    # deploys or after them.
    if live.stack != "prod":
        return
    live.build_image(
        BROKEN,
        f"FROM {IMAGES['service']}\nCMD "
        + json.dumps(
            [
                "node",
                "-e",
                "require('http').createServer((q, r) => { r.writeHead(500); r.end() })"
                ".listen(process.env.PORT)",
            ]
        ),
    )
    live.build_image(
        SLOW,
        f'FROM {IMAGES["service"]}\nCMD ["sh", "-c", "sleep 15 && exec node /app/server.js"]\n',
    )

    def release(order: str, gateway: str) -> Callable[[dict[str, Any]], None]:
        def edit(platform: dict[str, Any]) -> None:
            platform["waitTimeoutSeconds"] = BAD_RELEASE_WAIT_S
            platform["services"]["order"]["image"] = order
            platform["services"]["gateway"]["image"] = gateway

        return edit

    good = live.config[PLATFORM]["services"]["order"]["image"]
    # Bounded: about 4 minutes for a failed release watched a minute, and two good ones.
    api = Load(edge_target(live, "gateway", "/order/"), workers=3, max_seconds=360)
    shop = Load(edge_target(live, "frontend", "/"), workers=3, max_seconds=360)
    with api as api_report, shop as shop_report:
        began = time.monotonic()
        time.sleep(1)
        print(f"{time.monotonic() - began:.1f}s: an order service and a gateway that answer 500")
        with pytest.raises(auto.CommandError):
            live.up(release(BROKEN, BROKEN))
        # The deploy names each container that failed, says it takes no traffic and how to
        # read its logs.
        failed = live.runs[-1].text
        for broken in ("order", "gateway"):
            said = re.search(
                rf"container ({re.escape(live.prefix)}-{broken}--\S+) not healthy after "
                rf"{BAD_RELEASE_WAIT_S} s .*? It takes no traffic.*?`docker logs (\S+)`",
                failed,
                re.DOTALL,
            )
            assert said and said[1] == said[2], (broken, failed[-3000:])
        time.sleep(AFTER_FAILURE_S)
        print(f"after the failed release: {api_report.describe()}")
        print(f"{time.monotonic() - began:.1f}s: both back on their image")
        fixed = live.up(release(good, good))
        print(f"{time.monotonic() - began:.1f}s: an order service healthy only after 15 s")
        slow = live.up(release(SLOW, good))
        time.sleep(1)
        # The load ran through all of it (it stops by itself at its bound).
        assert time.monotonic() - began < 360
    print(f"bad releases: edge -> gateway -> order: {api_report.describe()}")
    print(f"bad releases: edge -> frontend: {shop_report.describe()}")
    assert api_report.requests > 500 and shop_report.requests > 500
    assert api_report.failures == [], api_report.failures[:5]
    assert shop_report.failures == [], shop_report.failures[:5]
    # The fix replaced the failed containers and gave the new ones the traffic; the slow one
    # got it once healthy.
    assert {"platform-gateway-traffic", "platform-order-traffic"} <= set(fixed.changes())
    assert slow.changes()["platform-order-traffic"].action == "replace"
    order = live.container("order")
    order.reload()
    assert order.attrs["Config"]["Image"] == SLOW
    # One container per app is left, and a second `up` changes nothing.
    for app in ("order", "gateway"):
        left = [
            n
            for n in live.containers(running_only=False)
            if n.split(GENERATION_SEPARATOR)[0] == f"{live.prefix}-{app}"
        ]
        assert left == [state_name(live, app)], left
    assert [s.describe() for s in live.up().changes().values()] == []


# ----------------------------------------------------------------------------------------------
# Monitoring


def test_prometheus_scrapes_every_part_and_loads_every_rule(live: LiveStack) -> None:
    expected = {
        ("prometheus", "127.0.0.1:9090"),
        ("alertmanager", "alertmanager:9093"),
        ("redis", "redis-exporter:9121"),
        ("edge", "edge-metrics:9180"),
        ("apps", "health-probe:9115"),
    }
    expected |= {("postgres", f"{db}-db-exporter:9187") for db in DATABASES}
    expected |= {("pitr", f"{db}-db-pitr:9188") for db in DATABASES}  # PITR is on in both
    if live.stack == "prod":
        expected.add(("backup", "backup:9189"))

    def healthy() -> set[tuple[str, str]]:
        targets = prometheus_api(live, "targets")["activeTargets"]
        return {
            (t["labels"]["job"], t["labels"]["instance"]) for t in targets if t["health"] == "up"
        }

    wait_for(
        lambda: healthy() == expected,
        timeout=60,
        what="every target up",
        describe=lambda: str(prometheus_api(live, "targets")),
    )
    # Each database answers its exporter, with the extra queries (archiving, start time; an
    # exporter runs them from its second scrape on), and the agents' own state: their checks
    # pass and the volumes they see have room.
    metrics = [
        "pg_archiver_failing",
        "pg_server_start_time_seconds",
        'ecommerce_pitr_last_success_timestamp_seconds{task="check"}',
        'ecommerce_volume_free_bytes{volume="data"}',
        'process_start_time_seconds{job="pitr"}',
    ]

    def services_of(metric: str) -> set[str]:
        found = prometheus_api(live, "query?" + urllib.parse.urlencode({"query": metric}))
        return {r["metric"]["service"] for r in found["result"]}

    wait_for(
        lambda: all(services_of(m) == set(DATABASES) for m in metrics),
        timeout=60,
        what="every database's extra metrics",
        describe=lambda: str({m: services_of(m) for m in metrics}),
    )
    assert {r["value"][1] for r in prometheus_api(live, "query?query=pg_up")["result"]} == {"1"}
    # Every app answers the health probe over its network.

    def probed() -> dict[str, str]:
        found = prometheus_api(live, "query?query=ecommerce_app_health_up")["result"]
        return {r["metric"]["service"]: r["value"][1] for r in found}

    wait_for(
        lambda: probed() == dict.fromkeys(PLATFORM_APPS.names(), "1"),
        timeout=60,
        what="every app healthy to the probe",
        describe=lambda: str(probed()),
    )
    rules = {r["name"] for g in prometheus_api(live, "rules")["groups"] for r in g["rules"]}
    # PITR is on in both stacks; the backup job in prod only.
    assert {"WalArchivingFailing", "PitrDrillOverdue", "VolumeFilling"} <= rules
    assert ("BackupOverdue" in rules) is (live.stack == "prod")
    assert {"AppUnhealthy", "AppRestarting"} <= rules
    assert len(rules) == (19 if live.stack == "prod" else 17)


def test_prometheus_reaches_the_exporters_and_no_database(live: LiveStack) -> None:
    containers = {
        "prometheus": live.container("prometheus"),
        "customer-exporter": live.container("customer-db-exporter"),
        "gateway": live.container("gateway"),
    }
    targets = [
        ("customer-db", 5432),
        ("order-db", 5432),
        ("customer-db-exporter", 9187),
        ("customer-db-pitr", 9188),
        ("edge-metrics", 9180),
        ("edge", 9180),
        ("health-probe", 9115),
        ("health-probe-caller", 9115),
    ]
    found = reachability(containers, targets)
    reachable = {(name, host) for (name, host, _), ok in found.items() if ok}
    assert reachable == {
        ("prometheus", "customer-db-exporter"),
        ("prometheus", "edge-metrics"),
        ("prometheus", "customer-db-pitr"),
        ("prometheus", "health-probe"),
        ("customer-exporter", "customer-db"),
        ("customer-exporter", "customer-db-exporter"),
        ("customer-exporter", "edge-metrics"),
        ("customer-exporter", "customer-db-pitr"),
        ("customer-exporter", "health-probe"),
    }
    # The gateway (on the edge network) reaches neither the edge's metrics nor an exporter,
    # nor the health probe beside it there (`health-probe-caller` resolves for it, but the
    # probe's listener is bound to its monitoring address).


def test_the_exporter_logs_in_with_pg_monitor_only_and_reads_no_table(live: LiveStack) -> None:
    for db in DATABASES:
        server = live.container(f"{db}-db")
        code, password = exec_in(
            live.container(f"{db}-db-exporter"), ["cat", "/run/secrets/password"]
        )
        assert code == 0 and len(password) >= 32, db
        database = live.outputs()["databases"][db]["database"]
        # The maintenance database opens; its service's database does not (no CONNECT).
        assert psql_ok(server, "127.0.0.1", 5432, "exporter", "postgres", password), db
        assert not psql_ok(server, "127.0.0.1", 5432, "exporter", database, password), db
        grants = sql_in(
            server,
            database,
            """
            SELECT r.rolsuper, r.rolcreatedb, r.rolcreaterole, r.rolconnlimit,
                   (SELECT string_agg(g.rolname, ',') FROM pg_auth_members m
                      JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid),
                   (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
                       AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                       AND has_table_privilege(r.oid, c.oid, 'SELECT'))
              FROM pg_roles r WHERE r.rolname = 'exporter'""",
        )
        assert grants == "f|f|f|3|pg_monitor|0", (db, grants)
        code, output = exec_in(
            server,
            [
                "psql",
                "-h",
                "127.0.0.1",
                "-U",
                "exporter",
                "-d",
                "postgres",
                "-tAc",
                "SELECT * FROM pg_authid",
            ],
            env={"PGPASSWORD": password},
        )
        assert code != 0 and "permission denied" in output, (db, output)


def sql_in(server: Any, database: str, sql: str) -> str:
    """As `postgres` on a server's socket (trusted there), in `database`."""
    code, out = exec_in(server, ["psql", "-XAtq", "-U", "postgres", "-d", database, "-c", sql])
    assert code == 0, out
    return out.strip()


def test_a_stopped_database_and_failing_archiving_reach_the_webhook(live: LiveStack) -> None:
    if live.stack != "dev":  # once is enough: it waits for the rules' `for`
        return
    hook = start_alert_hook(live)
    customer_db, order_db = live.container("customer-db"), live.container("order-db")
    repo = "/var/lib/pgbackrest/repo"
    code, mode = exec_in(order_db, ["stat", "-c", "%a", repo])
    assert code == 0, mode
    # The customer app's /health needs its database: the probe sees it fail.
    expected = {
        ("PostgresDown", "customer"),
        ("WalArchivingFailing", "order"),
        ("AppUnhealthy", "customer"),
    }

    def sent() -> set[tuple[str, str]]:
        return {
            (a["labels"]["alertname"], a["labels"].get("service", ""))
            for a in hook_alerts(hook)
            if a["status"] == "firing"
        }

    try:
        # The archiver cannot write its repository; a segment to archive makes it try.
        assert order_db.exec_run(["chmod", "000", repo], user="postgres").exit_code == 0
        sql_in(
            order_db,
            "order_db",
            "CREATE TABLE alert_probe AS SELECT 1 AS x; SELECT pg_switch_wal()",
        )
        customer_db.stop()
        # PostgresDown: `for` 1m; WalArchivingFailing and AppUnhealthy: 2m; a scrape, an evaluation and
        # Alertmanager's group_wait (30 s) on top.
        wait_for(
            lambda: expected <= sent(),
            timeout=300,
            what="both alerts at the webhook",
            describe=lambda: f"{sent()}\n{alertmanager_alerts(live)}",
        )
        held = {
            (a["labels"]["alertname"], a["labels"].get("service", ""))
            for a in alertmanager_alerts(live)
        }
        assert expected <= held
        firing = [a for a in hook_alerts(hook) if a["labels"]["alertname"] == "PostgresDown"]
        assert firing[0]["annotations"]["summary"] == (
            "the customer database does not answer its exporter"
        )
        assert firing[0]["labels"]["severity"] == "critical"
    finally:
        order_db.exec_run(["chmod", mode.strip(), repo], user="postgres")
        customer_db.start()
    wait_for(
        lambda: running(customer_db) and healthy(customer_db),
        timeout=120,
        what="the customer database healthy again",
    )


def running(container: Any) -> bool:
    container.reload()
    return bool(container.status == "running")


def healthy(container: Any) -> bool:
    container.reload()
    return bool(container.attrs["State"].get("Health", {}).get("Status") == "healthy")


def test_every_dashboard_query_answers_with_data(live: LiveStack) -> None:
    # Some traffic through the edge first, for the request panels' rates.
    for _ in range(20):
        edge_target(live, "gateway", "/health").get()
    found = dashboards.dashboards(pitr=True, backup=live.stack == "prod", apps_probed=True)
    pending = {(board, panel, expr) for board, panel, expr in dashboards.queries(found)}

    def answered() -> bool:
        for query in sorted(pending):
            path = "query?" + urllib.parse.urlencode({"query": query[2]})
            if prometheus_api(live, path)["result"]:
                pending.discard(query)
        return not pending

    wait_for(
        answered,
        timeout=90,
        what="data for every dashboard query",
        describe=lambda: "\n".join(f"{b} / {p}: {e}" for b, p, e in sorted(pending)),
    )


def test_prod_serves_prometheus_through_the_edge_behind_basic_auth(live: LiveStack) -> None:
    monitoring = live.outputs()["monitoring"]
    if live.stack == "dev":  # on loopback, as published
        assert monitoring["prometheusUrl"] == "http://localhost:19090"
        assert tcp_from_host(live.config[PLATFORM]["monitoring"]["prometheus"]["hostPort"])
        return
    host = live.config[PLATFORM]["monitoring"]["prometheus"]["host"]
    target = Target(
        EDGE_HTTPS_PORT, "/-/healthy", host=host, cafile=_pem_file(live.config[CERTIFICATE_KEY])
    )
    assert target.get()[0] == 401
    wrong = base64.b64encode(f"{monitoring['prometheusUser']}:wrong".encode()).decode()
    assert target.get({"Authorization": f"Basic {wrong}"})[0] == 401
    login = f"{monitoring['prometheusUser']}:{monitoring['prometheusPassword']}"
    token = base64.b64encode(login.encode()).decode()
    status, body, _ = target.get({"Authorization": f"Basic {token}"})
    assert status == 200 and b"Healthy" in body


def logs_command(live: LiveStack, *args: str) -> list[str]:
    return [sys.executable, "-m", "deploy.logs", "--stack", live.stack, *args]


def test_make_logs_prefixes_every_containers_lines_with_its_name(live: LiveStack) -> None:
    result = subprocess.run(
        logs_command(live, "--no-follow", "--tail", "3"),
        cwd=live.folder,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    labels = {line.split(" | ", 1)[0].strip() for line in result.stdout.splitlines()}
    names = {n.removeprefix(f"{live.prefix}-") for n in running_containers(live)}
    # Every container that wrote anything (a quiet exporter may not have yet).
    assert {"edge", "prometheus", "order-db", "order-db-pitr", "gateway"} <= labels <= names
    only = subprocess.run(
        logs_command(live, "--no-follow", "--service", "order-db"),
        cwd=live.folder,
        capture_output=True,
        text=True,
        check=False,
    )
    assert {line.split(" | ", 1)[0] for line in only.stdout.splitlines()} == {"order-db"}
    unknown = subprocess.run(
        logs_command(live, "--service", "orders"),
        cwd=live.folder,
        capture_output=True,
        text=True,
        check=False,
    )
    assert unknown.returncode == 2
    assert unknown.stderr.startswith(f"error: no orders in stack {live.stack}; choose one of: ")
    # Following: a request through the edge shows up in the edge's access log as it happens
    # (asked again until it does: the follower may attach after the first request).
    lines: queue.Queue[str] = queue.Queue()
    with subprocess.Popen(
        logs_command(live, "--service", "edge", "--tail", "0"),
        cwd=live.folder,
        stdout=subprocess.PIPE,
        text=True,
    ) as follower:
        assert follower.stdout is not None
        stream = follower.stdout

        def read() -> None:
            for line in stream:
                lines.put(line)

        threading.Thread(target=read, daemon=True).start()
        try:
            marker = f"/logs-probe-{uuid.uuid4().hex[:8]}"  # the app answers 404; logged
            seen: list[str] = []
            deadline = time.monotonic() + 30
            while not any(marker in x for x in seen) and time.monotonic() < deadline:
                edge_target(live, "gateway", marker).get()
                with contextlib.suppress(queue.Empty):
                    while True:
                        seen.append(lines.get(timeout=1))
            found = [x for x in seen if marker in x]
            assert found and found[0].startswith("edge | "), seen[-3:]
        finally:
            follower.terminate()
