"""Monitoring (docs/monitoring.md): Prometheus, Alertmanager and the exporters, where alerts go,
the thresholds of the alert rules that are not taken from other settings, and the rules that
make it work (Grafana reachable, the health probe's timeout within its interval)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from stacks.settings.common import PidsLimit, Port, Problem, Resources, StrictModel, reject_if_any
from stacks.settings.edge import HostName


class PrometheusSettings(StrictModel):
    """The Prometheus server: it scrapes every exporter and evaluates the alert rules."""

    image: str = Field(default="prom/prometheus:v2.53.3", min_length=1)
    """The Prometheus image (its official one, or any with its layout)."""
    retention_days: int = Field(default=15, ge=1, le=3650)
    """Samples older than this are deleted (`--storage.tsdb.retention.time`)."""
    scrape_interval_seconds: int = Field(default=30, ge=5, le=300)
    """Every target is scraped, and every rule evaluated, this often."""
    host_port: Port | None = None
    """Its web UI published on `publishIp` (dev); unset keeps it private."""
    host: HostName | None = None
    """Its web UI served by the edge on this host name (HTTPS with `edge.tls`), behind basic
    auth: the user `user`, a generated password (stack output `monitoring`)."""
    user: str = Field(default="ops", pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    """The basic-auth user in front of its UI on `host`."""
    resources: Resources = Resources(memory_mb=1024, cpus=1.0)
    """The container's limits: memory grows with the number of series (make bench-monitoring)."""
    pids_limit: PidsLimit = 256
    """Most processes (threads included) of the container."""


class Component(StrictModel):
    """A small monitoring component: its image and limits."""

    image: str = Field(min_length=1)
    """Its image."""
    resources: Resources = Resources(memory_mb=128, cpus=0.25)
    """The container's limits."""
    pids_limit: PidsLimit = 128
    """Most processes (threads included) of the container."""


class GrafanaSettings(StrictModel):
    """Grafana with the platform's data source and dashboards, provisioned from files; served
    by the edge, its `admin` password generated (stack output `monitoring`)."""

    enabled: bool = True
    """Run Grafana."""
    image: str = Field(default="grafana/grafana-oss:11.3.1", min_length=1)
    """The Grafana image."""
    host: HostName | None = None
    """Served by the edge on this host name (HTTPS with `edge.tls`)."""
    host_port: Port | None = None
    """Served by the edge on this port of `publishIp` over plain HTTP (dev)."""
    resources: Resources = Resources(memory_mb=256, cpus=0.5)
    """The container's limits."""
    pids_limit: PidsLimit = 256
    """Most processes (threads included) of the container."""


class HealthProbeSettings(StrictModel):
    """The apps' health probe (probe/health.py): asks every app for `GET /health` over the
    network, as often as `intervalSeconds`, and serves the answers to Prometheus. It runs with
    a plain Python image; the deploy mounts the probe's one file."""

    enabled: bool = True
    """Probe the apps (the rules AppUnhealthy and AppRestarting)."""
    image: str = Field(default="python:3.12.8-alpine3.21", min_length=1)
    """Any image with `python3` (3.11 or newer) on its PATH and the user nobody (65534)."""
    interval_seconds: int = Field(default=5, ge=1, le=60)
    """Each app is asked this often, between scrapes too: a shorter outage can go unseen."""
    timeout_seconds: int = Field(default=3, ge=1, le=60)
    """A probe without an answer within this is a failure; at most `intervalSeconds`."""
    resources: Resources = Resources(memory_mb=64, cpus=0.1)
    """The container's limits."""
    pids_limit: PidsLimit = 64
    """Most processes (threads included) of the container: a thread per app and per scrape."""


class EmailReceiver(StrictModel):
    """Alerts by e-mail through an SMTP relay; its password, if any, is the secret config key
    `ecommerce:alertSmtpPassword`."""

    to: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    """Where alerts go, e.g. `ops@example.com`."""
    sender: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    """The `From:` address."""
    smarthost: str = Field(pattern=r"^[A-Za-z0-9.-]+:[0-9]{1,5}$")
    """The SMTP relay as `host:port`, e.g. `smtp.example.com:587`."""
    username: str | None = None
    """The relay's login; the password is `ecommerce:alertSmtpPassword`."""
    require_tls: bool = True
    """STARTTLS before anything is sent."""


class AlertSettings(StrictModel):
    """Where alerts go, and the thresholds of the rules (docs/monitoring.md lists the rules)."""

    webhook: bool = False
    """Send every alert to the webhook URL of the secret config key `ecommerce:alertWebhookUrl`
    (Alertmanager's webhook format)."""
    email: EmailReceiver | None = None
    """Send every alert by e-mail."""
    connections_percent: int = Field(default=80, ge=10, le=100)
    """A database with more sessions than this share of its `maxConnections`."""
    edge_5xx_percent: float = Field(default=5.0, gt=0, le=100)
    """Share of the edge's answers that are server errors (5xx), over 5 minutes."""
    redis_memory_percent: int = Field(default=90, ge=10, le=100)
    """Redis using more than this share of its `maxMemoryMb`."""
    restarts: int = Field(default=3, ge=1, le=100)
    """A database, Redis, the edge, a PITR agent, the backup job or a monitoring part started
    this many times in 15 minutes, or an app came back this many times after failing its health
    probe."""
    volume_free_percent: int = Field(default=10, ge=1, le=90)
    """A data volume (a database's, its PITR repository, the backups') with less free space."""


class MonitoringSettings(StrictModel):
    """Metrics, alerts and their receivers (docs/monitoring.md)."""

    enabled: bool = True
    """Run Prometheus, Alertmanager and the exporters."""
    prometheus: PrometheusSettings = PrometheusSettings()
    """The Prometheus server."""
    alertmanager: Component = Component(image="prom/alertmanager:v0.27.0")
    """Alertmanager: groups the alerts and sends them to the receivers."""
    postgres_exporter: Component = Component(
        image="quay.io/prometheuscommunity/postgres-exporter:v0.16.0",
        resources=Resources(memory_mb=64, cpus=0.25),
    )
    """The exporter run beside each database server, as a role with `pg_monitor` only."""
    redis_exporter: Component = Component(
        image="oliver006/redis_exporter:v1.66.0-alpine",
        resources=Resources(memory_mb=64, cpus=0.25),
    )
    """The Redis exporter (its alpine image: the health check needs `wget`)."""
    grafana: GrafanaSettings = GrafanaSettings()
    """Dashboards."""
    health_probe: HealthProbeSettings = HealthProbeSettings()
    """The apps' health, asked over the network."""
    alerts: AlertSettings = AlertSettings()
    """Receivers and thresholds."""


def monitoring_images(m: MonitoringSettings) -> dict[str, str]:
    """The monitoring images by the key that sets them (none when monitoring is off)."""
    if not m.enabled:
        return {}
    found = {
        "monitoring.prometheus.image": m.prometheus.image,
        "monitoring.alertmanager.image": m.alertmanager.image,
        "monitoring.postgresExporter.image": m.postgres_exporter.image,
        "monitoring.redisExporter.image": m.redis_exporter.image,
    }
    if m.grafana.enabled:
        found["monitoring.grafana.image"] = m.grafana.image
    if m.health_probe.enabled:
        found["monitoring.healthProbe.image"] = m.health_probe.image
    return found


def monitoring_hosts(m: MonitoringSettings) -> dict[str, str]:
    """The host names the edge serves monitoring UIs on, by the key that sets them."""
    if not m.enabled:
        return {}
    hosts = {"monitoring.prometheus.host": m.prometheus.host}
    if m.grafana.enabled:
        hosts["monitoring.grafana.host"] = m.grafana.host
    return {key: host for key, host in hosts.items() if host is not None}


def _workable(m: MonitoringSettings) -> MonitoringSettings:
    if not m.enabled:
        return m
    problems: list[Problem] = []
    grafana = m.grafana
    if grafana.enabled and grafana.host is None and grafana.host_port is None:
        problems.append(
            (
                "grafana",
                "nothing would reach it; set host (a host name the edge serves) or hostPort "
                "(dev), or enabled: false",
            )
        )
    probe = m.health_probe
    if probe.enabled and probe.timeout_seconds > probe.interval_seconds:
        problems.append(
            (
                "healthProbe.timeoutSeconds",
                f"{probe.timeout_seconds} is longer than intervalSeconds "
                f"({probe.interval_seconds}); lower it or raise intervalSeconds",
            )
        )
    reject_if_any(problems)
    return m


Monitoring = Annotated[MonitoringSettings, AfterValidator(_workable)]
"""MonitoringSettings judged by their rules where the stack file holds them. Not a validator of
the model itself: its default (Grafana on, reachable by nothing) breaks them on purpose, so a
stack says how Grafana is reached, or turns it off; the top level validates that default."""
