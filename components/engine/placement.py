"""On a swarm, every node label the stack file places a workload by must be on a node before
anything is deployed.

A service whose placement matches no node is accepted by Swarm and stays pending ("no suitable
node"): a database's `pulumi up` then fails after its converge timeout with no word of the
label, and a workload the deploy does not wait for (the off-host backup repository) never runs
at all while the stack looks deployed. So the program asks the swarm's manager for its nodes
first and stops with one line per missing label, saying how to label a node. In prod it also
refuses a node labelled for the off-host repository that is labelled for a database too: the
settings' rules compare label names, only the swarm knows which node carries them. And since
no two replicas of a service share a node, a service needs as many nodes as it has replicas
(the edge: nodes labelled for it); one more lets a start-first roll place its new task, without
which a roll waits for a node: said as a warning, since it is what a node loss leaves and a
deploy must still be possible then. Under the Pulumi mocks (unit tests, the offline plan of a
pull request) no swarm is asked.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

from components.dynamic.engine_api import DockerApiError, engine_api
from components.engine.reachable import under_mocks

NODES_TIMEOUT_S = 10


class PlacementError(pulumi.RunError):
    """The swarm cannot place what the stack file pins; the message says what to label."""


@dataclass(frozen=True)
class Spread:
    """A service whose replicas each run on a node of their own."""

    key: str
    """The setting that asks for them, e.g. `services.gateway.replicas`."""
    replicas: int
    label: str | None = None
    """The label of the nodes it may run on; None: any node."""
    start_first: bool = True
    """A roll starts each new task before stopping an old one: on a node with none."""


def must_be_placeable(
    docker_host: str | None,
    placement: Mapping[str, str],
    apart: Mapping[str, Sequence[str]],
    spreads: Sequence[Spread] = (),
) -> None:
    """Raise PlacementError unless every label of `placement` (home -> node label) is on a
    node of the swarm whose manager is `docker_host`, no node labelled for a home of `apart`
    (home -> the homes it must not share a node with) is labelled for those too, and each of
    `spreads` has a node per replica; warn where a roll would have no free node."""
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
    too_few, tight = spread_problems(nodes, spreads)
    if problems or too_few:
        raise PlacementError("; ".join(problems + too_few) + "; nothing was changed")
    for warning in tight:
        pulumi.log.warn(warning)


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
        labels = _labels(node)
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


def spread_problems(
    nodes: Iterable[Mapping[str, Any]], spreads: Sequence[Spread]
) -> tuple[list[str], list[str]]:
    """For each of `spreads` with more than one replica: an error where the swarm's ready and
    active nodes (labelled for it) are fewer than its replicas, a warning where a roll would
    find no node to start a new task on."""
    usable = [node for node in nodes if _schedulable(node)]
    errors, warnings = [], []
    for spread in spreads:
        if spread.replicas < 2:
            continue
        label = spread.label
        count = sum(1 for node in usable if label is None or _labels(node).get(label) == "true")
        which = f"nodes labelled {label}=true" if label else "nodes"
        if count < spread.replicas:
            remedy = f"label another with `docker node update --label-add {label}=true <node>`"
            errors.append(
                f"{spread.key}: {spread.replicas} need as many ready and active {which} (no "
                f"two on one node), the swarm has {count}; "
                + (remedy if label else "add a node")
                + " or lower it"
            )
        elif spread.start_first and count == spread.replicas:
            warnings.append(
                f"{spread.key}: {spread.replicas} on {count} ready and active {which}: a roll "
                "starts each new task on a node without one, so it waits until another node "
                "is back or added"
            )
    return errors, warnings


def _labels(node: Mapping[str, Any]) -> Mapping[str, str]:
    return (node.get("Spec") or {}).get("Labels") or {}


def _schedulable(node: Mapping[str, Any]) -> bool:
    ready = (node.get("Status") or {}).get("State") == "ready"
    return ready and (node.get("Spec") or {}).get("Availability", "active") == "active"
