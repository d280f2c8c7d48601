"""The off-host repository's container loop (pitr/repository.py): its TLS server kept running,
its agents ticked in turn, its health check naming what is wrong."""

from __future__ import annotations

import os
import signal
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pitr import cli, repository
from pitr.agent import TASKS, HealthLimits, TaskState, save_tasks
from pitr.errors import EXIT_USAGE, UnhealthyError
from pitr.repository import TlsServer, repository_health, serve, status_file

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
LIMITS = HealthLimits(timedelta(minutes=15), timedelta(hours=5), timedelta(hours=25))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def server() -> Iterator[TlsServer]:
    """A stand-in for `pgbackrest server`: a real process, stopped at the end."""
    made = TlsServer(["sleep", "60"], clock=Clock())
    yield made
    made.stop()


def test_a_dead_server_is_started_again_after_a_pause(server: TlsServer) -> None:
    clock = server.clock
    assert isinstance(clock, Clock)
    server.keep_running()
    assert server.process is not None
    first = server.process.pid
    os.kill(first, signal.SIGKILL)
    server.process.wait()
    server.keep_running()  # seen dead: not started again at once
    assert server.process is None
    clock.now += repository.RESTART_AFTER_S
    server.keep_running()
    assert server.process is not None and server.process.pid != first
    assert server.process.poll() is None


def test_stop_ends_the_server(server: TlsServer) -> None:
    server.keep_running()
    server.stop()
    assert server.process is not None and server.process.returncode is not None


class Agent:
    def __init__(self, name: str, ticks: list[str], stop: threading.Event, last: bool) -> None:
        self.name, self.ticks, self.stop, self.last = name, ticks, stop, last

    def tick(self) -> None:
        self.ticks.append(self.name)
        if self.last and len(self.ticks) >= 4:
            self.stop.set()


def test_serve_ticks_every_agent_in_turn_and_stops_the_server(server: TlsServer) -> None:
    ticks: list[str] = []
    stop = threading.Event()
    agents = [Agent("cart", ticks, stop, False), Agent("order", ticks, stop, True)]
    give_up = threading.Timer(10, stop.set)  # a broken loop fails here instead of hanging
    give_up.start()
    serve(server, agents, timedelta(0), stop)
    give_up.cancel()
    assert ticks == ["cart", "order", "cart", "order"]
    assert server.process is not None and server.process.returncode is not None


def healthy_status(work: Path, stanza: str) -> None:
    task = TaskState(NOW, True, NOW, 0, "ok")
    save_tasks(status_file(work, stanza), dict.fromkeys(TASKS, task))


@pytest.fixture
def listening() -> Iterator[int]:
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        bound.listen()
        yield int(bound.getsockname()[1])


def test_healthy_while_the_server_answers_and_every_stanza_is(
    tmp_path: Path, listening: int
) -> None:
    for stanza in ("cart", "order"):
        healthy_status(tmp_path, stanza)
    said = repository_health(tmp_path, ["cart", "order"], listening, LIMITS, NOW)
    assert said.startswith("cart: ok") and "; order: ok" in said


def test_one_stanza_behind_makes_it_unhealthy_naming_it(tmp_path: Path, listening: int) -> None:
    healthy_status(tmp_path, "cart")
    with pytest.raises(UnhealthyError, match=r"^order: no archive check has passed yet"):
        repository_health(tmp_path, ["cart", "order"], listening, LIMITS, NOW)


def test_a_silent_server_makes_it_unhealthy_naming_the_port(tmp_path: Path) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = int(unused.getsockname()[1])
    healthy_status(tmp_path, "cart")
    with pytest.raises(UnhealthyError, match=f"does not answer on port {port}"):
        repository_health(tmp_path, ["cart"], port, LIMITS, NOW)


def test_the_repository_command_needs_a_stanza(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as refused:
        cli.main(["repository"])
    assert refused.value.code == EXIT_USAGE
    assert "--stanza" in capsys.readouterr().err
