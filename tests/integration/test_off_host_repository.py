"""The off-host repository through the real Pulumi engine on test hosts (tests/hosts/): one
database server with PITR on the first, the repository on the second (components/parts/
off_host.py), each side through its own Docker provider, linked only by the hosts' link. The
server archives its WAL into repo1 beside it and into repo2 over mutual TLS; the repository takes
its own backup of it through the agent's TLS server and restores it in its drill; a certificate
of another CA is refused. The repository's host cut off under writes: Prometheus, scraping the
agent with the stack's alert rules, fires PitrOffHostUnreachable, repo1 keeps archiving, and
repo2 takes the queued WAL with no gap once back. Then the drill of a lost host: orders written and acknowledged, the
first host killed and its data-root deleted, the recovery (deploy/recovery.py) run against a
fresh third host; every order acknowledged before the loss but for the last `archiveTimeout` is
back. One database, not the stack: the lean form of what the stacks deploy.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import docker.errors
import pulumi
import pulumi_docker
import pytest
import requests
import yaml
from pulumi import automation as auto

from components.engine import Engine, other_host
from components.engine.containers import ContainerEngine
from components.engine.files import SecretFiles, SecretFilesArgs
from components.engine.profile import RuntimeProfile
from components.engine.workload import ImageNeeds, Network, Workload
from components.parts.database import Database, DatabaseArgs
from components.parts.off_host import (
    OffHostArgs,
    OffHostCertificates,
    OffHostRepository,
    database_endpoints,
    repository_endpoint,
)
from components.parts.pitr import (
    PitrArgs,
    agent_docker_name,
    overdue_after_hours,
)
from components.parts.pitr_tls import OffHostLink
from components.renderers import alert_rules
from components.renderers.monitoring_config import PITR_METRICS_PORT as METRICS_PORT
from components.renderers.monitoring_config import pitr_agent_alias as agent_alias
from deploy.recovery import Docker, recover
from images.build import RECIPES
from pitr.agent import parse_utc
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
    database_home,
)
from stacks.settings.monitoring import AlertSettings
from tests.hosts import Host, TestHosts
from tests.hosts.daemon import Daemon
from tests.integration.conftest import exec_in, wait_for
from tests.integration.engine import EngineHome
from tests.integration.stacks import RUN_LABEL

pytestmark = [pytest.mark.integration, pytest.mark.docker]

PITR_IMAGE = RECIPES["postgres-pitr"].tag
PROMETHEUS_IMAGE = RECIPES["prometheus"].tag
IMAGES = (PITR_IMAGE, PROMETHEUS_IMAGE)
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
    links = engine.links_between_homes(
        "links",
        f"{prefix}-links",
        labels,
        holder,
        OFF_HOST_HOME,
        [database_home(service) for service in services],
    )
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
    metrics = engine.network("metrics", f"{prefix}-metrics", True, labels, holder)
    prometheus(prefix, engine, metrics, settings, services, labels, holder)
    for service in services:
        link = OffHostLink(
            certificates.databases[service], endpoint, links, repository_side.container
        )
        pitr = PitrArgs(settings, PITR_IMAGE, service, link)
        pitr_database(service, prefix, engine, pitr, labels, holder, metrics)


def pitr_database(
    service: str,
    prefix: str,
    engine: Engine,
    pitr: PitrArgs,
    labels: dict[str, str],
    parent: pulumi.Resource,
    metrics: pulumi_docker.Network | None = None,
) -> Database:
    """`service`'s database server with PITR, as small as a test host runs it, on a network
    of its own (`<prefix>-<service>-db`)."""
    name = database_home(service)
    network = engine.network(f"{name}-network", f"{prefix}-{name}", True, labels, parent)
    spec = PLATFORM.get(service).database
    assert spec is not None
    return Database(
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
            metrics_network=metrics,
            pitr=pitr,
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )


def prometheus(
    prefix: str,
    engine: ContainerEngine,
    metrics: pulumi_docker.Network,
    settings: PitrSettings,
    services: Sequence[str],
    labels: dict[str, str],
    parent: pulumi.Resource,
) -> None:
    """Prometheus on the databases' host, scraping each agent with the stack's own alert rules
    (components/renderers/alert_rules.py), every 2 s: the off-host alerts on real metrics."""
    scrape = {
        "global": {"scrape_interval": "2s", "evaluation_interval": "2s"},
        "rule_files": [f"{PROMETHEUS_CONFIG}/alerts.yml"],
        "scrape_configs": [
            {
                "job_name": "pitr",
                "static_configs": [
                    {"targets": [f"{agent_alias(s)}:{METRICS_PORT}"], "labels": {"service": s}}
                    for s in services
                ],
            }
        ],
    }
    rules = yaml.safe_load(
        alert_rules.render(
            alert_rules.Thresholds(
                alerts=AlertSettings(),
                max_archive_age_minutes=settings.max_archive_age_minutes,
                pitr_overdue_hours=overdue_after_hours(settings),
                off_host=True,
            )
        )
    )
    # The stack's expressions, each held for seconds rather than its `for` (minutes, which the
    # rules' promtool tests cover): a test that sees them fire.
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule["for"] = ALERT_FOR
    files = SecretFiles(
        "prometheus-config",
        SecretFilesArgs(
            docker_name=f"{prefix}-prometheus-config",
            image=PROMETHEUS_IMAGE,
            files={"prometheus.yml": json.dumps(scrape), "alerts.yml": json.dumps(rules)},
            labels=labels,
            engine=engine,
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    engine.run(
        Workload(
            name="prometheus",
            docker_name=f"{prefix}-prometheus",
            image=PROMETHEUS_IMAGE,
            command=[
                f"--config.file={PROMETHEUS_CONFIG}/prometheus.yml",
                "--storage.tsdb.path=/tmp/prometheus",
            ],
            mounts=[files.mount(PROMETHEUS_CONFIG)],
            networks=[Network(metrics, "prometheus")],
            needs=ImageNeeds(non_root_user="nobody"),
            resources=Resources(memory_mb=256, cpus=0.5),
            health_test=["CMD", *PROMQL, "up"],
            labels={**labels, "com.ecommerce.role": "prometheus"},
            stop_grace_seconds=10,
            pids_limit=128,
        ),
        parent,
    )


PROMETHEUS_CONFIG = "/etc/prometheus"
PROMQL = ["promtool", "query", "instant", "http://127.0.0.1:9090"]


ALERT_FOR = "4s"


def alert_active(server: Any, alert: str, service: str, state: str = "") -> bool:
    """Whether Prometheus holds `alert` for `service`: in `state` ("pending", "firing"), or in
    either when none is given."""
    query = f'ALERTS{{alertname="{alert}",service="{service}"}}'
    code, out = exec_in(server, [*PROMQL, query])
    return code == 0 and f'alertstate="{state}' in out


@pytest.fixture
def hosts(test_images: object) -> Iterator[list[Host]]:
    """The databases' host, the repository's, and a fresh one for the drill's recovery."""
    with TestHosts(3, images=list(IMAGES)) as made:
        yield made


def passed(container: Any, path: str) -> bool:
    code, out = exec_in(container, ["cat", path])
    if code != 0 or not out.strip():
        return False  # not written yet, or an answer Docker lost (tests/integration/monitoring.py)
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
            watcher = here.containers.get(f"{prefix}-prometheus")
            repo2_away_under_writes(server, agent, repo, watcher, repository)
            lose_and_recover(stack, server, databases, fresh, where)
        finally:
            here.close()
            there.close()
            stack.destroy(on_output=lambda _line: None)
            stack.workspace.remove_stack("dev", force=True)


OFFHOST_STATUS = "/var/lib/pgbackrest/work/offhost-status.json"
OUTAGE_WRITES = 600
"""Orders written while repo2's host is cut off: over a minute of writes, bounded."""


def repo2_away_under_writes(
    server: Any, agent: Any, repo: Any, prometheus: Any, repository: Host
) -> None:
    """The repository's host cut off its link under writes: the agent sees repo2 away and
    Prometheus fires the alert on its metrics, repo1 keeps archiving (the agent's own check on
    repo1 passes), and once the link is back repo2 takes every queued segment, with no gap."""
    spec = PLATFORM.get(SERVICE).database
    assert spec is not None
    code, said = exec_in(
        server, [*PSQL, spec.name, "-c", "CREATE TABLE outage_orders (id int PRIMARY KEY)"]
    )
    assert code == 0, said
    # Reachable until now (the agent's first looks, before repo2's stanza existed, held the
    # alert): it clears, so the one below is the cut's, not a metric stuck at 0.
    wait_for(
        lambda: not alert_active(prometheus, "PitrOffHostUnreachable", SERVICE),
        timeout=60,
        what="PitrOffHostUnreachable clear while repo2 answers",
    )
    writer = OrderWriter(server, spec.name, count=OUTAGE_WRITES, table="outage_orders")
    writer.start()
    repository.cut()
    # To the second, as the status file says: only a check that started after the cut counts.
    cut_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    try:
        wait_for(
            lambda: alert_active(prometheus, "PitrOffHostUnreachable", SERVICE, "firing"),
            timeout=180,
            what="PitrOffHostUnreachable on the agent's metrics with repo2's host cut off",
            describe=lambda: exec_in(agent, ["cat", OFFHOST_STATUS])[1],
        )
        wait_for(
            lambda: _checked_since(agent, cut_at),
            timeout=150,
            what="the agent's archive check on repo1 passing with repo2 away",
            describe=lambda: exec_in(agent, ["cat", AGENT_STATUS])[1],
        )
    finally:
        repository.mend()
    mended = newest_wal(server, SERVICE, 1)
    assert mended, "repo1's newest WAL segment could not be read"
    writer.join(timeout=300)
    assert len(writer.acknowledged) == OUTAGE_WRITES, "writes stopped during the outage"
    wait_for(
        caught_up(server, SERVICE, mended),
        timeout=300,
        what="repo2 caught up with repo1 after the outage",
    )
    assert gaps(repo, SERVICE) == []


AGENT_STATUS = "/var/lib/pgbackrest/work/agent-status.json"


def _checked_since(agent: Any, since: datetime) -> bool:
    code, out = exec_in(agent, ["cat", AGENT_STATUS])
    if code != 0:
        return False
    check = json.loads(out).get("check", {})
    passed_at = parse_utc(check.get("ok_at"))
    return check.get("ok") is True and passed_at is not None and passed_at > since


def newest_wal(server: Any, service: str, repo: int) -> str:
    code, out = exec_in(
        server, ["pgbackrest", f"--stanza={service}", f"--repo={repo}", "--output=json", "info"]
    )
    if code != 0:
        return ""
    (stanza,) = json.loads(out)
    archives = stanza.get("archive") or [{}]
    return str(archives[-1].get("max") or "")


def caught_up(server: Any, service: str, segment: str) -> Callable[[], bool]:
    """Whether repo2 holds `segment` (what repo1 held when it came back) by now."""
    return lambda: newest_wal(server, service, 2) >= segment


def gaps(repo: Any, service: str) -> list[str]:
    """Segments missing between the first and the last of each timeline in repo2's archive."""
    code, out = exec_in(repo, ["find", f"/var/lib/pgbackrest/repo/archive/{service}", "-type", "f"])
    assert code == 0, out
    numbers: dict[str, set[int]] = defaultdict(set)
    for path in out.split():
        found = SEGMENT.match(Path(path).name)
        if found:
            timeline, log, segment = found.groups()
            numbers[timeline].add(int(log, 16) * SEGMENTS_PER_LOG + int(segment, 16))
    missing = []
    for timeline, held in numbers.items():
        for number in range(min(held), max(held) + 1):
            if number not in held:
                log, segment = divmod(number, SEGMENTS_PER_LOG)
                missing.append(f"{timeline}{log:08X}{segment:08X}")
    return missing


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
SEGMENT = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})-")
SEGMENTS_PER_LOG = 0x100
"""16 MiB segments: 256 per log file number (PostgreSQL's default size)."""


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
