"""Every running container gets a PIDs limit from the settings, through the program's own
dynamic resource (pulumi-docker's container has no input for it)."""

from __future__ import annotations

from typing import Any

import pytest
from pulumi.dynamic.dynamic import serialize_provider

from components.dynamic.pids_limit import PidsLimitError, PidsLimitProvider, update_pids_limit
from plan.compare import compare
from plan.recorder import Graph, run_program
from provider.schema import PIDS_LIMIT
from stacks.loader import StackConfigError
from tests.unit.components.dynamic.host import in_provider_host
from tests.unit.conftest import edited
from tests.unit.stacks.settings.test_settings_errors import problems_of

LIMIT_BY_ROLE = {
    "database": 1024,
    "cache": 64,
    "backup": 128,
    "pitr": 256,
    "pitr-repository": 256,
    "edge": 256,
    "business": 256,
    "prometheus": 256,
    "alertmanager": 128,
    "exporter": 128,
    "grafana": 256,
    "probe": 64,
    "gateway": 256,
    "web": 256,
}


def role_of(labels: list[dict[str, str]]) -> str:
    return next(lb["value"] for lb in labels if lb["label"] == "com.ecommerce.role")


def test_every_running_container_gets_the_limit_of_its_role(stack_graph: Graph) -> None:
    limits = {r.name: r for r in stack_graph.of_type(PIDS_LIMIT)}
    running = stack_graph.running_containers()
    assert len(limits) == len(running)  # and none for the seeds, which never run
    for container in running:
        limit = limits[container.name.removesuffix("-container") + "-pids"]
        assert limit.inputs["pidsLimit"] == LIMIT_BY_ROLE[role_of(container.inputs["labels"])]
        # Given the container's ID: a replaced container gets its limit again.
        assert limit.property_dependencies["containerId"] == {container.urn}
        assert limit.inputs["containerId"] == f"{container.name}-id"
        # The provider's own default (DOCKER_HOST), but on the off-host repository's host.
        other_host = role_of(container.inputs["labels"]) == "pitr-repository"
        assert ("dockerHost" in limit.inputs) is other_host


def test_an_edited_limit_is_applied_in_place_and_touches_no_container(prod_graph: Graph) -> None:
    def fewer(platform: dict[str, Any]) -> None:
        platform["services"]["order"]["pidsLimit"] = 100

    plan = compare("prod", prod_graph, run_program("prod", edited("prod", fewer)))
    changes = {c.name: c for c in plan.changed()}
    assert set(changes) == {"platform-order-pids"}
    assert (changes["platform-order-pids"].action, changes["platform-order-pids"].paths) == (
        "update",
        ("pidsLimit",),
    )


def test_a_new_image_replaces_the_limit_with_its_container(prod_graph: Graph) -> None:
    def new_image(platform: dict[str, Any]) -> None:
        platform["services"]["order"]["image"] = "registry.example.com/ecommerce/order:1.0.1"

    changes = {
        c.name: c
        for c in compare(
            "prod", prod_graph, run_program("prod", edited("prod", new_image))
        ).changed()
    }
    limit = changes["platform-order-pids"]
    assert (limit.action, limit.replace_reasons) == ("replace", ("containerId",))


def test_postgres_needs_room_for_its_connections() -> None:
    message = problems_of("prod", lambda p: p["postgres"].update(pidsLimit=300))
    assert (
        "ecommerce:platform.postgres.pidsLimit: 300 leaves no room for the 300 connections "
        "of the order database (one process each, and 32 of the server's own); raise it to "
        "at least 332"
    ) in message


def test_the_docker_host_of_the_stack_reaches_the_limits() -> None:
    config = edited("dev", lambda p: None) | {"docker:host": "tcp://docker.example.com:2376"}
    graph = run_program("dev", config)
    assert {r.inputs["dockerHost"] for r in graph.of_type(PIDS_LIMIT)} == {
        "tcp://docker.example.com:2376"
    }
    with pytest.raises(
        StackConfigError, match=r"a Docker context is in use .* without docker:host"
    ):
        run_program("dev", edited("dev", lambda p: None) | {"docker:context": "remote"})
    # What the limits cannot follow is refused before anything is deployed.
    with pytest.raises(StackConfigError, match=r"'ssh://deploy@shop-host' is not supported"):
        run_program(
            "dev", edited("dev", lambda p: None) | {"docker:host": "ssh://deploy@shop-host"}
        )
    with pytest.raises(StackConfigError, match=r"docker:certPath does not reach the containers'"):
        run_program("dev", edited("dev", lambda p: None) | {"docker:certPath": "/etc/docker/certs"})


def test_the_docker_environment_is_judged_where_the_stack_leaves_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # DOCKER_CONTEXT and DOCKER_HOST stand in for docker:context and docker:host.
    monkeypatch.setenv("DOCKER_CONTEXT", "remote")
    with pytest.raises(
        StackConfigError, match=r"a Docker context is in use .* without docker:host"
    ):
        run_program("dev", edited("dev", lambda p: None))
    monkeypatch.delenv("DOCKER_CONTEXT")
    monkeypatch.setenv("DOCKER_HOST", "ssh://deploy@shop-host")
    with pytest.raises(StackConfigError, match=r"'ssh://deploy@shop-host' is not supported"):
        run_program("dev", edited("dev", lambda p: None))


def test_the_serialized_provider_runs_in_another_process_of_the_virtualenv() -> None:
    # As Pulumi's dynamic provider host does: the provider from the state (by dill: a reference
    # to its class, imported from the project installed in the virtualenv), then its diff,
    # which ignores the serialized provider and replaces only for a new container.
    printed = in_provider_host(
        serialize_provider(PidsLimitProvider()),
        "o = {'containerId': 'a', 'pidsLimit': 64, '__provider': 'x'}\n"
        "print(p.diff('a', o, {**o, '__provider': 'y'}).changes,"
        " p.diff('a', o, {**o, 'pidsLimit': 32}).replaces,"
        " p.diff('a', o, {**o, 'containerId': 'b'}).replaces)\n",
    )
    assert printed == ["False", "[]", "['containerId']"]


@pytest.mark.parametrize(
    ("host", "error"),
    [
        ("ssh://deploy@docker.example.com", "is not supported; use unix:// or tcp://"),
        ("unix:///nonexistent/docker.sock", "unix:///nonexistent/docker.sock: [Errno 2]"),
    ],
)
def test_an_unreachable_or_unsupported_host_is_a_clear_error(host: str, error: str) -> None:
    with pytest.raises(PidsLimitError, match=r"^PIDs limit of container c1: ") as caught:
        update_pids_limit("c1", 64, host)
    assert error in str(caught.value)
