"""The stack slots the integration sessions share: at most N stacks at once, the longest
waiting one first, a dead run's ticket ignored (tests/integration/slots.py)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.integration import slots
from tests.integration.slots import stack_slot


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(slots, "POLL_SECONDS", 0.01)


def waiting(tmp_path: Path, count: int) -> None:
    """Until `count` tickets wait in `tmp_path`."""
    deadline = time.monotonic() + 10
    while len(list(tmp_path.glob("*.ticket"))) < count:
        assert time.monotonic() < deadline, "the waiters never wrote their tickets"
        time.sleep(0.01)


def waiter(tmp_path: Path, minutes: float, order: list[float]) -> threading.Thread:
    def run() -> None:
        with stack_slot(tmp_path, 1, minutes):
            order.append(minutes)
            time.sleep(0.05)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_freed_slot_goes_to_the_longest_waiting_stack_then_the_first_come(
    tmp_path: Path,
) -> None:
    order: list[float] = []
    with stack_slot(tmp_path, 1, 10):
        threads = []
        for count, minutes in enumerate((3, 5, 3), start=1):
            threads.append(waiter(tmp_path, minutes, order))
            waiting(tmp_path, count)
            time.sleep(0.01)  # a later ticket, for the first come among equals
    for thread in threads:
        thread.join(timeout=10)
    assert order == [5, 3, 3]
    assert list(tmp_path.glob("*.ticket")) == []


def test_no_more_stacks_than_slots_live_at_once(tmp_path: Path) -> None:
    lock = threading.Lock()
    live = [0]
    most = [0]

    def run() -> None:
        with stack_slot(tmp_path, 2, 1):
            with lock:
                live[0] += 1
                most[0] = max(most[0], live[0])
            time.sleep(0.05)
            with lock:
                live[0] -= 1

    threads = [threading.Thread(target=run, daemon=True) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert most[0] == 2


def test_a_ticket_left_by_a_dead_run_holds_no_one_back(tmp_path: Path) -> None:
    # A run killed while it waited leaves its ticket unlocked: it would go first, but is gone.
    dead = tmp_path / (slots._ticket_name(9_000) + slots.TICKET_SUFFIX)
    dead.write_text("")
    entered = threading.Event()

    def run() -> None:
        with stack_slot(tmp_path, 1, 1):
            entered.set()

    threading.Thread(target=run, daemon=True).start()
    assert entered.wait(timeout=10)
    assert not dead.exists()


def test_a_live_waiter_that_goes_first_is_waited_for(tmp_path: Path) -> None:
    # The slot is free, but a longer stack's run waits (its ticket locked): it goes first.
    order: list[float] = []
    release = threading.Event()

    def blocker() -> None:
        with slots._ticket(tmp_path, 20):
            release.wait(timeout=10)

    threading.Thread(target=blocker, daemon=True).start()
    waiting(tmp_path, 1)
    late = waiter(tmp_path, 1, order)
    time.sleep(0.2)
    assert order == []
    release.set()
    late.join(timeout=10)
    assert order == [1]


def test_a_failing_block_frees_its_slot(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), stack_slot(tmp_path, 1, 1):
        raise RuntimeError("the stack failed")
    entered: list[bool] = []
    with stack_slot(tmp_path, 1, 1):
        entered.append(True)
    assert entered == [True]


@pytest.mark.parametrize("minutes", [-1, slots.MAX_MINUTES])
def test_an_impossible_duration_is_refused(tmp_path: Path, minutes: float) -> None:
    with (
        pytest.raises(ValueError, match="a stack slot is held 0 to"),
        stack_slot(tmp_path, 1, minutes),
    ):
        pass
