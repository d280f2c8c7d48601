"""A workload as a Swarm service (components/engine/swarm.py), input by input, in the forms the
provider's service reads back (kreuzwerker v4.5.0). The whole swarm stack is in
test_swarm_stack.py."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import Any, cast

import pulumi_docker as docker
import pytest

from components.engine.profile import RuntimeProfile
from components.engine.swarm import Rollout, service_args
from components.engine.workload import ImageNeeds, Mount, Network, Port, Workload
from provider.canonical import short_duration
from stacks.settings import Hardening, HealthCheck, Logs, Resources


def network(name: str) -> docker.Network:
    """A network as a workload holds it: its name and its ID."""
    return cast(docker.Network, SimpleNamespace(name=name, id=f"{name}-id"))


PROD = RuntimeProfile(
    hardening=Hardening(),
    logs=Logs(max_size="20m", max_files=10),
    restart="unless-stopped",
    health=HealthCheck(interval="90s", timeout="5s", retries=5, start_period="60s"),
    wait_timeout_seconds=180,
    labels={"com.ecommerce.stack": "swarm"},
)
DEV = RuntimeProfile(
    hardening=Hardening(read_only_root=False, drop_all_capabilities=False, run_as_non_root=False),
    logs=Logs(),
    restart="unless-stopped",
    health=HealthCheck(),
    wait_timeout_seconds=180,
)

ORDER_APP = Workload(
    name="platform-order",
    docker_name="shop-order",
    image="registry.example.com/order:1.0.0",
    needs=ImageNeeds(non_root_user="1000:1000"),
    resources=Resources(memory_mb=512, cpus=0.5),
    health_test=["CMD", "node", "-e", "probe"],
    labels={"com.ecommerce.role": "business"},
    stop_grace_seconds=30,
    pids_limit=256,
    env=["PORT=3003", "CORS_ORIGINS=https://a,https://b"],
    mounts=[Mount("secrets-volume", "/run/secrets", read_only=True)],
    networks=[Network(network("shop-backend"), "order")],
    ports=[],
    side_by_side=True,
)
ORDER_DB = Workload(
    name="platform-order-db",
    docker_name="shop-order-db",
    image="postgres:16.6-bookworm",
    needs=ImageNeeds(non_root_user="postgres", writable_paths=("/var/run/postgresql", "/tmp")),
    resources=Resources(memory_mb=2048, cpus=2.0),
    health_test=["CMD", "pg_isready"],
    labels={},
    stop_grace_seconds=120,
    pids_limit=1024,
    command=["postgres", "-c", "max_connections=300"],
    mounts=[Mount("shop-order-db-data", "/var/lib/postgresql/data")],
    networks=[Network(network("shop-order-db"), "order-db")],
)


def container(args: dict[str, Any]) -> Any:
    return args["task_spec"].container_spec


def test_an_app_is_a_hardened_replicated_service_that_rolls_start_first() -> None:
    args = service_args(ORDER_APP, PROD, Rollout(replicas=2))
    spec = container(args)
    assert args["name"] == "shop-order"
    assert spec.image == "registry.example.com/order:1.0.0" and spec.args is None
    assert spec.env == {"PORT": "3003", "CORS_ORIGINS": "https://a,https://b"}  # `=` in a value
    assert (spec.user, spec.read_only, spec.cap_drops) == ("1000:1000", True, ["ALL"])
    mounts = {m.target: (m.type, m.source, m.read_only) for m in spec.mounts}
    assert mounts["/run/secrets"] == ("volume", "secrets-volume", True)
    assert mounts["/tmp"] == ("tmpfs", None, None)  # the writable path on a read-only root
    # Durations as the service's Read writes them: 90s -> 1m30s, 60s -> 1m.
    check = spec.healthcheck
    assert (check.interval, check.timeout, check.start_period, check.retries) == (
        "1m30s",
        "5s",
        "1m",
        5,
    )
    assert spec.stop_grace_period == "30s"  # never left out: that would be 0, SIGKILL at once
    limits = args["task_spec"].resources.limits
    assert (limits.nano_cpus, limits.memory_bytes) == (500_000_000, 512 * 1024 * 1024)
    restart = args["task_spec"].restart_policy
    assert (restart.condition, restart.delay, restart.max_attempts, restart.window) == (
        "any",
        "5s",
        0,
        "0s",
    )
    assert args["mode"].replicated.replicas == 2
    update, rollback = args["update_config"], args["rollback_config"]
    assert (update.order, update.failure_action, update.monitor) == (
        "start-first",
        "rollback",
        "30s",
    )
    assert (rollback.order, rollback.failure_action) == ("start-first", "pause")
    assert update.max_failure_ratio == "0.0"  # one decimal, as read back
    (network,) = args["task_spec"].networks_advanceds
    assert (network.id, network.aliases) == ("shop-backend-id", ["order"])  # by ID, not name
    assert args["converge_config"].timeout == "5m"
    labels = {lb.label: lb.value for lb in args["labels"]}
    assert labels == {"com.ecommerce.stack": "swarm", "com.ecommerce.role": "business"}


def test_a_database_is_pinned_to_its_volumes_node_and_stops_before_its_successor() -> None:
    rollout = Rollout(constraints=["node.labels.ecommerce.order-db==true"], start_first=False)
    args = service_args(ORDER_DB, PROD, rollout)
    # A service's `command` replaces the image's entrypoint; the workload's command is its CMD.
    assert container(args).args == ["postgres", "-c", "max_connections=300"]
    assert container(args).commands is None
    assert args["task_spec"].placement.constraints == ["node.labels.ecommerce.order-db==true"]
    assert args["update_config"].order == args["rollback_config"].order == "stop-first"
    assert container(args).stop_grace_period == "2m"
    assert {m.target for m in container(args).mounts if m.type == "tmpfs"} == {
        "/var/run/postgresql",
        "/tmp",
    }


def test_dev_keeps_the_images_own_user_and_a_writable_root() -> None:
    spec = container(service_args(ORDER_APP, DEV, Rollout()))
    assert (spec.user, spec.read_only, spec.cap_drops) == (None, False, None)
    assert not [m for m in spec.mounts if m.type == "tmpfs"]


@pytest.mark.parametrize("mode", ["vip", "dnsrr"])
def test_published_ports_are_each_nodes_own_whatever_the_endpoint_mode(mode: str) -> None:
    # (Swarm publishes on every address of a node: a port's IP has no equivalent there.)
    edge = replace(ORDER_APP, ports=[Port(8443, 443, "127.0.0.1"), Port(8080, 80, "127.0.0.1")])
    rollout = Rollout(endpoint_mode="dnsrr" if mode == "dnsrr" else "vip")
    spec = service_args(edge, PROD, rollout)["endpoint_spec"]
    assert spec.mode == mode
    assert [(p.target_port, p.published_port, p.publish_mode) for p in spec.ports] == [
        (8080, 80, "host"),
        (8443, 443, "host"),
    ]


def test_a_workload_nobody_waits_for_has_no_convergence_wait() -> None:
    agent = replace(ORDER_DB, waits=False)
    assert service_args(agent, PROD, Rollout())["converge_config"] is None


@pytest.mark.parametrize(
    ("written", "read_back"),
    [
        ("10s", "10s"),
        ("90s", "1m30s"),
        ("60s", "1m"),
        ("300s", "5m"),
        ("5m", "5m"),
        ("3600s", "1h"),
        ("5400s", "1h30m"),
        ("3660s", "1h1m"),
        ("500ms", "500ms"),
        ("0s", "0s"),
    ],
)
def test_durations_are_written_as_a_service_reads_them_back(written: str, read_back: str) -> None:
    # shortDur (resource_docker_service_structures.go): Go's Duration.String() without a
    # trailing "0s" after minutes and "0m" after hours.
    assert short_duration(written) == read_back
