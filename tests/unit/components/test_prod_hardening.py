"""Prod is hardened on every container; dev keeps the image's own start-up."""

from __future__ import annotations

import pytest

from plan.recorder import Graph
from stacks.images import is_pinned


def caddyfile(graph: Graph, prefix: str) -> str:
    seed = graph.container(f"{prefix}-edge-config-seed")
    (text,) = [u["content"] for u in seed.inputs["uploads"] if u["file"].endswith("/Caddyfile")]
    return str(text)


def test_only_the_edge_proxy_is_published(prod_graph: Graph) -> None:
    published = {c.service_name: c.inputs.get("ports", []) for c in prod_graph.running_containers()}
    every_address = "0.0.0.0"  # noqa: S104 (the prod file opens the edge to the internet)
    assert published.pop("shop-edge") == [
        {"internal": 8080, "external": 80, "ip": every_address},
        {"internal": 8443, "external": 443, "ip": every_address},
    ]
    # And the off-host repository's TLS servers, which take only certificates of the stack's
    # CA: the repository's on its own host, each database's in its agent on this one.
    assert published.pop("shop-pitr-repository") == [
        {"internal": 8432, "external": 8432, "ip": every_address}
    ]
    for index, service in enumerate(("customer", "product", "order", "content")):
        assert published.pop(f"shop-{service}-db-pitr") == [
            {"internal": 8433, "external": 8433 + index, "ip": every_address}
        ]
    assert all(ports == [] for ports in published.values()), published


def test_the_edge_serves_https_by_host_name_and_redirects_http(prod_graph: Graph) -> None:
    text = caddyfile(prod_graph, "shop")
    for host, upstream in (
        ("shop.example.com", "frontend:3008"),
        ("admin.shop.example.com", "backoffice:3009"),
        ("api.shop.example.com", "gateway:3000"),
    ):
        assert f"\n{host} {{\n" in text  # HTTPS: a bare host name is an HTTPS site for Caddy
        site = text[text.index(f"\n{host} {{") :]
        assert f"reverse_proxy {upstream} {{" in site.split("\n}\n")[0]
        assert "Strict-Transport-Security" in site.split("\n}\n")[0]
    assert (
        "http://admin.shop.example.com, http://api.shop.example.com, "
        "http://grafana.shop.example.com, http://prometheus.shop.example.com, "
        "http://shop.example.com {\n\tredir https://{host}{uri} 308\n}"
    ) in text
    assert "email ops@example.com" in text and "admin off" in text


def test_every_container_is_locked_down(prod_graph: Graph) -> None:
    for c in prod_graph.running_containers():
        i = c.inputs
        assert i["readOnly"] is True, c.name
        assert i["capabilities"] == {"drops": ["ALL"]}, c.name
        assert i["securityOpts"] == ["no-new-privileges:true"], c.name
        assert i["user"] and not i["user"].startswith(("root", "0")), c.name
        assert i["memory"] > 0 and i["memorySwap"] == i["memory"], c.name
        assert float(i["cpus"]) > 0, c.name
        assert i["restart"] == "unless-stopped", c.name
        assert i["logDriver"] == "json-file"
        assert set(i["logOpts"]) == {"max-size", "max-file"}
        assert "/tmp" in i["tmpfs"], c.name


def test_images_that_start_as_root_run_as_their_own_user(prod_graph: Graph) -> None:
    # With every capability dropped, the root-then-drop start of the official images fails.
    assert prod_graph.container("shop-customer-db").inputs["user"] == "postgres"
    assert prod_graph.container("shop-redis").inputs["user"] == "redis"
    # The socket directory is writable: a volume the PITR agent shares.
    db = prod_graph.container("shop-customer-db").inputs
    assert "/var/run/postgresql" not in db["tmpfs"]
    assert {"volumeName": "shop-customer-db-socket", "containerPath": "/var/run/postgresql"} in [
        {k: v for k, v in m.items() if k in ("volumeName", "containerPath")} for m in db["volumes"]
    ]
    assert prod_graph.container("shop-customer-db-pitr").inputs["user"] == "postgres"


def test_images_are_pinned(prod_graph: Graph) -> None:
    for c in prod_graph.containers():
        assert is_pinned(c.inputs["image"]), c.inputs["image"]


def test_redis_has_a_password_and_a_memory_policy(prod_graph: Graph) -> None:
    command = prod_graph.container("shop-redis").inputs["command"]
    assert command[:2] == ["redis-server", "/run/secrets/redis.conf"]
    assert command[command.index("--maxmemory") + 1] == "384mb"
    assert command[command.index("--maxmemory-policy") + 1] == "allkeys-lru"
    cart_env = prod_graph.container("shop-cart").inputs["envs"]
    assert "REDIS_PASSWORD_FILE=/run/secrets/redis-password" in cart_env


def test_prod_cors_origins_come_from_the_stack_file(prod_graph: Graph) -> None:
    envs = prod_graph.container("shop-gateway").inputs["envs"]
    assert "CORS_ORIGINS=https://shop.example.com,https://admin.shop.example.com" in envs


def test_database_tuning_is_per_database(prod_graph: Graph) -> None:
    order = prod_graph.container("shop-order-db").inputs["command"]
    customer = prod_graph.container("shop-customer-db").inputs["command"]
    assert "max_connections=300" in order and "shared_buffers=512MB" in order
    assert "max_connections=200" in customer and "shared_buffers=256MB" in customer
    assert "effective_cache_size=1GB" in customer


def test_data_volumes_are_protected_in_prod_only(prod_graph: Graph, dev_graph: Graph) -> None:
    def data_volumes(graph: Graph) -> list[bool]:
        return [v.protect for v in graph.volumes() if v.inputs["name"].endswith("-data")]

    assert data_volumes(prod_graph) and all(data_volumes(prod_graph))
    assert data_volumes(dev_graph) and not any(data_volumes(dev_graph))


def test_dev_starts_images_as_their_authors_intend(dev_graph: Graph) -> None:
    for c in dev_graph.running_containers():
        assert c.inputs["readOnly"] is False
        # A PITR agent runs as the server's user everywhere: it reads the server's files.
        assert c.inputs.get("user") == ("postgres" if c.service_name.endswith("-pitr") else None)
        assert "capabilities" not in c.inputs
        assert c.inputs["securityOpts"] == ["no-new-privileges:true"]


def test_prod_outputs_name_in_network_hosts(prod_graph: Graph) -> None:
    databases = prod_graph.outputs["databases"]
    assert databases["content"] == {
        "host": "content-db",
        "port": 5432,
        "database": "website_content_db",
        "user": "content_user",
        "password": "generated-platform-content-db-password",
    }
    assert prod_graph.outputs["urls"]["gateway"] == "https://api.shop.example.com"
    assert prod_graph.outputs["urls"]["customer"] == "http://customer:3001"
    # Every network but the off-host repository's links, which nothing else joins.
    off_host = {"shop-pitr-repository"} | {
        f"shop-{s}-db-pitr-link" for s in ("customer", "product", "order", "content")
    }
    assert (
        set(prod_graph.outputs["networks"].values())
        == {n.inputs["name"] for n in prod_graph.networks()} - off_host
    )


@pytest.mark.parametrize(
    ("image", "pinned"),
    [
        ("registry.example.com/shop/api:1.4.2", True),
        ("postgres:16.6-bookworm", True),
        ("shop/api@sha256:" + "a" * 64, True),
        ("registry.example.com:5000/shop/api:2", True),
        ("shop/api", False),
        ("shop/api:latest", False),
        ("shop/api:stable", False),
        ("registry.example.com:5000/shop/api", False),
        ("shop/api:dev", False),
    ],
)
def test_pinned_means_a_digest_or_a_version_tag(image: str, pinned: bool) -> None:
    # One rule for the settings and the policy pack (a prod file passing one passes the other).
    assert is_pinned(image) is pinned
