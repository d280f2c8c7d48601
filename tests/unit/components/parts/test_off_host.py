"""The off-host repository's side in the resource graph (components/parts/off_host.py): every
resource of it on the repository's host, repo2 and its passphrase protected, its TLS port
published, each database allowed its own stanza only, each database's certificate and port."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pulumi
import pytest

from components.engine import engine_for
from components.parts.off_host import (
    OffHostArgs,
    OffHostCertificates,
    OffHostRepository,
    database_endpoints,
    repository_endpoint,
)
from components.parts.pitr_tls import (
    DATABASE_TLS_PORT,
    LISTEN_ALL,
    REPOSITORY_CLIENT,
    REPOSITORY_TLS_PORT,
)
from plan.recorder import Graph, Resource, mock_container_id, run_program, run_under_mocks
from plan.report import subjects
from policies.rules import TLS_SERVER_PORTS, check
from provider.schema import NETWORK
from stacks.settings import OFF_HOST_HOME
from tests.unit.components.engine.test_other_host import (
    BACKUP_HOST,
    STACK_HOST,
    provider_of,
    settings_with,
)
from tests.unit.components.parts.test_pitr import mounts, options, seed_file
from tests.unit.conftest import edited

STANZAS = ("customer", "product", "order", "content")
OFF_HOST = {
    "enabled": True,
    "dockerHost": BACKUP_HOST,
    "address": "backup-1.example.com",
    "databasesAddress": "shop-1.example.com",
}
PASSPHRASE = "generated-platform-pitr-repository-passphrase"
"""What the mocks make of repo2's generated passphrase."""


def repository_graph() -> Graph:
    settings = settings_with(OFF_HOST)

    def program() -> None:
        parent = pulumi.ComponentResource("test:index:Holder", "holder")
        engine = engine_for("platform", settings, {"host": STACK_HOST}, None, parent)
        child = pulumi.ResourceOptions(parent=parent)
        links = engine.links_between_homes(
            "platform-pitr-links",
            "shop-pitr-links",
            {},
            parent,
            OFF_HOST_HOME,
            [f"{db}-db" for db in STANZAS],
        )
        agents = {db: f"shop-{db}-db-pitr" for db in STANZAS}
        endpoint = repository_endpoint(links, "shop", settings.pitr)
        certificates = OffHostCertificates(
            "platform-pitr-certificates",
            settings.pitr,
            endpoint,
            database_endpoints(links, agents, settings.pitr),
            opts=child,
        )
        OffHostRepository(
            f"platform-{OFF_HOST_HOME}",
            OffHostArgs(
                settings.pitr,
                STANZAS,
                "registry.example.com/ecommerce/postgres-pitr:16.6",
                "shop",
                {"com.ecommerce.stack": "shop"},
                protect_data=True,
                engine=engine,
                links=links,
                endpoint=endpoint,
            ),
            certificates,
            opts=child,
        )

    return run_under_mocks(program, "prod", {})


def test_the_repository_runs_on_its_own_host_with_everything_it_holds() -> None:
    graph = repository_graph()
    backup_docker = next(
        r for r in graph.of_type("pulumi:providers:docker") if r.inputs.get("host") == BACKUP_HOST
    )
    docker_objects = [r for r in graph.resources if r.type.startswith("docker:index/")]
    assert {r.inputs["name"] for r in docker_objects} == {
        "shop-pitr-repository",  # repo2's volume, the network, the container
        "shop-pitr-repository-drill",
        "shop-pitr-repository-config",
        "shop-pitr-repository-config-seed",
    }
    assert {provider_of(r) for r in docker_objects} == {backup_docker.urn}
    # repo2 and the passphrase that encrypts it are protected like the data.
    (repo2,) = [
        r
        for r in graph.volumes()
        if r.inputs["name"] == "shop-pitr-repository" and r.type.endswith("Volume")
    ]
    assert repo2.protect
    (passphrase,) = graph.of_type("random:index/randomPassword:RandomPassword")
    assert passphrase.protect and passphrase.inputs["length"] == 64


def repository_container(graph: Graph) -> Resource:
    return graph.container("shop-pitr-repository")


def test_the_container_serves_repo2_on_its_published_port_for_every_stanza() -> None:
    container = repository_container(repository_graph())
    assert container.inputs["ports"] == [{"internal": 8432, "external": 8432, "ip": LISTEN_ALL}]
    command = container.inputs["command"]
    assert command[:4] == ["python3", "-m", "pitr", "repository"]
    stanzas = [command[i + 1] for i, arg in enumerate(command) if arg == "--stanza"]
    assert stanzas == list(STANZAS)
    # On one host its health shows its state: the TLS server and every stanza fresh.
    health = container.inputs["healthcheck"]["tests"]
    assert health[:5] == ["CMD", "python3", "-m", "pitr", "repository-health"]
    assert health[health.index("--port") + 1] == "8432"
    assert mounts(container) == {
        "/var/lib/pgbackrest": ("shop-pitr-repository", False),
        "/var/lib/pgbackrest-drill": ("shop-pitr-repository-drill", False),
        "/etc/pgbackrest": ("shop-pitr-repository-config", True),
    }
    assert container.inputs["user"] == "postgres"


def test_the_configuration_lets_each_database_reach_its_own_stanza_only() -> None:
    graph = repository_graph()
    seed, conf = seed_file(graph, "shop-pitr-repository-config-seed", "pgbackrest.conf")
    assert seed.is_secret("uploads")
    lines = conf.splitlines()
    assert {
        "repo2-path=/var/lib/pgbackrest/repo",
        "repo2-cipher-type=aes-256-cbc",
        f"repo2-cipher-pass={PASSPHRASE}",
        "repo2-retention-full=4",
        "tls-server-address=0.0.0.0",
        "tls-server-port=8432",
        "tls-server-cert-file=/etc/pgbackrest/server.crt",
        "tls-server-ca-file=/etc/pgbackrest/ca.crt",
    } <= set(lines)
    assert [line for line in lines if line.startswith("tls-server-auth=")] == sorted(
        f"tls-server-auth={db}={db}" for db in STANZAS
    )
    # It backs each database up through that database's TLS server, on the databases' host,
    # each on its own published port in the catalogue's order.
    hosts = [line.split("=", 1)[1] for line in lines if line.startswith("pg1-host=")]
    ports = [line.split("=", 1)[1] for line in lines if line.startswith("pg1-host-port=")]
    assert hosts == ["shop-1.example.com"] * 4
    assert ports == ["8433", "8434", "8435", "8436"]
    assert "pg1-host-cert-file=/etc/pgbackrest/client.crt" in lines


def test_each_side_gets_certificates_for_the_names_it_is_dialled_by() -> None:
    certificates = {
        r.name: r.inputs
        for r in repository_graph().of_type("pulumi-python:dynamic/ecommerce:IssuedCertificate")
    }
    prefix = "platform-pitr-certificates"
    assert certificates[f"{prefix}-repository-server"]["dnsNames"] == ["backup-1.example.com"]
    assert certificates[f"{prefix}-repository-client"]["commonName"] == REPOSITORY_CLIENT
    for db in STANZAS:
        server, client = (
            certificates[f"{prefix}-{db}-server"],
            certificates[f"{prefix}-{db}-client"],
        )
        assert (server["usage"], server["dnsNames"]) == ("server", ["shop-1.example.com"])
        # The repository authorises a database by its client certificate's common name.
        assert (client["usage"], client["commonName"]) == ("client", db)


# ----------------------------------------------------------------------------------------------
# The whole program with an off-host repository: the database servers' side


@pytest.fixture(scope="module")
def off_host_graph() -> Iterator[Graph]:
    """Prod with the off-host repository, through the program (`__main__.py`)."""
    yield run_program("prod", edited("prod", lambda p: p["pitr"].update(offHost=OFF_HOST)))


def test_each_server_archives_into_repo2_through_a_network_of_its_own(
    off_host_graph: Graph,
) -> None:
    g = off_host_graph
    for index, db in enumerate(STANZAS):
        server, agent = g.container(f"shop-{db}-db"), g.container(f"shop-{db}-db-pitr")
        link = f"shop-{db}-db-pitr-link"
        (network,) = [n for n in g.of_type(NETWORK) if n.inputs["name"] == link]
        assert network.inputs["internal"] is False  # its way to the repository's host
        # Only the server and its agent are on it.
        members = {
            c.inputs["name"]
            for c in g.containers()
            if link in {n["name"] for n in c.inputs.get("networksAdvanced", [])}
        }
        assert members == {f"shop-{db}-db", f"shop-{db}-db-pitr"}
        _, conf = seed_file(g, f"shop-{db}-db-pitr-config-seed", "pgbackrest.conf")
        lines = set(conf.splitlines())
        assert {
            "repo2-host=backup-1.example.com",
            "repo2-host-type=tls",
            "repo2-host-port=8432",
            "repo2-host-cert-file=/etc/pgbackrest/client.crt",
            "archive-async=y",
            "tls-server-port=8433",
            f"tls-server-auth={REPOSITORY_CLIENT}={db}",
        } <= lines
        # repo2's passphrase never reaches a database's host.
        assert not any(line.startswith("repo2-cipher") for line in lines)
        _, agent_conf = seed_file(g, f"shop-{db}-db-pitr-config-seed", "agent.conf")
        assert "repo2-host=backup-1.example.com" not in agent_conf
        # The agent serves the repository's backups on its published port.
        command = agent.inputs["command"]
        assert command[-3:] == ["--config", "/etc/pgbackrest/agent.conf", "--tls-server"]
        assert agent.inputs["ports"] == [
            {"internal": DATABASE_TLS_PORT, "external": 8433 + index, "ip": LISTEN_ALL}
        ]
        health = agent.inputs["healthcheck"]["tests"]
        assert health[-2:] == ["--tls-port", str(DATABASE_TLS_PORT)]
        # The server still archives with its own file (now with both repositories).
        assert options(server)["archive_command"].startswith(
            "pgbackrest --config=/etc/pgbackrest/pgbackrest.conf"
        )


def test_each_server_is_created_after_the_repository(off_host_graph: Graph) -> None:
    # Its start guard asks repo2 whether the stanza holds backups before an empty start.
    repository = off_host_graph.container("shop-pitr-repository")
    for db in STANZAS:
        assert repository.urn in off_host_graph.container(f"shop-{db}-db").depends_on, db


def test_the_program_runs_the_repository_on_its_host_and_exports_its_passphrase(
    off_host_graph: Graph,
) -> None:
    g = off_host_graph
    repository = g.container("shop-pitr-repository")
    backup_docker = next(
        r for r in g.of_type("pulumi:providers:docker") if r.inputs.get("host") == BACKUP_HOST
    )
    assert provider_of(repository) == backup_docker.urn
    # The servers' own image, pulled there by that host's provider.
    assert repository.inputs["image"] == g.container("shop-order-db").inputs["image"]
    assert "pitrPassphrases.pitr-repository" in g.secret_outputs


def test_prod_with_an_off_host_repository_passes_every_production_rule(
    off_host_graph: Graph,
) -> None:
    # The TLS servers publish their ports (only-edge-published makes room for their roles), and
    # the CA's key reaches the certificates it signs only (secrets-only-in-files).
    assert [(v.rule, v.name) for v in check(subjects(off_host_graph))] == []


def test_the_tls_servers_may_publish_their_own_port_only(off_host_graph: Graph) -> None:
    assert TLS_SERVER_PORTS == {"pitr": DATABASE_TLS_PORT, "pitr-repository": REPOSITORY_TLS_PORT}
    found = {s.name: s for s in subjects(off_host_graph)}
    agent = found["platform-order-db-pitr-container"]
    assert check([agent], stack_rules=()) == []
    # Its metrics port published beside: refused, role or not.
    metrics = {"internal": 9188, "external": 9188, "ip": LISTEN_ALL}
    more = replace(agent, inputs={**agent.inputs, "ports": [*agent.inputs["ports"], metrics]})
    assert [v.rule for v in check([more], stack_rules=())] == ["only-edge-published"]
    # A database publishing the TLS port is no TLS server.
    server = found["platform-order-db-container"]
    tls = {"internal": DATABASE_TLS_PORT, "external": 8433, "ip": LISTEN_ALL}
    posing = replace(server, inputs={**server.inputs, "ports": [tls]})
    assert [v.rule for v in check([posing], stack_rules=())] == ["only-edge-published"]


# ----------------------------------------------------------------------------------------------
# On a swarm: the repository a service on a node of its own, both sides on one overlay

SWARM_SERVICE = "docker:index/service:Service"
SWARM_SECRET = "docker:index/secret:Secret"


def on_a_swarm(platform: dict[str, Any]) -> None:
    platform["pitr"]["offHost"] = {"enabled": True}
    platform["swarm"]["placement"][OFF_HOST_HOME] = "ecommerce.backup"


@pytest.fixture(scope="module")
def swarm_graph() -> Iterator[Graph]:
    yield run_program("swarm", edited("swarm", on_a_swarm))


def swarm_services(g: Graph) -> dict[str, dict[str, Any]]:
    return {r.inputs["name"]: r.inputs for r in g.of_type(SWARM_SERVICE)}


def swarm_file(g: Graph, consumer: str, file_name: str) -> str:
    """A file set's file as its Swarm secret holds it."""
    (secret,) = [
        r
        for r in g.of_type(SWARM_SECRET)
        if r.inputs["name"].startswith(f"{consumer}-{file_name.replace('.', '-')}-")
    ]
    return base64.b64decode(secret.inputs["data"]).decode()


def test_on_a_swarm_the_repository_is_pinned_to_its_node_and_publishes_nothing(
    swarm_graph: Graph,
) -> None:
    services = swarm_services(swarm_graph)
    repository = services["shop-pitr-repository"]
    placement = repository["taskSpec"]["placement"]["constraints"]
    assert placement == ["node.labels.ecommerce.backup==true"]
    assert repository["endpointSpec"]["ports"] == []
    for db in STANZAS:
        assert services[f"shop-{db}-db-pitr"]["endpointSpec"]["ports"] == []
    # No other host: one provider, the swarm manager's.
    assert not [r for r in swarm_graph.of_type("pulumi:providers:docker") if r.inputs.get("host")]


def test_on_a_swarm_each_side_is_healthy_while_its_tls_server_answers(
    swarm_graph: Graph,
) -> None:
    # A swarm restarts an unhealthy task and names it in its DNS only once healthy: each side
    # must be dialled from the start, long before its first backups and drills.
    services = swarm_services(swarm_graph)
    expected = {"shop-pitr-repository": "8432"} | {f"shop-{db}-db-pitr": "8433" for db in STANZAS}
    for name, port in expected.items():
        health = services[name]["taskSpec"]["containerSpec"]["healthcheck"]["tests"]
        assert health == ["CMD", "python3", "-m", "pitr", "serves", "--port", port], name


def test_on_a_swarm_each_database_meets_the_repository_on_an_overlay_of_its_own(
    swarm_graph: Graph,
) -> None:
    g = swarm_graph
    overlays = {n.inputs["name"]: n for n in g.of_type(NETWORK) if "pitr-links" in n.inputs["name"]}
    assert set(overlays) == {f"shop-pitr-links-{db}-db" for db in STANZAS}

    def members(overlay: Resource) -> set[str]:
        return {
            name
            for name, inputs in swarm_services(g).items()
            if mock_container_id(overlay.name)
            in {n["id"] for n in inputs["taskSpec"]["networksAdvanceds"]}
        }

    for db in STANZAS:
        overlay = overlays[f"shop-pitr-links-{db}-db"]
        assert (overlay.inputs["driver"], overlay.inputs["internal"]) == ("overlay", True)
        # The repository, and this database's server and agent: never another database.
        assert members(overlay) == {"shop-pitr-repository", f"shop-{db}-db", f"shop-{db}-db-pitr"}
    # No network per database to a host's way out.
    assert not [n for n in g.of_type(NETWORK) if n.inputs["name"].endswith("-pitr-link")]


def test_on_a_swarm_each_side_dials_the_others_service_by_name(swarm_graph: Graph) -> None:
    g = swarm_graph
    conf = swarm_file(g, "shop-pitr-repository-config", "pgbackrest.conf").splitlines()
    hosts = [line.split("=", 1)[1] for line in conf if line.startswith("pg1-host=")]
    ports = {line.split("=", 1)[1] for line in conf if line.startswith("pg1-host-port=")}
    assert hosts == [f"shop-{db}-db-pitr" for db in STANZAS]
    assert ports == {str(DATABASE_TLS_PORT)}
    for db in STANZAS:
        lines = set(swarm_file(g, f"shop-{db}-db-pitr-config", "pgbackrest.conf").splitlines())
        assert {"repo2-host=shop-pitr-repository", "repo2-host-port=8432"} <= lines
    certificates = {
        r.name: r.inputs for r in g.of_type("pulumi-python:dynamic/ecommerce:IssuedCertificate")
    }
    prefix = "platform-pitr-certificates"
    assert certificates[f"{prefix}-repository-server"]["dnsNames"] == ["shop-pitr-repository"]
    assert certificates[f"{prefix}-order-server"]["dnsNames"] == ["shop-order-db-pitr"]


def test_on_a_swarm_with_an_off_host_repository_every_production_rule_passes(
    swarm_graph: Graph,
) -> None:
    assert [(v.rule, v.name) for v in check(subjects(swarm_graph))] == []
