"""The swarm stack (Pulumi.swarm.yaml, `engine: swarm`) under mocks: the same catalogue and
settings as prod, every workload a Swarm service, files as Swarm secrets, overlay networks
(tests/integration/test_swarm.py deploys it on a one-node swarm)."""

from __future__ import annotations

from typing import Any

import pytest

from components.engine.swarm import swarm_secret_name
from plan.compare import compare
from plan.recorder import Graph, mock_random_hex, run_program
from provider.diff import diff
from tests.unit.conftest import edited

SERVICE = "docker:index/service:Service"
SECRET = "docker:index/secret:Secret"
NETWORK = "docker:index/network:Network"
APPS = ("gateway", "customer", "product", "order", "cart", "content", "frontend", "backoffice")
DATABASES = ("customer", "product", "order", "content")
PINNED = (
    "redis",
    "backup",
    *(f"{db}-db" for db in DATABASES),
    *(f"{db}-db-pitr" for db in DATABASES),
    "prometheus",
    "alertmanager",
    "grafana",
    "pitr-repository",
)
EXPORTERS = ("redis-exporter", *(f"{db}-db-exporter" for db in DATABASES), "health-probe")


@pytest.fixture(scope="module")
def swarm() -> Graph:
    return run_program("swarm")


def services(graph: Graph) -> dict[str, dict[str, Any]]:
    """Each service's inputs by its Docker name without the prefix."""
    return {r.inputs["name"].removeprefix("shop-"): r.inputs for r in graph.of_type(SERVICE)}


def test_every_workload_is_a_service_and_nothing_a_container(swarm: Graph) -> None:
    assert set(services(swarm)) == {*APPS, "edge", *PINNED, *EXPORTERS}
    assert swarm.containers() == []  # no seeds either: files are Swarm secrets
    # No dynamic resource sends Docker anything (the program cannot reach a node's tasks): the
    # only ones are the off-host repository's certificates, made in the program itself.
    dynamic = {r.type for r in swarm.resources if r.type.startswith("pulumi-python:dynamic")}
    assert dynamic == {
        "pulumi-python:dynamic/ecommerce:CertificateAuthority",
        "pulumi-python:dynamic/ecommerce:IssuedCertificate",
    }


def test_apps_are_replicated_and_roll_start_first_with_automatic_rollback(swarm: Graph) -> None:
    for app, inputs in services(swarm).items():
        if app not in APPS:
            continue
        # Two of every app, on any nodes but never two on one: one node's loss leaves one.
        assert inputs["mode"]["replicated"]["replicas"] == 2, app
        assert inputs["taskSpec"]["placement"] == {"maxReplicas": 1}, app
        update = inputs["updateConfig"]
        assert (update["order"], update["failureAction"]) == ("start-first", "rollback"), app
        assert inputs["rollbackConfig"]["failureAction"] == "pause"
        assert inputs["convergeConfig"]["timeout"] == "5m"  # `pulumi up` waits for it


def test_the_edge_runs_on_two_of_its_nodes_each_publishing_the_shops_ports(swarm: Graph) -> None:
    inputs = services(swarm)["edge"]
    assert inputs["mode"]["replicated"]["replicas"] == 2
    assert inputs["taskSpec"]["placement"] == {
        "constraints": ["node.labels.ecommerce.edge==true"],
        "maxReplicas": 1,
    }
    # It holds its node's ports: the old task stops before the new one starts.
    assert inputs["updateConfig"]["order"] == "stop-first"
    ports = inputs["endpointSpec"]["ports"]
    assert [(p["targetPort"], p["publishedPort"], p["publishMode"]) for p in ports] == [
        (8080, 80, "host"),
        (8443, 443, "host"),
    ]


def test_what_holds_a_volume_is_pinned_to_its_node_and_stops_first(swarm: Graph) -> None:
    for name in PINNED:
        inputs = services(swarm)[name]
        placement = inputs["taskSpec"]["placement"]["constraints"]
        # The off-host backup repository and monitoring on another node than the databases'.
        elsewhere = ("pitr-repository", "prometheus", "alertmanager", "grafana")
        label = "ecommerce.backup" if name in elsewhere else "ecommerce.data"
        assert placement == [f"node.labels.{label}==true"], name
        assert inputs["mode"]["replicated"]["replicas"] == 1, name
        assert "maxReplicas" not in inputs["taskSpec"]["placement"], name
        assert inputs["updateConfig"]["order"] == "stop-first", name
    # A PITR agent shares its server's volumes, so its node.
    assert "convergeConfig" not in services(swarm)["order-db-pitr"]  # up does not wait for it


def test_services_run_hardened(swarm: Graph) -> None:
    for name, inputs in services(swarm).items():
        spec = inputs["taskSpec"]["containerSpec"]
        assert spec["readOnly"] is True and spec["capDrops"] == ["ALL"], name
        assert spec["user"] and spec["user"] not in ("root", "0"), name
        assert spec["stopGracePeriod"] != "0s", name
        limits = inputs["taskSpec"]["resources"]["limits"]
        assert limits["memoryBytes"] > 0 and limits["nanoCpus"] > 0, name
        assert inputs["taskSpec"]["logDriver"]["name"] == "json-file", name


def test_secrets_are_swarm_secrets_mounted_as_files_never_in_env(swarm: Graph) -> None:
    secrets = {r.inputs["name"]: r for r in swarm.of_type(SECRET)}
    assert all(r.is_secret("data") for r in secrets.values())
    order = services(swarm)["order"]["taskSpec"]["containerSpec"]
    files = {s["fileName"]: s for s in order["secrets"]}
    assert set(files) == {"/run/secrets/database-password", "/run/secrets/jwt-secret"}
    for ref in files.values():
        assert ref["secretName"] in secrets and ref["secretId"]  # Swarm wants both
        assert (ref["fileUid"], ref["fileGid"], ref["fileMode"]) == ("0", "0", 0o444)
        # A new content is a new secret: the name carries the files' revision, within the
        # 64 characters Swarm allows.
        revision = mock_random_hex("platform-order-secrets-revision", 8)
        assert ref["secretName"].endswith("-" + revision), ref["secretName"]
    assert all(len(name) <= 64 for name in secrets), sorted(secrets, key=len)[-1]
    for name, inputs in services(swarm).items():
        env = inputs["taskSpec"]["containerSpec"].get("env", {})
        assert not [k for k in env if "PASSWORD" in k and not k.endswith("_FILE")], name
    # The PITR configuration (the repository's passphrase) reaches the server and its agent.
    for name in ("order-db", "order-db-pitr"):
        refs = services(swarm)[name]["taskSpec"]["containerSpec"]["secrets"]
        assert "/etc/pgbackrest/pgbackrest.conf" in {s["fileName"] for s in refs}, name


def test_networks_are_overlay_and_isolate_as_on_one_host(swarm: Graph) -> None:
    networks = {r.inputs["name"].removeprefix("shop-"): r for r in swarm.of_type(NETWORK)}
    assert {n.inputs["driver"] for n in networks.values()} == {"overlay"}
    assert {k for k, n in networks.items() if not n.inputs["internal"]} == {"edge", "alerting"}
    by_id = {f"{r.name}-id": key for key, r in networks.items()}

    def joined(service: str) -> set[str]:
        advanced = services(swarm)[service]["taskSpec"].get("networksAdvanceds", [])
        return {by_id[n["id"]] for n in advanced}

    # A database's network: its server, its service, the backup job and its exporter; the
    # agent serves metrics on the monitoring network, and with the server reaches the off-host
    # repository over the overlay between homes (tests/unit/components/parts/test_off_host.py).
    for db in DATABASES:
        members = {s for s in services(swarm) if f"{db}-db" in joined(s)}
        assert members == {f"{db}-db", db, "backup", f"{db}-db-exporter"}, db
        assert joined(f"{db}-db-pitr") == {"monitoring", f"pitr-links-{db}-db"}
        assert joined(f"{db}-db-exporter") == {f"{db}-db", "monitoring"}
    assert joined("edge") == {"edge", "monitoring"}
    assert joined("prometheus") == {"monitoring"}
    assert joined("health-probe") == {"monitoring", "edge", "backend"}
    assert joined("alertmanager") == {"monitoring", "alerting"}


def test_the_backup_jobs_task_is_healthy_while_it_serves_metrics(swarm: Graph) -> None:
    # A swarm restarts an unhealthy task: were the backups' freshness its health, a failed run
    # (databases still starting) would stop every later try midway. Monitoring reads it.
    check = services(swarm)["backup"]["taskSpec"]["containerSpec"]["healthcheck"]["tests"]
    assert check[:3] == ["CMD", "python3", "-c"]
    assert "http://127.0.0.1:9189/metrics" in check[3]
    assert "status" not in check


def test_only_the_edge_publishes(swarm: Graph) -> None:
    published = {
        name: [
            (p["targetPort"], p["publishedPort"], p["publishMode"])
            for p in inputs.get("endpointSpec", {}).get("ports", [])
        ]
        for name, inputs in services(swarm).items()
    }
    assert {n for n, ports in published.items() if ports} == {"edge"}


def edited_swarm(edit: Any, **secrets: str) -> Graph:
    """The swarm stack's graph with `edit` applied to its settings and `secrets` set."""
    return run_program("swarm", edited("swarm", edit) | secrets, secret_keys=list(secrets))


def test_a_new_image_and_replica_count_update_the_service_in_place(swarm: Graph) -> None:
    def scale_and_ship(platform: dict[str, Any]) -> None:
        platform["services"]["gateway"] |= {"image": "registry.example.com/gw:2", "replicas": 3}

    plan = compare("swarm", swarm, edited_swarm(scale_and_ship))
    changes = {c.name: c for c in plan.changed()}
    assert list(changes) == ["platform-gateway-service"]
    assert changes["platform-gateway-service"].action == "update"
    assert set(changes["platform-gateway-service"].paths) == {
        "mode.replicated.replicas",
        "taskSpec.containerSpec.image",
    }


def test_a_rotated_secret_is_a_new_swarm_secret_and_an_update_of_its_users(swarm: Graph) -> None:
    plan = compare("swarm", swarm, edited_swarm(lambda _p: None, **{"ecommerce:jwtSecret": "new"}))
    by_type: dict[str, set[str]] = {}
    for change in plan.changed():
        by_type.setdefault(change.type, set()).add(change.action)
    # Replaced create-first (the new name beside the old), the services moved over in place.
    assert by_type[SECRET] == {"replace"} and by_type[SERVICE] == {"update"}
    assert all(not c.delete_before_replace for c in plan.changed() if c.type == SECRET)


def test_joining_another_network_replaces_the_service_as_the_provider_does(swarm: Graph) -> None:
    # Every field of a network attachment is ForceNew in the provider's schema.
    recorded = services(swarm)["cart"]
    moved = {**recorded, "taskSpec": {**recorded["taskSpec"], "networksAdvanceds": []}}
    found = diff(SERVICE, recorded, moved)
    assert (found.action, found.replace_reasons) == ("replace", ("taskSpec.networksAdvanceds",))


def test_swarm_secret_names_fit_in_64_characters_and_stay_apart() -> None:
    long_prefix = "a" * 32
    one = swarm_secret_name(f"{long_prefix}-order-db-pitr-config", "pgbackrest.conf", "f" * 16)
    two = swarm_secret_name(f"{long_prefix}-order-db-pitr-config", "pgbackrest.cnf", "f" * 16)
    assert len(one) == len(two) == 64 and one != two
    assert swarm_secret_name("shop-order-secrets", "jwt-secret", "0123456789abcdef") == (
        "shop-order-secrets-jwt-secret-0123456789abcdef"
    )


def test_a_volume_swarm_makes_on_any_node_carries_the_programs_labels(swarm: Graph) -> None:
    volumes = {
        r.inputs["name"]: {i["label"]: i["value"] for i in r.inputs["labels"]}
        for r in swarm.of_type("docker:index/volume:Volume")
    }
    checked = 0
    for name, inputs in services(swarm).items():
        for mount in inputs["taskSpec"]["containerSpec"].get("mounts", []):
            if mount["type"] != "volume":
                continue
            labels = {i["label"]: i["value"] for i in mount["volumeOptions"]["labels"]}
            assert labels == volumes[mount["source"]], f"{name}: {mount['source']}"
            assert mount["volumeOptions"]["noCopy"] is False
            checked += 1
    assert checked > 20  # every database's, agent's, Redis's, the edge's, monitoring's
