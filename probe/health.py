"""Asks every app for `GET /health` over the network and serves the answers as Prometheus
metrics; the monitoring runs it with the platform's Python image (components/health_probe.py).

Standard library only, one file: the deploy mounts this file into the container.

Why not the Prometheus blackbox exporter: it probes whatever URL its caller names, so anything
on the monitoring network could make it fetch any address its app networks reach (the edge
network goes out to the internet). This probe asks only the URLs on its command line, and its
listener answers `/metrics` and `/-/healthy`, nothing else.

Each target is probed every `--interval` seconds on a thread of its own, independently of
scrapes, so an app down for a few seconds between two scrapes still counts:

    ecommerce_app_health_up{service}                  1 when the last probe got a 2xx in time
    ecommerce_app_health_duration_seconds{service}    how long the last probe took
    ecommerce_app_health_failures_total{service}      probes that failed
    ecommerce_app_health_recoveries_total{service}    healthy again after failing (a restart,
                                                      a crash loop, a flapping dependency)
    process_start_time_seconds                        a restart of the probe itself
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import signal
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class Target:
    service: str
    url: str


@dataclass
class State:
    up: bool | None = None
    """None until the first probe has ended."""
    duration: float = 0.0
    failures: int = 0
    recoveries: int = 0


@dataclass
class Probe:
    targets: Sequence[Target]
    timeout: float
    started: float = field(default_factory=time.time)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _states: dict[str, State] = field(default_factory=dict)

    def check(self, target: Target) -> None:
        """Probe once and record the answer."""
        began = time.monotonic()
        ok = healthy(target.url, self.timeout)
        with self._lock:
            state = self._states.setdefault(target.service, State())
            if not ok:
                state.failures += 1
            elif state.up is False:
                state.recoveries += 1
            state.up, state.duration = ok, time.monotonic() - began

    def render(self) -> str:
        with self._lock:
            states = sorted((s, State(**vars(st))) for s, st in self._states.items())
        lines = ["# TYPE process_start_time_seconds gauge",
                 f"process_start_time_seconds {self.started:.3f}"]  # fmt: skip
        for name, kind, value in METRICS:
            lines.append(f"# TYPE ecommerce_app_health_{name} {kind}")
            lines += [f'ecommerce_app_health_{name}{{service="{service}"}} {value(st)}'
                      for service, st in states if st.up is not None]  # fmt: skip
        return "\n".join(lines) + "\n"


METRICS: list[tuple[str, str, Callable[[State], object]]] = [
    ("up", "gauge", lambda st: int(bool(st.up))),
    ("duration_seconds", "gauge", lambda st: f"{st.duration:.6f}"),
    ("failures_total", "counter", lambda st: st.failures),
    ("recoveries_total", "counter", lambda st: st.recoveries),
]
"""Each `ecommerce_app_health_<name>`: its type and its value from a target's state."""


def healthy(url: str, timeout: float) -> bool:
    """A 2xx to `GET url` within `timeout` seconds; a redirect is not followed (not healthy)."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    try:
        connection.request("GET", parts.path or "/", headers={"User-Agent": "ecommerce-probe"})
        response = connection.getresponse()
        response.read()
        return 200 <= response.status < 300
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def run_forever(probe: Probe, target: Target, interval: float) -> None:
    while True:
        began = time.monotonic()
        probe.check(target)
        time.sleep(max(0.0, interval - (time.monotonic() - began)))


def serve(host: str, port: int, probe: Probe) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path not in ("/metrics", "/-/healthy"):
                self.send_error(404)
                return
            payload = (probe.render() if self.path == "/metrics" else "ok\n").encode()
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *_args: object) -> None:
            pass  # a line per scrape would drown the container's log

    return http.server.ThreadingHTTPServer((host, port), Handler)


def parse_target(text: str) -> Target:
    service, sep, url = text.partition("=")
    parts = urllib.parse.urlsplit(url)
    if not sep or not service or parts.scheme != "http" or not parts.hostname:
        raise argparse.ArgumentTypeError(f"{text!r}: expected SERVICE=http://HOST:PORT/PATH")
    return Target(service, url)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="health.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", type=parse_target, action="append", required=True,
                        help="SERVICE=URL to probe (repeat for each app)")  # fmt: skip
    parser.add_argument("--listen", default="", help="address to serve on (default: all)")
    parser.add_argument("--port", type=int, default=9115)
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between probes")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds a probe may take")
    args = parser.parse_args(argv)
    if not 0 < args.timeout <= args.interval:
        parser.error("--timeout must be above 0 and at most --interval")
    probe = Probe(args.target, args.timeout)
    for target in args.target:
        threading.Thread(target=run_forever, args=(probe, target, args.interval),
                         daemon=True).start()  # fmt: skip
    server = serve(args.listen, args.port, probe)
    # PID 1 in its container: without a handler SIGTERM would be ignored until Docker kills.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"probing {len(args.target)} apps every {args.interval:g}s; "
          f"metrics on {args.listen or '*'}:{args.port}", flush=True)  # fmt: skip
    server.serve_forever()


if __name__ == "__main__":
    main()
