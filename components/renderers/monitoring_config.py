"""The monitoring parts' configuration files, written from the stack's settings.

Pure functions of the settings and the stack's shape, deterministic (the same settings give the
same text, so a second `pulumi up` changes nothing): Prometheus's scrape configuration, the
alert rules (alert_rules.py), Alertmanager's routes and receivers, and the
PostgreSQL exporter's extra queries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from stacks.settings.monitoring import MonitoringSettings

PROMETHEUS_PORT = 9090
ALERTMANAGER_PORT = 9093
POSTGRES_EXPORTER_PORT = 9187
REDIS_EXPORTER_PORT = 9121
HEALTH_PROBE_PORT = 9115
PITR_METRICS_PORT = 9188
"""Where each database's PITR agent serves its state (pitr/metrics.py)."""
BACKUP_METRICS_PORT = 9189
"""Where the backup job serves the backups' state (backup/metrics.py)."""
EDGE_METRICS_PORT = 9180
"""Where the edge proxy serves its metrics, on the monitoring network only."""

EDGE_APP_REQUESTS = 'handler=~"reverse_proxy|subroute"'
"""The edge's requests to the apps, as Caddy labels them: `reverse_proxy` on a port of its own
(dev), `subroute` on a host name (each host's routes are one subroute, and Caddy counts only
the outer handler; prod's redirects to HTTPS are host routes too, counted among the answers
as 308s). Its health listener is `static_response`, its metrics listener `metrics`: not the
apps' traffic."""

PROMETHEUS_ALIAS = "prometheus"
ALERTMANAGER_ALIAS = "alertmanager"
REDIS_EXPORTER_ALIAS = "redis-exporter"
HEALTH_PROBE_ALIAS = "health-probe"
"""The apps' health probe's name on the monitoring network (its listener binds to that
address)."""
EDGE_METRICS_ALIAS = "edge-metrics"
"""The edge proxy's name on the monitoring network (its listener binds to that address)."""
BACKUP_ALIAS = "backup"
"""The backup job's name on every network it joins."""

PROMETHEUS_CONFIG = "prometheus.yml"
ALERT_RULES = "alerts.yml"
ALERTMANAGER_CONFIG = "alertmanager.yml"
EXPORTER_QUERIES = "queries.yaml"


def postgres_exporter_alias(service: str) -> str:
    return f"{service}-db-exporter"


def pitr_agent_alias(service: str) -> str:
    """A database's PITR agent's name on the monitoring network."""
    return f"{service}-db-pitr"


@dataclass(frozen=True)
class ScrapeTargets:
    """What Prometheus scrapes, by the names it reaches them under on the monitoring network."""

    databases: Sequence[str]
    """The services with a database: each has its exporter."""
    edge: bool = True
    pitr: bool = False
    """Each database's PITR agent serves its state (pitr/metrics.py)."""
    backup: bool = False
    """The backup job serves its state (backup/metrics.py)."""
    health_probe: bool = False
    """The apps' health probe serves their answers (probe/health.py)."""


def prometheus_config(m: MonitoringSettings, targets: ScrapeTargets, stack: str) -> str:
    interval = f"{m.prometheus.scrape_interval_seconds}s"

    def job(name: str, addresses: list[str], **extra: Any) -> dict[str, Any]:
        return {"job_name": name, "static_configs": [{"targets": addresses}], **extra}

    jobs = [
        job("prometheus", [f"127.0.0.1:{PROMETHEUS_PORT}"]),
        job("alertmanager", [f"{ALERTMANAGER_ALIAS}:{ALERTMANAGER_PORT}"]),
        {
            "job_name": "postgres",
            # One target per server, labelled with the service it belongs to.
            "static_configs": [
                {
                    "targets": [f"{postgres_exporter_alias(s)}:{POSTGRES_EXPORTER_PORT}"],
                    "labels": {"service": s},
                }
                for s in targets.databases
            ],
        },
        job("redis", [f"{REDIS_EXPORTER_ALIAS}:{REDIS_EXPORTER_PORT}"]),
    ]
    if targets.edge:
        jobs.append(job("edge", [f"{EDGE_METRICS_ALIAS}:{EDGE_METRICS_PORT}"]))
    if targets.pitr:
        jobs.append(
            {
                "job_name": "pitr",
                "static_configs": [
                    {
                        "targets": [f"{pitr_agent_alias(db)}:{PITR_METRICS_PORT}"],
                        "labels": {"service": db},
                    }
                    for db in targets.databases
                ],
            }
        )
    if targets.backup:
        jobs.append(job("backup", [f"{BACKUP_ALIAS}:{BACKUP_METRICS_PORT}"]))
    if targets.health_probe:
        jobs.append(job("apps", [f"{HEALTH_PROBE_ALIAS}:{HEALTH_PROBE_PORT}"]))
    config = {
        "global": {
            "scrape_interval": interval,
            "evaluation_interval": interval,
            "external_labels": {"stack": stack},
        },
        "rule_files": [ALERT_RULES],
        "alerting": {
            "alertmanagers": [
                {"static_configs": [{"targets": [f"{ALERTMANAGER_ALIAS}:{ALERTMANAGER_PORT}"]}]}
            ]
        },
        "scrape_configs": jobs,
    }
    return _yaml(config, "Prometheus's configuration")


@dataclass(frozen=True)
class Receivers:
    """The secrets the receivers need, in plain text (the file is a secret)."""

    webhook_url: str | None = None
    smtp_password: str | None = None


def alertmanager_config(m: MonitoringSettings, receivers: Receivers) -> str:
    receiver: dict[str, Any] = {"name": "operators"}
    if receivers.webhook_url is not None:
        receiver["webhook_configs"] = [{"url": receivers.webhook_url, "send_resolved": True}]
    email = m.alerts.email
    if email is not None:
        config: dict[str, Any] = {
            "to": email.to,
            "from": email.sender,
            "smarthost": email.smarthost,
            "require_tls": email.require_tls,
            "send_resolved": True,
        }
        if email.username is not None:
            config["auth_username"] = email.username
            config["auth_password"] = receivers.smtp_password
        receiver["email_configs"] = [config]
    route = {
        "receiver": "operators",
        "group_by": ["alertname", "service"],
        # A first alert waits this long for its companions (one message for a host going down),
        # then a group is resent at most this often while it lasts.
        "group_wait": "30s",
        "group_interval": "5m",
        "repeat_interval": "4h",
    }
    return _yaml({"route": route, "receivers": [receiver]}, "Alertmanager's configuration")


# What the rules watch that the exporter's built-in collectors do not all read (which ones
# are on varies with its version), under names none of them uses: pg_stat_archiver (`failing`:
# the last attempt failed; the age counts from the server's start while nothing was archived
# yet) and the server's start time (a restart changes it).
EXPORTER_EXTRA_QUERIES: Mapping[str, Any] = {
    "pg_server": {
        "query": "SELECT EXTRACT(EPOCH FROM pg_postmaster_start_time()) AS start_time_seconds",
        "metrics": [
            {"start_time_seconds": {"usage": "GAUGE", "description": "When the server started"}}
        ],
    },
    "pg_archiver": {
        "query": (
            "SELECT archived_count, failed_count, "
            "CASE WHEN last_failed_time > COALESCE(last_archived_time, 'epoch') "
            "THEN 1 ELSE 0 END AS failing, "
            "EXTRACT(EPOCH FROM COALESCE(last_archived_time, pg_postmaster_start_time())) "
            "AS last_archived_timestamp_seconds "
            "FROM pg_stat_archiver"
        ),
        "metrics": [
            {"archived_count": {"usage": "COUNTER", "description": "WAL files archived"}},
            {"failed_count": {"usage": "COUNTER", "description": "Failed archive attempts"}},
            {"failing": {"usage": "GAUGE", "description": "1 when the last attempt failed"}},
            {
                "last_archived_timestamp_seconds": {
                    "usage": "GAUGE",
                    "description": "When a WAL file was last archived (else the start)",
                }
            },
        ],
    },
}


def exporter_queries() -> str:
    return _yaml(dict(EXPORTER_EXTRA_QUERIES), "the PostgreSQL exporter's extra queries")


def _yaml(document: Mapping[str, Any], what: str) -> str:
    header = f"# {what[0].upper()}{what[1:]}, written by the platform program (components/).\n"
    return header + yaml.safe_dump(dict(document), sort_keys=False, default_flow_style=False)
