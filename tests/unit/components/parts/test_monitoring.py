"""Monitoring under mocks: receivers and their secrets, Grafana's provisioning files, the
Prometheus UI behind the edge's basic auth, and the settings' one-line errors. (Isolation,
hardening, limits and secrets of the parts are in the suites that cover every container.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.renderers import dashboards
from plan.recorder import Graph, run_program
from probe import health
from stacks.catalogue import PLATFORM
from stacks.loader import StackConfigError
from tests.unit.conftest import edited
from tests.unit.stacks.settings.test_settings_errors import problems_of, put

WEBHOOK_KEY = "ecommerce:alertWebhookUrl"
SMTP_KEY = "ecommerce:alertSmtpPassword"
WEBHOOK = "https://hooks.example.com/T000/B000/token-for-tests"


def seed_files(graph: Graph, seed: str) -> dict[str, tuple[str, bool]]:
    """A seed's uploads by file name: (content, whether it is a secret)."""
    container = graph.container(seed)
    return {
        u["file"].rsplit("/", 1)[1]: (u["content"], container.is_secret(f"uploads.{i}.content"))
        for i, u in enumerate(container.inputs["uploads"])
    }


def with_receivers(platform: dict[str, Any]) -> None:
    platform["monitoring"]["alerts"] = {
        "webhook": True,
        "email": {
            "to": "ops@example.com",
            "sender": "alerts@example.com",
            "smarthost": "smtp.example.com:587",
            "username": "alerts",
        },
    }


def receivers_config() -> dict[str, Any]:
    config = edited("prod", with_receivers)
    config |= {WEBHOOK_KEY: WEBHOOK, SMTP_KEY: "smtp-password-for-tests"}
    return config


def test_receivers_reach_alertmanager_in_a_secret_file() -> None:
    graph = run_program("prod", receivers_config(), secret_keys=[WEBHOOK_KEY, SMTP_KEY])
    files = seed_files(graph, "shop-alertmanager-files-seed")
    text, secret = files["alertmanager.yml"]
    assert secret
    config = yaml.safe_load(text)
    (receiver,) = config["receivers"]
    assert receiver["webhook_configs"] == [{"url": WEBHOOK, "send_resolved": True}]
    (email,) = receiver["email_configs"]
    assert (email["to"], email["auth_username"], email["auth_password"]) == (
        "ops@example.com",
        "alerts",
        "smtp-password-for-tests",
    )
    assert config["route"]["receiver"] == receiver["name"]
    # The URL is nowhere else: not in an environment, a command or a label.
    for container in graph.containers():
        for key in ("envs", "command", "labels"):
            assert WEBHOOK not in json.dumps(container.inputs.get(key)), container.name


def test_without_receivers_the_alertmanager_file_is_plain(prod_graph: Graph) -> None:
    text, secret = seed_files(prod_graph, "shop-alertmanager-files-seed")["alertmanager.yml"]
    assert not secret and yaml.safe_load(text)["receivers"] == [{"name": "operators"}]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda c: c.pop(WEBHOOK_KEY),
            r"ecommerce:alertWebhookUrl is missing: monitoring\.alerts\.webhook needs it; set it "
            r"with `pulumi config set --secret ecommerce:alertWebhookUrl`",
        ),
        (
            lambda c: c.pop(SMTP_KEY),
            r"ecommerce:alertSmtpPassword is missing: monitoring\.alerts\.email\.username needs it",
        ),
        (
            lambda c: c["ecommerce:platform"]["monitoring"]["alerts"].pop("webhook"),
            r"ecommerce:alertWebhookUrl is set but nothing uses it \(monitoring\.alerts\.webhook is "
            r"not set\); set that, or remove the key",
        ),
        (
            lambda c: c.update({WEBHOOK_KEY: "hooks.example.com/no-scheme"}),
            r"ecommerce:alertWebhookUrl is not an http\(s\) URL like https://hooks\.example\.com/T0/B0 "
            r"\(its value is not shown: it is a secret\)$",
        ),
    ],
    ids=["webhook-without-url", "smtp-user-without-password", "url-without-webhook", "bad-url"],
)
def test_a_receiver_without_its_secret_is_refused(change: Any, message: str) -> None:
    config = receivers_config()
    change(config)
    with pytest.raises(StackConfigError, match=message) as caught:
        run_program("prod", config, secret_keys=[k for k in (WEBHOOK_KEY, SMTP_KEY) if k in config])
    assert "token-for-tests" not in str(caught.value)


def test_grafana_is_provisioned_with_the_data_source_and_dashboards(prod_graph: Graph) -> None:
    datasources = seed_files(prod_graph, "shop-grafana-datasources-files-seed")
    (source,) = yaml.safe_load(datasources["datasources.yaml"][0])["datasources"]
    assert (source["uid"], source["type"], source["url"]) == (
        dashboards.DATASOURCE_UID,
        "prometheus",
        "http://prometheus:9090",
    )
    boards = seed_files(prod_graph, "shop-grafana-dashboards-files-seed")
    (provider,) = yaml.safe_load(boards["dashboards.yaml"][0])["providers"]
    assert provider["type"] == "file" and provider["options"]["path"] == dashboards.DASHBOARDS_DIR
    mounts = {v["containerPath"]: v for v in prod_graph.container("shop-grafana").inputs["volumes"]}
    assert mounts[dashboards.DASHBOARDS_DIR]["volumeName"] == "shop-grafana-dashboards-files"
    models = {
        name: json.loads(text) for name, (text, _) in boards.items() if name.endswith(".json")
    }
    assert set(models) == {"platform-databases.json", "platform-edge.json", "platform-backups.json"}
    for name, model in models.items():
        assert_valid_dashboard(name, model)
    # Prod runs the logical backup job too: its panels are on the backups dashboard.
    titles = {p["title"] for p in models["platform-backups.json"]["panels"]}
    assert "Logical backups kept" in titles
    # And the apps' health probe: its panels are on the apps' dashboard.
    titles = {p["title"] for p in models["platform-edge.json"]["panels"]}
    assert "Apps answering their health check" in titles


def assert_valid_dashboard(name: str, model: dict[str, Any]) -> None:
    """What Grafana's file provider needs of a dashboard model, and what the panels need."""
    assert model["uid"] == name.removesuffix(".json") and len(model["uid"]) <= 40
    assert model["title"] and isinstance(model["schemaVersion"], int)
    ids = [p["id"] for p in model["panels"]]
    assert len(ids) == len(set(ids)), name
    for panel in model["panels"]:
        assert panel["type"] in ("timeseries", "stat"), panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": dashboards.DATASOURCE_UID}
        grid = panel["gridPos"]
        assert grid["w"] + grid["x"] <= 24 and grid["h"] > 0
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
        assert all(t["expr"] for t in panel["targets"]), panel["title"]


def test_grafana_reads_its_password_from_a_file(stack_graph: Graph) -> None:
    grafana = stack_graph.container(f"{stack_graph.name_prefix()}-grafana")
    envs = grafana.inputs["envs"]
    assert "GF_SECURITY_ADMIN_PASSWORD__FILE=/run/secrets/admin-password" in envs
    assert not any(e.startswith("GF_SECURITY_ADMIN_PASSWORD=") for e in envs)
    assert "GF_ANALYTICS_REPORTING_ENABLED=false" in envs
    assert [n["name"] for n in grafana.inputs["networksAdvanced"]] == [
        f"{stack_graph.name_prefix()}-monitoring"
    ]


def test_prod_serves_prometheus_behind_basic_auth_and_grafana_by_host(prod_graph: Graph) -> None:
    caddyfile = seed_files(prod_graph, "shop-edge-config-seed")["Caddyfile"][0]
    assert (
        "prometheus.shop.example.com {\n\ttls /etc/caddy/tls-certificate.pem" in caddyfile
        or "prometheus.shop.example.com {\n\theader" in caddyfile
    )
    site = caddyfile.split("prometheus.shop.example.com {", 1)[1].split("\n}\n", 1)[0]
    assert "\tbasicauth {\n\t\timport /etc/caddy-auth/prometheus-users\n\t}" in site
    assert "reverse_proxy prometheus:9090" in site
    grafana_site = caddyfile.split("grafana.shop.example.com {", 1)[1].split("\n}\n", 1)[0]
    assert "reverse_proxy grafana:3000" in grafana_site and "basicauth" not in grafana_site
    users, secret = seed_files(prod_graph, "shop-edge-auth-seed")["prometheus-users"]
    assert (
        secret and users == "ops $2a$10$generated-hash-of-platform-monitoring-prometheus-password\n"
    )
    assert (
        prod_graph.outputs["monitoring"]["prometheusUrl"] == "https://prometheus.shop.example.com"
    )
    assert prod_graph.outputs["monitoring"]["grafanaUrl"] == "https://grafana.shop.example.com"


def test_dev_publishes_grafana_through_the_edge_and_prometheus_on_loopback(
    dev_graph: Graph,
) -> None:
    caddyfile = seed_files(dev_graph, "shop-dev-edge-config-seed")["Caddyfile"][0]
    assert (
        "http://:3030 {\n\tlog\n\t@get method GET\n\treverse_proxy @get grafana:3000 {" in caddyfile
    )
    assert dev_graph.outputs["monitoring"]["grafanaUrl"] == "http://localhost:13010"
    assert dev_graph.outputs["monitoring"]["prometheusUrl"] == "http://localhost:19090"


@pytest.mark.parametrize(
    ("stack", "edit", "message"),
    [
        (
            "dev",
            put("monitoring.grafana.hostPort", None),
            "monitoring.grafana: nothing would reach it; set host",
        ),
        (
            "prod",
            put("monitoring.grafana.host", "shop.example.com"),
            "monitoring.grafana.host: shop.example.com is already the host of edge.hosts.frontend",
        ),
        (
            "prod",
            put("monitoring.prometheus.hostPort", 19090),
            "monitoring.prometheus.hostPort: prod never publishes Prometheus",
        ),
        (
            "prod",
            put("monitoring.grafana.hostPort", 13010),
            "monitoring.grafana.hostPort: prod serves Grafana by host name over HTTPS only",
        ),
        (
            "prod",
            put("monitoring.prometheus.image", "prom/prometheus:latest"),
            "monitoring.prometheus.image: 'prom/prometheus:latest' is not pinned",
        ),
        (
            "dev",
            put("monitoring.grafana.hostPort", 13000),
            "monitoring.grafana.hostPort: host port 13000 is already used by services.gateway",
        ),
        (
            "prod",
            put("monitoring.healthProbe.timeoutSeconds", 10),
            "monitoring.healthProbe.timeoutSeconds: 10 is longer than intervalSeconds (5)",
        ),
        (
            "prod",
            put("monitoring.healthProbe.image", "python:alpine"),
            "monitoring.healthProbe.image: 'python:alpine' is not pinned",
        ),
    ],
)
def test_what_cannot_work_is_a_one_line_error(stack: str, edit: Any, message: str) -> None:
    assert message in problems_of(stack, edit)


def test_monitoring_off_leaves_nothing_of_it() -> None:
    graph = run_program("prod", edited("prod", lambda p: p.update(monitoring={"enabled": False})))
    names = {c.service_name for c in graph.containers()}
    assert not {n for n in names if "prometheus" in n or "exporter" in n or "grafana" in n}
    assert not {n for n in names if "probe" in n}
    assert {n.inputs["name"] for n in graph.networks()} & {
        "shop-monitoring",
        "shop-alerting",
    } == set()
    assert "monitoring" not in graph.outputs


def test_the_health_probe_asks_every_app_and_listens_on_monitoring_only(stack_graph: Graph) -> None:
    p = stack_graph.name_prefix()
    probe = stack_graph.container(f"{p}-health-probe")
    command = probe.inputs["command"]
    assert command[:2] == ["python3", "/run/secrets/health_probe.py"]
    # Bound to its name on the monitoring network; the apps by their names, each on its port.
    assert "--listen=health-probe" in command and "--port=9115" in command
    targets = {c.removeprefix("--target=") for c in command if c.startswith("--target=")}
    apps = {s.name: s.container_port for s in PLATFORM.services}
    assert targets == {f"{app}=http://{app}:{port}/health" for app, port in apps.items()}
    assert len(apps) == 8
    assert "--interval=5" in command and "--timeout=3" in command
    # The file it runs is the repository's probe, shown in previews (plain).
    script, secret = seed_files(stack_graph, f"{p}-health-probe-files-seed")["health_probe.py"]
    assert script == Path(health.__file__).read_text(encoding="utf-8") and not secret
    # Its own health check asks the listener where it is bound.
    assert "http://health-probe:9115/-/healthy" in " ".join(probe.inputs["healthcheck"]["tests"])
    nets = [(n["name"], n["aliases"]) for n in probe.inputs["networksAdvanced"]]
    assert nets == [
        (f"{p}-monitoring", ["health-probe"]),
        (f"{p}-edge", ["health-probe-caller"]),
        (f"{p}-backend", ["health-probe-caller"]),
    ]
    scrape = yaml.safe_load(
        seed_files(stack_graph, f"{p}-prometheus-files-seed")["prometheus.yml"][0]
    )
    jobs = {j["job_name"]: j["static_configs"] for j in scrape["scrape_configs"]}
    assert jobs["apps"] == [{"targets": ["health-probe:9115"]}]


def test_the_health_probe_off_takes_its_rules_and_job_along() -> None:
    graph = run_program("dev", edited("dev", put("monitoring.healthProbe.enabled", False)))
    assert "shop-dev-health-probe" not in {c.service_name for c in graph.containers()}
    files = seed_files(graph, "shop-dev-prometheus-files-seed")
    assert "AppUnhealthy" not in files["alerts.yml"][0]
    assert "health-probe" not in files["prometheus.yml"][0]
