"""Every container has a health check, and starts only after what it needs is healthy."""

from __future__ import annotations

from plan.recorder import Graph, Resource
from provider.schema import TRAFFIC_GATE

DATABASES = {
    "customer": ("customer_user", "customer_db"),
    "product": ("product_user", "product_db"),
    "order": ("order_user", "order_db"),
    "content": ("content_user", "website_content_db"),
}
BUSINESS = ("customer", "product", "order", "cart", "content")


def urn_of(graph: Graph, docker_name: str) -> str:
    return graph.container(docker_name).urn


def waits_for(graph: Graph, container: Resource, docker_name: str) -> bool:
    return urn_of(graph, docker_name) in container.depends_on


def test_every_running_container_has_a_health_check_and_up_waits_for_it(stack_graph: Graph) -> None:
    containers = stack_graph.running_containers()
    # A side-by-side app is waited for by its traffic gate, which gives it its aliases.
    gated = {r.name.removesuffix("-traffic"): r for r in stack_graph.of_type(TRAFFIC_GATE)}
    # 8 services, 4 databases and their PITR agents, Redis, the edge proxy, Prometheus,
    # Alertmanager, an exporter per database and one for Redis; in prod the backup job and
    # the off-host backup repository.
    assert len(containers) == (29 if stack_graph.name_prefix() == "shop" else 27)  # and Grafana
    for c in containers:
        check = c.inputs["healthcheck"]
        assert check["tests"][0] in ("CMD", "CMD-SHELL"), c.name
        assert check["interval"] and check["timeout"] and check["retries"] >= 1
        # A PITR agent, and the off-host repository, turn healthy after their first full
        # backups and drills: up does not wait as long as a database is large.
        gate = gated.get(c.name.removesuffix("-container"))
        if gate is not None:
            assert c.inputs["wait"] is False and gate.inputs["waitSeconds"] >= 10, c.name
            continue
        waits = not c.service_name.endswith(("-pitr", "-pitr-repository"))
        assert c.inputs["wait"] is waits, c.name
        assert c.inputs["waitTimeout"] >= 10


def test_databases_check_their_own_user_and_database(stack_graph: Graph) -> None:
    p = stack_graph.name_prefix()
    for service, (user, database) in DATABASES.items():
        test = stack_graph.container(f"{p}-{service}-db").inputs["healthcheck"]["tests"]
        assert test[:2] == ["CMD", "pg_isready"]
        assert test[test.index("-U") + 1] == user
        assert test[test.index("-d") + 1] == database


def test_services_probe_get_health_on_their_port(stack_graph: Graph) -> None:
    p = stack_graph.name_prefix()
    for service in ("gateway", *BUSINESS, "frontend", "backoffice"):
        test = stack_graph.container(f"{p}-{service}").inputs["healthcheck"]["tests"]
        assert test[:3] == ["CMD", "node", "-e"]
        assert "/health" in test[3] and "process.env.PORT" in test[3]


def test_the_edge_probes_its_own_loopback_listener_and_waits_for_no_app(
    stack_graph: Graph,
) -> None:
    p = stack_graph.name_prefix()
    edge = stack_graph.container(f"{p}-edge")
    assert edge.inputs["healthcheck"]["tests"] == [
        "CMD",
        "wget",
        "-q",
        "-O",
        "/dev/null",
        "http://127.0.0.1:8079/health",
    ]
    # Caddy starts without its upstreams (a request to one that is not up yet is a 502).
    containers = {c.urn for c in stack_graph.containers()}
    seeds = {f"{p}-edge-config-seed"} | ({f"{p}-edge-auth-seed"} if p == "shop" else set())
    assert edge.depends_on & containers == {stack_graph.container(s).urn for s in seeds}


def test_redis_check_authenticates_when_it_has_a_password(prod_graph: Graph) -> None:
    test = prod_graph.container("shop-redis").inputs["healthcheck"]["tests"]
    assert test[0] == "CMD-SHELL"
    assert "REDISCLI_AUTH" in test[1] and "PONG" in test[1]


def test_each_service_waits_for_its_database(stack_graph: Graph) -> None:
    p = stack_graph.name_prefix()
    for service in DATABASES:
        container = stack_graph.container(f"{p}-{service}")
        assert waits_for(stack_graph, container, f"{p}-{service}-db")
        for other in DATABASES:
            if other != service:
                assert not waits_for(stack_graph, container, f"{p}-{other}-db")


def test_redis_users_wait_for_redis(stack_graph: Graph) -> None:
    p = stack_graph.name_prefix()
    for service in ("cart", "gateway"):
        assert waits_for(stack_graph, stack_graph.container(f"{p}-{service}"), f"{p}-redis")


def test_apps_wait_for_nothing_their_contract_does_not_need(stack_graph: Graph) -> None:
    # The gateway starts beside the services it proxies to, the web apps beside the gateway.
    p = stack_graph.name_prefix()
    apps = {f"{p}-{s}" for s in ("gateway", *BUSINESS, "frontend", "backoffice")}
    for name in apps:
        container = stack_graph.container(name)
        assert not any(waits_for(stack_graph, container, other) for other in apps - {name}), name


def test_containers_wait_for_their_secret_files(stack_graph: Graph) -> None:
    consumers = 0
    for c in stack_graph.running_containers():
        for mount in c.inputs.get("volumes", []):
            if mount["containerPath"] == "/run/secrets":
                assert mount["readOnly"] is True
                seed = stack_graph.container(mount["volumeName"] + "-seed")
                assert seed.urn in c.depends_on, c.name
                consumers += 1
    # Four databases, six services with secrets, the four database exporters, Grafana, the
    # health probe; Redis, its exporter and the backup job in prod.
    assert consumers == (19 if stack_graph.name_prefix() == "shop" else 16)


def test_which_containers_are_replaced_side_by_side(stack_graph: Graph) -> None:
    # Apps that hold no host port are replaced side by side under a new generation name; what
    # holds a fixed port, a data volume or a fixed name goes first. Explicit either way.
    p = stack_graph.name_prefix()
    side_by_side = {c.name for c in stack_graph.containers() if not c.delete_before_replace}
    assert all(c.delete_before_replace_defined for c in stack_graph.containers())
    # The edge proxy holds the published ports of the gateway and web apps; dev's business
    # services publish their own.
    rolling = {"gateway", "frontend", "backoffice"} | (set(BUSINESS) if p == "shop" else set())
    assert side_by_side == {f"platform-{s}-container" for s in rolling}
    for service in rolling:
        name = stack_graph.container(f"{p}-{service}").inputs["name"]
        assert name.startswith(f"{p}-{service}--")
    assert stack_graph.container(f"{p}-edge").inputs["name"] == f"{p}-edge"
    for c in stack_graph.running_containers():
        # Docker applies health checks only on create.
        assert "healthcheck" in c.replace_on_changes, c.name


def test_backup_job_waits_for_every_database_and_reports_staleness(prod_graph: Graph) -> None:
    job = prod_graph.container("shop-backup")
    for service in DATABASES:
        assert waits_for(prod_graph, job, f"shop-{service}-db")
    assert job.inputs["healthcheck"]["tests"] == [
        "CMD",
        "python3",
        "-m",
        "backup",
        "status",
        "--dest",
        "/backups",
        "--max-age",
        "26h",
    ]
    command = job.inputs["command"]
    assert command[:4] == ["python3", "-m", "backup", "schedule"]
    assert command[command.index("--every") + 1] == "24h"
    assert command[command.index("--keep-last") + 1] == "7"
    assert command[command.index("--targets") + 1] == "/run/secrets/targets.json"


def test_backup_job_is_off_in_dev(dev_graph: Graph) -> None:
    assert not any(c.inputs["name"].endswith("-backup") for c in dev_graph.containers())
