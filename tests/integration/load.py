"""A bounded load generator: a few threads sending GETs to a loopback address until told to stop,
or until their request or time budget is spent, whichever comes first. It counts what did not
answer 200 (an error status, a refused or reset connection, a timeout, a TLS failure).

The edge is reached as a browser would: by URL on dev's plain ports, or over HTTPS by host name
(SNI and the Host header name the site, the certificate is verified) on a loopback port.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import ssl
import statistics
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from tests.hosts.links import entered

MAX_REQUESTS = 50_000
MAX_SECONDS = 240.0
LOOPBACK = "127.0.0.1"
TIMEOUT_S = 10


@dataclass(frozen=True)
class Target:
    """Where a request goes: a loopback port, and the site's host name when it is HTTPS."""

    port: int
    path: str
    host: str | None = None
    """The site's name: SNI and Host over HTTPS, the Host header over plain HTTP."""
    cafile: str | None = None
    """The certificate the site must present, or the CA that signed it (HTTPS)."""
    tls: bool = True
    """With a host name: HTTPS (default), or plain HTTP."""
    namespace: str | None = None
    """The network namespace whose loopback the port is on (a test host's, tests/hosts/);
    None: this process's own."""

    @classmethod
    def http(cls, url: str) -> Target:
        parts = urlsplit(url)
        assert parts.scheme == "http" and parts.hostname == LOOPBACK, url
        assert parts.port is not None, url
        return cls(parts.port, parts.path or "/")

    def get(self, headers: Mapping[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
        """One GET on a new connection, with `headers`: status, body, headers."""
        connection: http.client.HTTPConnection
        headers = dict(headers or {})
        if self.host is None or not self.tls:
            connection = http.client.HTTPConnection(LOOPBACK, self.port, timeout=TIMEOUT_S)
            headers |= {"Host": self.host} if self.host else {}
        else:
            context = ssl.create_default_context(cafile=self.cafile)
            connection = _LoopbackHTTPS(self.host, self.port, context=context, timeout=TIMEOUT_S)
        where = entered(self.namespace) if self.namespace else contextlib.nullcontext()
        try:
            with where:  # the socket is made in the namespace, then used from anywhere
                connection.connect()
            connection.request("GET", self.path, headers=headers)
            answer = connection.getresponse()
            return answer.status, answer.read(), dict(answer.getheaders())
        finally:
            connection.close()

    def get_json(self) -> tuple[int, Any]:
        status, body, _ = self.get()
        return status, json.loads(body) if body else None


class _LoopbackHTTPS(http.client.HTTPSConnection):
    """HTTPS to a host name that resolves nowhere: the TCP connection goes to 127.0.0.1, while
    SNI, the certificate check and the Host header all use the name."""

    def connect(self) -> None:
        sock = self._create_connection((LOOPBACK, self.port), self.timeout)  # type: ignore[attr-defined]
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


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
        return (
            f"{self.requests} requests, {len(self.failures)} failed; latency p50 "
            f"{cuts[49] * 1000:.1f} ms, p95 {cuts[94] * 1000:.1f} ms, "
            f"p99 {cuts[98] * 1000:.1f} ms, max {max(self.latencies) * 1000:.1f} ms"
        )


class Load:
    """`with Load(target) as report:` sends requests for as long as the block runs."""

    def __init__(self, target: Target, workers: int = 4, max_seconds: float = MAX_SECONDS) -> None:
        self.target = target
        self.max_seconds = max_seconds
        self.report = LoadReport()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(workers)]
        self._deadline = 0.0

    def __enter__(self) -> LoadReport:
        self._started = time.monotonic()
        self._deadline = self._started + self.max_seconds
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
            failure = _failure_of(self.target.get)
            with self._lock:
                if failure is None:
                    self.report.latencies.append(time.monotonic() - started)
                else:  # when, from the start of the load: to set beside the engine's events
                    self.report.failures.append(f"{started - self._started:.1f}s {failure}")


def _failure_of(get: Callable[[], tuple[int, bytes, dict[str, str]]]) -> str | None:
    try:
        status, body, _ = get()
    except (OSError, http.client.HTTPException) as err:  # ssl.SSLError is an OSError
        return f"{type(err).__name__}: {err}"
    return None if status == 200 else f"status {status} {body[:160]!r}"
