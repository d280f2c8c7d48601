"""The alert rules under `promtool test rules` (tests/unit/components/renderers/alert_rules_test.yml), with the
thresholds of the default settings, and the rules' thresholds taken from the settings."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from components.parts.backup_job import OVERDUE_SLACK_HOURS as BACKUP_SLACK_HOURS
from components.parts.pitr import overdue_after_hours
from components.renderers.alert_rules import Thresholds, render, rules
from stacks.settings import BackupSettings, PitrSettings
from stacks.settings.monitoring import AlertSettings

TESTS = Path(__file__).with_name("alert_rules_test.yml")
PROMTOOL = Path(__file__).resolve().parents[4] / ".venv" / "bin" / "promtool"
DEFAULTS = Thresholds(
    AlertSettings(),
    PitrSettings().max_archive_age_minutes,
    overdue_after_hours(PitrSettings()),
    BackupSettings().every_hours + BACKUP_SLACK_HOURS,
    apps_probed=True,
    off_host=True,
)


def promtool() -> str:
    found = shutil.which("promtool") or (str(PROMTOOL) if PROMTOOL.exists() else None)
    if found is None:
        pytest.fail("promtool is missing: run `make promtool` (make test does)")
    return found


def run_promtool(folder: Path, thresholds: Thresholds) -> subprocess.CompletedProcess[str]:
    (folder / "alerts.yml").write_text(render(thresholds))
    shutil.copy(TESTS, folder / TESTS.name)
    return subprocess.run(
        [promtool(), "test", "rules", TESTS.name],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )


def test_every_rule_passes_its_promtool_tests(tmp_path: Path) -> None:
    result = run_promtool(tmp_path, DEFAULTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_the_rules_file_passes_promtool_check(tmp_path: Path) -> None:
    (tmp_path / "alerts.yml").write_text(render(DEFAULTS))
    result = subprocess.run(
        [promtool(), "check", "rules", "alerts.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_rule_has_a_case_where_it_fires() -> None:
    cases = yaml.safe_load(TESTS.read_text())["tests"]
    fired = {
        check["alertname"]
        for case in cases
        for check in case["alert_rule_test"]
        if check.get("exp_alerts")
    }
    assert fired == {r.alert for r in rules(DEFAULTS)}


def test_another_threshold_changes_what_fires(tmp_path: Path) -> None:
    # The tests expect an order database at 85% of its connections to alert: at 90% it is not.
    stricter = Thresholds(
        AlertSettings(connections_percent=90),
        DEFAULTS.max_archive_age_minutes,
        DEFAULTS.pitr_overdue_hours,
        DEFAULTS.backup_overdue_hours,
        apps_probed=True,
    )
    result = run_promtool(tmp_path, stricter)
    assert result.returncode != 0
    assert "PostgresConnectionsHigh" in result.stdout + result.stderr


def test_thresholds_come_from_the_settings() -> None:
    alerts = AlertSettings(
        connections_percent=70,
        edge_5xx_percent=2.5,
        redis_memory_percent=75,
        restarts=5,
        volume_free_percent=20,
    )
    by_name = {r.alert: r.expr for r in rules(Thresholds(alerts, 40, (8, 30), 12, True))}
    assert by_name["PostgresConnectionsHigh"].endswith("* 100 > 70")
    assert by_name["EdgeServerErrors"].endswith("* 100 > 2.5")
    assert by_name["RedisMemoryHigh"].endswith("* 100 > 75")
    assert by_name["PostgresRestarting"].endswith(">= 5")
    assert by_name["AppRestarting"].endswith(">= 5")
    assert by_name["WalArchiveStale"].endswith("> 2400")
    assert by_name["VolumeFilling"].endswith("* 100 < 20")
    assert by_name["PitrBackupOverdue"].endswith(f"> {8 * 3600}")
    assert by_name["PitrDrillOverdue"].endswith(f"> {30 * 3600}")
    assert by_name["BackupOverdue"].endswith(f"> {12 * 3600}")


def test_without_pitr_or_the_backup_job_their_rules_are_left_out() -> None:
    names = {r.alert for r in rules(Thresholds(AlertSettings(), None))}
    assert not names & {
        "WalArchivingFailing",
        "WalArchiveStale",
        "PitrTaskFailing",
        "PitrBackupOverdue",
        "PitrDrillOverdue",
        "BackupFailing",
        "BackupOverdue",
    }
    assert "VolumeFilling" in names
