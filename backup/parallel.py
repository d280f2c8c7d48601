"""Run one function over several databases at once, within a budget of workers. On the first
failure the others are stopped (their child processes killed) and every outcome is returned,
so the caller can undo what the successful ones did."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Generic, TypeVar

from backup.errors import OperationError
from backup.proc import kill_all_children

T = TypeVar("T")
R = TypeVar("R")


class CancelledError(OperationError):
    """Stopped because another database failed."""


@dataclass(frozen=True)
class Outcome(Generic[T, R]):
    item: T
    result: R | None
    error: BaseException | None


def run_all(
    fn: Callable[[T, threading.Event], R], items: Sequence[T], workers: int
) -> tuple[list[Outcome[T, R]], BaseException | None]:
    """`fn(item, cancel)` for each item, `workers` at a time. `fn` should check `cancel`
    before starting expensive work. Returns the outcomes in the order of `items` and the
    failure that stopped the run (the first one, not the cancellations it caused)."""
    cancel = threading.Event()
    lock = threading.Lock()
    first: list[BaseException] = []

    def guarded(item: T) -> R:
        if cancel.is_set():
            raise CancelledError("cancelled")
        try:
            return fn(item, cancel)
        except BaseException as exc:
            with lock:
                if not first and not cancel.is_set():
                    first.append(exc)
            cancel.set()
            raise

    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="db")
    try:
        futures = [pool.submit(guarded, item) for item in items]
        done, _pending = wait(futures, return_when=FIRST_EXCEPTION)
        if any(f.exception() is not None for f in done):
            cancel.set()
            kill_all_children()
    except BaseException:
        cancel.set()
        kill_all_children()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    outcomes: list[Outcome[T, R]] = []
    for item, f in zip(items, futures, strict=True):
        if f.cancelled():
            outcomes.append(Outcome(item, None, CancelledError("cancelled")))
        elif f.exception() is not None:
            outcomes.append(Outcome(item, None, f.exception()))
        else:
            outcomes.append(Outcome(item, f.result(), None))
    errors = [o.error for o in outcomes if o.error is not None]
    return outcomes, (first[0] if first else errors[0] if errors else None)
