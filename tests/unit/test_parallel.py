"""`make test`'s runner (tests/parallel.py): no test left out of its sessions or in two of them,
and a failed session's report; the sessions themselves run in CI."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import parallel
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
