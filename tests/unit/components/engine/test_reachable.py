"""Another Docker host answers before the program asks anything of any host
(components/engine/reachable.py): a ping to a fake engine on a Unix socket."""

from __future__ import annotations

import http.server
import socketserver
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pulumi.runtime import settings
from pulumi.runtime.mocks import MockMonitor

from components.engine.reachable import (
    ExampleHost,
    HostUnreachable,
    must_answer,
    must_be_filled_in,
)
from stacks.settings.rules.off_host import example_hosts
from tests.unit.components.engine.test_other_host import settings_with


class Engine(http.server.BaseHTTPRequestHandler):
    """Answers `GET /_ping` as Docker does; anything else is a 404."""

    def do_GET(self) -> None:
        found = self.path == "/_ping"
        self.send_response(200 if found else 404)
        self.end_headers()
        self.wfile.write(b"OK" if found else b"not found")

    def log_message(self, *_args: object) -> None:
        pass

    def address_string(self) -> str:  # a Unix socket has no client address
        return "unix"


class UnixEngine(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.fixture
def no_mocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """As under `pulumi up`: not the mocks another test of the session may have set."""
    monkeypatch.setattr(settings, "get_monitor", lambda: None)


@pytest.fixture
def engine() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "docker.sock"
        server = UnixEngine(str(path), Engine)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield path
        finally:
            server.shutdown()
            server.server_close()


@pytest.mark.usefixtures("no_mocks")
def test_an_engine_that_answers_lets_the_program_go_on(engine: Path) -> None:
    must_answer(f"unix://{engine}", "the off-host repository's host", "pitr.offHost.dockerHost")


@pytest.mark.usefixtures("no_mocks")
def test_one_that_does_not_stops_it_with_one_line_naming_it(tmp_path: Path) -> None:
    gone = f"unix://{tmp_path}/docker.sock"
    with pytest.raises(HostUnreachable) as stopped:
        must_answer(gone, "the off-host repository's host", "pitr.offHost.dockerHost")
    message = str(stopped.value)
    assert message.startswith(f"the off-host repository's host: Docker host {gone}: {gone}: ")
    assert message.endswith(
        "nothing was changed on any host: start that engine or fix the address "
        "(pitr.offHost.dockerHost), then retry"
    )
    assert "\n" not in message


def test_under_the_mocks_no_host_is_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "get_monitor", lambda: object.__new__(MockMonitor))
    must_answer(
        f"unix://{tmp_path}/docker.sock",
        "the off-host repository's host",
        "pitr.offHost.dockerHost",
    )


SHIPPED = {
    "pitr.offHost.dockerHost": "tcp://backup-1.example.com:2376",
    "pitr.offHost.address": "backup-1.example.com",
}


@pytest.mark.usefixtures("no_mocks")
def test_a_stack_files_example_host_stops_a_deploy_naming_each_key() -> None:
    with pytest.raises(ExampleHost) as stopped:
        must_be_filled_in(SHIPPED, "your backup host", "turn it off")
    assert str(stopped.value) == (
        "pitr.offHost.dockerHost (tcp://backup-1.example.com:2376), pitr.offHost.address "
        "(backup-1.example.com): still the stack file's example; name your backup host, or "
        "turn it off; nothing was changed on any host"
    )
    must_be_filled_in({}, "your backup host", "turn it off")  # filled in: nothing to say


def test_under_the_mocks_an_example_host_is_planned_as_it_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings, "get_monitor", lambda: object.__new__(MockMonitor))
    must_be_filled_in(SHIPPED, "your backup host", "turn it off")


@pytest.mark.parametrize(
    ("key", "value", "example"),
    [
        ("dockerHost", "tcp://backup-1.example.com:2376", True),
        ("dockerHost", "ssh://ops@backup.example.org", True),
        ("dockerHost", "tcp://backup-1.shop.internal:2376", False),
        ("dockerHost", "unix:///run/backup.sock", False),
        ("address", "example.net", True),
        ("address", "198.51.100.7", False),
        ("address", "notexample.com", False),
    ],
)
def test_example_hosts_are_rfc_2606s_names_only(key: str, value: str, example: bool) -> None:
    off = {"enabled": True, "dockerHost": "unix:///run/b.sock", "address": "b", key: value}
    found = example_hosts(settings_with(off))
    assert (f"pitr.offHost.{key}" in found) is example
