"""The off-host repository on a swarm, through the real Pulumi engine: two test hosts
(tests/hosts/) form a swarm, the database server and its agent pinned to the first node, the
repository to the second (`swarm.placement`), both sides on the database's overlay to the
repository and dialling each other's service by name (components/engine/swarm.py,
`OverlayLinks`). First the manager's nodes are asked (components/engine/placement.py): no node
labelled for the repository, then the database's node labelled for it too, each stop the `up`
in one line with nothing made. Then the server archives into repo2 on the other node; the
repository backs it up through the agent's TLS server and drills it. One database, as
tests/integration/test_off_host_repository.py does on two Docker hosts.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import docker
import docker.errors
import pulumi
import pulumi_docker
import pytest
from pulumi import automation as auto

from components.engine.placement import must_be_placeable
from components.engine.swarm import SwarmEngine
from components.parts.off_host import (
    OffHostArgs,
    OffHostCertificates,
    OffHostRepository,
    database_endpoints,
    repository_endpoint,
)
from components.parts.pitr import PitrArgs, agent_docker_name
from components.parts.pitr_tls import OffHostLink
from stacks.settings import (
    OFF_HOST_HOME,
    PitrSettings,
    SwarmSettings,
    database_home,
)
from tests.hosts import Host, TestHosts
from tests.integration.conftest import exec_in, wait_for
from tests.integration.engine import EngineHome
from tests.integration.stacks import RUN_LABEL
from tests.integration.test_off_host_repository import (
    ARCHIVE_TIMEOUT_S,
    PITR_IMAGE,
    PROFILE,
    SERVICE,
    passed,
    pitr_database,
)

pytestmark = [pytest.mark.integration, pytest.mark.docker]

DATABASE_LABEL, REPOSITORY_LABEL = "ecommerce.db", "ecommerce.backup"
SWARM = SwarmSettings.model_validate(
    {
        "endpointMode": "dnsrr",  # this kernel has no IPVS for virtual IPs
        "placement": {f"{SERVICE}-db": DATABASE_LABEL, OFF_HOST_HOME: REPOSITORY_LABEL},
        "monitorSeconds": 5,
        "updateDelaySeconds": 0,
    }
)
SETTINGS = PitrSettings.model_validate(
    {
        "enabled": True,
        "image": PITR_IMAGE,
        "checkEveryMinutes": 1,
        "archiveTimeoutSeconds": ARCHIVE_TIMEOUT_S,
        "offHost": {"enabled": True},
    }
)


def program(prefix: str, manager: Host) -> None:
    """The order database on the node labelled for it, the repository on the other."""
    here = pulumi_docker.Provider("swarm-docker", host=manager.docker_host)
    holder = pulumi.ComponentResource(
        "test:index:Holder", "holder", opts=pulumi.ResourceOptions(providers=[here])
    )
    # As engine_for does for a prod swarm: the manager's nodes must place every label, the
    # repository on another node than the database.
    must_be_placeable(
        manager.docker_host, SWARM.placement, {OFF_HOST_HOME: [database_home(SERVICE)]}
    )
    engine = SwarmEngine(PROFILE, SWARM, [here])
    child = pulumi.ResourceOptions(parent=holder)
    labels = {"com.ecommerce.stack": prefix}
    links = engine.links_between_homes(
        "links", f"{prefix}-links", labels, holder, OFF_HOST_HOME, [database_home(SERVICE)]
    )
    server_name = f"{prefix}-{SERVICE}-db"
    endpoint = repository_endpoint(links, prefix, SETTINGS)
    databases = database_endpoints(links, {SERVICE: agent_docker_name(server_name)}, SETTINGS)
    certificates = OffHostCertificates("certificates", SETTINGS, endpoint, databases, opts=child)
    # The repository first, as the platform does: the server's start guard asks it.
    repository = OffHostRepository(
        "repository",
        OffHostArgs(
            SETTINGS, [SERVICE], PITR_IMAGE, prefix, labels, False, engine, links, endpoint
        ),
        certificates,
        opts=child,
    )
    link = OffHostLink(certificates.databases[SERVICE], endpoint, links, repository.container)
    pitr_database(
        SERVICE, prefix, engine, PitrArgs(SETTINGS, PITR_IMAGE, SERVICE, link), labels, holder
    )


@pytest.fixture
def two_nodes(test_images: object) -> Iterator[list[Host]]:
    """A swarm of two test hosts: the first its manager, labelled for the database; the
    second a worker, labelled for the repository."""
    with TestHosts(2, images=[PITR_IMAGE], swarm=True) as hosts:
        form_swarm(hosts, "Worker")
        label(hosts[0], DATABASE_LABEL)  # the repository's: by the test
        yield hosts


def form_swarm(hosts: Sequence[Host], role: Literal["Manager", "Worker"]) -> None:
    """A swarm on the hosts' link: the first initialises it, the others join as `role`s;
    returns once every node is ready."""
    first = hosts[0]
    manager = first.client()
    manager.swarm.init(advertise_addr=first.address, listen_addr=f"{first.address}:2377")
    token = manager.swarm.attrs["JoinTokens"][role]
    for host in hosts[1:]:
        host.client().swarm.join(
            remote_addrs=[f"{first.address}:2377"],
            join_token=token,
            advertise_addr=host.address,
            listen_addr=f"{host.address}:2377",
        )
    wait_for(
        lambda: (
            [n.attrs["Status"]["State"] for n in manager.nodes.list()] == ["ready"] * len(hosts)
        ),
        timeout=60,
        what=f"{len(hosts)} ready nodes",
    )


def label(host: Host, *labels: str, manager: Host | None = None) -> None:
    """The node of `host` labelled with `labels` (`<label>=true`) and no other."""
    client = (manager or host).client()
    node = client.nodes.get(host.client().info()["Swarm"]["NodeID"])
    spec = dict(node.attrs["Spec"])
    spec["Labels"] = dict.fromkeys(labels, "true")
    node.update(spec)


def task_container(client: docker.DockerClient, service: str) -> Any | None:
    """The running container of `service`'s task on this node, if it runs here."""
    found = client.containers.list(filters={"label": f"com.docker.swarm.service.name={service}"})
    return found[0] if found else None


def test_on_a_swarm_a_database_archives_into_the_repository_on_another_node(
    engine_home: EngineHome, two_nodes: list[Host]
) -> None:
    first, second = two_nodes
    run_id = uuid.uuid4().hex[:8]
    prefix = f"ect{run_id}"
    with engine_home.scratch_stack(
        "swarm", "off-host-swarm", lambda: program(prefix, first), {RUN_LABEL: run_id}
    ) as stack:
        here, there = first.client(), second.client()
        try:
            # No node labelled for the repository, then the database's node labelled for it
            # too: each `up` stops in one line before anything is made.
            for labels, said in (
                (
                    (DATABASE_LABEL,),
                    f"no ready and active node of the swarm is labelled {REPOSITORY_LABEL}=true",
                ),
                ((DATABASE_LABEL, REPOSITORY_LABEL), "is labelled for order-db too"),
            ):
                label(first, *labels)
                with pytest.raises(auto.CommandError) as stopped:
                    stack.up(on_output=lambda _line: None)
                assert f"swarm.placement.{OFF_HOST_HOME}: " in str(stopped.value), stopped.value
                assert said in str(stopped.value), stopped.value
                assert here.services.list() == []
            label(first, DATABASE_LABEL)
            label(second, REPOSITORY_LABEL, manager=first)
            stack.up(on_output=lambda _line: None)
            server_name = f"{prefix}-{SERVICE}-db"
            wait_for(
                lambda: (
                    task_container(there, f"{prefix}-{OFF_HOST_HOME}") is not None
                    and task_container(here, agent_docker_name(server_name)) is not None
                ),
                timeout=120,
                what="the repository's task on the second node and the agent's on the first",
            )
            # Each where its label says: nothing of the database's on the repository's node.
            assert task_container(there, server_name) is None
            assert task_container(here, f"{prefix}-{OFF_HOST_HOME}") is None

            def agent() -> Any:
                return task_container(here, agent_docker_name(server_name))

            def repo() -> Any:
                return task_container(there, f"{prefix}-{OFF_HOST_HOME}")

            wait_for(
                lambda: (
                    _passed(agent(), "/var/lib/pgbackrest/work/agent-status.json")
                    and _passed(repo(), f"/var/lib/pgbackrest/work/agent-status-{SERVICE}.json")
                ),
                timeout=300,
                what="both sides' first check, backup and drill across the overlay",
                describe=lambda: _logs(agent(), repo()),
            )
            code, info = exec_in(
                repo(), ["pgbackrest", "--stanza", SERVICE, "--output=json", "info"]
            )
            assert code == 0, info
            (stanza,) = json.loads(info)
            assert [r["key"] for r in stanza["repo"]] == [2]
            assert stanza["backup"], "no backup in repo2"
            assert stanza["archive"][0]["max"], "no WAL in repo2"
            # Nothing but the stack's own overlays carried it: no port published on a node.
            for service in here.services.list():
                assert not service.attrs["Endpoint"].get("Ports"), service.name
        finally:
            here.close()
            there.close()
            stack.destroy(on_output=lambda _line: None)
            stack.workspace.remove_stack("swarm", force=True)


def _passed(container: Any | None, path: str) -> bool:
    """`passed`, for a task's container that may be gone or replaced meanwhile."""
    try:
        return container is not None and passed(container, path)
    except docker.errors.APIError:  # stopped between the lookup and the exec
        return False


def _logs(*containers: Any) -> str:
    return "\n".join(
        f"{c.name}:\n{c.logs(tail=30).decode(errors='replace')}" for c in containers if c
    )
