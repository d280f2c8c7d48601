"""A bad stack file fails before any resource exists, with a message naming the key."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from plan.recorder import Graph, run_program
from stacks.catalogue import PLATFORM
from stacks.loader import StackConfigError, parse_settings
from stacks.settings import PlatformSettings
from stacks.settings.rules.inventory import images
from stacks.settings.rules.off_host import off_host_is_the_stacks_host
from tests.unit.conftest import SETTINGS_KEY, edited

Edit = Callable[[dict[str, Any]], None]
OFF_HOST_SETTINGS = {
    "enabled": True,
    "dockerHost": "tcp://backup-1:2376",
    "address": "backup-1",
    "databasesAddress": "shop-1",
}
"""An off-host repository that passes every rule (but that it is not deployed yet)."""


def problems_of(stack: str, edit: Edit) -> str:
    raw = json.dumps(edited(stack, edit)[SETTINGS_KEY])
    with pytest.raises(StackConfigError) as caught:
        parse_settings(raw, PLATFORM, f"Pulumi.{stack}.yaml")
    return str(caught.value)


def put(path: str, value: Any) -> Edit:
    def edit(platform: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = platform
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value

    return edit


def drop(path: str) -> Edit:
    def edit(platform: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = platform
        for key in parents:
            node = node[key]
        del node[last]

    return edit


def on_swarm(*edits: Edit) -> Edit:
    """On a swarm, every workload with a volume pinned, two of each app and of the edge,
    which serves one certificate of its own (prod's ACME cannot be shared), then `edits`."""

    def edit(platform: dict[str, Any]) -> None:
        platform["engine"] = "swarm"
        for service in platform["services"].values():
            service["replicas"] = 2
        platform["edge"]["replicas"] = 2
        if platform["edge"].get("tls"):
            platform["edge"]["tls"] = {"certificates": "files"}
        platform["swarm"] = {
            "placement": {
                key: "ecommerce.data"
                for key in (
                    "redis",
                    "edge",
                    "backup",
                    "customer-db",
                    "product-db",
                    "order-db",
                    "content-db",
                )
            }
        }
        for more in edits:
            more(platform)

    return edit


CASES = [
    pytest.param(
        "prod",
        put("services.order.replicas", 2),
        "ecommerce:platform.services.order.replicas: 2 replicas need engine: swarm",
        id="replicas-on-one-host",
    ),
    pytest.param(
        "prod",
        on_swarm(drop("swarm.placement.order-db")),
        "ecommerce:platform.swarm.placement.order-db: missing; name the label of the node "
        "that holds its volume",
        id="swarm-placement-missing",
    ),
    pytest.param(
        "prod",
        on_swarm(put("swarm.placement.cart", "ecommerce.data")),
        "ecommerce:platform.swarm.placement.cart: nothing with a volume is called that",
        id="swarm-placement-unknown",
    ),
    pytest.param(
        "prod",
        on_swarm(put("databases.order.replicas", 2)),
        "ecommerce:platform.databases.order: replicas: a database runs as one server "
        "pinned to the node of its volume",
        id="swarm-database-replicas",
    ),
    pytest.param(
        "prod",
        on_swarm(put("services.cart.replicas", 1)),
        "ecommerce:platform.services.cart.replicas: 1 on a prod swarm: losing its node would "
        "stop it; set 2 or more",
        id="swarm-prod-single-app",
    ),
    pytest.param(
        "prod",
        on_swarm(put("edge.replicas", 1)),
        "ecommerce:platform.edge.replicas: 1 on a prod swarm",
        id="swarm-prod-single-edge",
    ),
    pytest.param(
        "prod",
        on_swarm(put("edge.tls", {"certificates": "auto"})),
        "ecommerce:platform.edge.tls.certificates: auto with edge.replicas 2: each edge would "
        "ask the CA on its own",
        id="swarm-edges-sharing-acme",
    ),
    pytest.param(
        "dev",
        on_swarm(),
        "ecommerce:platform.services.gateway.build: a swarm runs published images",
        id="swarm-build",
    ),
    pytest.param(
        "prod",
        on_swarm(put("publishIp", "10.0.0.5")),
        "ecommerce:platform.publishIp: 10.0.0.5 cannot be kept on a swarm",
        id="swarm-publish-ip",
    ),
    pytest.param(
        "dev",
        put("pitr.image", "postgres-pitr:16"),
        "ecommerce:platform.pitr: set exactly one of image",
        id="pitr-image-and-build",
    ),
    pytest.param(
        "prod",
        lambda p: p["pitr"].update(build={"context": "pitr"}, image=None),
        "ecommerce:platform.pitr.build: prod runs a pinned published image",
        id="pitr-build-in-prod",
    ),
    pytest.param(
        "dev",
        put("pitr.build.args", {"POSTGRES_IMAGE": "postgres:17"}),
        "ecommerce:platform.pitr.build.args.POSTGRES_IMAGE: set by the platform from "
        "postgres.image",
        id="pitr-base-image-set-twice",
    ),
    pytest.param(
        "dev",
        put("pitr.incrEveryHours", 24),
        "ecommerce:platform.pitr.incrEveryHours: 24 must be shorter than pitr.diffEveryHours (24)",
        id="pitr-incr-not-shorter-than-diff",
    ),
    pytest.param(
        "prod",
        put("databases.order.tuning.extra", {"archive_mode": "off"}),
        "ecommerce:platform.databases.order.tuning.extra.archive_mode: set by pitr",
        id="pitr-archiving-overridden",
    ),
    pytest.param(
        "dev",
        put("pitr.maxArchiveAgeMinutes", 5),
        "ecommerce:platform.pitr.maxArchiveAgeMinutes: 5 would report a stale archive "
        "between two checks",
        id="pitr-archive-age-below-check",
    ),
    pytest.param(
        "dev",
        lambda p: p["pitr"].update(enabled=False, offHost={"enabled": True}),
        "ecommerce:platform.pitr.offHost.enabled: needs pitr.enabled: true",
        id="off-host-without-pitr",
    ),
    pytest.param(
        "prod",
        put("pitr.offHost", {"enabled": True, "address": "backup-1.example.com"}),
        "ecommerce:platform.pitr.offHost.dockerHost: not filled in; name the Docker engine of "
        "another host for the backup repository (e.g. tcp://backup-1.example.com:2376), or "
        "set pitr.offHost.enabled: false",
        id="off-host-unfilled",
    ),
    pytest.param(
        "prod",
        put("pitr.offHost", {"enabled": True, "dockerHost": "tcp://backup-1:2376"}),
        "ecommerce:platform.pitr.offHost.address: not filled in",
        id="off-host-no-address",
    ),
    pytest.param(
        "prod",
        put("pitr.offHost", {"enabled": True, "dockerHost": "tcp://b-1:2376", "address": "b"}),
        "ecommerce:platform.pitr.offHost.databasesAddress: not filled in; name the host name or "
        "IP address the repository's host reaches this stack's Docker host by",
        id="off-host-without-the-databases-address",
    ),
    pytest.param(
        "prod",
        put("pitr.offHost", {**OFF_HOST_SETTINGS, "databasesAddress": "backup-1"}),
        "ecommerce:platform.pitr.offHost.databasesAddress: backup-1 is also the repository's "
        "address; the repository must be on another host than the databases",
        id="off-host-at-the-databases-address",
    ),
    pytest.param(
        "prod",
        put("pitr.offHost", {**OFF_HOST_SETTINGS, "dockerHost": "ssh://backup@backup-1"}),
        "ecommerce:platform.pitr.offHost.dockerHost: ssh://backup@backup-1 is not supported: the "
        "program sends that host's Docker engine calls of its own",
        id="off-host-over-ssh",
    ),
    pytest.param(
        "prod",
        put("pitr.offHost", {**OFF_HOST_SETTINGS, "databasePortsFrom": 442}),
        "ecommerce:platform.pitr.offHost.databasePortsFrom: host port 443 (the product "
        "database's TLS server) is already used by edge.httpsPort; move one of them",
        id="off-host-tls-port-taken",
    ),
    pytest.param(
        "prod",
        put("pitr.offHost", {**OFF_HOST_SETTINGS, "databasePortsFrom": 65534}),
        "ecommerce:platform.pitr.offHost.databasePortsFrom: 65534 leaves no room for the 4 "
        "databases' TLS servers (up to 65537, past 65535); use at most 65532",
        id="off-host-tls-ports-past-the-last",
    ),
    pytest.param(
        "prod",
        put("pitr.offHost", {"enabled": True, "dockerHost": "backup-1:2376", "address": "b"}),
        "ecommerce:platform.pitr.offHost.dockerHost: String should match pattern",
        id="off-host-not-an-engine-address",
    ),
    pytest.param(
        "prod",
        put("pitr.offHost", {"renewBeforeDays": 90, "certificateDays": 60}),
        "ecommerce:platform.pitr.offHost.renewBeforeDays: 90 is not shorter than "
        "certificateDays (60)",
        id="off-host-renewal-past-validity",
    ),
    pytest.param(
        "prod",
        on_swarm(put("pitr.offHost", {"enabled": True})),
        "ecommerce:platform.swarm.placement.pitr-repository: missing",
        id="off-host-swarm-unplaced",
    ),
    pytest.param(
        "prod",
        on_swarm(
            put("pitr.offHost", {"enabled": True}),
            put("swarm.placement.pitr-repository", "ecommerce.data"),
        ),
        "ecommerce:platform.swarm.placement.pitr-repository: ecommerce.data is also the label "
        "of customer-db, product-db, order-db, content-db; in prod the repository runs on "
        "another node than the databases",
        id="off-host-swarm-same-node",
    ),
    pytest.param(
        "prod",
        on_swarm(
            put("pitr.offHost", {"enabled": True, "dockerHost": "ssh://b@backup-1"}),
            put("swarm.placement.pitr-repository", "ecommerce.backup"),
        ),
        "ecommerce:platform.pitr.offHost.dockerHost: a swarm runs the repository as a service "
        "of its own, placed by swarm.placement.pitr-repository; remove it",
        id="off-host-swarm-host-named",
    ),
    pytest.param(
        "prod",
        put("pitr.image", "registry.example.com/ecommerce/postgres-pitr:latest"),
        "ecommerce:platform.pitr.image: 'registry.example.com/ecommerce/postgres-pitr:"
        "latest' is not pinned",
        id="pitr-image-unpinned",
    ),
    pytest.param(
        "dev",
        put("services.product.hostPort", 13001),
        "ecommerce:platform.services.product.hostPort: host port 13001 is already used by "
        "services.customer.hostPort",
        id="duplicate-host-port",
    ),
    pytest.param(
        "dev",
        put("databases.order.hostPort", 6379),
        "ecommerce:platform.redis.hostPort: host port 6379 is already used by "
        "databases.order.hostPort",
        id="duplicate-port-across-kinds",
    ),
    pytest.param(
        "dev",
        put("services.customer.hostPort", 70000),
        "ecommerce:platform.services.customer.hostPort: Input should be less than or equal "
        "to 65535",
        id="port-above-range",
    ),
    pytest.param(
        "dev",
        put("databases.customer.hostPort", 0),
        "ecommerce:platform.databases.customer.hostPort: Input should be greater than or "
        "equal to 1",
        id="port-below-range",
    ),
    pytest.param(
        "dev",
        put("services.payment", {"image": "ecommerce/payment:dev"}),
        "ecommerce:platform.services.payment: unknown service; known: gateway, customer",
        id="unknown-service",
    ),
    pytest.param(
        "dev",
        put("databases.cart", {"hostPort": 15435}),
        "ecommerce:platform.databases.cart: no such database",
        id="database-for-cart",
    ),
    pytest.param(
        "dev",
        put("services.cart.stopGraceSeconds", 600),
        "ecommerce:platform.services.cart.stopGraceSeconds: 600 is longer than waitTimeoutSeconds (180)",
        id="grace-beyond-wait-timeout",
    ),
    pytest.param(
        "dev",
        drop("services.cart.build"),
        "ecommerce:platform.services.cart: set exactly one of image (a published image) and build",
        id="service-without-image",
    ),
    pytest.param(
        "dev",
        put("services.cart.image", "ecommerce/cart-service:dev"),
        "ecommerce:platform.services.cart: set exactly one of image",
        id="image-and-build",
    ),
    pytest.param(
        "dev",
        put("services.cart.build", {"dockerfile": "Dockerfile"}),
        "ecommerce:platform.services.cart.build.context: Field required",
        id="build-without-context",
    ),
    pytest.param(
        "prod",
        put("services.cart", {"build": {"context": "../cart-service"}}),
        "ecommerce:platform.services.cart.build: prod runs pinned published images",
        id="build-in-prod",
    ),
    pytest.param(
        "dev",
        drop("services.cart"),
        "ecommerce:platform.services.cart: missing; every service needs an entry with an image",
        id="service-missing",
    ),
    pytest.param(
        "dev",
        put("services.cart.image", ""),
        "ecommerce:platform.services.cart.image: String should have at least 1 character",
        id="empty-image",
    ),
    pytest.param(
        "prod",
        put("services.customer.image", "registry.example.com/customer:latest"),
        "ecommerce:platform.services.customer.image: 'registry.example.com/customer:latest' "
        "is not pinned",
        id="latest-in-prod",
    ),
    pytest.param(
        "prod",
        put("postgres.image", "postgres"),
        "ecommerce:platform.postgres.image: 'postgres' is not pinned",
        id="untagged-in-prod",
    ),
    pytest.param(
        "prod",
        put("services.customer.image", "registry.example.com:5000/customer"),
        "services.customer.image: 'registry.example.com:5000/customer' is not pinned",
        id="registry-port-is-not-a-tag",
    ),
    pytest.param(
        "prod",
        put("databases.customer.hostPort", 15432),
        "ecommerce:platform.databases.customer.hostPort: databases and Redis are never "
        "published in prod",
        id="published-db-in-prod",
    ),
    pytest.param(
        "prod",
        put("services.order.hostPort", 13003),
        "ecommerce:platform.services.order.hostPort: only the edge proxy publishes ports in prod",
        id="published-service-in-prod",
    ),
    pytest.param(
        "prod",
        put("services.frontend.hostPort", 13008),
        "ecommerce:platform.services.frontend.hostPort: prod serves the edge apps by host "
        "name over HTTPS only; remove it and set edge.hosts.frontend",
        id="edge-app-port-in-prod",
    ),
    pytest.param(
        "prod",
        drop("edge.tls"),
        "ecommerce:platform.edge.tls: must be set in prod",
        id="prod-without-tls",
    ),
    pytest.param(
        "prod",
        put("edge.build", {"context": "images/edge-proxy"}),
        "ecommerce:platform.edge: set exactly one of image",
        id="edge-image-and-build",
    ),
    pytest.param(
        "prod",
        lambda p: p["edge"].update(build={"context": "images/edge-proxy"}, image=None),
        "ecommerce:platform.edge.build: prod runs a pinned published image",
        id="edge-built-in-prod",
    ),
    pytest.param(
        "dev",
        put("edge.tls", {"certificates": "internal"}),
        "ecommerce:platform.edge.tls: HTTPS needs the host names to serve; set edge.hosts",
        id="tls-without-host-name",
    ),
    pytest.param(
        "prod",
        put("edge.hosts.customer", "customer.example.com"),
        "ecommerce:platform.edge.hosts.customer: only gateway, frontend, backoffice sit "
        "behind the edge",
        id="business-service-behind-the-edge",
    ),
    pytest.param(
        "prod",
        put("edge.hosts.backoffice", "shop.example.com"),
        "ecommerce:platform.edge.hosts.backoffice: shop.example.com is already the host "
        "of frontend",
        id="one-host-two-apps",
    ),
    pytest.param(
        "prod",
        put("edge.hosts.frontend", "https://shop.example.com"),
        "ecommerce:platform.edge.hosts.frontend: String should match pattern",
        id="host-name-with-scheme",
    ),
    pytest.param(
        "prod",
        put("edge.tls", {"certificates": "files", "email": "ops@example.com"}),
        "ecommerce:platform.edge.tls.email: only used with certificates: auto",
        id="acme-email-without-acme",
    ),
    pytest.param(
        "prod",
        put("edge.upstreamAnswerSeconds", 5),
        "ecommerce:platform.edge.upstreamAnswerSeconds: 5 leaves a GET no time to be tried on "
        "another address within edge.upstreamRetrySeconds (5); set it below that",
        id="answer-wait-outlasting-the-retries",
    ),
    pytest.param(
        "prod",
        put("publishIp", "127.0.0.1"),
        "ecommerce:platform.edge.tls.certificates: auto needs the ACME CA to reach the "
        "edge, but publishIp is 127.0.0.1 (loopback)",
        id="acme-on-loopback",
    ),
    pytest.param(
        "prod",
        lambda p: p["edge"].update(httpPort=8080, httpsPort=8443),
        "ecommerce:platform.edge.tls.certificates: auto needs port 80 or 443",
        id="acme-without-standard-ports",
    ),
    pytest.param(
        "prod",
        put("edge.httpsPort", 80),
        "ecommerce:platform.edge.httpsPort: host port 80 is already used by edge.httpPort",
        id="edge-ports-collide",
    ),
    pytest.param(
        "dev",
        put("edge.stopGraceSeconds", 600),
        "ecommerce:platform.edge.stopGraceSeconds: 600 is longer than waitTimeoutSeconds",
        id="edge-grace-too-long",
    ),
    pytest.param(
        "prod",
        put("hardening.readOnlyRoot", False),
        "ecommerce:platform.hardening.readOnlyRoot: must be true in prod",
        id="soft-prod",
    ),
    pytest.param(
        "prod",
        put("redis.requirePassword", False),
        "ecommerce:platform.redis.requirePassword: must be true in prod",
        id="open-redis",
    ),
    pytest.param(
        "prod",
        put("corsOrigins", ["http://shop.example.com"]),
        "must use https in prod",
        id="http-origin-in-prod",
    ),
    pytest.param(
        "dev",
        put("services.customer.hostport", 13001),
        "ecommerce:platform.services.customer.hostport: unknown key",
        id="unknown-key",
    ),
    pytest.param(
        "dev",
        put("colour", "blue"),
        "ecommerce:platform.colour: unknown key",
        id="unknown-top-level-key",
    ),
    pytest.param(
        "dev",
        put("services.customer.hostPort", "13001"),
        "ecommerce:platform.services.customer.hostPort: Input should be a valid integer",
        id="port-as-string",
    ),
    pytest.param(
        "dev",
        put("redis.requirePassword", "yes"),
        "ecommerce:platform.redis.requirePassword: Input should be a valid boolean",
        id="bool-as-string",
    ),
    pytest.param(
        "dev",
        put("profile", "staging"),
        "ecommerce:platform.profile: Input should be 'dev' or 'prod'",
        id="unknown-profile",
    ),
    pytest.param(
        "dev",
        put("postgres.tuning.sharedBuffers", "256"),
        "ecommerce:platform.postgres.tuning.sharedBuffers: String should match pattern",
        id="memory-without-unit",
    ),
    pytest.param(
        "dev",
        put("corsOrigins", ["localhost:13008"]),
        "ecommerce:platform.corsOrigins: 'localhost:13008' is not an origin",
        id="bad-origin",
    ),
    pytest.param(
        "dev",
        put("services.customer.env", {"PORT": "80"}),
        "ecommerce:platform.services.customer.env.PORT: set by the platform",
        id="env-clash",
    ),
    pytest.param(
        "dev",
        put("backup", {"enabled": True}),
        "ecommerce:platform.backup.image: required when backup.enabled is true",
        id="backup-without-image",
    ),
    pytest.param(
        "prod",
        drop("monitoring"),
        "ecommerce:platform.monitoring.grafana: nothing would reach it",
        id="monitoring-left-out",
    ),
    pytest.param(
        "dev",
        put("redis.maxMemoryMb", 512),
        "ecommerce:platform.redis.maxMemoryMb: 512 must stay below the container's memory limit",
        id="redis-memory-above-limit",
    ),
    pytest.param(
        "prod",
        put("networks.internal", False),
        "ecommerce:platform.networks.internal: must be true in prod",
        id="open-networks",
    ),
    pytest.param(
        "dev",
        put("networks.internal", True),
        "ecommerce:platform.databases.customer.hostPort: cannot be published while "
        "networks.internal is true",
        id="port-on-internal-network",
    ),
    pytest.param(
        "prod",
        put("redis.resources.cpus", 0.05),
        "ecommerce:platform.redis.resources.cpus: 0.05 is read back by the Docker provider "
        "as 0.1, so every deploy would replace the container",
        id="cpus-read-back-rounded",
    ),
    pytest.param(
        "dev",
        put("services.order.resources.cpus", 0.1234567891),
        "ecommerce:platform.services.order.resources.cpus: 0.1234567891 has more than 9 decimals",
        id="cpus-too-precise",
    ),
    pytest.param(
        "prod",
        put("postgres.stopGraceSeconds", 3),
        "ecommerce:platform.postgres.stopGraceSeconds: Input should be greater than or equal to 10",
        id="database-grace-too-short",
    ),
    pytest.param(
        "dev",
        put("services.gateway.stopGraceSeconds", 0),
        "ecommerce:platform.services.gateway.stopGraceSeconds: Input should be greater "
        "than or equal to 1",
        id="no-grace",
    ),
    pytest.param(
        "prod",
        put("registry.address", "registry.other.example"),
        "ecommerce:platform.registry.address: no image of the stack is on registry.other.example",
        id="registry-of-no-image",
    ),
    pytest.param(
        "prod",
        put("registry.address", "https://registry.example.com"),
        "ecommerce:platform.registry.address: String should match pattern",
        id="registry-with-scheme",
    ),
]


@pytest.mark.parametrize(("stack", "edit", "expected"), CASES)
def test_bad_stack_file_names_the_key(stack: str, edit: Edit, expected: str) -> None:
    message = problems_of(stack, edit)
    assert expected in message
    assert message.startswith(f"Pulumi.{stack}.yaml has ")


def test_the_real_stack_files_are_valid() -> None:
    for stack in ("dev", "prod"):
        raw = json.dumps(edited(stack, lambda p: None)[SETTINGS_KEY])
        assert parse_settings(raw, PLATFORM, stack).profile == stack


def test_every_problem_is_reported_at_once() -> None:
    def two_mistakes(platform: dict[str, Any]) -> None:
        put("services.product.hostPort", 13001)(platform)
        put("services.customer.image", "customer:latest")(platform)

    message = problems_of("prod", two_mistakes)
    assert "has 3 problems" in message  # the port twice (duplicate, not edge) and the image
    assert message.count("\n  ecommerce:platform.") == 3


def test_a_bad_stack_file_registers_no_resource() -> None:
    graph = Graph()
    config = edited("prod", put("databases.customer.hostPort", 15432))
    with pytest.raises(StackConfigError, match=r"databases\.customer\.hostPort"):
        run_program("prod", config, graph=graph)
    assert graph.resources == []


def test_a_missing_settings_object_says_what_to_do() -> None:
    with pytest.raises(
        StackConfigError, match=r"ecommerce:platform is missing; copy Pulumi.dev.yaml"
    ):
        run_program("dev", {})


def test_dropping_capabilities_needs_a_non_root_start() -> None:
    def half_hardened(platform: dict[str, Any]) -> None:
        platform["hardening"] = {
            "readOnlyRoot": False,
            "dropAllCapabilities": True,
            "noNewPrivileges": True,
            "runAsNonRoot": False,
        }

    message = problems_of("dev", half_hardened)
    assert (
        "ecommerce:platform.hardening.dropAllCapabilities: needs hardening.runAsNonRoot" in message
    )


OFF_HOST = OFF_HOST_SETTINGS


def monitoring_pinned(platform: dict[str, Any]) -> None:
    for key in ("prometheus", "alertmanager", "grafana"):
        platform["swarm"]["placement"][key] = "ecommerce.data"


def accepted(stack: str, edit: Edit) -> PlatformSettings:
    raw = json.dumps(edited(stack, edit)[SETTINGS_KEY])
    return parse_settings(raw, PLATFORM, f"Pulumi.{stack}.yaml")


def test_an_off_host_repository_on_another_host_or_node_is_accepted() -> None:
    raw = json.dumps(edited("prod", put("pitr.offHost", OFF_HOST))[SETTINGS_KEY])
    assert parse_settings(raw, PLATFORM, "Pulumi.prod.yaml").pitr.off_host.enabled
    elsewhere = on_swarm(
        monitoring_pinned,
        put("pitr.offHost", {"enabled": True}),
        put("swarm.placement.pitr-repository", "ecommerce.backup"),
    )
    assert accepted("prod", elsewhere).swarm.placement["pitr-repository"] == "ecommerce.backup"
    # Outside prod one node may hold both (a one-node swarm to try it on).
    beside = on_swarm(
        monitoring_pinned,
        put("profile", "dev"),
        put("pitr.offHost", {"enabled": True}),
        put("swarm.placement.pitr-repository", "ecommerce.data"),
    )
    assert accepted("prod", beside).pitr.off_host.enabled


def test_the_stacks_own_docker_host_is_no_off_host() -> None:
    own = {**OFF_HOST, "dockerHost": "tcp://shop-host:2376"}
    raw = json.dumps(edited("prod", put("pitr.offHost", own))[SETTINGS_KEY])
    # Each object's own rules only: the loader runs this one with the stack's other keys.
    settings = PlatformSettings.model_validate_json(raw, context={"catalogue": PLATFORM})
    assert off_host_is_the_stacks_host(settings, "tcp://shop-host:2376/") == [
        "pitr.offHost.dockerHost: tcp://shop-host:2376 is the stack's own Docker host; the "
        "repository must be on another host, or a lost host loses the databases and their backups"
    ]
    assert off_host_is_the_stacks_host(settings, "tcp://backup-host:2376") == []
    local = {**OFF_HOST, "dockerHost": "unix:///var/run/docker.sock"}
    raw = json.dumps(edited("prod", put("pitr.offHost", local))[SETTINGS_KEY])
    settings = PlatformSettings.model_validate_json(raw, context={"catalogue": PLATFORM})
    assert off_host_is_the_stacks_host(settings, None) != []  # no docker:host: Docker's default


DIGEST = "@sha256:" + "ab" * 32


def test_requiring_digests_names_every_image_with_a_tag_only() -> None:
    message = problems_of("prod", put("requireImageDigests", True))
    raw = edited("prod", lambda p: None)[SETTINGS_KEY]
    assert (
        f"ecommerce:platform.postgres.image: {raw['postgres']['image']!r} names no digest, and "
        "requireImageDigests asks every published image for one; append @sha256:<digest>"
    ) in message
    # Every image of the stack file, one problem each: none of them names a digest.
    keys = {line.split(":", 2)[1].split(" ")[0] for line in message.splitlines()[1:]}
    assert {"platform.postgres.image", "platform.redis.image", "platform.edge.image"} <= keys
    assert all("names no digest" in line for line in message.splitlines()[1:])


def test_requiring_digests_accepts_images_named_by_their_digest() -> None:
    raw = edited("prod", lambda p: None)[SETTINGS_KEY]
    every_image = images(parse_settings(json.dumps(raw), PLATFORM, "Pulumi.prod.yaml"))

    def by_digest(platform: dict[str, Any]) -> None:
        platform["requireImageDigests"] = True
        for key, image in every_image.items():  # defaults included (the monitoring images)
            put(key, image + DIGEST)(platform)

    raw = json.dumps(edited("prod", by_digest)[SETTINGS_KEY])
    assert parse_settings(raw, PLATFORM, "Pulumi.prod.yaml").require_image_digests

    # A digest that is not 64 hexadecimal digits is no digest.
    def with_a_short_digest(platform: dict[str, Any]) -> None:
        by_digest(platform)
        put("postgres.image", "postgres:16.6-bookworm@sha256:abc")(platform)

    message = problems_of("prod", with_a_short_digest)
    assert message.startswith("Pulumi.prod.yaml has 1 problem")
    assert "ecommerce:platform.postgres.image: 'postgres:16.6-bookworm@sha256:abc'" in message
