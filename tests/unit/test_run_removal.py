"""The integration tests' removal of a run (tests/integration/stacks.py) when Swarm removes the
same containers at the same time: the race seen once at the swarm suite's end."""

from __future__ import annotations

from typing import Any

import docker.errors
import pytest
import requests

from tests.integration.stacks import remove_container


def conflict(message: str) -> docker.errors.APIError:
    response = requests.Response()
    response.status_code = 409
    return docker.errors.APIError("409 Client Error", response=response, explanation=message)


class Api:
    """A container that Swarm is removing: our removal conflicts, then it is gone."""

    def __init__(self, error: Exception, inspections_until_gone: int = 2) -> None:
        self.error = error
        self.left = inspections_until_gone

    def remove_container(self, container_id: str, **_: Any) -> None:
        raise self.error

    def inspect_container(self, container_id: str) -> dict[str, Any]:
        if self.left == 0:
            raise docker.errors.NotFound("gone")
        self.left -= 1
        return {"Id": container_id}


class Client:
    def __init__(self, api: Api) -> None:
        self.api = api


def test_a_removal_already_in_progress_is_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("time.sleep", lambda _: None)
    api = Api(conflict("removal of container abc is already in progress"))
    remove_container(Client(api), "abc")
    assert api.left == 0  # it waited until the container was gone


def test_another_conflict_is_an_error() -> None:
    api = Api(conflict("You cannot remove a running container abc"))
    with pytest.raises(docker.errors.APIError, match="running container"):
        remove_container(Client(api), "abc")
