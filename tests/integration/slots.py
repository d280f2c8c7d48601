"""Stack slots: how many deployed stacks live at once on this machine, across the sessions of
`make test`, and which waiting stack gets a freed slot.

A slot is a lock file held (`flock`) while a stack lives, so a run that dies frees its slot.
When several runs wait, the one that expects to hold a slot longest goes first: the sessions
end together instead of the longest one starting last and running alone at the end (the
swarm's seven minutes after everything else, in one run that gave the slot by chance).
A waiting run says so in a ticket file, locked while it waits: a ticket whose lock is free was
left by a run that died and counts for nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

SLOTS_ENV = "ECOMMERCE_TEST_STACK_SLOTS"
"""How many slots the runs of this machine share (one unless told; tests/parallel.py says)."""
POLL_SECONDS = 2.0
MAX_MINUTES = 10_000
TICKET_SUFFIX = ".ticket"


@contextlib.contextmanager
def stack_slot(folder: Path, slots: int, minutes: float) -> Iterator[None]:
    """One of `slots` lock files in `folder`, held for the block; `minutes` is how long the
    caller expects to hold it, which orders the waiters (longest first, then first come)."""
    if not 0 <= minutes < MAX_MINUTES:
        raise ValueError(f"a stack slot is held 0 to {MAX_MINUTES} minutes, not {minutes}")
    with _ticket(folder, minutes) as mine:
        while True:
            if not _someone_goes_first(folder, mine):
                held = _free_slot(folder, slots)
                if held is not None:
                    break
            time.sleep(POLL_SECONDS)
    try:
        yield
    finally:
        fcntl.flock(held, fcntl.LOCK_UN)
        held.close()


def _free_slot(folder: Path, slots: int) -> IO[str] | None:
    """A slot's lock file, locked, or None when every slot is taken."""
    for n in range(slots):
        file = (folder / f"ecommerce-test-stack-slot-{n}.lock").open("a+")
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.close()
            continue
        return file
    return None


def _ticket_name(minutes: float) -> str:
    """Sorts in the order waiters go: the longest first, then the first come."""
    rank = round((MAX_MINUTES - minutes) * 100)
    return f"ecommerce-test-stack-wait-{rank:07d}-{time.time_ns()}-{os.getpid()}"


@contextlib.contextmanager
def _ticket(folder: Path, minutes: float) -> Iterator[str]:
    """A ticket in `folder`, locked from the moment it can be seen until the block ends."""
    name = _ticket_name(minutes) + TICKET_SUFFIX
    draft = folder / (name + ".draft")
    with draft.open("w") as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        draft.rename(folder / name)  # seen only once locked: the lock goes with the open file
        try:
            yield name
        finally:
            (folder / name).unlink(missing_ok=True)


def _someone_goes_first(folder: Path, mine: str) -> bool:
    """Whether a live ticket sorts before `mine`. A dead run's ticket is removed."""
    for path in sorted(folder.glob("ecommerce-test-stack-wait-*" + TICKET_SUFFIX)):
        if path.name >= mine:
            return False
        if _alive(path):
            return True
    return False


def _alive(ticket: Path) -> bool:
    """Whether the run that wrote `ticket` still waits (holds its lock); a dead one's goes."""
    try:
        file = ticket.open("r")
    except FileNotFoundError:  # its run got a slot meanwhile
        return False
    with file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        ticket.unlink(missing_ok=True)
        return False
