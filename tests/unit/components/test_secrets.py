"""Every credential is generated, kept a Pulumi secret, and reaches containers only as a file."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from plan.recorder import ROOT, Graph, Resource, mock_random_hex, run_program
from plan.report import subjects
from policies.rules import RULES, check, secrets_only_in_files
from stacks.loader import StackConfigError
from tests.unit.conftest import edited

GENERATED = re.compile(r"generated-[a-z-]+")  # what the mocks return for RandomPassword
SECRETS_RULE = next(r for r in RULES if r.check is secrets_only_in_files)


def plain_strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in plain_strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in plain_strings(v)]
    return [value] if isinstance(value, str) else []


def non_secret_inputs(resource: Resource) -> list[str]:
    return [
        s
        for key, v in resource.inputs.items()
        if not resource.is_secret(key)
        for s in plain_strings(v)
    ]


PLAIN_FILES = {
    "Caddyfile",
    "queries.yaml",
    "prometheus.yml",
    "alerts.yml",
    "alertmanager.yml",
    "datasources.yaml",
    "dashboards.yaml",
    "platform-databases.json",
    "platform-edge.json",
    "platform-backups.json",
    "health_probe.py",
}
"""Configuration, not secret; alertmanager.yml only while no receiver's secret is in it."""


def test_every_credential_is_generated(stack_graph: Graph) -> None:
    passwords = {r.name for r in stack_graph.of_type("random:index/randomPassword:RandomPassword")}
    databases = ("customer", "product", "order", "content")
    expected = {f"platform-{s}-db-password" for s in databases}
    expected |= {f"platform-{s}-db-admin-password" for s in databases}
    expected |= {f"platform-{s}-db-pitr-passphrase" for s in databases}  # PITR repositories
    expected |= {f"platform-{s}-db-exporter-password" for s in databases}  # metrics logins
    expected.add("platform-monitoring-grafana-password")
    if stack_graph.name_prefix() == "shop":  # behind the prod edge's basic auth
        expected.add("platform-monitoring-prometheus-password")
    expected.add("platform-jwt-secret")
    if stack_graph.name_prefix() == "shop":  # prod: Redis has a password too
        expected.add("platform-redis-password")
        expected.add("platform-pitr-repository-passphrase")  # the off-host repository's
    assert passwords == expected
    for r in stack_graph.of_type("random:index/randomPassword:RandomPassword"):
        assert r.inputs["length"] >= 32 and r.inputs["special"] is False
        # A new passphrase would make every backup unreadable: kept with the data.
        assert r.protect is (r.name.endswith("-passphrase") and stack_graph.name_prefix() == "shop")


def secrets_outside_files(graph: Graph) -> list[str]:
    """Every secret found where it must not be: by its secret mark (the input path a secret
    reaches), and by value (a generated secret in an input that is not marked secret)."""
    leaks = [f"{v.name}: {v.message}" for v in check(subjects(graph), [SECRETS_RULE])]
    leaks += [
        f"{r.name}: {s}"
        for r in graph.resources
        for s in non_secret_inputs(r)
        if GENERATED.search(s)
    ]
    return leaks


def test_no_secret_appears_in_any_plain_input(stack_graph: Graph) -> None:
    assert secrets_outside_files(stack_graph) == []
    # The secrets do reach the graph, only as secrets.
    assert any(GENERATED.search(s) for r in stack_graph.resources for s in plain_strings(r.inputs))


def test_secrets_reach_containers_as_secret_upload_files(stack_graph: Graph) -> None:
    seeds = [c for c in stack_graph.containers() if c.inputs["name"].endswith("-seed")]
    assert seeds
    for seed in seeds:
        assert seed.inputs["start"] is False and seed.inputs["mustRun"] is False
        assert seed.inputs["networkMode"] == "none"
        for i, upload in enumerate(seed.inputs["uploads"]):
            assert upload["file"].startswith("/run/secrets/")
            # Configuration files beside the secrets are not secret: a plan shows their edits.
            plain = upload["file"].removeprefix("/run/secrets/") in PLAIN_FILES
            assert seed.is_secret(f"uploads.{i}.content") is not plain, upload["file"]


def test_environment_carries_file_paths_never_secrets(stack_graph: Graph) -> None:
    file_entries = 0
    for c in stack_graph.running_containers():
        assert not c.is_secret("envs"), c.name  # reviewable in previews
        for entry in c.inputs.get("envs", []):
            key, _, value = entry.partition("=")
            if any(word in key for word in ("PASSWORD", "SECRET")):
                assert key.endswith("_FILE") and value.startswith("/run/secrets/"), entry
                file_entries += 1
    # Databases, Redis users and every JWT user get some: 4 + 1 + 6 in dev, Redis too in prod.
    assert file_entries >= 11


def test_database_passwords_are_secret_outputs(stack_graph: Graph) -> None:
    for service in stack_graph.outputs["databases"]:
        assert f"databases.{service}.password" in stack_graph.secret_outputs
    # Each database's repository, and in prod the off-host one's.
    off_host = {"pitr-repository"} if stack_graph.name_prefix() == "shop" else set()
    assert (
        set(stack_graph.outputs["pitrPassphrases"])
        == set(stack_graph.outputs["databases"]) | off_host
    )
    assert all(
        p.endswith((".password", "Password")) or p.startswith("pitrPassphrases.")
        for p in stack_graph.secret_outputs
    )
    # The monitoring UIs' logins: Grafana's everywhere, Prometheus's behind the prod edge.
    logins = {p for p in stack_graph.secret_outputs if p.startswith("monitoring.")}
    assert logins == {"monitoring.grafanaPassword"} | (
        {"monitoring.prometheusPassword"} if stack_graph.name_prefix() == "shop" else set()
    )


def test_stack_files_hold_no_plain_credentials() -> None:
    # `pulumi config set --secret` writes `ecommerce:jwtSecret: {secure: ...}`: that is fine.
    for path in ROOT.glob("Pulumi*.yaml"):
        config = yaml.safe_load(Path(path).read_text()).get("config", {})
        for key, value in config.items():
            if re.search(r"(?i)(password|secret)", key):
                assert isinstance(value, dict) and set(value) == {"secure"}, (path, key)
        platform = json.dumps(config.get("ecommerce:platform", {}))
        assert not re.search(r'(?i)"\w*(password|secret)\w*": "', platform), path


def test_an_operator_secret_replaces_the_generated_one(prod_graph: Graph) -> None:
    config = edited("prod", lambda p: None)
    config["ecommerce:jwtSecret"] = "operator-chosen-jwt"
    config["ecommerce:orderDbPassword"] = "operator-chosen-db"
    graph = run_program(
        "prod", config, secret_keys=["ecommerce:jwtSecret", "ecommerce:orderDbPassword"]
    )
    names = {r.name for r in graph.of_type("random:index/randomPassword:RandomPassword")}
    assert "platform-jwt-secret" not in names and "platform-order-db-password" not in names
    assert "platform-customer-db-password" in names
    order_seed = graph.container("shop-order-secrets-seed")
    contents = {u["file"]: u["content"] for u in order_seed.inputs["uploads"]}
    assert contents["/run/secrets/jwt-secret"] == "operator-chosen-jwt"
    assert contents["/run/secrets/database-password"] == "operator-chosen-db"
    assert all(order_seed.is_secret(f"uploads.{i}.content") for i in range(len(contents)))
    assert graph.outputs["databases"]["order"]["password"] == "operator-chosen-db"
    assert "databases.order.password" in graph.secret_outputs


def test_a_secret_set_in_plain_text_is_refused() -> None:
    config = edited("dev", lambda p: None)
    config["ecommerce:jwtSecret"] = "typed-without-secret-flag"
    graph = Graph()
    with pytest.raises(
        StackConfigError,
        match=r"ecommerce:jwtSecret is stored in plain text; set it with `pulumi config set --secret",
    ):
        run_program("dev", config, graph=graph)
    assert graph.resources == []


def test_a_misspelt_secret_key_is_refused() -> None:
    config = edited("dev", lambda p: None)
    config["ecommerce:customerDBPassword"] = "x"
    with pytest.raises(StackConfigError, match=r"ecommerce:customerDBPassword is not a known key"):
        run_program("dev", config, secret_keys=["ecommerce:customerDBPassword"])


def test_backup_targets_reach_the_job_as_a_secret_file_with_in_network_hosts(
    prod_graph: Graph,
) -> None:
    seed = prod_graph.container("shop-backup-secrets-seed")
    (upload,) = seed.inputs["uploads"]
    assert upload["file"] == "/run/secrets/targets.json"
    assert seed.is_secret("uploads.0.content")
    targets = json.loads(upload["content"])
    assert targets["order"] == {
        "host": "order-db",
        "port": 5432,
        "database": "order_db",
        "user": "order_user",
        "password": "generated-platform-order-db-password",
    }
    assert set(targets) == {"customer", "product", "order", "content"}


def test_services_log_in_as_a_role_that_is_no_superuser(prod_graph: Graph) -> None:
    db = prod_graph.container("shop-customer-db")
    assert "POSTGRES_USER=postgres" in db.inputs["envs"]  # the image's superuser: init only
    assert "POSTGRES_PASSWORD_FILE=/run/secrets/postgres-password" in db.inputs["envs"]
    mounts = {m["containerPath"]: m for m in db.inputs["volumes"]}
    assert mounts["/docker-entrypoint-initdb.d"]["readOnly"] is True
    seed = prod_graph.container("shop-customer-db-secrets-seed")
    files = {u["file"]: u["content"] for u in seed.inputs["uploads"]}
    assert (
        files["/run/secrets/postgres-password"] == "generated-platform-customer-db-admin-password"
    )
    assert files["/run/secrets/service-password"] == "generated-platform-customer-db-password"
    script = files["/run/secrets/create-service-role.sh"]
    assert 'CREATE ROLE "customer_user" LOGIN CREATEDB NOSUPERUSER' in script
    assert 'ALTER DATABASE "customer_db" OWNER TO "customer_user"' in script
    assert "generated-" not in script  # read from its file at init, never inlined


def test_a_changed_secret_replaces_its_consumer(stack_graph: Graph) -> None:
    """Consumers carry the revision of their secret files: a new secret, a new container."""
    revisions = {r.name: r for r in stack_graph.of_type("random:index/randomId:RandomId")}
    consumers = 0
    seeded = {
        s.inputs["name"].removesuffix("-seed")
        for s in stack_graph.containers()
        if s.inputs["name"].endswith("-seed")
    }
    for c in stack_graph.running_containers():
        mounts = [m for m in c.inputs.get("volumes", []) if m["volumeName"] in seeded]
        if not mounts:
            assert "com.ecommerce.secrets-revision" not in labels_of(c), c.name
            continue
        seed = next(
            s
            for s in stack_graph.containers()
            if s.inputs["name"] == mounts[0]["volumeName"] + "-seed"
        )
        revision = revisions[seed.name.removesuffix("-seed") + "-revision"]
        # Kept by every file's content, as a secret; the label is the drawn id, not a digest.
        uploaded = {u["file"].removeprefix("/run/secrets/") for u in seed.inputs["uploads"]}
        assert set(revision.inputs["keepers"]) == uploaded
        assert all(
            revision.is_secret(f"keepers.{name}") is (name not in PLAIN_FILES) for name in uploaded
        )
        assert labels_of(c)["com.ecommerce.secrets-revision"] == mock_random_hex(revision.name, 8)
        assert not c.is_secret("labels")
        consumers += 1
    # With the edge, the PITR agents, Prometheus, Alertmanager, the exporters (but Redis's in
    # dev: no password there) and the health probe; in prod the off-host repository.
    assert consumers == (27 if stack_graph.name_prefix() == "shop" else 23)  # and Grafana


def test_seed_containers_are_labelled_as_secrets(stack_graph: Graph) -> None:
    seeds = [c for c in stack_graph.containers() if c.inputs["name"].endswith("-seed")]
    assert seeds and all(labels_of(s)["com.ecommerce.role"] == "secrets" for s in seeds)


def labels_of(resource: Resource) -> dict[str, str]:
    return {entry["label"]: entry["value"] for entry in resource.inputs.get("labels", [])}
