"""A side-by-side app answers to its service's aliases only once healthy: the graph gives them
to a traffic gate, not to the container; the gate waits for health before it joins them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from components.dynamic import traffic_gate
from components.dynamic.traffic_gate import TrafficGateError, open_gate
from plan.recorder import Graph
from provider.schema import TRAFFIC_GATE

EDGE_APPS = {"platform-gateway", "platform-frontend", "platform-backoffice"}


def gates(graph: Graph) -> dict[str, dict[str, Any]]:
    return {r.name.removesuffix("-traffic"): r.inputs for r in graph.of_type(TRAFFIC_GATE)}


def test_side_by_side_apps_get_their_aliases_from_their_gate(prod_graph: Graph) -> None:
    found = gates(prod_graph)
    apps = {"gateway", "customer", "product", "order", "cart", "content", "frontend", "backoffice"}
    assert set(found) == {f"platform-{app}" for app in apps}
    for name, gate in found.items():
        container = prod_graph.by_urn(
            next(r.urn for r in prod_graph.containers() if r.name == f"{name}-container")
        )
        # The container joins the networks its callers reach it on under its own name only,
        # and is not waited for: its gate waits, then gives the alias there. Where only the
        # app calls out (its database's network, the cache's), it keeps its alias: leaving
        # and joining again there would break its connections.
        joined = {n["name"]: n.get("aliases") for n in container.inputs["networksAdvanced"]}
        given = {n["name"] for n in gate["networks"]}
        assert given and all(joined[n] is None for n in given), name
        assert all(a for n, a in joined.items() if n not in given), name
        assert given == ({"shop-edge"} if name in EDGE_APPS else {"shop-backend"}), name
        assert container.inputs["wait"] is False
        assert gate["waitSeconds"] == container.inputs["waitTimeout"]
        assert container.urn in prod_graph.by_urn(_gate_urn(prod_graph, name)).depends_on
    order = found["platform-order"]
    assert order["networks"] == [{"name": "shop-backend", "aliases": ["order"]}]
    # The stores and the edge keep their aliases, and the deploy waits for them as before.
    for name in ("shop-order-db", "shop-redis", "shop-edge"):
        container = prod_graph.container(name)
        assert all(n["aliases"] for n in container.inputs["networksAdvanced"]), name
        assert container.inputs["wait"] is True


def test_apps_replaced_delete_first_keep_their_aliases(dev_graph: Graph) -> None:
    # Dev's business services hold host ports: replaced delete-first, nothing old serves
    # beside them, so no gate. The edge apps roll there too, and are gated.
    assert set(gates(dev_graph)) == {"platform-gateway", "platform-frontend", "platform-backoffice"}
    order = dev_graph.container("shop-dev-order")
    assert [n["aliases"] for n in order.inputs["networksAdvanced"]] == [["order"], ["order"]]


def _gate_urn(graph: Graph, name: str) -> str:
    return next(r.urn for r in graph.of_type(TRAFFIC_GATE) if r.name == f"{name}-traffic")


Api = Callable[..., Any]


def fake_engine(states: list[dict[str, Any]], calls: list[tuple[str, str, Any]]) -> Api:
    """An Engine API answering the container's inspect with `states` in turn."""

    def make(_host: str | None, _what: str, _error: type[Exception]) -> Api:
        def call(method: str, path: str, body: Any = None) -> Any:
            calls.append((method, path, body))
            if path.endswith("/json"):
                return {"State": states.pop(0) if len(states) > 1 else states[0]}
            return None

        return call

    return make


PROPS = {
    "containerId": "c1",
    "containerName": "shop-order--3fa2c1",
    "waitSeconds": 1,
    "networks": [{"name": "shop-backend", "aliases": ["order"]}],
}


def test_a_healthy_container_joins_its_network_again_with_its_alias(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[str, str, Any]] = []
    states = [
        {"Status": "running", "Health": {"Status": "starting"}},
        {"Status": "running", "Health": {"Status": "healthy"}},
    ]
    monkeypatch.setattr(traffic_gate, "engine_api", fake_engine(states, calls))
    monkeypatch.setattr(traffic_gate, "POLL_SECONDS", 0.01)
    monkeypatch.setattr(traffic_gate, "SETTLE_SECONDS", 0.01)
    open_gate(PROPS)
    assert calls[-2:] == [
        ("POST", "/networks/shop-backend/disconnect", {"Container": "c1", "Force": False}),
        (
            "POST",
            "/networks/shop-backend/connect",
            {"Container": "c1", "EndpointConfig": {"Aliases": ["order"]}},
        ),
    ]


@pytest.mark.parametrize(
    ("state", "why"),
    [
        (
            {
                "Status": "running",
                "Health": {"Status": "unhealthy", "Log": [{"ExitCode": 1, "Output": "500\n"}]},
            },
            "not healthy after 1 s (status unhealthy); last health check: exit code 1, '500'",
        ),
        (
            {"Status": "running", "Health": {"Status": "unhealthy", "Log": [{"ExitCode": 1}]}},
            "not healthy after 1 s (status unhealthy); last health check: exit code 1, no output",
        ),
        (
            {"Status": "running", "Health": {"Status": "starting"}},
            "not healthy after 1 s (status starting); no health check result yet",
        ),
        (
            {"Status": "exited", "ExitCode": 3, "Health": {"Status": "unhealthy"}},
            "exited with code 3",
        ),
    ],
    ids=["unhealthy", "silent", "starting", "exited"],
)
def test_a_container_that_never_turns_healthy_never_gets_its_alias(
    monkeypatch: pytest.MonkeyPatch, state: dict[str, Any], why: str
) -> None:
    calls: list[tuple[str, str, Any]] = []
    monkeypatch.setattr(traffic_gate, "engine_api", fake_engine([state], calls))
    monkeypatch.setattr(traffic_gate, "POLL_SECONDS", 0.01)
    with pytest.raises(TrafficGateError) as caught:
        open_gate(PROPS)
    message = str(caught.value)
    assert message.startswith(f"container shop-order--3fa2c1 {why}"), message
    assert "the one it replaces goes on serving" in message
    assert "`docker logs shop-order--3fa2c1`" in message
    assert [c for c in calls if "/networks/" in c[1]] == []
