"""The stand-in as Pulumi with the provider: a failed `up` recorded as Pulumi records it and
recovered by the next one, everything a run made removed even when it failed midway."""

from __future__ import annotations

from typing import Any

import docker
import pytest

from images.build import Outcome
from plan.recorder import Graph, Resource
from provider.diff import INIT_ERROR
from tests.integration.stacks import engine_run, remove_run
from tests.integration.standin import StandInError, apply

pytestmark = [pytest.mark.integration, pytest.mark.docker]


def unpublished(platform: dict[str, Any]) -> None:
    """No host ports, so these runs never compete for the SPEC ports with another stack."""
    for service in platform["services"].values():
        service.pop("hostPort", None)
    platform["databases"] = {}
    platform["redis"].pop("hostPort", None)


def fast_checks(platform: dict[str, Any]) -> None:
    unpublished(platform)
    platform["waitTimeoutSeconds"] = 20
    for service in [*platform["services"].values(), platform["edge"]]:
        service["stopGraceSeconds"] = 10  # within the wait timeout, as the settings require
    platform["healthCheck"] = {"interval": "1s", "timeout": "3s", "retries": 3,
                               "startPeriod": "1s"}  # fmt: skip


def test_a_container_that_never_turned_healthy_is_replaced_by_the_next_up(
    docker_client: docker.DockerClient, test_images: list[Outcome]
) -> None:
    def broken(platform: dict[str, Any]) -> None:
        fast_checks(platform)
        # The order service can never be healthy. Nothing waits for it (the gateway and the web
        # apps start beside it), so only it fails.
        platform["services"]["order"]["healthCommand"] = ["CMD", "false"]

    def fixed(platform: dict[str, Any]) -> None:  # on top of `broken`
        del platform["services"]["order"]["healthCommand"]
        platform["services"]["cart"]["resources"] = {"memoryMb": 640, "cpus": 1.0}

    with engine_run(docker_client, "dev", broken) as live:
        with pytest.raises(StandInError, match=r"-order(--\w+)? not healthy"):
            live.deployment.up(live.graph)
        # As Pulumi records a create that failed after the container existed: with an
        # initialisation error. The same program again replaces it (and waits for it again)
        # rather than "updating" it with a no-op that would report success.
        retry = live.deployment.plan(live.graph).step("platform-order-container")
        assert (retry.action, retry.replace_reasons) == ("replace", (INIT_ERROR,))
        # And its PIDs limit, never set: the engine starts nothing after a failure.
        assert [s.name for s in live.deployment.plan(live.graph).changes()] == [
            retry.name, "platform-order-pids"]  # fmt: skip
        cart_before = live.container("cart").id
        plan = live.deployment.up(live.program(fixed))
        actions = {step.name: step.action for step in plan.changes()}
        assert actions == {
            # Published nowhere here, the order service rolls: the fix is a new generation.
            "platform-order-generation": "replace",
            "platform-order-container": "replace",
            "platform-order-pids": "create",
            "platform-cart-container": "update",  # memory, in place
        }
        for name in ("order", "gateway", "frontend", "backoffice", "cart"):
            container = live.container(name)
            container.reload()
            assert container.attrs["State"]["Health"]["Status"] == "healthy", name
        cart = live.container("cart")
        assert cart.id == cart_before
        assert cart.attrs["HostConfig"]["Memory"] == 640 * 1024 * 1024
        # The provider's in-place update sends no PIDs limit (null: unchanged): it stays.
        assert cart.attrs["HostConfig"]["PidsLimit"] == 256
        assert live.deployment.plan(live.program(fixed)).changes() == []
    # The run's removal leaves nothing behind, failed and replaced containers included.
    for kind in (docker_client.containers.list(all=True), docker_client.networks.list(),
                 docker_client.volumes.list()):  # fmt: skip
        assert not [o.name for o in kind if live.prefix in (o.name or "")]


def test_uploads_into_a_read_only_container_are_refused_as_by_the_provider(
    docker_client: docker.DockerClient, test_images: list[Outcome]
) -> None:
    # Why secrets go through seed containers: the provider's way, on a read-only root, fails.
    graph = Graph()
    graph.resources.append(Resource(
        type="docker:index/container:Container", name="ro", urn="urn:ro", parent="",
        inputs={"name": "ect-readonly-upload", "image": "ecommerce-test/redis:7", "readOnly": True,
                "uploads": [{"file": "/run/secrets/x", "content": "x", "permissions": "0444"}]},
        secret_paths=set(), depends_on=set(), property_dependencies={}, delete_before_replace=True,
        delete_before_replace_defined=True, replace_on_changes=[], ignore_changes=[], protect=False,
    ))  # fmt: skip
    try:
        with pytest.raises(docker.errors.APIError, match="read-only"):
            apply(graph, docker_client, {"ecommerce-test.run": "readonly-upload"})
    finally:
        assert remove_run(docker_client, "readonly-upload") == []
