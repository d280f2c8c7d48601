"""A replicated database in the resource graph (components/parts/consensus.py,
replicated_database.py), on the swarm engine under mocks: each member and each consensus
member pinned to its own node label, every password in a Swarm secret and nowhere else, the
router spread over two nodes on the service's network, the members off it."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest

from components.engine.swarm import SwarmEngine
from components.parts.consensus import Consensus, ConsensusArgs
from components.parts.replicated_database import ReplicatedDatabase, ReplicatedDatabaseArgs
from plan.recorder import Graph, Resource, run_under_mocks
from stacks.catalogue import DatabaseSpec
from stacks.settings import Resources, SwarmSettings
from tests.integration.test_replicated_database import PLACEMENT, PROFILE

SERVICE = "docker:index/service:Service"


def graph(replicas: int = 2) -> Graph:
    def program() -> None:
        root = pulumi.ComponentResource("test:index:Root", "root")
        engine = SwarmEngine(PROFILE, SwarmSettings(placement=PLACEMENT))
        child = pulumi.ResourceOptions(parent=root)
        consensus = Consensus(
            "consensus",
            ConsensusArgs(docker_name="shop-consensus", image="etcd", engine=engine, labels={}),
            child,
        )
        network = engine.network("order-db-network", "shop-order-db", True, {}, root)
        ReplicatedDatabase(
            "order-db",
            ReplicatedDatabaseArgs(
                spec=DatabaseSpec(name="orders", user="order_user"),
                home="order-db",
                docker_name="shop-order-db",
                image="postgres-pitr",
                router_image="haproxy",
                network=network,
                alias="order-db",
                consensus=consensus,
                replicas=replicas,
                engine=engine,
                labels={},
                resources=Resources(memory_mb=512, cpus=0.5),
            ),
            child,
        )

    return run_under_mocks(program, "swarm", {})


def service(found: Graph, name: str) -> Resource:
    (match,) = [r for r in found.of_type(SERVICE) if r.inputs["name"] == name]
    return match


def constraints(resource: Resource) -> list[str]:
    placement: dict[str, Any] = resource.inputs["taskSpec"].get("placement") or {}
    return list(placement.get("constraints", []))


def test_every_member_and_consensus_member_is_pinned_to_its_own_node_label() -> None:
    found = graph()
    pinned = {
        name: constraints(service(found, name))
        for name in (
            "shop-order-db-1",
            "shop-order-db-2",
            "shop-consensus-1",
            "shop-consensus-2",
            "shop-consensus-3",
        )
    }
    assert pinned == {
        "shop-order-db-1": [f"node.labels.{PLACEMENT['order-db-1']}==true"],
        "shop-order-db-2": [f"node.labels.{PLACEMENT['order-db-2']}==true"],
        "shop-consensus-1": [f"node.labels.{PLACEMENT['consensus-1']}==true"],
        "shop-consensus-2": [f"node.labels.{PLACEMENT['consensus-2']}==true"],
        "shop-consensus-3": [f"node.labels.{PLACEMENT['consensus-3']}==true"],
    }


def test_the_router_answers_on_the_services_network_and_the_members_are_off_it() -> None:
    found = graph()
    (service_network,) = [n for n in found.networks() if n.inputs["name"] == "shop-order-db"]
    router = service(found, "shop-order-db")
    assert router.inputs["mode"]["replicated"]["replicas"] == 2
    assert router.inputs["taskSpec"]["placement"]["maxReplicas"] == 1

    def joined(resource: Resource) -> list[str]:
        return [n["id"] for n in resource.inputs["taskSpec"]["networksAdvanceds"]]

    assert service_network.urn in str(router.property_dependencies)
    for member in ("shop-order-db-1", "shop-order-db-2"):
        assert service_network.urn not in str(service(found, member).property_dependencies)
        assert len(joined(service(found, member))) == 2  # replication and consensus


def test_passwords_are_secrets_and_in_no_environment_or_argument() -> None:
    found = graph()
    secrets = found.of_type("docker:index/secret:Secret")
    names = [s.inputs["name"] for s in secrets]
    for member in ("shop-order-db-1", "shop-order-db-2"):
        for file in ("patroni-yml", "service-password"):
            assert [n for n in names if n.startswith(f"{member}-secrets-{file}-")], (member, file)
    assert all("data" in s.secret_paths for s in secrets)
    # What the mocks make of each generated password (plan/recorder.py).
    passwords = [
        f"generated-{r.name}" for r in found.of_type("random:index/randomPassword:RandomPassword")
    ]
    assert len(passwords) == 4  # the service's, the superuser's, replication's, the API's
    for resource in found.of_type(SERVICE):
        spec = resource.inputs["taskSpec"]["containerSpec"]
        visible = str(spec.get("env")) + str(spec.get("args"))
        assert not [p for p in passwords if p in visible], resource.inputs["name"]


def test_one_member_is_no_replicated_database() -> None:
    with pytest.raises(Exception, match="needs 2 or more members"):
        graph(replicas=1)
