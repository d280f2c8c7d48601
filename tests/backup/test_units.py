"""Pieces of the backup tool that need no PostgreSQL: targets validation, durations, the lock,
retention planning, the health check and the client version check."""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from backup import errors, pg
from backup.cli import main
from backup.errors import ConnectError, LockHeldError, UnhealthyError, UsageError
from backup.lock import locked
from backup.manifest import MANIFEST, Verification, scan, write_verification
from backup.prune import plan_prune
from backup.schedule import LAST_RUN, parse_duration, retry_delay, run_loop, status
from backup.targets import parse_targets, select

GOOD: dict[str, Any] = {
    "customer": {
        "host": "db",
        "port": 5432,
        "database": "customer_db",
        "user": "customer_user",
        "password": "s3cret-value",
    }
}


def test_targets_parse_and_reject_with_the_key_named() -> None:
    t = parse_targets(GOOD, "f.json")["customer"]
    assert (t.host, t.port, t.database, t.user) == ("db", 5432, "customer_db", "customer_user")
    assert "s3cret-value" not in repr(t)
    cases: list[tuple[Callable[[dict[str, Any]], object], str]] = [
        (lambda d: d["customer"].pop("user"), "service 'customer' lacks key 'user'"),
        (lambda d: d["customer"].update(port="x"), "key 'port' must be a int"),
        (lambda d: d["customer"].update(port=0), "key 'port' is out of range"),
        (lambda d: d["customer"].update(host=""), "key 'host' is empty"),
        (lambda d: d["customer"].update(extra=1), "unknown key 'extra'"),
        (lambda d: d.update(customer=[]), "service 'customer' must be an object"),
    ]
    for mutate, expected in cases:
        data = json.loads(json.dumps(GOOD))
        mutate(data)
        with pytest.raises(UsageError, match=expected) as info:
            parse_targets(data, "f.json")
        assert "s3cret-value" not in str(info.value)
    with pytest.raises(UsageError, match="non-empty JSON object"):
        parse_targets([], "f.json")


def test_select_unknown_service() -> None:
    targets = parse_targets(GOOD, "f")
    assert [t.service for t in select(targets, None)] == ["customer"]
    with pytest.raises(UsageError, match="unknown service 'nope'"):
        select(targets, ["nope"])


def test_missing_targets_file_says_how_to_make_it(tmp_path: Path, capsys: Any) -> None:
    code = main(["create", "--targets", str(tmp_path / "x.json"), "--dest", str(tmp_path)])
    assert code == errors.USAGE
    assert "pulumi stack output databases --json --show-secrets" in capsys.readouterr().err


def test_stack_without_pulumi_cli(tmp_path: Path, monkeypatch: Any, capsys: Any) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    code = main(["create", "--stack", "dev", "--dest", str(tmp_path)])
    assert code == errors.USAGE
    assert "needs the Pulumi CLI" in capsys.readouterr().err


def test_durations() -> None:
    assert parse_duration("24h") == timedelta(hours=24)
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("7d") == timedelta(days=7)
    for bad in ("", "h", "10", "-1h", "0m"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_client_older_than_server_says_what_to_install() -> None:
    tools = pg.Tools(bin_dir=Path("/x"), major=15, version="15.4")
    pg.check_client(tools, 150004, "customer")
    with pytest.raises(ConnectError) as info:
        pg.check_client(tools, 160002, "customer")
    assert str(info.value).startswith(
        "pg_dump 15 is older than server 16 of 'customer': install postgresql-client-16"
    )


def test_pg_bin_without_the_programs(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no pg_dump there"):
        pg.find_tools(str(tmp_path))


def _hold(dest: str, ready: Any, release: Any) -> None:
    with locked(Path(dest), "create"):
        ready.set()
        release.wait(30)


def test_lock_names_its_holder(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold, args=(str(tmp_path), ready, release))
    holder.start()
    try:
        assert ready.wait(10)
        with (
            pytest.raises(LockHeldError, match=f"pid {holder.pid} on .* \\(create, since"),
            locked(tmp_path, "prune"),
        ):
            pass
    finally:
        release.set()
        holder.join(10)
    with locked(tmp_path, "prune"):
        info = json.loads((tmp_path / ".lock").read_text())
        assert info["pid"] == os.getpid() and info["command"] == "prune"


def _fake_backup(dest: Path, name: str, verified: bool | None = None) -> None:
    d = dest / name
    (d / "customer").mkdir(parents=True)
    (d / "customer" / "toc.dat").write_bytes(b"x")
    manifest = {
        "format": "ecommerce-backup",
        "format_version": 1,
        "name": name,
        "tool_version": "t",
        "created_at": "2025-01-01T00:00:00Z",
        "finished_at": "2025-01-01T00:00:00Z",
        "duration_s": 1,
        "databases": {
            "customer": {
                "database": "customer_db",
                "user": "u",
                "dir": "customer",
                "server_version": "15.1",
                "server_version_num": 150001,
                "pg_dump_version": "15.1",
                "compression": "gzip:1",
                "database_size": 1,
                "duration_s": 1,
                "tables": {},
                "files": [{"path": "customer/toc.dat", "size": 1, "sha256": "0" * 64}],
            }
        },
    }
    (d / MANIFEST).write_text(json.dumps(manifest))
    if verified is not None:
        write_verification(d, Verification(verified, False, "2025-01-01T00:00:00Z", []))


def test_prune_plan_keeps_newest_verified_and_never_touches_the_unknown(tmp_path: Path) -> None:
    _fake_backup(tmp_path, "20250101_000000", verified=True)
    _fake_backup(tmp_path, "20250102_000000", verified=False)
    _fake_backup(tmp_path, "20250103_000000")
    _fake_backup(tmp_path, "20250103_000000_1")
    (tmp_path / "20250104_000000").mkdir()  # no manifest: not identifiable
    (tmp_path / "photos").mkdir()
    (tmp_path / ".incomplete-20250105_000000-123").mkdir()
    now = datetime(2025, 1, 10, tzinfo=UTC)

    found = scan(tmp_path)
    assert [b.name for b in found.backups] == [
        "20250103_000000_1",
        "20250103_000000",
        "20250102_000000",
        "20250101_000000",
    ]
    assert {n for n, _ in found.ignored} == {
        "20250104_000000",
        "photos",
        ".incomplete-20250105_000000-123",
    }

    plan = plan_prune(tmp_path, keep_last=1, keep_days=None, now=now)
    assert [n for n, _ in plan.keep] == ["20250103_000000_1", "20250101_000000"]
    assert plan.delete == ["20250103_000000", "20250102_000000"]
    assert plan.leftovers == [".incomplete-20250105_000000-123"]

    plan = plan_prune(tmp_path, keep_last=1, keep_days=7.5, now=now)
    assert plan.delete == ["20250102_000000"]

    assert main(["prune", "--dest", str(tmp_path), "--keep-last", "1", "--dry-run"]) == 0
    assert len(scan(tmp_path).backups) == 4
    assert main(["prune", "--dest", str(tmp_path), "--keep-last", "1"]) == 0
    assert [b.name for b in scan(tmp_path).backups] == ["20250103_000000_1", "20250101_000000"]
    assert (tmp_path / "20250104_000000").is_dir() and (tmp_path / "photos").is_dir()


def test_status_health_check(tmp_path: Path) -> None:
    now = datetime(2025, 1, 2, tzinfo=UTC)
    with pytest.raises(UnhealthyError, match="no scheduled run recorded"):
        status(tmp_path, timedelta(hours=26), now)
    record = {"ok": True, "finished_at": "2025-01-01T12:00:00Z", "backup": "20250101_120000"}
    (tmp_path / LAST_RUN).write_text(json.dumps(record))
    assert "20250101_120000" in status(tmp_path, timedelta(hours=26), now)
    with pytest.raises(UnhealthyError, match=r"12\.0h old"):
        status(tmp_path, timedelta(hours=6), now)
    record.update(ok=False, error="cannot connect to 'order'")
    (tmp_path / LAST_RUN).write_text(json.dumps(record))
    with pytest.raises(UnhealthyError, match="failed: cannot connect to 'order'"):
        status(tmp_path, timedelta(hours=26), now)
    assert main(["status", "--dest", str(tmp_path)]) == errors.UNHEALTHY


def test_status_is_healthy_while_the_first_run_works_then_not_when_it_overruns(
    tmp_path: Path,
) -> None:
    (tmp_path / LAST_RUN).write_text(json.dumps({"first_run_started_at": "2025-01-01T12:00:00Z"}))
    in_progress = status(tmp_path, timedelta(hours=26), datetime(2025, 1, 1, 13, tzinfo=UTC))
    assert in_progress == "ok: first scheduled run in progress since 2025-01-01T12:00:00Z"
    with pytest.raises(UnhealthyError, match=r"has not finished after 27\.0h"):
        status(tmp_path, timedelta(hours=26), datetime(2025, 1, 2, 15, tzinfo=UTC))


def test_retry_delays_double_up_to_the_interval() -> None:
    minute, day = timedelta(minutes=1), timedelta(hours=24)
    delays = [retry_delay(n, minute, day) for n in (1, 2, 3, 4, 11, 12, 100)]
    assert delays == [minute, 2 * minute, 4 * minute, 8 * minute, 1024 * minute, day, day]
    # A long streak of failures with a long first delay stays at the interval.
    assert retry_delay(40, timedelta(days=1), timedelta(days=7)) == timedelta(days=7)


class _Clock(threading.Event):
    """The loop's stop event, recording each wait instead of sleeping; stops after `waits`."""

    def __init__(self, waits: int) -> None:
        super().__init__()
        self.waits: list[float] = []
        self.limit = waits

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout or 0.0)
        return len(self.waits) >= self.limit


def test_a_failed_scheduled_run_is_tried_again_soon_then_the_schedule_resumes(
    tmp_path: Path,
) -> None:
    # A database that refuses the first two runs (still starting), then answers: the loop tries
    # again after 1 minute, then 2, not after the day-long interval; then it waits a day.
    clock = _Clock(waits=3)
    records: list[dict[str, Any]] = []

    def one_run() -> str:
        if (tmp_path / LAST_RUN).exists():
            records.append(json.loads((tmp_path / LAST_RUN).read_text()))
        if len(records) < 3:  # the start marker, then two failures
            raise ConnectError("cannot connect to 'order': the database system is starting up")
        return "20250101_000000"

    code = run_loop(
        tmp_path, timedelta(hours=24), False, one_run, clock, retry_after=timedelta(minutes=1)
    )
    assert code == 0
    minutes = [round(w / 60) for w in clock.waits]
    assert minutes == [1, 2, 24 * 60]
    assert [r["failures_in_a_row"] for r in records[1:]] == [1, 2]
    assert "the database system is starting up" in records[1]["error"]
    assert json.loads((tmp_path / LAST_RUN).read_text())["failures_in_a_row"] == 0
    (tmp_path / LAST_RUN).write_text(json.dumps(records[2]))
    with pytest.raises(UnhealthyError, match=r"failed: cannot connect to 'order'.*; next try at"):
        status(tmp_path, timedelta(hours=26), datetime.now(UTC))


def test_help_lists_the_exit_codes(capsys: Any) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for code in errors.EXIT_CODES:
        assert f"\n  {code}  " in out
    assert main(["create", "--bogus"]) == errors.USAGE


def test_compression_spec_parsing() -> None:
    from backup.compress import DEFAULT, Compression

    assert Compression("zstd", 3) == DEFAULT
    assert Compression.parse("zstd") == Compression("zstd", 3)
    assert Compression.parse("ZSTD:3") == Compression("zstd", 3)
    assert Compression.parse("gzip:6") == Compression("gzip", 6)
    assert Compression.parse("1") == Compression("gzip", 1)  # the older option: a gzip level
    assert Compression.parse("gzip") == Compression("gzip", 1)
    assert str(Compression("zstd", 1)) == "zstd:1"
    assert Compression("zstd", 5).pg_dump_level == 0
    assert Compression("gzip", 5).pg_dump_level == 5
    for bad in ("lz4", "zstd:0", "zstd:20", "gzip:10", "zstd:x", "-1"):
        with pytest.raises(ValueError):
            Compression.parse(bad)
    code = main(["create", "--targets", "x.json", "--dest", "d", "--compress", "lz4"])
    assert code == errors.USAGE


def test_format_version_is_2_only_with_zstd(tmp_path: Path) -> None:
    from backup.manifest import read_manifest

    _fake_backup(tmp_path, "20250101_000000")
    manifest = read_manifest(tmp_path / "20250101_000000")
    assert manifest.to_json()["format_version"] == 1  # gzip backups stay readable by v1 tools
    db = manifest.databases["customer"]
    zstd = replace(manifest, databases={"customer": replace(db, compression="zstd:1")})
    assert zstd.to_json()["format_version"] == 2
    newer = {**manifest.to_json(), "format_version": 3}
    (tmp_path / "20250101_000000" / MANIFEST).write_text(json.dumps(newer))
    assert scan(tmp_path).backups == []
