"""Networks make the isolation real: a service reaches its own database and no other."""

from __future__ import annotations

from collections import defaultdict

from plan.recorder import Graph

DATABASE_SERVICES = ("customer", "product", "order", "content")


def members(graph: Graph) -> dict[str, set[str]]:
    """Docker network name -> names of the running containers attached to it."""
    attached: dict[str, set[str]] = defaultdict(set)
    for container in graph.running_containers():
        for net in container.inputs.get("networksAdvanced", []):
            attached[net["name"]].add(container.service_name)
    return attached


def test_each_database_network_holds_its_database_and_its_service_only(dev_graph: Graph) -> None:
    attached = members(dev_graph)
    for service in DATABASE_SERVICES:
        assert attached[f"shop-dev-{service}-db"] == {
            f"shop-dev-{service}-db",
            f"shop-dev-{service}",
            f"shop-dev-{service}-db-exporter",
        }


def test_in_prod_the_backup_job_joins_every_database_network(prod_graph: Graph) -> None:
    attached = members(prod_graph)
    for service in DATABASE_SERVICES:
        expected = {
            f"shop-{service}-db",
            f"shop-{service}",
            "shop-backup",
            f"shop-{service}-db-exporter",
        }
        assert attached[f"shop-{service}-db"] == expected
    backup_nets = prod_graph.container("shop-backup").inputs["networksAdvanced"]
    # And the monitoring network, where it serves its metrics.
    assert sorted(n["name"] for n in backup_nets) == sorted(
        [*(f"shop-{s}-db" for s in DATABASE_SERVICES), "shop-monitoring"]
    )


def test_each_database_is_on_no_other_network(stack_graph: Graph) -> None:
    p = stack_graph.name_prefix()
    # In prod beside the off-host repository: also the server's link to it, which only the
    # server and its agent join (tests/unit/components/parts/test_off_host.py).
    link = p == "shop"
    for service in DATABASE_SERVICES:
        nets = stack_graph.container(f"{p}-{service}-db").inputs["networksAdvanced"]
        expected = [f"{p}-{service}-db", *([f"{p}-{service}-db-pitr-link"] if link else [])]
        assert [n["name"] for n in nets] == expected
        assert nets[0]["aliases"] == [f"{service}-db"]


def test_no_service_shares_a_network_with_another_services_database(stack_graph: Graph) -> None:
    p = stack_graph.name_prefix()
    attached = members(stack_graph)
    for service in DATABASE_SERVICES:
        for other in DATABASE_SERVICES:
            if other != service:
                assert f"{p}-{service}" not in attached[f"{p}-{other}-db"]


def test_gateway_and_web_apps_reach_no_database(stack_graph: Graph) -> None:
    p = stack_graph.name_prefix()
    for service in ("gateway", "frontend", "backoffice"):
        nets = {
            n["name"] for n in stack_graph.container(f"{p}-{service}").inputs["networksAdvanced"]
        }
        assert not any(name.endswith("-db") for name in nets), service


def test_web_apps_sit_on_the_edge_only(stack_graph: Graph) -> None:
    p = stack_graph.name_prefix()
    for service in ("frontend", "backoffice"):
        nets = [
            n["name"] for n in stack_graph.container(f"{p}-{service}").inputs["networksAdvanced"]
        ]
        assert nets == [f"{p}-edge"]


def test_redis_is_shared_only_with_the_services_that_use_it(stack_graph: Graph) -> None:
    p = stack_graph.name_prefix()
    assert members(stack_graph)[f"{p}-cache"] == {
        f"{p}-redis",
        f"{p}-cart",
        f"{p}-gateway",
        f"{p}-redis-exporter",
    }


def test_private_networks_are_internal_in_prod(prod_graph: Graph) -> None:
    # The edge's and Alertmanager's way out (to the receivers), and the off-host repository's
    # links between the hosts, are the only ones not internal.
    open_networks = {"shop-edge", "shop-alerting", "shop-pitr-repository"}
    open_networks |= {f"shop-{service}-db-pitr-link" for service in DATABASE_SERVICES}
    for net in prod_graph.networks():
        name = net.inputs["name"]
        assert net.inputs["internal"] is (name not in open_networks), name


def test_dev_networks_allow_publishing(dev_graph: Graph) -> None:
    # Docker publishes no port of a container attached only to internal networks.
    assert all(net.inputs["internal"] is False for net in dev_graph.networks())


def test_the_edge_proxy_sits_on_the_edge_network_and_serves_metrics_on_monitoring_only(
    stack_graph: Graph,
) -> None:
    p = stack_graph.name_prefix()
    nets = stack_graph.container(f"{p}-edge").inputs["networksAdvanced"]
    assert [(n["name"], n["aliases"]) for n in nets] == [
        (f"{p}-edge", ["edge"]),
        (f"{p}-monitoring", ["edge-metrics"]),
    ]
    assert members(stack_graph)[f"{p}-edge"] == {
        f"{p}-{s}" for s in ("edge", "gateway", "frontend", "backoffice", "health-probe")
    }


def test_prometheus_joins_the_monitoring_network_alone(stack_graph: Graph) -> None:
    p = stack_graph.name_prefix()
    nets = stack_graph.container(f"{p}-prometheus").inputs["networksAdvanced"]
    assert [n["name"] for n in nets] == [f"{p}-monitoring"]


def test_each_exporter_joins_what_it_watches_and_monitoring_only(stack_graph: Graph) -> None:
    p = stack_graph.name_prefix()
    for service in DATABASE_SERVICES:
        nets = stack_graph.container(f"{p}-{service}-db-exporter").inputs["networksAdvanced"]
        assert [n["name"] for n in nets] == [f"{p}-{service}-db", f"{p}-monitoring"]
    nets = stack_graph.container(f"{p}-redis-exporter").inputs["networksAdvanced"]
    assert [n["name"] for n in nets] == [f"{p}-cache", f"{p}-monitoring"]


def test_the_monitoring_network_holds_monitoring_parts_and_the_edge_only(
    stack_graph: Graph,
) -> None:
    p = stack_graph.name_prefix()
    exporters = {f"{p}-{s}-db-exporter" for s in DATABASE_SERVICES} | {f"{p}-redis-exporter"}
    # What serves metrics of its own: the PITR agents, and the backup job (prod).
    agents = {f"{p}-{s}-db-pitr" for s in DATABASE_SERVICES}
    backup = {f"{p}-backup"} if p == "shop" else set()
    assert members(stack_graph)[f"{p}-monitoring"] == {
        f"{p}-prometheus",
        f"{p}-alertmanager",
        f"{p}-grafana",
        f"{p}-edge",
        *exporters,
        *agents,
        *backup,
        f"{p}-health-probe",
    }
    # Alertmanager alone has a way out, to the receivers.
    assert members(stack_graph)[f"{p}-alerting"] == {f"{p}-alertmanager"}
