"""The database agent's look at the off-host repository (pitr/offhost_watch.py) and the metrics it
serves for the alerts (pitr/metrics.py), from pgBackRest's `info --output=json` as 2.45 writes
it for a stanza with two repositories."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pitr.errors import PitrError
from pitr.metrics import offhost_lines
from pitr.offhost_watch import OffHostState, OffHostWatch, load_state, observe

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
BACKUP_STOP = int((NOW - timedelta(hours=3)).timestamp())


def info(repo: int, newest_wal: str, backups: int = 1, code: int = 0) -> dict[str, Any]:
    """The stanza's entry of `info --output=json --repo=N`."""
    return {
        "name": "order",
        "repo": [{"key": repo, "cipher": "aes-256-cbc", "status": {"code": code, "message": ""}}],
        "archive": [{"database": {"id": 1, "repo-key": repo}, "id": "15-1", "max": newest_wal}],
        "backup": [
            {
                "database": {"id": 1, "repo-key": repo},
                "label": f"20261207-0900{n}F",
                "timestamp": {"start": BACKUP_STOP - 60 - n, "stop": BACKUP_STOP - n},
            }
            for n in range(backups)
        ],
    }


class Tool:
    """Answers `info --repo=1` and `--repo=2` as given; an exception for a repository away."""

    def __init__(self, repo1: dict[str, Any], repo2: dict[str, Any] | Exception) -> None:
        self.answers = {"--repo=1": repo1, "--repo=2": repo2}

    def info(self, *options: str) -> dict[str, Any]:
        (option,) = options
        answer = self.answers[option]
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_repo2_caught_up_with_a_backup() -> None:
    tool = Tool(info(1, "000000010000000000000009"), info(2, "000000010000000000000009", 2))
    seen = observe(tool, None, NOW)
    assert (seen.reachable, seen.caught_up_at) == (True, NOW)
    assert seen.backup_at == datetime.fromtimestamp(BACKUP_STOP, UTC)  # the newest of two


def test_repo2_behind_keeps_the_last_time_it_had_caught_up() -> None:
    earlier = OffHostState(NOW - timedelta(minutes=5), True, NOW - timedelta(minutes=5), None, "")
    tool = Tool(info(1, "00000001000000000000000B"), info(2, "000000010000000000000009", 0))
    seen = observe(tool, earlier, NOW)
    assert seen.reachable and seen.caught_up_at == NOW - timedelta(minutes=5)
    assert seen.backup_at is None


def test_repo2_away_is_unreachable_and_forgets_nothing() -> None:
    earlier = OffHostState(NOW - timedelta(minutes=5), True, NOW - timedelta(minutes=5), NOW, "")
    for away in (PitrError("info failed: [HostConnectError] unable to connect"),
                 info(2, "", 0, code=99)):  # fmt: skip
        seen = observe(Tool(info(1, "00000001000000000000000B"), away), earlier, NOW)
        assert not seen.reachable
        assert (seen.caught_up_at, seen.backup_at) == (earlier.caught_up_at, NOW)


def test_the_watch_looks_once_per_interval_and_keeps_what_it_saw(tmp_path: Path) -> None:
    clock = [NOW]
    tool = Tool(info(1, "000000010000000000000009"), info(2, "000000010000000000000009"))
    status = tmp_path / "offhost-status.json"
    watch = OffHostWatch(tool, status, timedelta(minutes=5), lambda: clock[0])
    watch.tick()
    tool.answers["--repo=2"] = PitrError("unable to connect")
    clock[0] = NOW + timedelta(minutes=1)
    watch.tick()  # within the interval: no look
    first = load_state(status)
    assert first is not None and (first.checked_at, first.reachable) == (NOW, True)
    clock[0] = NOW + timedelta(minutes=5)
    watch.tick()
    again = load_state(status)
    assert again is not None and not again.reachable and again.caught_up_at == NOW
    # A new agent (a restart) starts from what the file says.
    assert OffHostWatch(tool, status, timedelta(minutes=5)).state == again


def test_the_metrics_say_what_was_seen_and_nothing_before_the_first_look() -> None:
    assert offhost_lines(None) == []
    lines = offhost_lines(OffHostState(NOW, False, NOW - timedelta(hours=1), None, "away"))
    values = [line for line in lines if not line.startswith("#")]
    assert values == [
        "ecommerce_pitr_offhost_up 0",
        f"ecommerce_pitr_offhost_caught_up_timestamp_seconds {int(NOW.timestamp()) - 3600}",
    ]


def test_under_steady_writes_repo2_holding_the_last_looks_segment_counts_as_caught_up() -> None:
    # At each look repo1 is a segment ahead (the check has just switched one), but repo2 holds
    # what repo1 held at the look before: it was caught up then, not an hour ago.
    hour_ago = NOW - timedelta(hours=1)
    earlier = OffHostState(
        NOW - timedelta(minutes=5), True, hour_ago, None, "", hour_ago, "00000001000000000000000A"
    )
    tool = Tool(info(1, "00000001000000000000000B"), info(2, "00000001000000000000000A"))
    seen = observe(tool, earlier, NOW)
    assert seen.caught_up_at == NOW - timedelta(minutes=5)
    assert seen.local_wal == "00000001000000000000000B"
    # Still behind what repo1 held last time: no catching up.
    lagging = Tool(info(1, "00000001000000000000000B"), info(2, "000000010000000000000009"))
    assert observe(lagging, earlier, NOW).caught_up_at == hour_ago


def test_an_answer_the_watch_cannot_read_is_repo2_away_not_the_agents_end(tmp_path: Path) -> None:
    tool = Tool(info(1, "000000010000000000000009"), ValueError("not enough values to unpack"))
    watch = OffHostWatch(tool, tmp_path / "offhost-status.json", timedelta(minutes=5), lambda: NOW)
    watch.tick()
    assert watch.state is not None and not watch.state.reachable
    assert "ValueError: not enough values to unpack" in watch.state.detail


def test_with_no_backup_or_catching_up_yet_the_alerts_count_from_the_first_look() -> None:
    first = NOW - timedelta(hours=7)
    lines = offhost_lines(OffHostState(NOW, True, None, None, "", first))
    values = [line for line in lines if not line.startswith("#")]
    assert values == [
        "ecommerce_pitr_offhost_up 1",
        f"ecommerce_pitr_offhost_caught_up_timestamp_seconds {int(first.timestamp())}",
        f"ecommerce_pitr_offhost_last_backup_timestamp_seconds {int(first.timestamp())}",
    ]
