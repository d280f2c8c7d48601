"""The stack slots the integration sessions share (tests/integration/stacks.py): a small stack
waits only for the small stacks' slot, never for a full stack's."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.integration import stacks

ENTERED_WITHIN_S = 10
"""A slot that is free is taken at once; one that is held is not, however long one waits."""


def enter_in_thread(small: bool) -> tuple[threading.Event, threading.Event]:
    """Take a slot in a thread of its own; (entered, release)."""
    entered, release = threading.Event(), threading.Event()

    def hold() -> None:
        with stacks.stack_slot(small):
            entered.set()
            release.wait()

    threading.Thread(target=hold, daemon=True).start()
    return entered, release


@pytest.fixture(autouse=True)
def own_locks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stacks, "LOCKS", tmp_path)
    monkeypatch.setattr(stacks, "STACK_SLOTS", 1)


def test_a_small_stack_does_not_wait_for_a_full_one() -> None:
    full, release_full = enter_in_thread(small=False)
    assert full.wait(ENTERED_WITHIN_S)
    small, release_small = enter_in_thread(small=True)
    try:
        assert small.wait(ENTERED_WITHIN_S), "the small stack waited for the full stack's slot"
    finally:
        release_full.set()
        release_small.set()


def test_a_second_small_stack_waits_for_the_first() -> None:
    first, release_first = enter_in_thread(small=True)
    assert first.wait(ENTERED_WITHIN_S)
    second, release_second = enter_in_thread(small=True)
    try:
        assert not second.wait(3), "two small stacks held the one small slot at once"
        release_first.set()
        assert second.wait(ENTERED_WITHIN_S)
    finally:
        release_first.set()
        release_second.set()


def test_a_full_stack_waits_for_the_full_slot_not_the_small_one() -> None:
    small, release_small = enter_in_thread(small=True)
    assert small.wait(ENTERED_WITHIN_S)
    full, release_full = enter_in_thread(small=False)
    second_full, release_second = enter_in_thread(small=False)
    try:
        assert full.wait(ENTERED_WITHIN_S)
        assert not second_full.wait(3), "two full stacks held the one full slot at once"
    finally:
        for event in (release_small, release_full, release_second):
            event.set()
