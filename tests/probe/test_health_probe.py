"""The apps' health probe (probe/health.py) against HTTP servers run by the test on loopback."""

from __future__ import annotations

import http.client
import http.server
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from probe import health
from probe.health import Probe, Target

SCRIPT = Path(health.__file__)


class App:
    """A stand-in app on loopback whose `/health` answers `status` (changeable)."""

    def __init__(self) -> None:
        self.status = 200
        self.paths: list[str] = []
        app = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                app.paths.append(self.path)
                self.send_response(app.status)
                if app.status in (301, 302):
                    self.send_header("Location", "/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/health"


@pytest.fixture
def app() -> Iterator[App]:
    found = App()
    yield found
    found.server.shutdown()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(port: int, path: str) -> tuple[int, str]:
    """Status and body of `GET path` on loopback (OSError while nothing listens)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def samples(text: str) -> dict[str, str]:
    return dict(line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))


def test_each_answer_after_failures_counts_one_recovery(app: App) -> None:
    probe = Probe([Target("order", app.url)], timeout=2)
    target = probe.targets[0]
    for status in (200, 503, 503):
        app.status = status
        probe.check(target)
    assert samples(probe.render())['ecommerce_app_health_up{service="order"}'] == "0"
    for status in (200, 200, 500, 200):
        app.status = status
        probe.check(target)
    found = samples(probe.render())
    assert found['ecommerce_app_health_up{service="order"}'] == "1"
    assert found['ecommerce_app_health_failures_total{service="order"}'] == "3"
    assert found['ecommerce_app_health_recoveries_total{service="order"}'] == "2"
    assert app.paths == ["/health"] * 7


def test_a_redirect_or_a_closed_port_is_not_healthy(app: App) -> None:
    app.status = 302
    assert not health.healthy(app.url, 2)
    assert not health.healthy(f"http://127.0.0.1:{free_port()}/health", 2)
    app.status = 204
    assert health.healthy(app.url, 2)


def test_an_app_not_probed_yet_is_not_reported(app: App) -> None:
    probe = Probe([Target("order", app.url)], timeout=2)
    assert "order" not in probe.render()
    assert "process_start_time_seconds" in probe.render()


@pytest.mark.parametrize(
    "text", ["order", "=http://order:3000/health", "order=https://x/health", "order=http:///health"]
)
def test_a_malformed_target_is_refused_in_one_line(text: str) -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--target", text], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert "expected SERVICE=http://HOST:PORT/PATH" in result.stderr.splitlines()[-1]


def test_it_serves_its_metrics_and_nothing_else_and_stops_on_sigterm(app: App) -> None:
    port = free_port()
    command = [
        sys.executable,
        str(SCRIPT),
        "--target",
        f"cart={app.url}",
        "--listen",
        "127.0.0.1",
        "--port",
        str(port),
        "--interval",
        "0.2",
        "--timeout",
        "0.2",
    ]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            deadline = time.monotonic() + 20
            body = ""
            while 'up{service="cart"} 1' not in body and time.monotonic() < deadline:
                try:
                    body = get(port, "/metrics")[1]
                except OSError:
                    time.sleep(0.1)
            assert 'ecommerce_app_health_up{service="cart"} 1' in body
            assert get(port, "/-/healthy")[0] == 200
            # No caller-chosen target: the blackbox exporter's /probe does not exist here.
            assert get(port, "/probe?target=http://127.0.0.1:1/")[0] == 404
        finally:
            process.terminate()
        assert process.wait(timeout=10) == 0
