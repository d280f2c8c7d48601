"""The swarm stack file (`Pulumi.swarm.yaml`) on a swarm of three nodes, and one of them lost.

Three test hosts (tests/hosts/: a `dockerd` each, in network namespaces of their own, on one
link) form a swarm of three managers, so that losing one keeps the quorum; the first is
labelled for what holds a volume, every one for the edge. The real Pulumi engine deploys the
file through the first, with the stand-in provider plugin, which creates the services, secrets
and overlay networks as pulumi-docker does (tests/standin/swarm.py); Swarm does the scheduling.
This kernel has no IPVS, so there is no virtual IP: the stack runs with `endpointMode: dnsrr`,
and the checks reach the edge's ports on the loopback of a node that runs it, and the tasks
from inside their networks. The stack is brought up once for the module.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from pulumi import automation as auto

from deploy.recovery import Docker
from deploy.swarm_recovery import recover_node
from pitr.pgbackrest import RestoreTarget
from provider.schema import SECRET, SERVICE
from stacks.catalogue import PLATFORM
from stacks.settings import OFF_HOST_HOME
from tests.hosts import Host, TestHosts
from tests.integration.conftest import exec_in, wait_for
from tests.integration.engine import EngineHome, set_config
from tests.integration.load import Load, Target
from tests.integration.monitoring import json_from
from tests.integration.stacks import IMAGES, MONITORING_IMAGES, LiveStack, deployed
from tests.integration.test_off_host_repository import PSQL, PUSH_MARGIN_S, OrderWriter, passed
from tests.integration.test_off_host_swarm import form_swarm, label
from tests.integration.test_stacks import (
    DATABASES,
    assert_credentials_open_their_own_database_only,
    edge_target,
    order_sql,
    pitr_command,
    reachability,
    rows_around_a_time,
)

pytestmark = [pytest.mark.integration, pytest.mark.docker]

DATA_LABEL, EDGE_LABEL, BACKUP_LABEL = "ecommerce.data", "ecommerce.edge", "ecommerce.backup"
ARCHIVE_TIMEOUT_S = 10
"""A WAL segment reaches both repositories within it, once written to."""
NEXT_IMAGE = IMAGES["service"] + "-swarm-next"
BROKEN_IMAGE = IMAGES["service"] + "-swarm-broken"


def quick(platform: dict[str, Any]) -> None:
    """Rolls and health checks fast enough for a test, otherwise the stack file as it is (but
    for the off-host repository, which the last test turns on: `with_the_repository`)."""
    platform["swarm"] |= {
        "updateDelaySeconds": 1,
        "monitorSeconds": 5,
        "convergeTimeoutSeconds": 120,
    }
    platform["pitr"] |= {
        "archiveTimeoutSeconds": ARCHIVE_TIMEOUT_S,
        # A restored server's agent checks again within a minute when its first check meets
        # the archiver's lock (the recovery waits for a passed check).
        "checkEveryMinutes": 1,
    }
    # Checked twice as often as the stack file asks (not more: each check is a process started
    # in the container, a Node.js app's costs 0.15-0.25 s of CPU, and at every 2 s the swarm's
    # checks alone kept more than the machine's two cores busy), with the stack's start period:
    # on a swarm an unhealthy task is killed and started again, so a database's first
    # initialisation must fit in it.
    platform["healthCheck"] = {
        "interval": "5s",
        "timeout": "5s",
        "retries": 5,
        "startPeriod": "30s",
    }


@pytest.fixture(scope="module")
def nodes(test_images: object) -> Iterator[list[Host]]:
    """Three test hosts, a swarm of three managers: the first holds what has a volume (it is
    never the one lost), each may run an edge, the third is the backup repository's."""
    with TestHosts(3, images=[*IMAGES.values(), *MONITORING_IMAGES.values()], swarm=True) as hosts:
        form_swarm(hosts, "Manager")
        first = hosts[0]
        label(first, DATA_LABEL, EDGE_LABEL)
        label(hosts[1], EDGE_LABEL, manager=first)
        label(hosts[2], EDGE_LABEL, BACKUP_LABEL, manager=first)
        yield hosts


@pytest.fixture(scope="module")
def live(engine_home: EngineHome, nodes: list[Host]) -> Iterator[LiveStack]:
    # About 8 minutes: of the stacks waiting for a slot, it goes before the failed update's.
    manager = nodes[0]
    with deployed(
        manager.client(),
        engine_home,
        "swarm",
        quick,
        minutes=8,
        nodes=[host.client() for host in nodes],
        docker_host=manager.docker_host,
    ) as stack:
        yield stack


def node_state(node: Any) -> str:
    node.reload()
    return str(node.attrs["Status"]["State"])


def node_of(host: Host) -> str:
    """The swarm's ID of the host's node."""
    return str(host.client().info()["Swarm"]["NodeID"])


def runs(host: Host, service: str) -> bool:
    """Whether a task of `service` runs on `host` now."""
    label = f"com.docker.swarm.service.name={service}"
    return bool(host.client().containers.list(filters={"label": label}))


def through_edge(live: LiveStack, host: Host, app: str, path: str) -> Target:
    """`edge_target`, through the edge task of the node `host`: its published port on the
    node's own loopback."""
    return dataclasses.replace(edge_target(live, app, path), namespace=host.namespace)


def an_edge(live: LiveStack, nodes: list[Host]) -> Host:
    return next(host for host in nodes if runs(host, f"{live.prefix}-edge"))


def services(live: LiveStack) -> dict[str, dict[str, Any]]:
    """The services the engine's state holds, by Docker name, with their inputs."""
    return {r["inputs"]["name"]: r["inputs"] for r in live.state() if r["type"] == SERVICE}


def one_task_each(live: LiveStack) -> dict[str, Any]:
    """A running task container of every service, by service name."""
    return {name: running_task(live, name) for name in services(live)}


def running_task(live: LiveStack, service: str) -> Any:
    """A task container of the service running now (the swarm may have replaced the one a
    check started with)."""
    tasks = live.tasks(service)
    assert tasks, f"{service}: no running task"
    return tasks[0]


def healthy(container: Any) -> bool:
    container.reload()
    return bool(container.attrs["State"].get("Health", {}).get("Status") == "healthy")


def all_healthy(live: LiveStack, name: str, count: int) -> bool:
    tasks = live.tasks(name)
    return len(tasks) == count and all(healthy(t) for t in tasks)


def test_every_service_runs_its_replicas_healthy_each_on_a_node_of_its_own(
    live: LiveStack, nodes: list[Host]
) -> None:
    found = services(live)
    # 8 apps, the edge, Redis, 4 databases, 4 PITR agents, the backups, Prometheus,
    # Alertmanager, 5 exporters and the apps' health probe.
    assert len(found) == 27
    replicas = {name: i["mode"]["replicated"]["replicas"] for name, i in found.items()}
    assert {n.removeprefix(f"{live.prefix}-") for n, r in replicas.items() if r == 2} == {
        *PLATFORM.names(),
        "edge",
    }
    for name, count in replicas.items():
        # `pulumi up` waited for every service but the PITR agents (their first backup and
        # drill take as long as the data): they turn healthy on their own.
        wait_for(
            functools.partial(all_healthy, live, name, count),
            timeout=180,
            what=f"{count} healthy tasks of {name}",
        )
    # Each replica on a node of its own; what has a volume on the node labelled for it.
    for name, count in replicas.items():
        on = {host.name for host in nodes if runs(host, name)}
        constraints = found[name]["taskSpec"].get("placement", {}).get("constraints", [])
        if f"node.labels.{DATA_LABEL}==true" in constraints:
            assert on == {"h1"}, name
        else:
            assert len(on) == count, f"{name} runs on {on}"
    # The health probe reaches every app by its service's name (dnsrr: one of its tasks).
    (probe,) = live.tasks(f"{live.prefix}-health-probe")
    fetch = "import urllib.request as r; print(r.urlopen('http://127.0.0.1:9115/metrics').read().decode())"

    def probed() -> set[str]:
        code, output = exec_in(probe, ["python3", "-c", fetch])
        assert code == 0, output
        return {
            line.split('"')[1]
            for line in output.splitlines()
            if line.startswith("ecommerce_app_health_up{") and line.endswith(" 1")
        }

    wait_for(
        lambda: probed() == set(PLATFORM.names()),
        timeout=60,
        what="every app healthy to the probe",
        describe=lambda: str(probed()),
    )


def test_a_refresh_finds_no_drift_and_a_second_up_changes_nothing(live: LiveStack) -> None:
    # Against what the provider's Read recorded from the engine: every duration, mount,
    # secret reference and network attachment reads back as the program writes it.
    assert set(live.refresh().summary()) == {"same"}
    again = live.up()
    assert [step.describe() for step in again.changes().values()] == []
    assert set(again.summary()) == {"same"}


def test_each_database_is_reachable_from_its_own_service_and_the_backups_only(
    live: LiveStack,
) -> None:
    tasks = one_task_each(live)
    allowed = {
        db: {
            f"{live.prefix}-{db}",
            f"{live.prefix}-{db}-db",
            f"{live.prefix}-backup",
            f"{live.prefix}-{db}-db-exporter",
        }
        for db in DATABASES
    }
    targets = [(f"{db}-db", 5432) for db in DATABASES] + [("redis", 6379)]
    found = reachability(tasks, targets, now_running=functools.partial(running_task, live))
    assert len(found) == len(tasks) * (len(DATABASES) + 1)
    redis_users = {f"{live.prefix}-{s}" for s in ("redis", "cart", "gateway", "redis-exporter")}
    for (name, host, _), reachable in found.items():
        expected = name in redis_users if host == "redis" else name in allowed[host[:-3]]
        assert reachable is expected, f"{name} -> {host}: {reachable}"


def test_the_edge_reaches_the_edge_apps_only(live: LiveStack) -> None:
    edge = f"{live.prefix}-edge"
    apps = {"gateway": 3000, "frontend": 3008, "backoffice": 3009}
    business = {"customer": 3001, "product": 3002, "order": 3003, "cart": 3004, "content": 3005}
    found = reachability(
        {"edge": running_task(live, edge)},
        [*apps.items(), *business.items()],
        now_running=lambda _: running_task(live, edge),
    )
    assert found == {("edge", h, p): h in apps for h, p in {**apps, **business}.items()}


def test_service_credentials_open_their_own_database_and_no_other(live: LiveStack) -> None:
    backup = live.tasks(f"{live.prefix}-backup")[0]  # on every database network
    assert_credentials_open_their_own_database_only(backup, live.outputs()["databases"])


def test_secrets_are_files_the_user_reads_and_never_in_the_environment(live: LiveStack) -> None:
    order = live.tasks(f"{live.prefix}-order")[0]
    password = live.outputs()["databases"]["order"]["password"]
    code, listing = exec_in(
        order,
        ["stat", "-c", "%U %a %n", "/run/secrets/database-password", "/run/secrets/jwt-secret"],
    )
    assert code == 0, listing
    assert listing.split() == [
        "root",
        "444",
        "/run/secrets/database-password",
        "root",
        "444",
        "/run/secrets/jwt-secret",
    ]
    assert exec_in(order, ["cat", "/run/secrets/database-password"]) == (0, password)
    order.reload()
    assert not [e for e in order.attrs["Config"]["Env"] if password in e]


def test_hardening_holds_at_run_time(live: LiveStack) -> None:
    for name, task in one_task_each(live).items():
        task.reload()
        host = task.attrs["HostConfig"]
        assert host["ReadonlyRootfs"] is True, name
        assert host["CapDrop"] == ["ALL"] and not host["CapAdd"], name
        assert host["Memory"] > 0 and host["NanoCpus"] > 0, name
        assert host["LogConfig"]["Config"] == {"max-size": "20m", "max-file": "10"}, name
        user = task.attrs["Config"]["User"]
        assert user and user not in ("root", "0", "0:0"), name
        code, status = exec_in(task, ["grep", "^CapEff:", "/proc/1/status"])
        assert (code, status.split()[-1]) == (0, "0000000000000000"), name


def test_only_the_edge_publishes_on_each_of_its_nodes(live: LiveStack, nodes: list[Host]) -> None:
    published = {
        name: i.get("endpointSpec", {}).get("ports", []) for name, i in services(live).items()
    }
    edge = published.pop(f"{live.prefix}-edge")
    assert {(p["publishedPort"], p["publishMode"]) for p in edge} == {
        (18080, "host"),
        (18443, "host"),
    }
    assert not any(published.values())
    edges = [host for host in nodes if runs(host, f"{live.prefix}-edge")]
    assert len(edges) == 2
    for host in edges:  # each on its own node's address (here its loopback)
        status, body = through_edge(live, host, "gateway", "/order/health").get_json()
        assert (status, body["service"]) == (200, "order"), host.name


def test_a_database_is_put_back_as_it_was_at_a_time(live: LiveStack, nodes: list[Host]) -> None:
    # `python -m pitr restore` on a swarm, through the manager on the node that holds the
    # volumes: the database and its agent scaled to 0, a one-off restore, scaled back to 1.
    name, agent = f"{live.prefix}-order-db", f"{live.prefix}-order-db-pitr"
    wait_for(functools.partial(all_healthy, live, agent, 1), timeout=180, what=f"{agent}")
    (db,) = live.tasks(name)
    target = rows_around_a_time(db)
    where = ["--prefix", live.prefix]
    pitr = functools.partial(pitr_on, nodes[0])

    refused = pitr("restore", "order", *where, "--to", f"time:{target}")
    assert refused.returncode == 3 and "pass --force" in refused.stderr, refused.stderr
    assert [t.id for t in live.tasks(name)] == [db.id]  # nothing was stopped

    done = pitr("restore", "order", *where, "--to", f"time:{target}", "--force")
    assert done.returncode == 0, done.stdout + done.stderr
    (server,) = live.tasks(name)
    assert server.id != db.id and healthy(server)
    assert order_sql(server, "SELECT count(*), max(id) FROM pitr_probe") == "100|100"
    order_sql(server, "INSERT INTO pitr_probe VALUES (1000)")  # a new timeline takes writes
    for service, count in ((f"{live.prefix}-order", 2), (agent, 1)):
        wait_for(
            functools.partial(all_healthy, live, service, count),
            timeout=180,
            what=f"{service} healthy again",
        )
    client = live.client
    assert not client.volumes.list(filters={"name": f"{name}-restore-config"})
    # Scaled back as it was: the engine finds nothing to do.
    assert [s.describe() for s in live.preview().changes().values()] == []

    scratch = f"{name}-scratch"
    try:
        done = pitr("inspect", "order", *where, "--to", "latest")
        assert done.returncode == 0, done.stderr
        copy = client.containers.get(scratch)
        assert copy.attrs["HostConfig"]["NetworkMode"] == "none"
        assert order_sql(copy, "SELECT count(*), max(id) FROM pitr_probe") == "101|1000"
    finally:  # not labelled with the run: removed here whatever happened
        assert pitr("inspect", "order", *where, "--remove").returncode == 0
    assert not client.containers.list(all=True, filters={"name": scratch})
    assert not client.volumes.list(filters={"name": scratch})


def pitr_on(manager: Host, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m pitr` with the manager of the data node as its Docker host."""
    return pitr_command(*args, env={"DOCKER_HOST": manager.docker_host})


def rolled(live: LiveStack, name: str, image: str) -> bool:
    spec = live.client.api.inspect_service(name)
    tasks = live.tasks(name)
    return (
        (spec.get("UpdateStatus") or {}).get("State") in (None, "completed")
        and len(tasks) == spec["Spec"]["Mode"]["Replicated"]["Replicas"]
        and all(t.attrs["Config"]["Image"] == image and healthy(t) for t in tasks)
    )


def test_a_rolling_update_with_a_rotated_secret_drops_no_request(
    live: LiveStack, nodes: list[Host]
) -> None:
    # A new gateway image (2 replicas) and a rotated JWT secret in one `up`, while requests go
    # through the edge to the gateway and on to the order service (2 replicas).
    live.build_image(NEXT_IMAGE, f"FROM {IMAGES['service']}\nLABEL revision=next\n")
    gateway = f"{live.prefix}-gateway"

    def new_gateway(platform: dict[str, Any]) -> None:
        platform["services"]["gateway"]["image"] = NEXT_IMAGE

    old_secrets = {r["urn"]: r["id"] for r in live.state() if r["type"] == SECRET}
    rotated_secret = {"ecommerce:jwtSecret": uuid.uuid4().hex}
    with Load(through_edge(live, an_edge(live, nodes), "gateway", "/order/")) as report:
        time.sleep(1)
        run = live.up(new_gateway, secrets=rotated_secret)
        # The provider's wait ends once every slot runs a task, which an old one may still
        # be: the roll goes on after `up`, and the load with it, until Docker says completed.
        wait_for(
            lambda: rolled(live, gateway, NEXT_IMAGE),
            timeout=180,
            what="the gateway's roll to the new image",
        )
        time.sleep(1)
    print(f"swarm: edge -> gateway -> order: {report.describe()}")
    actions = {(s.type, s.action) for s in run.changes().values()}
    # Services are updated in place (Docker rolls their tasks); secrets are replaced under new
    # names, never edited, and the old ones are gone once nothing uses them.
    assert (SERVICE, "update") in actions and (SERVICE, "replace") not in actions
    rotated = [s for s in run.changes().values() if s.type == SECRET]
    assert rotated and all(s.action == "replace" for s in rotated)
    left = {s.id for s in live.client.secrets.list()}
    assert not {old_secrets[s.urn] for s in rotated} & left
    assert report.requests > 100
    assert report.failures == [], report.failures[:5]


def whole(live: LiveStack, manager: Any, lost: str | None = None) -> dict[str, str]:
    """The services short of their replicas, each with how many tasks run (healthy: a task of
    a service with a health check runs once it passes), none counted on node `lost`."""
    short = {}
    for name, inputs in services(live).items():
        wanted = inputs["mode"]["replicated"]["replicas"]
        tasks = manager.api.tasks(filters={"service": name, "desired-state": "running"})
        running = [
            t for t in tasks if t["Status"]["State"] == "running" and t.get("NodeID") != lost
        ]
        if len(running) != wanted:
            short[name.removeprefix(f"{live.prefix}-")] = f"{len(running)}/{wanted}"
    return short


def why_short(live: LiveStack, manager: Any, lost: str | None = None) -> str:
    """`whole`'s answer, with each short service's latest tasks: their state and error, and the
    last health check output of a task container that still exists (a failed check's why)."""
    lines = [str(whole(live, manager, lost))]
    for short in whole(live, manager, lost):
        name = f"{live.prefix}-{short}"
        tasks = manager.api.tasks(filters={"service": name})
        for task in sorted(tasks, key=lambda t: t["UpdatedAt"])[-3:]:
            status = task["Status"]
            error = status.get("Err", "")
            lines.append(f"  {short}: {status['State']} {error} {status['Message']}")
        for container in live.tasks(name):
            checks = container.attrs["State"].get("Health", {}).get("Log") or []
            if checks:
                lines.append(f"  {short} health: {checks[-1].get('Output', '').strip()[-300:]}")
    return "\n".join(lines)


def test_losing_a_node_without_a_database_drops_no_request_and_the_swarm_heals(
    live: LiveStack, nodes: list[Host]
) -> None:
    # It takes a node away and brings it back; before the failed update, which leaves the
    # engine's state wanting a new image. The node lost runs an edge and a replica of every
    # app it was given, but no database (those are on h1).
    manager = nodes[0].client()
    edge = f"{live.prefix}-edge"
    lost = next(host for host in nodes[1:] if runs(host, edge))
    survivor = next(host for host in nodes if host is not lost and runs(host, edge))
    lost_id = node_of(lost)
    target = through_edge(live, survivor, "gateway", "/order/")
    # `up` does not wait for the PITR agents (their first backup and drill): they first.
    wait_for(
        lambda: whole(live, manager) == {},
        timeout=300,
        what="every service whole before the loss",
        describe=lambda: str(whole(live, manager)),
    )
    node = manager.nodes.get(lost_id)
    gone = False
    try:
        with Load(target) as report:
            time.sleep(2)
            cut_at = time.monotonic()
            gone = True
            lost.cut()  # as a machine gone at once: off the link, its engine and tasks killed
            lost.daemon.kill()
            wait_for(lambda: node_state(node) == "down", timeout=120, what=f"{lost.name} down")
            down_at = time.monotonic()
            wait_for(
                lambda: whole(live, manager, lost_id) == {},
                timeout=240,
                what="every service whole again on the two other nodes",
                describe=lambda: str(whole(live, manager, lost_id)),
            )
            whole_at = time.monotonic()
            time.sleep(2)
        print(
            f"swarm node loss: {lost.name} marked down {down_at - cut_at:.1f} s after the cut; "
            f"every service whole {whole_at - down_at:.1f} s after that; through the edge of "
            f"{survivor.name}: {report.describe()}"
        )
        assert report.requests > 100
        assert report.failures == [], report.failures[:5]
        # What the engine's state says of a lost node's services: nothing (their specs stand).
        assert set(live.refresh().summary()) == {"same"}
    finally:
        # Back with its disk, also when a check above failed, for the tests after this one:
        # it rejoins, and Swarm removes its old tasks.
        if gone:
            lost.mend()
            lost.daemon.start(lost.namespace, swarm=True)
    wait_for(lambda: node_state(node) == "ready", timeout=120, what=f"{lost.name} ready again")
    back_at = time.monotonic()
    wait_for(
        lambda: whole(live, manager) == {},
        timeout=240,
        what="every service whole with the node back",
        describe=lambda: str(whole(live, manager)),
    )
    print(f"swarm node return: whole {time.monotonic() - back_at:.1f} s after it is ready")
    assert set(live.refresh().summary()) == {"same"}
    again = live.up()
    assert [step.describe() for step in again.changes().values()] == []


def test_a_failing_update_rolls_back_on_its_own_and_keeps_serving(
    live: LiveStack, nodes: list[Host]
) -> None:
    # An image whose health check cannot pass (it asks for a database the gateway has not).
    live.build_image(
        BROKEN_IMAGE, f"FROM {IMAGES['service']}\nENV DATABASE_HOST=nowhere DATABASE_PORT=5432\n"
    )
    gateway = f"{live.prefix}-gateway"
    before = live.client.api.inspect_service(gateway)["Spec"]["TaskTemplate"]

    def broken_gateway(platform: dict[str, Any]) -> None:
        platform["services"]["gateway"]["image"] = BROKEN_IMAGE

    with Load(through_edge(live, an_edge(live, nodes), "gateway", "/order/")) as report:
        with pytest.raises(auto.CommandError, match="rollback"):
            live.up(broken_gateway)
        wait_for(
            lambda: rolled_back(live, gateway, before["ContainerSpec"]["Image"]),
            timeout=180,
            what="the gateway's rollback",
        )
    print(f"swarm rollback: edge -> gateway -> order: {report.describe()}")
    spec = live.client.api.inspect_service(gateway)
    assert spec["UpdateStatus"]["State"] == "rollback_completed"
    assert (
        spec["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == before["ContainerSpec"]["Image"]
    )
    assert report.requests > 50
    assert report.failures == [], report.failures[:5]
    # As the engine records a failed update: the new inputs, with an error; the same program
    # again tries the update again rather than reporting nothing to do.
    step = live.preview().changes()["platform-gateway-service"]
    assert step.action == "update"


def rolled_back(live: LiveStack, name: str, image: str) -> bool:
    state = (live.client.api.inspect_service(name).get("UpdateStatus") or {}).get("State")
    tasks = live.tasks(name)
    return (
        state == "rollback_completed"
        and len(tasks) == 2
        and all(t.attrs["Config"]["Image"] == image and healthy(t) for t in tasks)
    )


def test_make_logs_follows_every_service(live: LiveStack, nodes: list[Host]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "deploy.logs", "--stack", live.stack, "--no-follow", "--tail", "3"],
        cwd=live.folder,
        env={**os.environ, "DOCKER_HOST": nodes[0].docker_host},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    labels = {line.split(" | ", 1)[0].strip() for line in result.stdout.splitlines()}
    assert {"edge", "prometheus", "order-db", "order-db-pitr"} <= labels
    assert labels <= {n.removeprefix(f"{live.prefix}-") for n in services(live)}


def with_the_repository(platform: dict[str, Any]) -> None:
    """The off-host repository on, on the third node, as the stack file has it (the checks
    before keep the one-engine form of engine_config: `python -m pitr restore` one-offs have no
    network to reach it, and it joins every database's overlay); and the gateway's image the
    one the failed update rolled back to."""
    platform["swarm"]["placement"][OFF_HOST_HOME] = BACKUP_LABEL
    platform["pitr"]["offHost"] = {"enabled": True}
    platform["services"]["gateway"]["image"] = NEXT_IMAGE


def writing_for(writer: OrderWriter) -> float:
    """Seconds since the writer's first order was acknowledged (0 before)."""
    first = min(writer.acknowledged.values(), default=None)
    return 0.0 if first is None else time.monotonic() - first


def test_a_lost_database_node_stops_its_apps_and_comes_back_on_another_from_repo2(
    live: LiveStack, nodes: list[Host]
) -> None:
    # Last in the module: h1, which holds every database (and was the manager the stack was
    # deployed through), is lost with its disk for good. h3 holds the off-host repository
    # (turned on here) and monitoring; h2 takes the databases over.
    live.up(with_the_repository)
    lost, spare, backup = nodes
    server_name = f"{live.prefix}-order-db"
    repository = f"{live.prefix}-{OFF_HOST_HOME}"
    spec = PLATFORM.get("order").database
    assert spec is not None
    database = spec.name

    def repo() -> Any:
        found = live.tasks(repository)
        return found[0] if found else None

    wait_for(
        lambda: (
            (r := repo()) is not None
            and passed(r, "/var/lib/pgbackrest/work/agent-status-order.json")
        ),
        timeout=300,
        what="the repository's first backup and drill of the order database",
    )
    (server,) = live.tasks(server_name)
    lost_id = node_of(lost)
    created = exec_in(server, [*PSQL, database, "-c", "CREATE TABLE drill_orders (id int)"])
    assert created[0] == 0, created
    writer = OrderWriter(server, database)
    writer.start()
    # Writes for longer than the RPO before the loss, so that some orders (and the table) must
    # be back: 50 orders alone took about archiveTimeoutSeconds on an idle machine.
    wait_for(
        lambda: writing_for(writer) > ARCHIVE_TIMEOUT_S + PUSH_MARGIN_S + 5,
        timeout=120,
        what="orders written for longer than the RPO",
    )
    lost_at = time.monotonic()
    lost.cut()
    lost.lose()
    writer.join(timeout=30)
    assert not writer.is_alive(), "the order writer still runs 30 s after its server was lost"
    manager = spare.client()
    live.client = manager
    # What the platform does meanwhile: the apps of the lost databases answer errors through
    # the edges of the other nodes, and monitoring (on h3) says which database is down.
    edge = next(host for host in (spare, backup) if runs(host, f"{live.prefix}-edge"))
    target = through_edge(live, edge, "gateway", "/order/health")

    def status() -> int:
        try:
            return target.get()[0]
        except OSError:
            return 0

    wait_for(lambda: status() >= 500, timeout=120, what="the order app answering errors")
    prometheus = next(iter(live.tasks(f"{live.prefix}-prometheus")))

    def firing() -> set[str]:
        answer = json_from(prometheus, "http://127.0.0.1:9090/api/v1/alerts")
        return {
            f"{a['labels']['alertname']}:{a['labels'].get('service', '')}"
            for a in answer["data"]["alerts"]
            if a["state"] == "firing"
        }

    # Its exporter cannot reach it (TargetDown, or PostgresDown where the exporter answers).
    wait_for(
        lambda: bool({"PostgresDown:order", "TargetDown:order"} & firing()),
        timeout=240,
        what="an alert firing for the order database",
        describe=lambda: str(sorted(firing())),
    )
    alerts = sorted(firing())

    # The operator's runbook (docs/operations.md): docker:host at the node that takes the
    # databases over, then `make recover STACK=swarm`.
    live.config["docker:host"] = spare.docker_host
    set_config(live.engine, live.folder, live.config)
    recovering_at = time.monotonic()
    recovered = recover_node(
        live.engine, Docker(spare.docker_host), RestoreTarget("latest"), print, live.policies
    )
    back_at = time.monotonic()
    assert {r.server for r in recovered} == {f"{live.prefix}-{db}-db" for db in DATABASES}
    (restored,) = live.tasks(server_name)
    assert restored.client.api.base_url == manager.api.base_url  # on h2 now
    code, rows = exec_in(restored, [*PSQL, database, "-c", "SELECT id FROM drill_orders"])
    assert code == 0, rows
    missing, rpo = writer.lost({int(line) for line in rows.split()}, lost_at)
    too_old = [
        i for i in missing if lost_at - writer.acknowledged[i] > ARCHIVE_TIMEOUT_S + PUSH_MARGIN_S
    ]
    assert not too_old, f"orders lost beyond the RPO: {too_old[:10]} of {len(missing)} missing"
    wait_for(lambda: status() == 200, timeout=180, what="the order app healthy again")
    # What the lost node held runs on h2 now, as many as the stack declares; its labels moved.
    wait_for(
        lambda: whole(live, manager, lost_id) == {},
        timeout=180,
        what="every service whole on the two nodes left",
        describe=lambda: why_short(live, manager, lost_id),
    )
    for name in ("redis", "backup", "order-db-pitr", "customer-db"):
        assert runs(spare, f"{live.prefix}-{name}"), name
    labels = {
        host.name: manager.nodes.get(node_id).attrs["Spec"].get("Labels") or {}
        for host, node_id in ((spare, node_of(spare)), (lost, lost_id))
    }
    assert labels[spare.name].get(DATA_LABEL) == "true"
    assert DATA_LABEL not in labels[lost.name], labels
    print(
        f"swarm database node lost: alerts {alerts}; {len(writer.acknowledged)} orders "
        f"acknowledged, {len(missing)} lost (RPO {rpo:.1f} s); the recovery took "
        f"{back_at - recovering_at:.0f} s, back on {spare.name} {back_at - lost_at:.0f} s after "
        "the loss (the alerts' two minutes included)"
    )
    assert [step.describe() for step in live.preview().changes().values()] == []
