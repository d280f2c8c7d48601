"""Another Docker host must answer before the program asks anything of any host.

The engine applies a plan's steps on every host side by side: with the off-host repository's
host out of reach, the stack's own host would still get its changes (the databases' new
configuration pointing at a repository that is not there) before the other host's steps fail.
So the program asks that host's engine for `/_ping` first and stops with one line naming it;
nothing is changed anywhere. Under the Pulumi mocks (unit tests, the offline plan of a pull
request) no host is asked: nothing would be deployed.
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
from pulumi.runtime import settings
from pulumi.runtime.mocks import MockMonitor

from components.dynamic.engine_api import DockerApiError, engine_api

PING_TIMEOUT_S = 10


def under_mocks() -> bool:
    """Whether the program runs under the Pulumi mocks (unit tests, a pull request's offline
    plan): nothing is deployed, so no host is asked anything."""
    return isinstance(settings.get_monitor(), MockMonitor)


class HostUnreachable(pulumi.RunError):
    """Another host's Docker engine does not answer; the message names it and the failure."""


class ExampleHost(pulumi.RunError):
    """A stack file still names an example host where a real one must be filled in."""


def must_be_filled_in(examples: Mapping[str, str], what: str, instead: str) -> None:
    """Raise ExampleHost when `examples` (key -> a stack file's placeholder host) is not empty:
    one line naming the keys, `what` they are for and the way out (`instead`). Nothing is asked
    of any host; under the mocks (a plan) placeholders are fine."""
    if not examples or under_mocks():
        return
    named = ", ".join(f"{key} ({value})" for key, value in examples.items())
    raise ExampleHost(
        f"{named}: still the stack file's example; name {what}, or {instead}; nothing was "
        "changed on any host"
    )


def must_answer(docker_host: str, role: str, setting: str) -> None:
    """Raise HostUnreachable unless the engine at `docker_host` answers its ping; `role` says
    what the host is for, `setting` where the stack file names it."""
    if under_mocks():
        return
    ping = engine_api(docker_host, f"{role}: Docker host {docker_host}", timeout=PING_TIMEOUT_S)
    try:
        ping("GET", "/_ping", raw=True)  # Docker answers `OK`, not JSON
    except DockerApiError as err:
        raise HostUnreachable(
            f"{err}; nothing was changed on any host: start that engine or fix the address "
            f"({setting}), then retry"
        ) from None
