"""Point-in-time recovery in the resource graph: each server archives into its own encrypted
repository, and an agent beside it runs with no network, as the server's user, on the server's
volumes (docs/pitr.md)."""

from __future__ import annotations

from typing import Any

from plan.recorder import Graph, Resource, run_program
from provider.schema import IMAGE
from tests.unit.conftest import edited

DATABASES = ("customer", "product", "order", "content")


def mounts(container: Resource) -> dict[str, tuple[str, bool]]:
    """Container path -> (volume, read-only)."""
    return {
        m["containerPath"]: (m["volumeName"], bool(m.get("readOnly")))
        for m in container.inputs.get("volumes", [])
    }


def options(container: Resource) -> dict[str, str]:
    command = container.inputs["command"]
    pairs = [command[i + 1] for i, arg in enumerate(command) if arg == "-c"]
    return dict(pair.split("=", 1) for pair in pairs)


def seed_file(graph: Graph, seed_name: str, file_name: str) -> tuple[Resource, str]:
    seed = graph.container(seed_name)
    (upload,) = [u for u in seed.inputs["uploads"] if u["file"].endswith(f"/{file_name}")]
    return seed, upload["content"]


def test_every_server_archives_into_its_own_repository(stack_graph: Graph) -> None:
    p = stack_graph.name_prefix()
    for service in DATABASES:
        db = stack_graph.container(f"{p}-{service}-db")
        archive = options(db)
        assert archive["wal_level"] == "replica" and archive["archive_mode"] == "on"
        assert archive["archive_command"] == (
            f"pgbackrest --config=/etc/pgbackrest/pgbackrest.conf --stanza={service} "
            "archive-push %p"
        )
        assert archive["archive_timeout"] == "60s"  # the RPO
        assert mounts(db)["/var/lib/pgbackrest"] == (f"{p}-{service}-db-pitr", False)
        assert mounts(db)["/etc/pgbackrest"] == (f"{p}-{service}-db-pitr-config", True)
        # The repository holds the backups: protected like the data wherever the data is.
        (repository,) = [
            v for v in stack_graph.volumes() if v.inputs["name"] == f"{p}-{service}-db-pitr"
        ]
        data_protected = p == "shop"
        assert repository.protect is data_protected


def test_the_configuration_encrypts_with_a_generated_secret_passphrase(stack_graph: Graph) -> None:
    p = stack_graph.name_prefix()
    seed, conf = seed_file(stack_graph, f"{p}-order-db-pitr-config-seed", "pgbackrest.conf")
    assert seed.is_secret("uploads")  # the passphrase never shows in a preview
    lines = conf.splitlines()
    assert "repo1-cipher-type=aes-256-cbc" in lines
    assert "repo1-cipher-pass=generated-platform-order-db-pitr-passphrase" in lines
    assert "compress-type=zst" in lines
    assert {"repo1-retention-full=2", "repo1-retention-diff=7"} <= set(lines)
    assert {
        "[order]",
        "pg1-path=/var/lib/postgresql/data/pgdata",
        "pg1-socket-path=/var/run/postgresql",
        "repo1-path=/var/lib/pgbackrest/repo",
    } <= set(lines)


def test_the_agent_is_on_the_monitoring_network_only_and_has_its_servers_volumes_only(
    stack_graph: Graph,
) -> None:
    p = stack_graph.name_prefix()
    for service in DATABASES:
        db = f"{p}-{service}-db"
        agent = stack_graph.container(f"{db}-pitr")
        i = agent.inputs
        # No network of the server's: it only serves its metrics to Prometheus (and in prod,
        # beside the off-host repository, its TLS server on the server's link to it).
        link = [(f"{db}-pitr-link", [f"{service}-db-pitr"])] if p == "shop" else []
        assert [(n["name"], n["aliases"]) for n in i["networksAdvanced"]] == [
            (f"{p}-monitoring", [f"{service}-db-pitr"]),
            *link,
        ]
        assert mounts(agent) == {
            "/var/lib/postgresql/data": (f"{db}-data", True),  # read-only: backups only read
            "/var/lib/pgbackrest": (f"{db}-pitr", False),
            "/var/run/postgresql": (f"{db}-socket", False),
            "/etc/pgbackrest": (f"{db}-pitr-config", True),
            "/var/lib/pgbackrest-drill": (f"{db}-pitr-drill", False),
        }
        assert i["image"] == stack_graph.container(db).inputs["image"]  # one pgBackRest
        assert i["user"] == "postgres"
        assert i["command"][:6] == ["python3", "-m", "pitr", "agent", "--stanza", service]
        assert agent.depends_on >= {stack_graph.container(db).urn}
        assert not any("/run/secrets" in m for m in mounts(agent))  # no database password


def test_the_agent_is_hardened_in_prod(prod_graph: Graph) -> None:
    i = prod_graph.container("shop-order-db-pitr").inputs
    assert i["readOnly"] is True and i["capabilities"] == {"drops": ["ALL"]}
    assert i["securityOpts"] == ["no-new-privileges:true"]
    assert set(i["tmpfs"]) == {"/tmp"}
    assert i["memory"] == 512 and i["logDriver"] == "json-file"


def pitr_alone(platform: dict[str, Any]) -> None:
    """Prod without its off-host repository: the agent's own shape (test_off_host.py has the
    rest)."""
    platform["pitr"]["offHost"] = {"enabled": False}


def test_the_schedule_and_health_come_from_the_stack_file() -> None:
    def schedule(platform: dict[str, Any]) -> None:
        platform["pitr"] |= {
            "fullEveryHours": 48,
            "diffEveryHours": None,
            "incrEveryHours": 6,
            "drillEveryHours": 12,
            "checkEveryMinutes": 2,
            "maxArchiveAgeMinutes": 9,
            "keepFull": 3,
        }

    graph = run_program("prod", edited("prod", schedule, pitr_alone))
    agent = graph.container("shop-order-db-pitr").inputs
    assert agent["command"][6:] == [
        "--full-every",
        "48h",
        "--diff-every",
        "off",
        "--incr-every",
        "6h",
        "--drill-every",
        "12h",
        "--check-every",
        "2m",
        "--metrics-port",
        "9188",
    ]
    assert agent["healthcheck"]["tests"] == [
        "CMD",
        "python3",
        "-m",
        "pitr",
        "health",
        "--stanza",
        "order",
        "--max-archive-age",
        "9m",
        "--max-backup-age",
        "8h",
        "--max-drill-age",
        "14h",
    ]
    _, conf = seed_file(graph, "shop-order-db-pitr-config-seed", "pgbackrest.conf")
    assert "repo1-retention-full=3" in conf and "retention-diff" not in conf


def test_dev_builds_the_pitr_image_on_the_stacks_postgres_image(dev_graph: Graph) -> None:
    (image,) = [r for r in dev_graph.of_type(IMAGE) if r.name == "platform-postgres-pitr"]
    assert image.inputs["build"]["context"] == "pitr"
    assert image.inputs["build"]["args"] == {"POSTGRES_IMAGE": "postgres:16.6-bookworm"}
    for service in DATABASES:
        for name in (f"shop-dev-{service}-db", f"shop-dev-{service}-db-pitr"):
            assert dev_graph.container(name).property_dependencies["image"] == {image.urn}


def test_without_pitr_the_servers_are_as_before() -> None:
    graph = run_program("prod", edited("prod", lambda platform: platform.pop("pitr")))
    db = graph.container("shop-order-db")
    assert db.inputs["image"] == "postgres:16.6-bookworm"
    assert "archive_mode" not in options(db)
    assert "/var/run/postgresql" in db.inputs["tmpfs"]
    assert not [c for c in graph.containers() if c.name.endswith("-pitr-container")]
    assert "pitrPassphrases" not in graph.outputs  # though other graphs exported it before


def test_without_monitoring_the_agent_has_no_network_at_all() -> None:
    def no_monitoring(platform: dict[str, Any]) -> None:
        platform["monitoring"] = {"enabled": False}

    graph = run_program("prod", edited("prod", no_monitoring, pitr_alone))
    agent = graph.container("shop-order-db-pitr").inputs
    assert agent["networkMode"] == "none" and "networksAdvanced" not in agent
    assert "--metrics-port" not in agent["command"]
