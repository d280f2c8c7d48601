"""On a swarm, every node label the stack file places a workload by must be on a node before
anything is deployed.

A service whose placement matches no node is accepted by Swarm and stays pending ("no suitable
node"): a database's `pulumi up` then fails after its converge timeout with no word of the
label, and a workload the deploy does not wait for (the off-host backup repository) never runs
at all while the stack looks deployed. So the program asks the swarm's manager for its nodes
first and stops with one line per missing label, saying how to label a node. In prod it also
refuses a node labelled for the off-host repository that is labelled for a database too: the
settings' rules compare label names, only the swarm knows which node carries them. Under the
Pulumi mocks (unit tests, the offline plan of a pull request) no swarm is asked.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pulumi

from components.dynamic.engine_api import DockerApiError, engine_api
from components.engine.reachable import under_mocks

NODES_TIMEOUT_S = 10


class PlacementError(pulumi.RunError):
    """The swarm cannot place what the stack file pins; the message says what to label."""


def must_be_placeable(
    docker_host: str | None, placement: Mapping[str, str], apart: Mapping[str, Sequence[str]]
) -> None:
    """Raise PlacementError unless every label of `placement` (home -> node label) is on a
    node of the swarm whose manager is `docker_host`, and no node labelled for a home of
    `apart` (home -> the homes it must not share a node with) is labelled for those too."""
    if under_mocks():
        return
    manager = docker_host or os.environ.get("DOCKER_HOST")
    if manager is not None and manager.startswith("ssh://"):
        return  # the program's own Docker calls speak unix:// and tcp:// only; Swarm will tell
    try:
        ask = engine_api(manager, "swarm placement: the swarm's nodes", timeout=NODES_TIMEOUT_S)
        nodes = ask("GET", "/nodes")
    except DockerApiError as err:
        raise PlacementError(f"{err}; nothing was changed: check the swarm's manager") from None
    problems = placement_problems(nodes, placement, apart)
    if problems:
        raise PlacementError("; ".join(problems) + "; nothing was changed")


def placement_problems(
    nodes: Iterable[Mapping[str, Any]],
    placement: Mapping[str, str],
    apart: Mapping[str, Sequence[str]],
) -> list[str]:
    """What the swarm's `nodes` (as `GET /nodes` gives them) cannot place, in words."""
    labelled: dict[str, set[str]] = {}
    names: dict[str, str] = {}
    for node in nodes:
        if not _schedulable(node):  # a lost or drained node places nothing
            continue
        labels = (node.get("Spec") or {}).get("Labels") or {}
        node_id = str(node.get("ID", "?"))
        # Host names may repeat (machines cloned from one image): the ID tells nodes apart.
        names[node_id] = (node.get("Description") or {}).get("Hostname") or node_id
        for label, value in labels.items():
            if value == "true":
                labelled.setdefault(label, set()).add(node_id)
    problems = [
        f"swarm.placement.{home}: no ready and active node of the swarm is labelled "
        f"{label}=true; label the node that holds its volume: `docker node update --label-add "
        f"{label}=true <node>`"
        for home, label in placement.items()
        if label not in labelled
    ]
    for home, others in apart.items():
        mine = labelled.get(placement.get(home, ""), set())
        for other in others:
            shared = sorted(names[i] for i in mine & labelled.get(placement.get(other, ""), set()))
            if shared:
                problems.append(
                    f"swarm.placement.{home}: node {', '.join(shared)} is labelled for {other} "
                    f"too; one lost node would lose both: take {placement[home]} off it and "
                    "label another node"
                )
    return problems


def _schedulable(node: Mapping[str, Any]) -> bool:
    ready = (node.get("Status") or {}).get("State") == "ready"
    return ready and (node.get("Spec") or {}).get("Availability", "active") == "active"
