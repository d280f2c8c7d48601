"""Which backup a restore starts from once the history has branched (pitr/timelines.py), on
`info` and `.history` as pgBackRest 2.45 gives them; the real thing: tests/pitr."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from pitr.errors import RefusedError
from pitr.pgbackrest import RestoreTarget
from pitr.timelines import forks_of, lsn, set_to_start_from

# Timeline 2 forked off timeline 1 at 0/4020440; timeline 3 off 2 at 0/7000000.
HISTORY_3 = "1\t0/4020440\tbefore 2026-12-07 19:09:56+00\n2\t0/7000000\tno recovery target\n"


def backup(label: str, segment: str, stop_lsn: str, stop: int) -> dict[str, Any]:
    return {
        "label": label,
        "archive": {"start": segment, "stop": segment},
        "lsn": {"start": "0/1000028", "stop": stop_lsn},
        "timestamp": {"start": stop - 1, "stop": stop},
        "database": {"id": 1, "repo-key": 1},
    }


FULL = backup("F", "000000010000000000000002", "0/2000100", 100)  # on 1, before the fork
PAST_THE_FORK = backup("I1", "000000010000000000000005", "0/5000138", 200)  # on 1, after it
ON_TWO = backup("I2", "000000020000000000000006", "0/6000100", 300)  # on 2, before 2 was left


class Repo:
    def __init__(
        self, backups: list[dict[str, Any]], newest_segment: str, histories: int = 3
    ) -> None:
        self.backups = backups
        self.newest_segment = newest_segment
        self.histories = histories
        self.asked: list[Sequence[str]] = []

    def info(self, *options: str) -> dict[str, Any]:
        archive = {
            "database": {"id": 1, "repo-key": 1},
            "id": "15-1",
            "min": "000000010000000000000001",
            "max": self.newest_segment,
        }
        return {"name": "order", "backup": self.backups, "archive": [archive]}

    def run(self, command: str, *options: str, params: Sequence[str] = ()) -> str:
        assert options[0] == "--repo=1"
        if command == "repo-ls":  # what is archived of each timeline's history
            assert params == ["archive/order/15-1"]
            return "\n".join(f"{t:08X}.history" for t in range(2, self.histories + 1))
        assert command == "repo-get"
        self.asked.append(params)
        return HISTORY_3


def test_one_timeline_leaves_the_choice_to_pgbackrest() -> None:
    repo = Repo([FULL, PAST_THE_FORK], "000000010000000000000009", histories=1)
    assert set_to_start_from(repo, RestoreTarget("latest"), 1) == []
    assert repo.asked == []


def test_a_timeline_with_only_its_history_archived_yet_is_the_latest() -> None:
    # Right after a restore to the past: the new timeline's history is archived, no segment.
    repo = Repo([FULL, PAST_THE_FORK], "000000010000000000000009", histories=2)
    assert set_to_start_from(repo, RestoreTarget("latest"), 1) == ["--set=F"]
    assert repo.asked == [["archive/order/15-1/00000002.history"]]


def test_backups_of_a_database_before_a_stanza_upgrade_are_not_counted() -> None:
    older = {**ON_TWO, "database": {"id": 0, "repo-key": 1}}
    repo = Repo([older, FULL], "000000010000000000000009", histories=1)
    assert set_to_start_from(repo, RestoreTarget("latest"), 1) == []


def test_the_newest_backup_on_the_latest_timelines_history_is_chosen() -> None:
    repo = Repo([FULL, PAST_THE_FORK, ON_TWO], "000000030000000000000008")
    assert set_to_start_from(repo, RestoreTarget("latest"), 1) == ["--set=I2"]
    assert repo.asked == [["archive/order/15-1/00000003.history"]]
    # Without the backup on timeline 2, the one before the first fork, not the newer one past it.
    repo = Repo([FULL, PAST_THE_FORK], "000000030000000000000008")
    assert set_to_start_from(repo, RestoreTarget("latest"), 1) == ["--set=F"]


def test_a_time_target_starts_from_a_backup_that_ended_before_it() -> None:
    repo = Repo([FULL, PAST_THE_FORK, ON_TWO], "000000030000000000000008")
    early = RestoreTarget("time", "1970-01-01 00:04:10+00")  # 250 s: before I2 ended
    at_its_stop = RestoreTarget("time", "1970-01-01 00:05:00+00")  # 300 s: I2 stopped then
    assert set_to_start_from(repo, at_its_stop, 1) == ["--set=F"]
    assert set_to_start_from(repo, early, 1) == ["--set=F"]
    before_everything = RestoreTarget("time", "1970-01-01 00:00:50+00")
    with pytest.raises(RefusedError, match=r"no backup in repo1 lies on the history of its"):
        set_to_start_from(repo, before_everything, 1)


def test_a_history_file_reads_as_each_ancestor_and_where_it_was_left() -> None:
    assert forks_of(HISTORY_3) == {1: lsn("0/4020440"), 2: lsn("0/7000000")}
    assert lsn("1/0") == 1 << 32 and lsn("0/10") == 16
