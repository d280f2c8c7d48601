"""The off-host repository's container loop (pitr/repository.py): its TLS server kept running,
its agents ticked in turn, its health check naming what is wrong."""

from __future__ import annotations

import os
import signal
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

import pytest

from pitr import cli, layout, repository
from pitr.agent import TASKS, HealthLimits, TaskState, save_tasks
from pitr.agent import Agent as PitrAgent
from pitr.errors import EXIT_USAGE, UnhealthyError
from pitr.offhost_watch import OffHostWatch
from pitr.pgbackrest import PgBackRest
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


@pytest.fixture
def agent_runs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """What `pitr agent` starts, without starting it: its loop alone, or serve() with a TLS
    server."""
    runs: list[tuple[str, Any]] = []
    monkeypatch.setattr(cli, "_stop_event", threading.Event)
    monkeypatch.setattr(PitrAgent, "run", lambda agent, stop: runs.append(("alone", agent)))

    def served(server: TlsServer, agents: list[object], tick: timedelta, stop: object) -> None:
        runs.append(("served", (server.argv, agents)))

    monkeypatch.setattr(repository, "serve", served)
    monkeypatch.setattr(
        cli, "_in_background", lambda name, target, *args: runs.append((name, target.__self__))
    )
    return runs


def test_an_agent_beside_an_off_host_repository_reads_its_own_file_and_runs_the_tls_server(
    agent_runs: list[tuple[str, Any]],
) -> None:
    argv = ["agent", "--stanza", "order", "--config", "/etc/pgbackrest/agent.conf"]
    assert cli.main([*argv, "--tls-server"]) == 0
    (watching, watch), (how, (server_argv, agents)) = agent_runs
    assert how == "served"
    # The TLS server reads the server's own file, with both repositories and its listener.
    assert server_argv == ["pgbackrest", "--config=/etc/pgbackrest/pgbackrest.conf", "server"]
    (agent,) = agents
    assert str(agent.tool.config_file) == "/etc/pgbackrest/agent.conf"
    # Beside it, on a thread of its own (a long backup never delays it), the look at repo2
    # for the alerts, through the server's file (both repos).
    assert watching == "offhost"
    assert isinstance(watch, OffHostWatch) and isinstance(watch.tool, PgBackRest)
    assert str(watch.tool.config_file) == "/etc/pgbackrest/pgbackrest.conf"
    assert str(watch.status_file) == "/var/lib/pgbackrest/work/offhost-status.json"


def test_an_agent_alone_runs_its_loop_on_the_servers_file(
    agent_runs: list[tuple[str, Any]],
) -> None:
    assert cli.main(["agent", "--stanza", "order"]) == 0
    ((how, agent),) = agent_runs
    assert how == "alone"
    assert str(agent.tool.config_file) == "/etc/pgbackrest/pgbackrest.conf"


def test_the_agents_health_with_a_tls_server_needs_it_to_answer(
    tmp_path: Path,
    listening: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = tmp_path / "agent-status.json"
    save_tasks(status, dict.fromkeys(TASKS, TaskState(NOW, True, NOW, 0, "ok")))
    monkeypatch.setattr(layout, "STATUS_FILE", status)
    monkeypatch.setattr(cli, "datetime", _Frozen)
    limits = ["--max-archive-age", "15m", "--max-backup-age", "5h", "--max-drill-age", "25h"]
    health = ["health", "--stanza", "order", *limits]
    assert cli.main([*health, "--tls-port", str(listening)]) == 0
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        silent = int(unused.getsockname()[1])
    assert cli.main([*health, "--tls-port", str(silent)]) == UnhealthyError.exit_code
    assert f"does not answer on port {silent}" in capsys.readouterr().err


class _Frozen(datetime):
    """`datetime` whose now() is NOW: the health check's clock."""

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> _Frozen:
        return cls.fromtimestamp(NOW.timestamp(), tz)


def test_a_swarm_task_is_healthy_while_its_tls_server_answers(
    listening: int, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before any backup or drill: what a swarm needs to name it in its DNS.
    assert cli.main(["serves", "--port", str(listening)]) == 0
    assert f"answers on port {listening}" in capsys.readouterr().out
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        silent = int(unused.getsockname()[1])
    assert cli.main(["serves", "--port", str(silent)]) == UnhealthyError.exit_code
    assert f"does not answer on port {silent}" in capsys.readouterr().err
