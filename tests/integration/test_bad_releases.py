"""Releases that must not take traffic, on prod as its file describes it, deployed by the real
Pulumi engine on a real Docker engine: its edge over HTTPS, its apps replaced side by side, its
policy pack.

The stack here leaves out what a release does not touch, the PITR agents and monitoring, so it
is a small one (tests/integration/stacks.py, `stack_slot`): it runs beside the full stacks of
test_stacks.py instead of after them, for the seven minutes its releases take.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import docker
import pytest
from pulumi import automation as auto

from plan.recorder import GENERATION_SEPARATOR
from tests.integration.engine import EngineHome
from tests.integration.load import Load
from tests.integration.stacks import IMAGES, PLATFORM, LiveStack, deployed

pytestmark = [pytest.mark.integration, pytest.mark.docker]


def without_agents_or_monitoring(platform: dict[str, Any]) -> None:
    platform["pitr"]["enabled"] = False
    platform["monitoring"]["enabled"] = False


@pytest.fixture(scope="module")
def live(docker_client: docker.DockerClient, engine_home: EngineHome) -> Iterator[LiveStack]:
    with deployed(
        docker_client, engine_home, "prod", without_agents_or_monitoring, small=True
    ) as stack:
        yield stack


BROKEN = IMAGES["service"] + "-answers-500"
SLOW = IMAGES["service"] + "-slow-start"
BAD_RELEASE_WAIT_S = 40
"""The stack's wait for a new container, shortened so that a failed release fails sooner."""
AFTER_FAILURE_S = 60
"""How long the load goes on after a failed release: a failed container must not take over."""


def test_a_bad_release_never_takes_traffic(live: LiveStack) -> None:
    # Load through the edge to the gateway and on to the order service, and to the frontend,
    # while four releases go out: an order service that starts but answers 500 to everything
    # (its health check too), then the order service back on its image and a gateway that
    # answers 500, then the gateway back, then an order service that is healthy only after
    # 15 s. Not one request may fail, during the deploys or after them.
    live.build_image(
        BROKEN,
        f"FROM {IMAGES['service']}\nCMD "
        + json.dumps(
            [
                "node",
                "-e",
                "require('http').createServer((q, r) => { r.writeHead(500); r.end() })"
                ".listen(process.env.PORT)",
            ]
        ),
    )
    live.build_image(
        SLOW,
        f'FROM {IMAGES["service"]}\nCMD ["sh", "-c", "sleep 15 && exec node /app/server.js"]\n',
    )

    def release(order: str, gateway: str) -> Callable[[dict[str, Any]], None]:
        def edit(platform: dict[str, Any]) -> None:
            platform["waitTimeoutSeconds"] = BAD_RELEASE_WAIT_S
            platform["services"]["order"]["image"] = order
            platform["services"]["gateway"]["image"] = gateway

        return edit

    good = live.config[PLATFORM]["services"]["order"]["image"]
    # Bounded: about 7 minutes for two failed releases, each watched a minute, and two good.
    api = Load(live.edge_target("gateway", "/order/"), workers=3, max_seconds=480)
    shop = Load(live.edge_target("frontend", "/"), workers=3, max_seconds=480)
    with api as api_report, shop as shop_report:
        began = time.monotonic()
        time.sleep(1)
        for broken in ("order", "gateway"):
            print(f"{time.monotonic() - began:.1f}s: a release of a {broken} that answers 500")
            with pytest.raises(auto.CommandError):
                live.up(
                    release(
                        BROKEN if broken == "order" else good,
                        BROKEN if broken == "gateway" else good,
                    )
                )
            # The deploy names the container that failed, says it takes no traffic and how
            # to read its logs.
            failed = live.runs[-1].text
            name = f"{live.prefix}-{broken}--"
            assert f"not healthy after {BAD_RELEASE_WAIT_S} s" in failed, failed[-3000:]
            assert "It takes no traffic" in failed and f"`docker logs {name}" in failed
            time.sleep(AFTER_FAILURE_S)
            print(f"after the failed {broken}: {api_report.describe()}")
        print(f"{time.monotonic() - began:.1f}s: both back on their image")
        fixed = live.up(release(good, good))
        print(f"{time.monotonic() - began:.1f}s: an order service healthy only after 15 s")
        slow = live.up(release(SLOW, good))
        time.sleep(1)
        # The load ran through all of it (it stops by itself at its bound).
        assert time.monotonic() - began < 480
    print(f"bad releases: edge -> gateway -> order: {api_report.describe()}")
    print(f"bad releases: edge -> frontend: {shop_report.describe()}")
    assert api_report.requests > 500 and shop_report.requests > 500
    assert api_report.failures == [], api_report.failures[:5]
    assert shop_report.failures == [], shop_report.failures[:5]
    # The fix replaced the failed containers and gave the new ones the traffic; the slow one
    # got it once healthy.
    assert {"platform-gateway-traffic", "platform-order-traffic"} <= set(fixed.changes())
    assert slow.changes()["platform-order-traffic"].action == "replace"
    order = live.container("order")
    order.reload()
    assert order.attrs["Config"]["Image"] == SLOW
    # One container per app is left, and a second `up` changes nothing.
    for app in ("order", "gateway"):
        left = [
            n
            for n in live.containers(running_only=False)
            if n.split(GENERATION_SEPARATOR)[0] == f"{live.prefix}-{app}"
        ]
        assert left == [live.state_name(app)], left
    assert [s.describe() for s in live.up().changes().values()] == []
