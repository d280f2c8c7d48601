"""`make test`'s runner (tests/parallel.py): no test left out of its sessions or in two of them,
and a failed session's report; the sessions themselves run in CI."""

from __future__ import annotations

import io
import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tests import parallel
from tests.integration.slots import SLOTS_ENV
from tests.parallel import SESSIONS, Session, check_coverage, failures, summary


def test_every_session_names_paths_that_exist() -> None:
    for session in SESSIONS:
        for arg in session.args:
            path = arg.split("=", 1)[-1]
            assert (parallel.ROOT / path.split("::")[0]).exists(), f"{session.name}: {arg}"


def test_a_test_in_no_session_or_in_two_stops_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    every = {"tests/a.py::one", "tests/a.py::two", "tests/b.py::three"}
    by_args = {
        (): every,
        ("tests/a.py",): {"tests/a.py::one", "tests/a.py::two"},
        ("tests/b.py",): {"tests/b.py::three"},
    }
    monkeypatch.setattr(parallel, "collected", lambda args, env: by_args[tuple(args)])
    a, b = Session("a", ["tests/a.py"]), Session("b", ["tests/b.py"])
    assert check_coverage([a, b]) == 3
    with pytest.raises(SystemExit, match=r"1 tests are in no session .* tests/b.py::three"):
        check_coverage([a])
    with pytest.raises(SystemExit, match=r"tests/a.py::(one|two) is in sessions a and again"):
        check_coverage([a, Session("again", ["tests/a.py"])])


def test_a_failed_session_is_reported_by_its_failures(tmp_path: Path) -> None:
    log = tmp_path / "prod.log"
    log.write_text(
        "....F.\n"
        "=================================== FAILURES ===================================\n"
        "___ test_x ___\n"
        "E   assert 1 == 2\n"
        "=========================== 1 failed, 5 passed in 3.10s ===========================\n"
    )
    assert summary(log) == "1 failed, 5 passed in 3.10s"
    report = failures(log)
    assert report.startswith("=================================== FAILURES")
    assert "E   assert 1 == 2" in report and "....F." not in report


def test_one_engine_runs_the_docker_sessions_one_after_another_here(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import images.build
    import tests.hosts

    events: list[str] = []

    def start(session: Session, logs: Path, prefix: Sequence[str] = (), **env: str) -> Any:
        assert not prefix and not env, "started on a test host"
        events.append(f"start {session.name}")
        return session.name

    def wait_all(running: Sequence[Any], beside: Sequence[Any] = ()) -> None:
        events.extend(f"ended {name}" for name in running)

    def no_hosts(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("test hosts made")

    monkeypatch.setattr(images.build, "ensure_images", lambda log: None)
    monkeypatch.setattr(tests.hosts, "TestHosts", no_hosts)
    monkeypatch.setattr(parallel, "test_hosts_possible", lambda: None)  # they could be made
    monkeypatch.setattr(parallel, "start", start)
    monkeypatch.setattr(parallel, "wait_all", wait_all)
    machine = [s for s in SESSIONS if s.engine == "machine"]
    hosted = [s for s in SESSIONS if s.engine == "test host"]
    parallel.run_docker(machine, hosted, tmp_path, one_engine=True)
    names = [s.name for s in (*machine, *hosted)]
    assert events == [e for name in names for e in (f"start {name}", f"ended {name}")]


class FakeHost:
    def __init__(self, name: str) -> None:
        self.docker_host = f"unix:///{name}.sock"

    def command(self, argv: list[str]) -> list[str]:
        return ["in", self.docker_host, *argv]


def fake_hosts(events: list[str], fail_on: int | None = None) -> Any:
    made = iter(range(1, 10))

    class FakeTestHosts:
        def __init__(self, count: int, images: Sequence[str] = (), swarm: bool = False) -> None:
            self.group, self.count = next(made), count

        def __enter__(self) -> list[FakeHost]:
            if self.group == fail_on:
                raise RuntimeError("a host could not be made")
            events.append(f"hosts {self.group} ({self.count}) ready")
            return [FakeHost(f"g{self.group}h{n}") for n in range(self.count)]

        def __exit__(self, *exc: object) -> None:
            events.append(f"hosts {self.group} removed")

    return FakeTestHosts


@pytest.mark.parametrize("fail_on", [None, 2])
def test_the_first_hosted_session_starts_before_the_other_hosts_are_made(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fail_on: int | None
) -> None:
    import images.build
    import tests.hosts

    events: list[str] = []

    def start(session: Session, logs: Path, prefix: Sequence[str] = (), **env: str) -> Any:
        events.append(f"start {session.name} on {env['DOCKER_HOST']}")
        return session.name

    def wait_all(running: Sequence[Any], beside: Sequence[Any] = ()) -> None:
        events.append(f"wait {' '.join(running)}")

    def stop(running: Sequence[Any]) -> None:
        events.append(f"stop {' '.join(running)}")

    monkeypatch.setattr(images.build, "ensure_images", lambda log: None)
    monkeypatch.setattr(tests.hosts, "TestHosts", fake_hosts(events, fail_on))
    monkeypatch.setattr(parallel, "test_hosts_possible", lambda: None)
    for name, fake in (("start", start), ("wait_all", wait_all), ("stop", stop)):
        monkeypatch.setattr(parallel, name, fake)
    hosted = [s for s in SESSIONS if s.engine == "test host"]
    assert [s.name for s in hosted][:1] == ["prod"], "the longest first"
    if fail_on is None:
        parallel.run_docker([], hosted, tmp_path)
        assert events == [
            "hosts 1 (1) ready",
            "start prod on unix:///g1h0.sock",
            "hosts 2 (2) ready",
            "start swarm on unix:///g2h0.sock",
            "start docker on unix:///g2h1.sock",
            "wait prod swarm docker",
            "stop prod swarm docker",
            "hosts 2 removed",
            "hosts 1 removed",
        ]
    else:  # the sessions started are stopped before their hosts go
        with pytest.raises(RuntimeError, match="could not be made"):
            parallel.run_docker([], hosted, tmp_path)
        assert events == [
            "hosts 1 (1) ready",
            "start prod on unix:///g1h0.sock",
            "stop prod",
            "hosts 1 removed",
        ]


def test_a_session_beside_the_awaited_ones_is_reported_as_it_ends(tmp_path: Path) -> None:
    log = tmp_path / "session.log"
    log.write_text("===== 3 passed in 1.00s =====\n")

    def running(name: str, argv: list[str]) -> parallel.Running:
        return parallel.Running(Session(name, []), subprocess.Popen(argv), log, time.monotonic())

    awaited, beside = running("docker", ["sleep", "2"]), running("unit", ["true"])
    out = io.StringIO()
    parallel.wait_all([awaited], [beside], out=out)
    assert "session unit: 3 passed in 1.00s" in out.getvalue()
    assert beside.ended is not None and awaited.ended is not None
    assert beside.ended < awaited.ended  # its own end, not the time it was looked at last


def test_the_stack_slots_reach_the_sessions_and_zero_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(SLOTS_ENV, "1")  # restored after: main sets it in os.environ
    with pytest.raises(SystemExit) as refused:
        parallel.main(["--stack-slots", "0"])
    assert refused.value.code == 2
    assert "--stack-slots must be 1 or more" in capsys.readouterr().err

    seen: list[str | None] = []

    def coverage(_sessions: Sequence[Session]) -> int:
        seen.append(os.environ.get(SLOTS_ENV))
        raise SystemExit(0)  # stop before any session starts

    monkeypatch.setattr(parallel, "check_coverage", coverage)
    with pytest.raises(SystemExit):
        parallel.main([])
    with pytest.raises(SystemExit):
        parallel.main(["--stack-slots", "3"])
    assert seen == [str(parallel.STACK_SLOTS), "3"]
