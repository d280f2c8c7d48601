"""A bounded load generator: a few threads sending GETs to a loopback URL until told to stop,
or until their request or time budget is spent, whichever comes first. It counts what did not
answer 200 (an error status, a refused or reset connection, a timeout)."""

from __future__ import annotations

import statistics
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from types import TracebackType

MAX_REQUESTS = 50_000
MAX_SECONDS = 180.0


@dataclass
class LoadReport:
    latencies: list[float] = field(default_factory=list)
    """Seconds per request that answered 200."""
    failures: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return len(self.latencies) + len(self.failures)

    def describe(self) -> str:
        if len(self.latencies) < 2:
            return f"{self.requests} requests, {len(self.failures)} failed"
        cuts = statistics.quantiles(self.latencies, n=100)
        return (f"{self.requests} requests, {len(self.failures)} failed; latency p50 "
                f"{cuts[49] * 1000:.1f} ms, p95 {cuts[94] * 1000:.1f} ms, "
                f"p99 {cuts[98] * 1000:.1f} ms, max {max(self.latencies) * 1000:.1f} ms")  # fmt: skip


class Load:
    """`with Load(url) as report:` sends requests for as long as the block runs."""

    def __init__(self, url: str, workers: int = 4) -> None:
        assert url.startswith("http://127.0.0.1:"), url
        self.url = url
        self.report = LoadReport()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(workers)]
        self._deadline = 0.0

    def __enter__(self) -> LoadReport:
        self._deadline = time.monotonic() + MAX_SECONDS
        for thread in self._threads:
            thread.start()
        return self.report

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _run(self) -> None:
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            with self._lock:
                if self.report.requests >= MAX_REQUESTS:
                    return
            started = time.monotonic()
            failure = None
            try:
                with urllib.request.urlopen(self.url, timeout=10) as answer:  # noqa: S310 (loopback)
                    answer.read()
                    if answer.status != 200:
                        failure = f"status {answer.status}"
            except urllib.error.HTTPError as err:
                failure = f"status {err.code}"
            except OSError as err:
                failure = f"{type(err).__name__}: {err}"
            with self._lock:
                if failure is None:
                    self.report.latencies.append(time.monotonic() - started)
                else:
                    self.report.failures.append(failure)
