"""What the recovery of a lost swarm node reads from the state and the swarm, and the restore
job it makes (deploy/swarm_recovery.py; the recovery itself runs in
tests/integration/test_swarm.py)."""

from __future__ import annotations

from typing import Any

from deploy.swarm_recovery import (
    PinnedService,
    StackVolume,
    lost_labels,
    pinned_services,
    restore_job,
    stack_volumes,
)
from plan.recorder import run_program


def swarm_resources() -> list[dict[str, Any]]:
    """The swarm stack file's resources as the engine's state shows them."""
    graph = run_program("swarm")
    return [{"type": r.type, "urn": r.urn, "inputs": r.inputs} for r in graph.resources]


def node(
    node_id: str, *labels: str, state: str = "ready", availability: str = "active"
) -> dict[str, Any]:
    return {
        "ID": node_id,
        "Description": {"Hostname": f"host-{node_id}"},
        "Status": {"State": state},
        "Spec": {"Labels": dict.fromkeys(labels, "true"), "Availability": availability},
    }


def test_the_pinned_services_and_the_databases_among_them_come_from_the_state() -> None:
    pinned = {s.name.removeprefix("shop-"): s for s in pinned_services(swarm_resources())}
    assert pinned["order-db"] == PinnedService(
        "shop-order-db", ("ecommerce.data",), stanza="order", database=True
    )
    assert pinned["order-db-pitr"].labels == ("ecommerce.data",)
    assert pinned["order-db"].replicas == 1  # from the state: what is scaled back to
    assert not pinned["order-db-pitr"].database
    assert pinned["pitr-repository"].labels == ("ecommerce.backup",)
    assert "gateway" not in pinned  # free to run anywhere


def test_the_volumes_come_with_the_labels_the_program_gives_them() -> None:
    volumes = {v.name: v for v in stack_volumes(swarm_resources())}
    data = volumes["shop-order-db-data"]
    assert data == StackVolume(
        "shop-order-db-data",
        {
            "com.ecommerce.stack": "swarm",
            "com.ecommerce.service": "order",
            "com.ecommerce.role": "database",
        },
        "local",
    )


def test_a_label_is_lost_only_when_every_node_carrying_it_is_down() -> None:
    services = [
        PinnedService("db", ("ecommerce.data",), "order", True),
        PinnedService("repo", ("ecommerce.backup",)),
    ]
    lost = node("n1", "ecommerce.data", state="down")
    others = [node("n2", "ecommerce.backup"), node("n3")]
    assert lost_labels(services, [lost, *others], "n3") == ({"ecommerce.data"}, [])
    # This node's own labels do not count: a recovery that stopped after labelling it.
    moved = node("n3", "ecommerce.data")
    assert lost_labels(services, [lost, others[0], moved], "n3") == ({"ecommerce.data"}, [])
    # Another ready node carries it: nothing is lost.
    assert lost_labels(services, [lost, *others, node("n4", "ecommerce.data")], "n3") == (
        set(),
        [],
    )
    # A carrier that may still run what it holds: not lost, and named.
    for unsure in (
        node("n1", "ecommerce.data", state="unknown"),
        node("n1", "ecommerce.data", availability="pause"),
        node("n1", "ecommerce.data", availability="drain"),
    ):
        found, named = lost_labels(services, [unsure, *others], "n3")
        assert found == set() and len(named) == 1 and named[0].startswith("host-n1 ("), named


def test_the_restore_job_is_the_servers_spec_running_its_guard_once() -> None:
    spec: dict[str, Any] = {
        "Spec": {
            "Name": "shop-order-db",
            "Labels": {"com.ecommerce.stack": "shop"},
            "TaskTemplate": {
                "ContainerSpec": {
                    "Image": "postgres-pitr:16",
                    "Args": ["postgres", "-c", "config_file=/etc/postgresql.conf"],
                    "Env": ["PITR_STANZA=order"],
                    "Healthcheck": {"Test": ["CMD", "pg_isready"]},
                    "Mounts": [{"Type": "volume", "Source": "shop-order-db-data"}],
                },
                "Networks": [{"Target": "overlay-id"}],
                "Placement": {"Constraints": ["node.labels.ecommerce.data==true"]},
                "RestartPolicy": {"Condition": "any"},
                "ForceUpdate": 2,
            },
            "Mode": {"Replicated": {"Replicas": 1}},
        }
    }
    job = restore_job(spec, "order", "node-2")
    assert job["Name"] == "shop-order-db-recovery"
    assert job["Mode"] == {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}}
    task = job["TaskTemplate"]
    container = task["ContainerSpec"]
    assert container["Args"] == ["python3", "-m", "pitr", "guard", "--stanza", "order"]
    assert container["Healthcheck"] == {"Test": ["NONE"]}  # a restore takes what it takes
    assert "PGDATA=/var/lib/postgresql/data/pgdata" in container["Env"]
    # Everything that reaches the repository is the server's own: volumes, overlays, node.
    assert container["Mounts"] == spec["Spec"]["TaskTemplate"]["ContainerSpec"]["Mounts"]
    assert task["Networks"] == [{"Target": "overlay-id"}]
    # On the node that takes the databases over, before the lost labels move there.
    assert task["Placement"] == {"Constraints": ["node.id==node-2"]}
    assert container["User"] == "postgres"
    assert task["RestartPolicy"]["Condition"] == "none"
    # The server's own spec is left as it was.
    assert spec["Spec"]["TaskTemplate"]["ContainerSpec"]["Args"][0] == "postgres"
