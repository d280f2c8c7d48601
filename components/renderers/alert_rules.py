"""The alert rules Prometheus evaluates, with the stack's thresholds.

Each rule is unit-tested with `promtool test rules` (alert_rules_test.yml, run by
test_alert_rules.py on the rules of the default settings, in tests/unit/components/renderers/);
docs/monitoring.md lists them. Severity `critical`: something is down or data is at risk now;
`warning`: it will be.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from components.renderers.monitoring_config import EDGE_APP_REQUESTS as APPS
from stacks.settings.monitoring import AlertSettings


@dataclass(frozen=True)
class Rule:
    alert: str
    expr: str
    wait: str
    """How long the condition must hold before the alert fires (the rule's `for`)."""
    severity: str
    summary: str


@dataclass(frozen=True)
class Thresholds:
    """What the rules compare against: the alert settings and, where they exist, the settings
    of what is watched."""

    alerts: AlertSettings
    max_archive_age_minutes: int | None
    """PITR's; None when PITR is off (no archiving rules)."""
    pitr_overdue_hours: tuple[int, int] | None = None
    """When the newest PITR backup and the last drill are overdue (components/parts/pitr.py); None
    when PITR is off."""
    backup_overdue_hours: int | None = None
    """When the newest logical backup is overdue; None when the backup job is off."""
    apps_probed: bool = False
    """The apps' health probe runs (probe/health.py)."""
    off_host: bool = False
    """An off-host repository beside PITR (pitr.offHost): its own rules, with PITR's limits."""


def rules(t: Thresholds) -> list[Rule]:
    """Every rule of the stack, in the order of the rules file."""
    found = _platform_rules(t.alerts)
    if t.apps_probed:
        found += _app_rules(t.alerts)
    if t.pitr_overdue_hours is not None:
        found += _pitr_rules(*t.pitr_overdue_hours)
    if t.off_host and t.pitr_overdue_hours is not None and t.max_archive_age_minutes is not None:
        found += _off_host_rules(t.max_archive_age_minutes, t.pitr_overdue_hours[0])
    if t.backup_overdue_hours is not None:
        found += _backup_rules(t.backup_overdue_hours)
    if t.max_archive_age_minutes is not None:
        found += _archiving_rules(t.max_archive_age_minutes)
    return found


def _platform_rules(a: AlertSettings) -> list[Rule]:
    """Scrapes, databases, Redis, the edge's answers, restarts and volumes."""
    return [
        Rule(
            "TargetDown",
            "up == 0",
            "2m",
            "critical",
            "{{ $labels.job }} at {{ $labels.instance }} answers no scrape",
        ),
        Rule(
            "PostgresDown",
            "pg_up == 0",
            "1m",
            "critical",
            "the {{ $labels.service }} database does not answer its exporter",
        ),
        Rule(
            "PostgresConnectionsHigh",
            "sum by (service) (pg_stat_activity_count)"
            " / on (service) max by (service) (pg_settings_max_connections)"
            f" * 100 > {a.connections_percent}",
            "5m",
            "warning",
            "the {{ $labels.service }} database uses {{ $value | humanize }}% of its "
            "max_connections",
        ),
        Rule("RedisDown", "redis_up == 0", "1m", "critical", "Redis does not answer its exporter"),
        # maxmemory 0 means no limit: no ratio then.
        Rule(
            "RedisMemoryHigh",
            "redis_memory_used_bytes / (redis_memory_max_bytes > 0) * 100"
            f" > {a.redis_memory_percent}",
            "5m",
            "warning",
            "Redis uses {{ $value | humanize }}% of its maxmemory: keys are being evicted "
            "or writes refused",
        ),
        # The answers of the apps behind it (not its health checks, redirects or metrics).
        Rule(
            "EdgeServerErrors",
            f'sum(rate(caddy_http_request_duration_seconds_count{{{APPS},code=~"5.."}}[5m]))'
            f" / sum(rate(caddy_http_request_duration_seconds_count{{{APPS}}}[5m]))"
            f" * 100 > {a.edge_5xx_percent:g}",
            "5m",
            "critical",
            "{{ $value | humanize }}% of the edge's answers are server errors",
        ),
        # Three rules: once changes() drops the metric names, a database's start times and
        # its exporter's would carry the same labels and `or` would keep only one of them.
        Rule(
            "PostgresRestarting",
            f"changes(pg_server_start_time_seconds[15m]) >= {a.restarts}",
            "0m",
            "warning",
            "the {{ $labels.service }} database started {{ $value }} times in 15 minutes",
        ),
        Rule(
            "RedisRestarting",
            f"changes(redis_start_time_seconds[15m]) >= {a.restarts}",
            "0m",
            "warning",
            "Redis started {{ $value }} times in 15 minutes",
        ),
        Rule(
            "ProcessRestarting",
            f"changes(process_start_time_seconds[15m]) >= {a.restarts}",
            "0m",
            "warning",
            "{{ $labels.job }} at {{ $labels.instance }} started {{ $value }} times in 15 minutes",
        ),
        Rule(
            "VolumeFilling",
            "ecommerce_volume_free_bytes / ecommerce_volume_size_bytes * 100"
            f" < {a.volume_free_percent}",
            "10m",
            "warning",
            "the {{ $labels.volume }} volume at {{ $labels.instance }} has "
            "{{ $value | humanize }}% free",
        ),
    ]


def _app_rules(a: AlertSettings) -> list[Rule]:
    """The apps' health, as the health probe sees it."""
    return [
        # Longer than a release's start, as long as Docker's own check takes by default.
        Rule(
            "AppUnhealthy",
            "ecommerce_app_health_up == 0",
            "2m",
            "critical",
            "the {{ $labels.service }} app fails its health check (GET /health) from the "
            "monitoring network",
        ),
        # An app that came back after failing its probe: restarted, crash-looping or
        # flapping. A restart shorter than the probe's interval goes unseen.
        Rule(
            "AppRestarting",
            f"round(increase(ecommerce_app_health_recoveries_total[15m])) >= {a.restarts}",
            "0m",
            "warning",
            "the {{ $labels.service }} app came back {{ $value }} times in 15 minutes "
            "after failing its health check",
        ),
    ]


def _pitr_rules(backup_hours: int, drill_hours: int) -> list[Rule]:
    """The PITR agents' tasks: failing, or their backups and drills overdue."""
    return [
        Rule(
            "PitrTaskFailing",
            "ecommerce_pitr_last_attempt_failed == 1",
            "10m",
            "critical",
            "the last {{ $labels.task }} of the {{ $labels.service }} database's PITR agent failed",
        ),
        Rule(
            "PitrBackupOverdue",
            'time() - ecommerce_pitr_last_success_timestamp_seconds{task="backup"}'
            f" > {backup_hours * 3600}",
            "5m",
            "critical",
            "the {{ $labels.service }} database's newest PITR backup is "
            "{{ $value | humanizeDuration }} old",
        ),
        Rule(
            "PitrDrillOverdue",
            'time() - ecommerce_pitr_last_success_timestamp_seconds{task="drill"}'
            f" > {drill_hours * 3600}",
            "5m",
            "warning",
            "the {{ $labels.service }} database's last passed restore drill is "
            "{{ $value | humanizeDuration }} old",
        ),
    ]


def _off_host_rules(max_age_minutes: int, backup_hours: int) -> list[Rule]:
    """repo2 as each database's agent sees it (pitr/offhost_watch.py): away, behind repo1 for
    longer than an archive may be stale (what a lost host would cost), or its backups overdue."""
    return [
        Rule(
            "PitrOffHostUnreachable",
            "ecommerce_pitr_offhost_up == 0",
            "10m",
            "critical",
            "the {{ $labels.service }} database does not reach its off-host repository: its "
            "WAL waits on the database's host",
        ),
        Rule(
            "PitrOffHostArchiveBehind",
            f"time() - ecommerce_pitr_offhost_caught_up_timestamp_seconds > {max_age_minutes * 60}",
            "5m",
            "critical",
            "the {{ $labels.service }} database's off-host archive is behind repo1 for "
            "{{ $value | humanizeDuration }}: losing the host would lose that much",
        ),
        Rule(
            "PitrOffHostBackupOverdue",
            "time() - ecommerce_pitr_offhost_last_backup_timestamp_seconds"
            f" > {backup_hours * 3600}",
            "5m",
            "critical",
            "the {{ $labels.service }} database's newest off-host backup is "
            "{{ $value | humanizeDuration }} old",
        ),
    ]


def _backup_rules(overdue_hours: int) -> list[Rule]:
    """The scheduled logical backups: failing, or overdue."""
    return [
        Rule(
            "BackupFailing",
            "ecommerce_backup_last_run_failed == 1",
            "10m",
            "critical",
            "the scheduled logical backup failed",
        ),
        Rule(
            "BackupOverdue",
            f"time() - ecommerce_backup_last_success_timestamp_seconds > {overdue_hours * 3600}",
            "5m",
            "critical",
            "the newest verified logical backup is {{ $value | humanizeDuration }} old",
        ),
    ]


def _archiving_rules(max_age_minutes: int) -> list[Rule]:
    """Every database's WAL archiving: failing, or stale."""
    return [
        Rule(
            "WalArchivingFailing",
            "pg_archiver_failing == 1",
            "2m",
            "critical",
            "the {{ $labels.service }} database fails to archive its WAL: "
            "point-in-time recovery stops at the last archived segment",
        ),
        Rule(
            "WalArchiveStale",
            f"time() - pg_archiver_last_archived_timestamp_seconds > {max_age_minutes * 60}",
            "5m",
            "critical",
            "the {{ $labels.service }} database archived no WAL for "
            "{{ $value | humanizeDuration }}",
        ),
    ]


def render(t: Thresholds) -> str:
    document: dict[str, Any] = {
        "groups": [
            {
                "name": "platform",
                "rules": [
                    {
                        "alert": r.alert,
                        "expr": r.expr,
                        "for": r.wait,
                        "labels": {"severity": r.severity},
                        "annotations": {"summary": r.summary},
                    }
                    for r in rules(t)
                ],
            }
        ]
    }
    header = "# The alert rules, written by the platform program (components/alert_rules.py).\n"
    return header + yaml.safe_dump(document, sort_keys=False, width=200)
