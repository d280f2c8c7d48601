"""A failed `pulumi up` as the real engine records it, and the next one that recovers; and the
provider's own refusal that made secrets go through seed containers."""

from __future__ import annotations

from typing import Any

import docker
import pulumi_docker
import pytest
from pulumi import automation as auto

from tests.integration.engine import EngineHome
from tests.integration.stacks import IMAGES, engine_run

pytestmark = [pytest.mark.integration, pytest.mark.docker]


def unpublished(platform: dict[str, Any]) -> None:
    """No host ports, so these runs never compete for the SPEC ports with another stack."""
    for service in platform["services"].values():
        service.pop("hostPort", None)
    platform["databases"] = {}
    platform["redis"].pop("hostPort", None)


WAIT_S = 60
"""How long an `up` waits for a container to turn healthy: long enough for a database's first
start on a loaded machine (20 s was not: a server still initialising failed the `up` before
the broken order service did), short enough for the order service's wait."""


def fast_checks(platform: dict[str, Any]) -> None:
    unpublished(platform)
    platform["waitTimeoutSeconds"] = WAIT_S
    for service in [*platform["services"].values(), platform["edge"]]:
        service["stopGraceSeconds"] = 10  # within the wait timeout, as the settings require
    # Every 3 s: every second, some thirty checks would take more than the machine's two cores.
    # The stack's own timeout: a check is a process started in the container, which on a busy
    # machine took more than 3 s and turned a good order service unhealthy after the `up` that
    # waited for it.
    platform["healthCheck"] = {"interval": "3s", "timeout": "5s", "retries": 3, "startPeriod": "1s"}
    # Not what this is about: a quicker stack, with fewer containers to start, check and remove.
    platform["pitr"]["enabled"] = False
    platform["monitoring"]["enabled"] = False


def test_a_container_that_never_turned_healthy_is_replaced_by_the_next_up(
    docker_client: docker.DockerClient, engine_home: EngineHome
) -> None:
    def broken(platform: dict[str, Any]) -> None:
        # The order service can never be healthy. Nothing waits for it (the gateway and the web
        # apps start beside it), so only it fails.
        platform["services"]["order"]["healthCommand"] = ["CMD", "false"]

    def fixed(platform: dict[str, Any]) -> None:
        del platform["services"]["order"]["healthCommand"]
        platform["services"]["cart"]["resources"] = {"memoryMb": 640, "cpus": 1.0}

    with engine_run(docker_client, engine_home, "dev", fast_checks, minutes=3) as live:
        with pytest.raises(auto.CommandError):
            live.up(broken)
        failed = live.runs[-1].text
        # Its traffic gate (components/dynamic/traffic_gate.py) waited for it and said which one failed
        # and where its logs are.
        name = live.container("order").name
        assert f"container {name} not healthy after {WAIT_S} s (status unhealthy)" in failed, failed
        assert f"`docker logs {name}`" in failed, failed[-3000:]
        # It was left aside: running, on the network the gateway calls it on under its own
        # name only, so no caller resolves `order` to it.
        (order,) = [r for r in live.state() if r["urn"].endswith("::platform-order-container")]
        assert not order.get("initErrors"), order
        backend = live.container("order").attrs["NetworkSettings"]["Networks"][
            f"{live.prefix}-backend"
        ]
        assert "order" not in (backend["Aliases"] or []), backend
        # The same program again waits for it again (its gate, never created), and nothing
        # else: the rest came up beside it, its PIDs limit included.
        retry = live.preview().changes()
        assert {n: c.action for n, c in retry.items()} == {"platform-order-traffic": "create"}
        cart_before = live.container("cart").id
        actions = {name: step.action for name, step in live.up(fixed).changes().items()}
        assert actions == {
            # Published nowhere here, the order service rolls: the fix is a new generation.
            "platform-order-generation": "replace",
            "platform-order-container": "replace",
            "platform-order-pids": "replace",
            "platform-order-traffic": "create",
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
        assert live.preview().changes() == {}
    # The run's removal leaves nothing behind, failed and replaced containers included.
    for kind in (
        docker_client.containers.list(all=True),
        docker_client.networks.list(),
        docker_client.volumes.list(),
    ):
        assert not [o.name for o in kind if live.prefix in (o.name or "")]


def test_uploads_into_a_read_only_container_are_refused_as_by_the_provider(
    docker_client: docker.DockerClient, engine_home: EngineHome
) -> None:
    # Why secrets go through seed containers: the provider's way, on a read-only root, fails.
    with engine_run(docker_client, engine_home, "dev") as live:

        def program() -> None:
            pulumi_docker.Container(
                "ro",
                name=f"{live.prefix}-readonly-upload",
                image=IMAGES["redis"],
                read_only=True,
                start=False,
                uploads=[pulumi_docker.ContainerUploadArgs(file="/run/secrets/x", content="x")],
            )

        with pytest.raises(auto.CommandError):
            live.up(program=program)
        assert "container rootfs is marked read-only" in live.runs[-1].text
