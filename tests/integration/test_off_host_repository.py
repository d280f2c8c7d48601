"""The off-host repository through the real Pulumi engine on test hosts (tests/hosts/): one
database server with PITR on the first, the repository on the second (components/parts/
off_host.py), each side through its own Docker provider, linked only by the hosts' link. The
server archives its WAL into repo1 beside it and into repo2 over mutual TLS; the repository takes
its own backup of it through the agent's TLS server and restores it in its drill; a certificate
of another CA is refused. Then the drill of a lost host: orders written and acknowledged, the
first host killed and its data-root deleted, the recovery (deploy/recovery.py) run against a
fresh third host; every order acknowledged before the loss but for the last `archiveTimeout` is
back. One database, not the stack: the lean form of what the stacks deploy.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import docker.errors
import pulumi
import pulumi_docker
import pytest
import requests
from pulumi import automation as auto

from components.engine import other_host
from components.engine.containers import ContainerEngine
from components.engine.profile import RuntimeProfile
from components.parts.database import Database, DatabaseArgs
from components.parts.off_host import (
    OffHostArgs,
    OffHostCertificates,
    OffHostRepository,
    database_endpoints,
    repository_endpoint,
)
from components.parts.pitr import PitrArgs, agent_docker_name
from components.parts.pitr_tls import OffHostLink
from deploy.recovery import Docker, recover
from images.build import RECIPES
from pitr.pgbackrest import RestoreTarget
from stacks.catalogue import PLATFORM
from stacks.settings import (
    OFF_HOST_HOME,
    DatabaseTuning,
    Hardening,
    HealthCheck,
    Logs,
    PitrSettings,
    Resources,
)
from tests.hosts import Host, TestHosts
from tests.hosts.daemon import Daemon
from tests.integration.conftest import exec_in, wait_for
from tests.integration.engine import EngineHome
from tests.integration.stacks import RUN_LABEL

pytestmark = [pytest.mark.integration, pytest.mark.docker]

PITR_IMAGE = RECIPES["postgres-pitr"].tag
ARCHIVE_TIMEOUT_S = 10
PUSH_MARGIN_S = 5
"""What the asynchronous push to repo2 may add to archiveTimeout (its IO timeout is 10 s, but a
reachable repository takes a segment in well under a second)."""
WRITES = 400
"""The drill's orders, one every 0.1 s or so: about a minute of writes, bounded."""
SERVICE = "order"
PROFILE = RuntimeProfile(
    hardening=Hardening(),
    logs=Logs(),
    restart="unless-stopped",
    health=HealthCheck(interval="2s", timeout="5s", retries=10, start_period="30s"),
    wait_timeout_seconds=120,
)


def pitr_settings(repository: Host, databases: Host) -> PitrSettings:
    return PitrSettings.model_validate(
        {
            "enabled": True,
            "image": PITR_IMAGE,
            # The agents' checks, and the database agent's look at repo2, every minute.
            "checkEveryMinutes": 1,
            # The drill's RPO: at most this much of the writes before the loss may be lost.
            "archiveTimeoutSeconds": ARCHIVE_TIMEOUT_S,
            "offHost": {
                "enabled": True,
                "dockerHost": repository.docker_host,
                "address": repository.address,
                "databasesAddress": databases.address,
            },
        }
    )


def program(prefix: str, where: dict[str, Host], services: Sequence[str] = (SERVICE,)) -> None:
    """`where["databases"]`: the host the databases run on, which the drill moves;
    `where["repository"]`: the repository's. `services`: whose databases (the benchmark's
    are the catalogue's four)."""
    databases, repository = where["databases"], where["repository"]
    settings = pitr_settings(repository, databases)
    here = pulumi_docker.Provider("databases-docker", host=databases.docker_host)
    holder = pulumi.ComponentResource(
        "test:index:Holder", "holder", opts=pulumi.ResourceOptions(providers=[here])
    )
    there = other_host(
        "repository-docker",
        repository.docker_host,
        "the off-host repository's host",
        "pitr.offHost.dockerHost",
        holder,
    )
    engine = ContainerEngine(PROFILE, databases.docker_host, [here], {OFF_HOST_HOME: there})
    child = pulumi.ResourceOptions(parent=holder)
    labels = {"com.ecommerce.stack": prefix}
    links = engine.links_between_homes("links", f"{prefix}-links", labels, holder)
    agents = {service: agent_docker_name(f"{prefix}-{service}-db") for service in services}
    endpoint = repository_endpoint(links, prefix, settings)
    certificates = OffHostCertificates(
        "certificates", settings, endpoint, database_endpoints(links, agents, settings), opts=child
    )
    # The repository first, as the platform does: each server's start guard asks it.
    repository_side = OffHostRepository(
        "repository",
        OffHostArgs(
            settings, list(services), PITR_IMAGE, prefix, labels, False, engine, links, endpoint
        ),
        certificates,
        opts=child,
    )
    for service in services:
        name = f"{service}-db"
        network = engine.network(f"{name}-network", f"{prefix}-{name}", True, labels, holder)
        spec = PLATFORM.get(service).database
        assert spec is not None
        Database(
            name,
            DatabaseArgs(
                service=service,
                spec=spec,
                docker_name=f"{prefix}-{name}",
                image=PITR_IMAGE,
                network=network,
                alias=name,
                tuning=DatabaseTuning(),
                resources=Resources(memory_mb=512, cpus=1.0),
                shm_size_mb=64,
                stop_grace_seconds=30,
                pids_limit=128,
                engine=engine,
                labels={**labels, "com.ecommerce.role": "database"},
                protect_data=False,
                pitr=PitrArgs(
                    settings,
                    PITR_IMAGE,
                    service,
                    OffHostLink(
                        certificates.databases[service],
                        endpoint,
                        links,
                        repository_side.container,
                    ),
                ),
            ),
            opts=child,
        )


@pytest.fixture
def hosts(test_images: object) -> Iterator[list[Host]]:
    """The databases' host, the repository's, and a fresh one for the drill's recovery."""
    with TestHosts(3, images=[PITR_IMAGE]) as made:
        yield made


def passed(container: Any, path: str) -> bool:
    code, out = exec_in(container, ["cat", path])
    if code != 0:
        return False
    tasks = json.loads(out)
    return all(tasks.get(t, {}).get("ok") is True for t in ("check", "backup", "drill"))


def test_a_database_archives_into_another_hosts_repository_and_comes_back_from_it_alone(
    engine_home: EngineHome, hosts: list[Host], tmp_path: Path
) -> None:
    databases, repository, fresh = hosts
    where = {"databases": databases, "repository": repository}
    run_id = uuid.uuid4().hex[:8]
    prefix = f"ect{run_id}"
    with engine_home.scratch_stack(
        "dev", "off-host", lambda: program(prefix, where), {RUN_LABEL: run_id}
    ) as stack:
        here, there = databases.client(), repository.client()
        try:
            # The repository's host out of reach at deploy time: one line naming it, and
            # nothing made on the databases' host either.
            gone = replace(repository, daemon=Daemon(tmp_path / "gone"))
            where["repository"] = gone
            with pytest.raises(auto.CommandError) as failed:
                stack.up(on_output=lambda _line: None)
            lines = [line.strip() for line in str(failed.value).splitlines()]
            expected = f"the off-host repository's host: Docker host {gone.docker_host}: "
            assert any(line.startswith(f"error: {expected}") for line in lines), lines
            assert any("nothing was changed on any host" in line for line in lines), lines
            assert here.containers.list(all=True) == [] and here.volumes.list() == []
            recorded = (stack.export_stack().deployment or {}).get("resources") or []
            assert [
                r["type"] for r in recorded if r.get("custom") and "providers" not in r["type"]
            ] == []
            where["repository"] = repository
            stack.up(on_output=lambda _line: None)
            agent = here.containers.get(f"{prefix}-order-db-pitr")
            repo = there.containers.get(f"{prefix}-{OFF_HOST_HOME}")
            # Each side's first check, backup and drill: the database's on repo1 (its agent's
            # own file), the repository's on repo2, its check a WAL switch on the server
            # awaited in repo2 and its backup read through the agent's TLS server.
            wait_for(
                lambda: (
                    passed(agent, "/var/lib/pgbackrest/work/agent-status.json")
                    and passed(repo, f"/var/lib/pgbackrest/work/agent-status-{SERVICE}.json")
                ),
                timeout=300,
                what="both sides' first check, backup and drill",
                describe=lambda: _both(agent, repo),
            )
            # Never a crash-restart: pgBackRest's asynchronous archive-push leaves a process of
            # its own, which fails while there is no stanza yet (the first start); the image's
            # PID 1 (tini) reaps it, where PostgreSQL would take it for a crashed backend.
            said = here.containers.get(f"{prefix}-order-db").logs().decode(errors="replace")
            assert "server processes terminated; reinitializing" not in said, said[-2000:]
            code, info = exec_in(repo, ["pgbackrest", "--stanza", SERVICE, "--output=json", "info"])
            assert code == 0, info
            (stanza,) = json.loads(info)
            assert [r["key"] for r in stanza["repo"]] == [2]
            assert stanza["backup"], "no backup in repo2"
            assert stanza["archive"][0]["max"], "no WAL in repo2"
            # The database's agent sees repo2 reachable, caught up with repo1 and holding a
            # backup: what its metrics serve the alert rules.
            wait_for(
                lambda: _offhost_seen(agent),
                timeout=150,
                what="the database agent's look at repo2 with its backup",
                describe=lambda: exec_in(agent, ["cat", OFFHOST_STATUS])[1],
            )
            # The server's certificate reaches its own stanza only: another's is refused (`info`
            # says so in its report, and still exits 0).
            server = here.containers.get(f"{prefix}-order-db")
            code, said = exec_in(
                server,
                ["pgbackrest", "--config=/etc/pgbackrest/pgbackrest.conf", "--stanza=customer",
                 "--repo=2", "info"],
            )  # fmt: skip
            assert "[AccessError]" in said and "access denied" in said, said
            lose_and_recover(stack, server, databases, fresh, where)
        finally:
            here.close()
            there.close()
            stack.destroy(on_output=lambda _line: None)
            stack.workspace.remove_stack("dev", force=True)


OFFHOST_STATUS = "/var/lib/pgbackrest/work/offhost-status.json"


def lose_and_recover(
    stack: auto.Stack, server: Any, lost: Host, fresh: Host, where: dict[str, Host]
) -> None:
    """The drill: orders written until the host is lost, the recovery on a fresh host, the
    acknowledged orders counted there."""
    spec = PLATFORM.get(SERVICE).database
    assert spec is not None
    code, said = exec_in(
        server, [*PSQL, spec.name, "-c", "CREATE TABLE drill_orders (id int PRIMARY KEY)"]
    )
    assert code == 0, said
    writer = OrderWriter(server, spec.name)
    writer.start()
    # Until half the orders are in: writes before the loss, more than archiveTimeout of them.
    wait_for(lambda: len(writer.acknowledged) > WRITES // 2, timeout=120, what="orders written")
    lost_at = time.monotonic()
    lost.lose()
    writer.join(timeout=30)
    assert writer.acknowledged, "no order was acknowledged"
    where["databases"] = fresh
    recovered = recover(stack, Docker(fresh.docker_host), RestoreTarget("latest"), lambda _l: None)
    back_at = time.monotonic()
    (only,) = recovered
    assert "order_db:" in only.checks and "indexes checked" in only.checks, only.checks
    restored = fresh.client().containers.get(server.name)
    code, rows = exec_in(restored, [*PSQL, spec.name, "-c", "SELECT id FROM drill_orders"])
    assert code == 0, rows
    missing, rpo = writer.lost({int(line) for line in rows.split()}, lost_at)
    # Every order acknowledged more than archiveTimeout (and the push) before the loss is back.
    too_old = [
        i for i in missing if lost_at - writer.acknowledged[i] > ARCHIVE_TIMEOUT_S + PUSH_MARGIN_S
    ]
    assert not too_old, f"orders lost beyond the RPO: {too_old[:10]} of {len(missing)} missing"
    print(
        f"\ndrill: {len(writer.acknowledged)} orders acknowledged, {len(missing)} lost; "
        f"RPO {rpo:.1f} s (archiveTimeout {ARCHIVE_TIMEOUT_S} s), RTO {back_at - lost_at:.0f} s"
    )


PSQL = ["psql", "-XAtq", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-d"]


class OrderWriter(threading.Thread):
    """Writes orders one by one into the server until it is gone (or `count` are in), and
    records when each was acknowledged (its commit returned)."""

    def __init__(
        self, server: Any, database: str, count: int = WRITES, table: str = "drill_orders"
    ) -> None:
        super().__init__(daemon=True)
        self.server, self.database, self.count, self.table = server, database, count, table
        self.acknowledged: dict[int, float] = {}
        self.sent: set[int] = set()

    def run(self) -> None:
        script = (
            'i=0; while [ "$i" -lt "$0" ]; do i=$((i+1)); '
            'psql -XAtq -U postgres -d "$1" -c "INSERT INTO $2 VALUES ($i) RETURNING id" '
            "|| exit 1; sleep 0.1; done"
        )
        try:
            stream = self.server.exec_run(
                ["sh", "-c", script, str(self.count), self.database, self.table],
                user="postgres",
                stream=True,
            ).output
            pending = b""
            for chunk in stream:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip().isdigit():
                        self.acknowledged[int(line)] = time.monotonic()
        except (docker.errors.DockerException, requests.RequestException, OSError):
            pass  # the host is gone: that ends the writes, as it ends the shop's
        self.sent = set(range(1, max(self.acknowledged, default=0) + 2))

    def lost(self, present: set[int], lost_at: float) -> tuple[list[int], float]:
        """The acknowledged orders missing from `present` (what the restored server holds),
        and the RPO measured: from the oldest of them to the loss (0 when none is missing)."""
        assert present <= self.sent, f"rows nobody wrote: {sorted(present - self.sent)[:5]}"
        missing = sorted(set(self.acknowledged) - present)
        return missing, lost_at - min((self.acknowledged[i] for i in missing), default=lost_at)


def _offhost_seen(agent: Any) -> bool:
    code, out = exec_in(agent, ["cat", OFFHOST_STATUS])
    if code != 0:
        return False
    seen = json.loads(out)
    return bool(seen["reachable"] and seen["caught_up_at"] and seen["backup_at"])


def _both(agent: Any, repo: Any) -> str:
    said = []
    for name, container, path in (
        ("database agent", agent, "/var/lib/pgbackrest/work/agent-status.json"),
        ("repository", repo, f"/var/lib/pgbackrest/work/agent-status-{SERVICE}.json"),
    ):
        code, out = exec_in(container, ["cat", path])
        logs = container.logs(tail=30).decode(errors="replace")
        said.append(f"{name}: {out if code == 0 else 'no status'}\n{logs}")
    return "\n".join(said)
