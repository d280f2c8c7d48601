"""Grafana's provisioning: the Prometheus data source and three dashboards, as files.

The dashboards are written here (not exported from a Grafana) so that every query is in one
place the tests can read: tests/integration runs each one against the live Prometheus and
expects data, and tests/unit checks the files' shape against what Grafana's provisioning
reads. No Grafana runs in the tests (docs/monitoring.md says what that leaves untested).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import yaml

from components.renderers.monitoring_config import EDGE_APP_REQUESTS as APPS

DATASOURCE_UID = "prometheus"
DATASOURCES_FILE = "datasources.yaml"
PROVIDERS_FILE = "dashboards.yaml"
DASHBOARDS_DIR = "/etc/grafana/provisioning/dashboards"
"""Where the dashboards' JSON files sit, beside the provider file that points at them."""


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    title: str
    queries: tuple[Query, ...]
    unit: str = "short"
    kind: str = "timeseries"
    """`timeseries` or `stat`."""


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    panels: tuple[Panel, ...]

    @property
    def file_name(self) -> str:
        return f"{self.uid}.json"


def _p(
    title: str, *queries: tuple[str, str], unit: str = "short", kind: str = "timeseries"
) -> Panel:
    return Panel(title, tuple(Query(e, legend) for e, legend in queries), unit, kind)


DATABASES = Dashboard(
    "platform-databases",
    "Databases",
    (
        _p("Up", ("pg_up", "{{service}}"), kind="stat"),
        _p(
            "Sessions, % of max_connections",
            (
                "sum by (service) (pg_stat_activity_count) / on (service) "
                "max by (service) (pg_settings_max_connections) * 100",
                "{{service}}",
            ),
            unit="percent",
        ),
        _p(
            "Sessions by state",
            ("sum by (service, state) (pg_stat_activity_count)", "{{service}} {{state}}"),
        ),
        _p(
            "Transactions per second",
            ("sum by (service) (rate(pg_stat_database_xact_commit[5m]))", "{{service}} commits"),
            (
                "sum by (service) (rate(pg_stat_database_xact_rollback[5m]))",
                "{{service}} rollbacks",
            ),
        ),
        _p(
            "Database size",
            ("sum by (service) (pg_database_size_bytes)", "{{service}}"),
            unit="bytes",
        ),
        _p(
            "Server starts in the last hour",
            ("changes(pg_server_start_time_seconds[1h])", "{{service}}"),
            kind="stat",
        ),
    ),
)

EDGE = Dashboard(
    "platform-edge",
    "Apps through the edge",
    (
        _p(
            "Requests per second by answer code",
            (
                f"sum by (code) (rate(caddy_http_request_duration_seconds_count{{{APPS}}}[5m]))",
                "{{code}}",
            ),
        ),
        _p(
            "Server errors (5xx), %",
            (
                f'(sum(rate(caddy_http_request_duration_seconds_count{{{APPS},code=~"5.."}}[5m])) '
                f"or vector(0)) / "
                f"(sum(rate(caddy_http_request_duration_seconds_count{{{APPS}}}[5m])) "
                "> 0) * 100 or vector(0)",
                "5xx",
            ),
            unit="percent",
        ),
        _p(
            "Latency, 95th percentile",
            (
                "histogram_quantile(0.95, sum by (le) "
                "(rate(caddy_http_request_duration_seconds_bucket"
                f"{{{APPS}}}[5m])))",
                "p95",
            ),
            unit="s",
        ),
        _p("Requests in flight", ("sum(caddy_http_requests_in_flight)", "in flight")),
        _p(
            "Redis memory, % of maxmemory",
            ("redis_memory_used_bytes / (redis_memory_max_bytes > 0) * 100", "redis"),
            unit="percent",
        ),
        _p("Scrape targets up", ("sum by (job) (up)", "{{job}}"), kind="stat"),
    ),
)

APP_HEALTH_PANELS = (
    _p(
        "Apps answering their health check", ("ecommerce_app_health_up", "{{service}}"), kind="stat"
    ),
    _p(
        "Failed health probes in the last hour",
        ("increase(ecommerce_app_health_failures_total[1h])", "{{service}}"),
    ),
    _p(
        "Health check answer time",
        ("ecommerce_app_health_duration_seconds", "{{service}}"),
        unit="s",
    ),
)
"""From the apps' health probe (probe/health.py), on the apps' dashboard when it runs."""

BACKUPS = Dashboard(
    "platform-backups",
    "Backups and point-in-time recovery",
    (
        _p(
            "Time since the last passed archive check, backup and drill",
            ("time() - ecommerce_pitr_last_success_timestamp_seconds", "{{service}} {{task}}"),
            unit="s",
        ),
        _p(
            "Failed attempts in a row",
            ("ecommerce_pitr_consecutive_failures", "{{service}} {{task}}"),
        ),
        _p(
            "Time since a WAL segment was archived",
            ("time() - pg_archiver_last_archived_timestamp_seconds", "{{service}}"),
            unit="s",
        ),
        _p("WAL archive failures", ("increase(pg_archiver_failed_count[1h])", "{{service}}")),
        _p(
            "Free space of the data volumes",
            (
                "ecommerce_volume_free_bytes / ecommerce_volume_size_bytes * 100",
                "{{instance}} {{volume}}",
            ),
            unit="percent",
        ),
    ),
)

LOGICAL_BACKUP_PANELS = (
    _p(
        "Time since the newest verified logical backup",
        ("time() - ecommerce_backup_last_success_timestamp_seconds", "logical backup"),
        unit="s",
    ),
    _p("Logical backups kept", ("ecommerce_backup_count", "backups"), kind="stat"),
)


def dashboards(pitr: bool, backup: bool, apps_probed: bool) -> list[Dashboard]:
    """The dashboards for what the stack runs: the backups one when PITR or the job is on."""
    edge = EDGE
    if apps_probed:
        edge = Dashboard(EDGE.uid, EDGE.title, EDGE.panels + APP_HEALTH_PANELS)
    found = [DATABASES, edge]
    panels = (BACKUPS.panels if pitr else ()) + (LOGICAL_BACKUP_PANELS if backup else ())
    if panels:
        found.append(Dashboard(BACKUPS.uid, BACKUPS.title, panels))
    return found


def datasources(prometheus_url: str) -> str:
    document = {
        "apiVersion": 1,
        "datasources": [
            {
                "name": "Prometheus",
                "uid": DATASOURCE_UID,
                "type": "prometheus",
                "access": "proxy",
                "url": prometheus_url,
                "isDefault": True,
                "editable": False,
            }
        ],
    }
    return yaml.safe_dump(document, sort_keys=False)


def providers() -> str:
    document = {
        "apiVersion": 1,
        "providers": [
            {
                "name": "platform",
                "type": "file",
                "disableDeletion": True,
                "allowUiUpdates": False,
                "options": {"path": DASHBOARDS_DIR, "foldersFromFilesStructure": False},
            }
        ],
    }
    return yaml.safe_dump(document, sort_keys=False)


def dashboard_json(d: Dashboard) -> str:
    """The dashboard model Grafana's file provider reads (schemaVersion 39)."""
    panels = []
    for index, panel in enumerate(d.panels):
        panels.append(
            {
                "id": index + 1,
                "type": panel.kind,
                "title": panel.title,
                "datasource": {"type": "prometheus", "uid": DATASOURCE_UID},
                "gridPos": {"h": 8, "w": 12, "x": (index % 2) * 12, "y": (index // 2) * 8},
                "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
                "targets": [
                    {
                        "refId": chr(ord("A") + n),
                        "datasource": {"type": "prometheus", "uid": DATASOURCE_UID},
                        "expr": q.expr,
                        "legendFormat": q.legend,
                    }
                    for n, q in enumerate(panel.queries)
                ],
            }
        )
    model = {
        "uid": d.uid,
        "title": d.title,
        "tags": ["platform"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "panels": panels,
    }
    return json.dumps(model, indent=2, sort_keys=True) + "\n"


def queries(found: list[Dashboard]) -> list[tuple[str, str, str]]:
    """Every query of the dashboards as (dashboard, panel, expr)."""
    return [(d.title, p.title, q.expr) for d in found for p in d.panels for q in p.queries]
