"""The stand-in removes everything a run made, even when the run fails midway."""

from __future__ import annotations

from typing import Any

import docker
import pytest

from images.build import Outcome
from tests.graph import Graph, Resource
from tests.integration.stacks import deployed, remove_run
from tests.integration.standin import StandInError, apply

pytestmark = [pytest.mark.integration, pytest.mark.docker]


def unpublished(platform: dict[str, Any]) -> None:
    """No host ports, so these runs never compete for the SPEC ports with another stack."""
    for service in platform["services"].values():
        service.pop("hostPort", None)
    platform["databases"] = {}
    platform["redis"].pop("hostPort", None)


def test_a_failure_midway_leaves_nothing_behind(
    docker_client: docker.DockerClient, test_images: list[Outcome]
) -> None:
    def broken(platform: dict[str, Any]) -> None:
        unpublished(platform)
        # The order service can never be healthy; everything before it has started by then.
        platform["services"]["order"]["healthCommand"] = ["CMD", "false"]
        platform["waitTimeoutSeconds"] = 15
        platform["healthCheck"] = {"interval": "1s", "timeout": "1s", "retries": 1,
                                   "startPeriod": "1s"}  # fmt: skip

    with (
        pytest.raises(StandInError, match="order not healthy"),
        deployed(docker_client, "dev", broken),
    ):
        pytest.fail("a stack with an unhealthy service came up")
    leftovers = docker_client.containers.list(all=True, filters={"name": "-dev-order"})
    assert [c.name for c in leftovers if c.name.startswith("ect")] == []


def test_nothing_of_a_run_survives_its_removal(
    docker_client: docker.DockerClient, test_images: list[Outcome]
) -> None:
    with deployed(docker_client, "dev", unpublished) as stack:
        run_id = stack.prefix.removeprefix("ect").split("-")[0]
        assert docker_client.containers.list(filters={"label": f"ecommerce-test.run={run_id}"})
    assert remove_run(docker_client, run_id) == []
    for kind in (docker_client.containers.list(all=True), docker_client.networks.list(),
                 docker_client.volumes.list()):  # fmt: skip
        assert not [o for o in kind if stack.prefix in (o.name or "")]


def test_uploads_into_a_read_only_container_are_refused_as_by_the_provider(
    docker_client: docker.DockerClient, test_images: list[Outcome]
) -> None:
    # Why secrets go through seed containers: the provider's way, on a read-only root, fails.
    graph = Graph()
    graph.resources.append(Resource(
        type="docker:index/container:Container", name="ro", urn="urn:ro", parent="",
        inputs={"name": "ect-readonly-upload", "image": "ecommerce-test/redis:7", "readOnly": True,
                "uploads": [{"file": "/run/secrets/x", "content": "x", "permissions": "0444"}]},
        secret_paths=set(), depends_on=set(), delete_before_replace=True,
        replace_on_changes=[], protect=False,
    ))  # fmt: skip
    try:
        with pytest.raises(docker.errors.APIError, match="read-only"):
            apply(graph, docker_client, {"ecommerce-test.run": "readonly-upload"})
    finally:
        assert remove_run(docker_client, "readonly-upload") == []
