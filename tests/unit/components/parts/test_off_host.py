"""The off-host repository's side in the resource graph (components/parts/off_host.py): every
resource of it on the repository's host, repo2 and its passphrase protected, its TLS port
published, each database allowed its own stanza only, each database's certificate and port."""

from __future__ import annotations

import json

import pulumi

from components.engine import engine_for
from components.parts.off_host import (
    LISTEN_ALL,
    REPOSITORY_CLIENT,
    OffHostArgs,
    OffHostCertificates,
    OffHostRepository,
)
from plan.recorder import Graph, Resource, run_under_mocks
from stacks.catalogue import PLATFORM
from stacks.settings import OFF_HOST_HOME, PlatformSettings
from tests.unit.components.engine.test_other_host import BACKUP_HOST, STACK_HOST, provider_of
from tests.unit.components.parts.test_pitr import mounts, seed_file
from tests.unit.conftest import SETTINGS_KEY, edited

STANZAS = ("customer", "product", "order", "content")
OFF_HOST = {
    "enabled": True,
    "dockerHost": BACKUP_HOST,
    "address": "backup-1.example.com",
    "databasesAddress": "shop-1.example.com",
}
PASSPHRASE = "generated-platform-pitr-repository-passphrase"
"""What the mocks make of repo2's generated passphrase."""


def off_host_settings() -> PlatformSettings:
    """Prod's settings with the off-host repository on, each object judged by its own rules
    only (the stack-wide rules still refuse it: the database side is not deployed yet)."""
    raw = edited("prod", lambda p: p["pitr"].update(offHost=OFF_HOST))[SETTINGS_KEY]
    return PlatformSettings.model_validate_json(json.dumps(raw), context={"catalogue": PLATFORM})


def repository_graph() -> Graph:
    settings = off_host_settings()
    off = settings.pitr.off_host

    def program() -> None:
        parent = pulumi.ComponentResource("test:index:Holder", "holder")
        engine = engine_for("platform", settings, {"host": STACK_HOST}, None, parent)
        child = pulumi.ResourceOptions(parent=parent)
        assert off.address is not None and off.databases_address is not None
        certificates = OffHostCertificates(
            "platform-pitr-certificates",
            settings.pitr,
            STANZAS,
            [off.address],
            [off.databases_address],
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
            ),
            certificates,
            off.databases_address,
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


def test_the_container_serves_repo2_on_its_published_port_and_checks_every_stanza() -> None:
    container = repository_container(repository_graph())
    assert container.inputs["ports"] == [{"internal": 8432, "external": 8432, "ip": LISTEN_ALL}]
    command = container.inputs["command"]
    assert command[:4] == ["python3", "-m", "pitr", "repository"]
    stanzas = [command[i + 1] for i, arg in enumerate(command) if arg == "--stanza"]
    assert stanzas == list(STANZAS)
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
