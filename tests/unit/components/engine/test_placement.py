"""Before a swarm stack is deployed, every placement label is on a node, and in prod the
off-host repository's node holds no database (components/engine/placement.py)."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest
from pulumi.runtime import settings as runtime_settings

from components.dynamic.engine_api import DockerApiError
from components.engine import placement
from components.engine.placement import (
    PlacementError,
    Spread,
    must_be_placeable,
    placement_problems,
    spread_problems,
)


def node(
    hostname: str,
    *labels: str,
    state: str = "ready",
    availability: str = "active",
    node_id: str | None = None,
    **others: str,
) -> dict[str, Any]:
    return {
        "ID": node_id or f"id-{hostname}",
        "Description": {"Hostname": hostname},
        "Status": {"State": state},
        "Spec": {
            "Labels": {**{label: "true" for label in labels}, **others},
            "Availability": availability,
        },
    }


PLACEMENT = {"order-db": "ecommerce.db", "pitr-repository": "ecommerce.backup"}
APART = {"pitr-repository": ["order-db"]}


def test_labels_on_separate_nodes_place_everything() -> None:
    nodes = [node("shop-1", "ecommerce.db"), node("backup-1", "ecommerce.backup")]
    assert placement_problems(nodes, PLACEMENT, APART) == []


def test_nodes_of_one_host_name_are_told_apart_by_their_id() -> None:
    # Machines cloned from one image (the test hosts) share a host name.
    nodes = [node("vm", "ecommerce.db", node_id="a1"), node("vm", "ecommerce.backup", node_id="b2")]
    assert placement_problems(nodes, PLACEMENT, APART) == []


def test_a_label_on_no_node_says_how_to_label_one() -> None:
    nodes = [node("shop-1", "ecommerce.db"), node("backup-1", **{"ecommerce.backup": "false"})]
    missing = [
        "swarm.placement.pitr-repository: no ready and active node of the swarm is labelled "
        "ecommerce.backup=true; label the node that holds its volume: `docker node update "
        "--label-add ecommerce.backup=true <node>`"
    ]
    assert placement_problems(nodes, PLACEMENT, APART) == missing
    # A lost node, or one drained, places nothing, labelled or not.
    lost = [node("shop-1", "ecommerce.db"), node("backup-1", "ecommerce.backup", state="down")]
    assert placement_problems(lost, PLACEMENT, APART) == missing
    drained = [node("shop-1", "ecommerce.db"), node("b", "ecommerce.backup", availability="drain")]
    assert placement_problems(drained, PLACEMENT, APART) == missing


def test_the_repository_on_a_databases_node_is_refused_where_asked() -> None:
    nodes = [node("shop-1", "ecommerce.db", "ecommerce.backup")]
    assert placement_problems(nodes, PLACEMENT, APART) == [
        "swarm.placement.pitr-repository: node shop-1 is labelled for order-db too; one lost "
        "node would lose both: take ecommerce.backup off it and label another node"
    ]
    # Outside prod nothing is kept apart: one node may hold both.
    assert placement_problems(nodes, PLACEMENT, {}) == []


def test_the_check_stops_the_program_with_every_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime_settings, "get_monitor", lambda: None)
    nodes = [node("shop-1", "ecommerce.db", "ecommerce.backup")]
    monkeypatch.setattr(placement, "engine_api", lambda *_a, **_k: lambda *_b, **_c: nodes)
    with pytest.raises(PlacementError, match=r"labelled for order-db too.*nothing was changed$"):
        must_be_placeable("unix:///run/manager.sock", PLACEMENT, APART)
    # Replicas with too few nodes stop it too, in the same message.
    with pytest.raises(PlacementError, match=r"order-db too.*; services.gateway.replicas: 2 need"):
        must_be_placeable("unix:///run/manager.sock", PLACEMENT, APART, [GATEWAY])
    # A roll with no free node is only a warning: a deploy during a node loss must go on.
    warned: list[str] = []
    monkeypatch.setattr(pulumi.log, "warn", lambda message, *_a, **_k: warned.append(message))
    two = [node("shop-1", "ecommerce.db"), node("backup-1", "ecommerce.backup")]
    monkeypatch.setattr(placement, "engine_api", lambda *_a, **_k: lambda *_b, **_c: two)
    must_be_placeable("unix:///run/manager.sock", PLACEMENT, APART, [GATEWAY])
    assert [w.split(":")[0] for w in warned] == ["services.gateway.replicas"]

    def unreachable(*_args: Any, **_kwargs: Any) -> Any:
        raise DockerApiError("swarm placement: the swarm's nodes: refused")

    monkeypatch.setattr(placement, "engine_api", lambda *_a, **_k: unreachable)
    with pytest.raises(PlacementError, match=r"refused; nothing was changed: check the swarm"):
        must_be_placeable(None, PLACEMENT, APART)
    # An ssh:// manager is not asked: the program's own calls speak unix:// and tcp:// only.
    must_be_placeable("ssh://ops@manager", PLACEMENT, APART)
    monkeypatch.setenv("DOCKER_HOST", "ssh://ops@manager")
    must_be_placeable(None, PLACEMENT, APART)


GATEWAY = Spread("services.gateway.replicas", 2)
EDGE = Spread("edge.replicas", 2, "ecommerce.edge", start_first=False)


def test_two_replicas_need_two_nodes_and_a_third_to_roll_on() -> None:
    three = [node("n1"), node("n2"), node("n3")]
    assert spread_problems(three, [GATEWAY]) == ([], [])
    # A node down: both still run, but a start-first roll has nowhere to start its new task.
    down = [node("n1"), node("n2"), node("n3", state="down")]
    assert spread_problems(down, [GATEWAY]) == (
        [],
        [
            "services.gateway.replicas: 2 on 2 ready and active nodes: a roll starts each new "
            "task on a node without one, so it waits until another node is back or added"
        ],
    )
    alone = [node("n1"), node("n2", availability="drain")]
    assert spread_problems(alone, [GATEWAY]) == (
        [
            "services.gateway.replicas: 2 need as many ready and active nodes (no two on one "
            "node), the swarm has 1; add a node or lower it"
        ],
        [],
    )
    # One replica needs nothing of the kind.
    assert spread_problems(alone, [Spread("services.cart.replicas", 1)]) == ([], [])


def test_edges_count_only_the_nodes_labelled_for_them_and_roll_stop_first() -> None:
    nodes = [node("n1", "ecommerce.edge"), node("n2", "ecommerce.edge"), node("n3")]
    assert spread_problems(nodes, [EDGE]) == ([], [])  # stop-first: no third node needed
    one = [node("n1", "ecommerce.edge"), node("n2"), node("n3")]
    assert spread_problems(one, [EDGE])[0] == [
        "edge.replicas: 2 need as many ready and active nodes labelled ecommerce.edge=true (no "
        "two on one node), the swarm has 1; label another with `docker node update --label-add "
        "ecommerce.edge=true <node>` or lower it"
    ]
