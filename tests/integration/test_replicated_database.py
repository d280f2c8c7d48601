"""A replicated database on a swarm of three test hosts loses the node of its primary under an
order-writing load, through the real Pulumi engine (docs/replication.md).

The program is the replicated database alone, as the parts build it (components/parts/
consensus.py, replicated_database.py) on the swarm engine, with an app stand-in beside it: the
consensus store's three members on the three nodes, the database's two members on the second
and third, its router anywhere, the writer on the first (the manager the program speaks to,
never lost). One engine run serves every check: the members and who leads, the writes through
the loss of the primary's node (no acknowledged order lost, writes succeed again), the node's
return (its member a standby again, with no step of ours), and a second run that changes
nothing.
"""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pulumi
import pulumi_docker
import pytest
from pulumi import automation as auto

from components.engine.profile import RuntimeProfile
from components.engine.swarm import SwarmEngine
from components.engine.workload import ImageNeeds, Network, Workload
from components.parts.consensus import Consensus, ConsensusArgs
from components.parts.replicated_database import ReplicatedDatabase, ReplicatedDatabaseArgs
from deploy.workspace import ROOT
from stacks.catalogue import DatabaseSpec
from stacks.settings import Hardening, HealthCheck, Logs, Resources, SwarmSettings
from tests.hosts import Host, TestHosts
from tests.integration.conftest import wait_for
from tests.integration.engine import EngineHome
from tests.integration.slots import stack_slot
from tests.integration.stacks import STACK_SLOTS
from tests.integration.test_off_host_swarm import form_swarm, label, task_container

pytestmark = [pytest.mark.integration, pytest.mark.docker]

MEMBER_IMAGE = "ecommerce-test/postgres-pitr:15"
ETCD_IMAGE = "ecommerce-test/etcd:3"
ROUTER_IMAGE = "ecommerce-test/haproxy:2"
SPEC = DatabaseSpec(name="orders", user="order_user")
# As prod runs: read-only roots, no capabilities, no root.
PROFILE = RuntimeProfile(
    hardening=Hardening(),
    logs=Logs(),
    restart="any",
    health=HealthCheck(interval="3s", timeout="3s", retries=5, start_period="60s"),
    wait_timeout_seconds=180,
)
NODE_LABELS = ("t.n1", "t.n2", "t.n3")
PLACEMENT = {
    "consensus-1": "t.n1",
    "consensus-2": "t.n2",
    "consensus-3": "t.n3",
    "order-db-1": "t.n2",
    "order-db-2": "t.n3",
    "client": "t.n1",
}
LOAD_SECONDS = 75
"""The writer's whole run; the node is lost 10 s into it."""
SWITCH_LOAD_SECONDS = 30
CONNECTIONS_CHECKED = 8
MAX_WRITES = 20_000
"""Per load: order numbers of one load never meet another's."""
WRITER = """
import json, os, sys, time
import psycopg2
end = time.time() + float(sys.argv[1])
n, last = int(sys.argv[2]), int(sys.argv[3])
acked, failed, conn = [], [], None
while time.time() < end and n < last:
    n += 1
    try:
        if conn is None:
            conn = psycopg2.connect(
                host="order-db", dbname="orders", user="order_user", connect_timeout=2,
                keepalives_idle=2, keepalives_interval=1, keepalives_count=2,
                tcp_user_timeout=4000,
            )
            conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute("INSERT INTO orders (n) VALUES (%s)", (n,))
        acked.append([n, time.time()])
    except psycopg2.Error:
        failed.append(time.time())
        conn = None
        time.sleep(0.2)
    time.sleep(0.02)
print(json.dumps({"acked": acked, "failed": failed}))
"""


def program(prefix: str, manager: str) -> None:
    provider = pulumi_docker.Provider("manager", host=manager)
    root = pulumi.ComponentResource(
        "test:index:Root", "root", None, pulumi.ResourceOptions(providers=[provider])
    )
    engine = SwarmEngine(
        PROFILE,
        SwarmSettings(
            endpoint_mode="dnsrr",
            placement=PLACEMENT,
            update_delay_seconds=1,
            monitor_seconds=5,
            converge_timeout_seconds=240,
        ),
    )
    labels = {"com.ecommerce.test": prefix}
    consensus = Consensus(
        "consensus",
        ConsensusArgs(
            docker_name=f"{prefix}-consensus",
            image=ETCD_IMAGE,
            engine=engine,
            labels=labels,
            protect_data=False,
        ),
        pulumi.ResourceOptions(parent=root),
    )
    network = engine.network("order-db-network", f"{prefix}-order-db", True, labels, root)
    database = ReplicatedDatabase(
        "order-db",
        ReplicatedDatabaseArgs(
            spec=SPEC,
            home="order-db",
            docker_name=f"{prefix}-order-db",
            image=MEMBER_IMAGE,
            router_image=ROUTER_IMAGE,
            network=network,
            alias="order-db",
            consensus=consensus,
            replicas=2,
            engine=engine,
            labels=labels,
            resources=Resources(memory_mb=512, cpus=0.5),
            synchronous="preferred",
            protect_data=False,
        ),
        pulumi.ResourceOptions(parent=root),
    )
    # The app's stand-in: the writer runs in it, on the database's network.
    engine.run(
        Workload(
            name="client",
            docker_name=f"{prefix}-client",
            image=MEMBER_IMAGE,
            command=["sleep", "infinity"],
            networks=[Network(network, "order-client", serves=False)],
            needs=ImageNeeds(non_root_user="postgres"),
            resources=Resources(memory_mb=128, cpus=0.5),
            health_test=["CMD", "true"],
            labels=labels,
            stop_grace_seconds=1,
            pids_limit=128,
            home="client",
            depends_on=[database.router.container],
        ),
        root,
    )
    pulumi.export("password", database.password)


@pytest.fixture(scope="module")
def nodes(test_images: object) -> Iterator[list[Host]]:
    with TestHosts(3, images=[MEMBER_IMAGE, ETCD_IMAGE, ROUTER_IMAGE], swarm=True) as hosts:
        form_swarm(hosts, "Manager")
        for host, node_label in zip(hosts, NODE_LABELS, strict=True):
            label(host, node_label, manager=hosts[0])
        yield hosts


@pytest.fixture(scope="module")
def stack(engine_home: EngineHome, nodes: list[Host]) -> Iterator[tuple[auto.Stack, str]]:
    prefix = f"ecr{uuid.uuid4().hex[:6]}"
    with tempfile.TemporaryDirectory(prefix=f"{prefix}-") as scratch:
        for part in ("state", "project"):
            (Path(scratch) / part).mkdir()
        env = engine_home.env(Path(scratch) / "state", {}, Path(scratch) / "standin.log")
        stack = auto.create_stack(
            "swarm",
            project_name="replicated-database",
            program=lambda: program(prefix, nodes[0].docker_host),
            opts=auto.LocalWorkspaceOptions(
                work_dir=str(Path(scratch) / "project"),
                env_vars={**env, "PYTHONPATH": str(ROOT)},
                pulumi_command=engine_home.command,
                project_settings=auto.ProjectSettings(name="replicated-database", runtime="python"),
            ),
        )
        try:
            with stack_slot(Path(tempfile.gettempdir()), STACK_SLOTS, minutes=5):
                stack.up(on_output=lambda _line: None)
                yield stack, prefix
        finally:
            # The test hosts go with everything on them; only the state is left to drop.
            stack.workspace.remove_stack("swarm", force=True)


def member_container(host: Host, prefix: str) -> Any | None:
    for n in (1, 2):
        found = task_container(host.client(), f"{prefix}-order-db-{n}")
        if found is not None:
            return found
    return None


def cluster(nodes: list[Host], prefix: str) -> dict[str, Any]:
    """Patroni's view of the cluster, from a member still running."""
    probe = (
        "import urllib.request; "
        "print(urllib.request.urlopen('http://127.0.0.1:8008/cluster', timeout=3).read().decode())"
    )
    for host in nodes:
        container = member_container(host, prefix)
        if container is None:
            continue
        code, out = container.exec_run(["python3", "-c", probe])
        if code == 0:
            return dict(json.loads(out))
    return {}


def roles(view: dict[str, Any]) -> dict[str, str]:
    return {m["name"]: f"{m['role']}/{m['state']}" for m in view.get("members", [])}


def in_sync(nodes: list[Host], prefix: str) -> bool:
    """A primary and a synchronous standby that replays its WAL (Patroni 3.0's `running`)."""
    return sorted(roles(cluster(nodes, prefix)).values()) == [
        "leader/running",
        "sync_standby/running",
    ]


def leader_host(nodes: list[Host], prefix: str) -> Host:
    view = cluster(nodes, prefix)
    leader = next(m["name"] for m in view["members"] if m["role"] == "leader")
    return next(host for host in nodes if task_container(host.client(), leader) is not None)


def psql(nodes: list[Host], prefix: str, password: str, sql: str) -> str:
    client = task_container(nodes[0].client(), f"{prefix}-client")
    assert client is not None
    code, out = client.exec_run(
        ["psql", "-h", "order-db", "-U", SPEC.user, "-d", SPEC.name, "-Atc", sql],
        environment={"PGPASSWORD": password},
    )
    assert code == 0, out.decode()
    return str(out.decode().strip())


def failure_burst(result: dict[str, Any]) -> tuple[float, float] | None:
    """When writes failed, as one stretch: its first failure and the first write acknowledged
    after it; fails the test when writes failed again after succeeding."""
    failed = sorted(result["failed"])
    if not failed:
        return None
    acked_after = [at for _n, at in result["acked"] if at > failed[0]]
    assert acked_after, "writes never succeeded again"
    again = [at for at in failed if at > acked_after[0]]
    assert not again, f"{len(again)} writes failed after writes had come back"
    return failed[0], acked_after[0]


def switch_over(nodes: list[Host], prefix: str) -> None:
    """Patroni's planned switchover to the standby, as an operator runs it (patronictl reads
    the API's password from the member's configuration)."""
    for host in nodes:
        container = member_container(host, prefix)
        if container is None:
            continue
        code, out = container.exec_run(
            ["patronictl", "-c", "/run/secrets/patroni.yml", "switchover", "--force"]
        )
        assert code == 0, out.decode()[-2000:]
        return
    raise AssertionError("no member runs")


def only_the_primary_answers(nodes: list[Host], prefix: str, password: str) -> None:
    """Every new connection through the router reaches the primary (HAProxy balances among the
    members it counts up: a standby among them would take some)."""
    answers = [
        psql(nodes, prefix, password, "SELECT pg_is_in_recovery()")
        for _ in range(CONNECTIONS_CHECKED)
    ]
    assert answers == ["f"] * CONNECTIONS_CHECKED, answers


def write(
    nodes: list[Host], prefix: str, password: str, seconds: int, first: int
) -> dict[str, Any]:
    """Orders numbered after `first` written for `seconds`: those acknowledged and when, and
    when each write failed."""
    client = task_container(nodes[0].client(), f"{prefix}-client")
    assert client is not None
    code, out = client.exec_run(
        ["python3", "-c", WRITER, str(seconds), str(first), str(first + MAX_WRITES)],
        environment={"PGPASSWORD": password},
    )
    assert code == 0, out.decode()[-2000:]
    return dict(json.loads(out.decode().strip().splitlines()[-1]))


def test_the_database_survives_the_loss_of_its_primarys_node(
    stack: tuple[auto.Stack, str], nodes: list[Host]
) -> None:
    live, prefix = stack
    password = live.outputs()["password"].value
    # `up` waited for every member to run; the second may still be copying the first.
    wait_for(
        lambda: in_sync(nodes, prefix),
        timeout=120,
        what="a primary and a synchronous standby",
        describe=lambda: str(roles(cluster(nodes, prefix))),
    )
    psql(nodes, prefix, password, "CREATE TABLE orders (n int PRIMARY KEY)")
    only_the_primary_answers(nodes, prefix, password)
    lost = leader_host(nodes, prefix)
    assert lost is not nodes[0]  # the members run on the second and third nodes only

    with ThreadPoolExecutor(max_workers=1) as pool:
        load = pool.submit(write, nodes, prefix, password, LOAD_SECONDS, 0)
        time.sleep(10)
        lost_at = time.time()
        lost.daemon.kill()
        result = load.result()

    burst = failure_burst(result)
    assert burst is not None, "no write failed: the primary was not lost"
    assert burst[0] >= lost_at, "writes failed before the loss"
    acked = [n for n, _at in result["acked"]]
    stored = {int(n) for n in psql(nodes, prefix, password, "SELECT n FROM orders").split()}
    assert set(acked) - stored == set(), "acknowledged orders lost"
    print(
        f"\nfailover: writes back {burst[1] - lost_at:.1f} s after the loss, "
        f"{len(result['failed'])} failed, {len(acked)} acknowledged, 0 lost"
    )

    # The node back: its member rejoins as a standby of the new primary on its own.
    lost.daemon.start(lost.namespace, swarm=True)
    wait_for(
        lambda: in_sync(nodes, prefix),
        timeout=180,
        what="the lost member back as a synchronous standby",
        describe=lambda: str(roles(cluster(nodes, prefix))),
    )
    assert leader_host(nodes, prefix) is not lost
    only_the_primary_answers(nodes, prefix, password)
    preview = live.preview(diff=True)
    assert set(preview.change_summary) == {"same"}, preview.stdout[-4000:]

    # A switchover on purpose (maintenance): writes fail only while the primary changes.
    with ThreadPoolExecutor(max_workers=1) as pool:
        load = pool.submit(write, nodes, prefix, password, SWITCH_LOAD_SECONDS, MAX_WRITES)
        time.sleep(5)
        started = time.time()
        switch_over(nodes, prefix)
        result = load.result()
    assert leader_host(nodes, prefix) is lost  # its member leads again
    only_the_primary_answers(nodes, prefix, password)
    burst = failure_burst(result)
    assert burst is None or burst[0] >= started, "a write failed before the switchover"
    acked = [n for n, _at in result["acked"]]
    stored = {int(n) for n in psql(nodes, prefix, password, "SELECT n FROM orders").split()}
    assert set(acked) - stored == set(), "acknowledged orders lost in the switchover"
    failed = len(result["failed"])
    back = (burst[1] - started) if burst else 0.0
    print(f"switchover: {failed} failed, writes back {back:.1f} s after it began, 0 lost")
