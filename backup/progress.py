"""Progress of long operations: on a terminal, one bar per database, redrawn twice a second;
otherwise (cron, --quiet, a container) a log line when each database starts and ends."""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

log = logging.getLogger("backup")


def human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


@dataclass
class Task:
    label: str
    fraction: float = 0.0
    written: int = 0
    state: str = "waiting"
    started: float = field(default_factory=time.monotonic)
    written_fn: Callable[[], int] | None = None

    def update(self, fraction: float) -> None:
        self.fraction = max(self.fraction, min(1.0, fraction))


class Progress:
    def __init__(self, verb: str, bars: bool, stream: TextIO | None = None) -> None:
        self.verb = verb
        self.bars = bars
        self.stream = stream or sys.stderr
        self.tasks: list[Task] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._drawn = 0
        self._lock = threading.Lock()

    def task(self, label: str, written_fn: Callable[[], int] | None = None) -> Task:
        t = Task(label=label, written_fn=written_fn)
        with self._lock:
            self.tasks.append(t)
        return t

    def begin(self, t: Task) -> None:
        t.state = "running"
        t.started = time.monotonic()
        if not self.bars:
            log.info("%s %s: started", self.verb, t.label)

    def end(self, t: Task, ok: bool, summary: str) -> None:
        if t.written_fn is not None:
            with contextlib.suppress(OSError):
                t.written = t.written_fn()
        t.state = "done" if ok else "failed"
        if ok:
            t.fraction = 1.0
        if not self.bars:
            if ok:
                log.info("%s %s: done, %s", self.verb, t.label, summary)
            else:
                log.error("%s %s: failed", self.verb, t.label)

    def __enter__(self) -> Progress:
        if self.bars:
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._draw()

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            self._draw()

    def _draw(self) -> None:
        with self._lock:
            tasks = list(self.tasks)
        lines = []
        width = max((len(t.label) for t in tasks), default=8)
        for t in tasks:
            if t.written_fn is not None and t.state == "running":
                with contextlib.suppress(OSError):
                    t.written = t.written_fn()
            filled = int(t.fraction * 24)
            bar = "#" * filled + "-" * (24 - filled)
            elapsed = time.monotonic() - t.started if t.state != "waiting" else 0.0
            lines.append(
                f"{t.label:<{width}} [{bar}] {t.fraction * 100:3.0f}% "
                f"{human(t.written):>9} {elapsed:6.1f}s {t.state}"
            )
        out = ""
        if self._drawn:
            out += f"\x1b[{self._drawn}F"
        out += "".join(f"\x1b[2K{line}\n" for line in lines)
        self.stream.write(out)
        self.stream.flush()
        self._drawn = len(lines)
