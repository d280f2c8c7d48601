"""Docker now and then loses a quick exec's output: the integration tests' JSON reads ask again
when nothing came back, and only then (tests/integration/monitoring.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.integration.monitoring import LOST_OUTPUT_TRIES, json_from


@dataclass
class ExecResult:
    exit_code: int
    output: bytes


@dataclass
class Container:
    """Answers each exec with the next of `outputs`."""

    outputs: list[tuple[int, bytes]]
    name: str = "prometheus"
    commands: list[Any] = field(default_factory=list)

    def exec_run(self, command: Any, **_options: Any) -> ExecResult:
        self.commands.append(command)
        return ExecResult(*self.outputs.pop(0))


def test_an_answer_lost_by_docker_is_asked_again() -> None:
    container = Container([(0, b""), (0, b'{"status": "success"}')])
    assert json_from(container, "http://127.0.0.1:9090/api/v1/targets") == {"status": "success"}
    assert len(container.commands) == 2


def test_no_answer_at_all_fails_naming_the_request() -> None:
    container = Container([(0, b"")] * LOST_OUTPUT_TRIES)
    with pytest.raises(AssertionError, match="GET http://x/ in prometheus: no output in 3 tries"):
        json_from(container, "http://x/")


def test_a_failed_request_is_not_asked_again() -> None:
    container = Container([(8, b"server error")])
    with pytest.raises(AssertionError, match="server error"):
        json_from(container, "http://x/")
    assert len(container.commands) == 1
