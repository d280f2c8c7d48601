"""The dev stack reproduces the original setup's port map and origins exactly."""

from __future__ import annotations

from typing import Any

from plan.recorder import Graph

# service -> (host port, container port), from SPEC.md; frontend/backoffice container ports
# are this project's choice (3008, 3009).
SPEC_SERVICE_PORTS = {
    "gateway": (13000, 3000),
    "customer": (13001, 3001),
    "product": (13002, 3002),
    "order": (13003, 3003),
    "cart": (13004, 3004),
    "content": (13005, 3005),
    "frontend": (13008, 3008),
    "backoffice": (13009, 3009),
}
SPEC_DATABASE_PORTS = {"customer": 15432, "product": 15433, "order": 15434, "content": 15436}
SPEC_ORIGINS = [
    "http://localhost:13008",
    "http://localhost:13009",
    "http://localhost:3000",
    "http://localhost:3001",
]


def published(graph: Graph) -> dict[str, list[dict[str, Any]]]:
    return {c.service_name: c.inputs.get("ports", []) for c in graph.running_containers()}


EDGE_APPS = ("gateway", "frontend", "backoffice")


def test_every_service_is_published_on_its_spec_port(dev_graph: Graph) -> None:
    ports = published(dev_graph)
    # The business services publish their own ports; the edge proxy those of the gateway and
    # web apps, listening on each app's own port inside and routing it to that app.
    for service, (host, container) in SPEC_SERVICE_PORTS.items():
        if service in EDGE_APPS:
            assert ports[f"shop-dev-{service}"] == [], service
            assert {"internal": container, "external": host, "ip": "127.0.0.1"} in ports[
                "shop-dev-edge"
            ], service
        else:
            assert ports[f"shop-dev-{service}"] == [
                {"internal": container, "external": host, "ip": "127.0.0.1"}
            ], service
    # And Grafana's port (not in the SPEC's map), inside on a port of its own.
    assert ports["shop-dev-edge"][len(EDGE_APPS) :] == [
        {"internal": 3030, "external": GRAFANA_PORT, "ip": "127.0.0.1"}
    ]


def test_the_edge_routes_each_port_to_its_app(dev_graph: Graph) -> None:
    caddyfile = next(
        upload["content"]
        for upload in dev_graph.container("shop-dev-edge-config-seed").inputs["uploads"]
        if upload["file"].endswith("/Caddyfile")
    )
    for service in EDGE_APPS:
        _, port = SPEC_SERVICE_PORTS[service]
        site = caddyfile[caddyfile.index(f"http://:{port} {{") :].split("\n}\n")[0]
        assert f"\treverse_proxy @get {service}:{port} {{" in site
        assert f"\treverse_proxy {service}:{port} {{" in site
    assert "auto_https off" in caddyfile  # plain HTTP in dev


PROMETHEUS_UI_PORT = 19090
"""Not in the SPEC's map: the port the issue chose for Prometheus's UI."""
GRAFANA_PORT = 13010
"""Not in the SPEC's map either: beside the web apps' ports."""


def test_every_database_and_redis_is_published_on_its_spec_port(dev_graph: Graph) -> None:
    ports = published(dev_graph)
    for service, host in SPEC_DATABASE_PORTS.items():
        assert ports[f"shop-dev-{service}-db"] == [
            {"internal": 5432, "external": host, "ip": "127.0.0.1"}
        ]
    assert ports["shop-dev-redis"] == [{"internal": 6379, "external": 6379, "ip": "127.0.0.1"}]


def test_prometheus_ui_is_published_on_loopback(dev_graph: Graph) -> None:
    ports = published(dev_graph)
    assert ports["shop-dev-prometheus"] == [
        {"internal": 9090, "external": PROMETHEUS_UI_PORT, "ip": "127.0.0.1"}
    ]


def test_nothing_else_is_published(dev_graph: Graph) -> None:
    all_host_ports = sorted(p["external"] for ports in published(dev_graph).values() for p in ports)
    expected = sorted(
        [h for h, _ in SPEC_SERVICE_PORTS.values()]
        + [*SPEC_DATABASE_PORTS.values(), 6379, PROMETHEUS_UI_PORT, GRAFANA_PORT]
    )
    assert all_host_ports == expected


def test_services_get_the_spec_cors_origins(dev_graph: Graph) -> None:
    for service in SPEC_SERVICE_PORTS:
        envs = dev_graph.container(f"shop-dev-{service}").inputs["envs"]
        assert f"CORS_ORIGINS={','.join(SPEC_ORIGINS)}" in envs


def test_service_port_env_matches_its_container_port(dev_graph: Graph) -> None:
    for service, (_, container) in SPEC_SERVICE_PORTS.items():
        assert f"PORT={container}" in dev_graph.container(f"shop-dev-{service}").inputs["envs"]


def test_urls_are_the_published_ones(dev_graph: Graph) -> None:
    assert dev_graph.outputs["urls"] == {
        service: f"http://localhost:{host}" for service, (host, _) in SPEC_SERVICE_PORTS.items()
    }


def test_databases_output_points_at_published_ports(dev_graph: Graph) -> None:
    databases = dev_graph.outputs["databases"]
    assert set(databases) == set(SPEC_DATABASE_PORTS)
    users = {
        "customer": "customer_user",
        "product": "product_user",
        "order": "order_user",
        "content": "content_user",
    }
    names = {
        "customer": "customer_db",
        "product": "product_db",
        "order": "order_db",
        "content": "website_content_db",
    }
    for service, target in databases.items():
        assert set(target) == {"host", "port", "database", "user", "password"}
        assert target["host"] == "localhost"
        assert target["port"] == SPEC_DATABASE_PORTS[service]
        assert target["database"] == names[service]
        assert target["user"] == users[service]
        assert target["password"]
