"""Benchmark (not a test): the loss of the databases' host beside an off-host repository, and the
recovery on a new host (docs/benchmarks.md, "Losing the host").

Three test hosts (tests/hosts/), the real Pulumi engine and the stand-in providers: the
catalogue's four databases with PITR on the first, each filled with demo rows (--rows for the
first, twice as many for the next, and so on, so that the sizes differ), the off-host repository
on the second. Once the repository holds a backup of each:

1. repo2 away under writes: the repository's host cut off its link for --outage seconds while
   every database takes writes, then mended; once repo2 holds what repo1 held at the mend, its
   archive of each stanza is read segment by segment for gaps.
2. The loss: a writer on every database, the first host killed and its data-root deleted, the
   recovery (deploy/recovery.py) on the third. Per database: the writes acknowledged and lost,
   the RPO (the oldest lost write to the loss) and its size; the RTO: the loss to every
   database restored, checked and taking writes.
3. The logical way, for comparison: each restored database dumped (`pg_dump -Fc`) and restored
   into an empty database of the same server (`pg_restore`), timed.

Needs root, a running engine and the test images (`python -m images.build`). Measures only.

    .venv/bin/python -m benchmarks.disaster_recovery [--rows 200000] [--outage 120]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from pulumi import automation as auto

from deploy.recovery import Docker, recover
from deploy.workspace import ROOT
from images.build import ensure_images
from pitr.pgbackrest import RestoreTarget
from stacks.catalogue import PLATFORM
from stacks.settings import OFF_HOST_HOME
from tests.hosts import Host, TestHosts
from tests.integration.conftest import exec_in, wait_for
from tests.integration.engine import engine_home
from tests.integration.test_off_host_repository import (
    IMAGES,
    PSQL,
    OrderWriter,
    caught_up,
    gaps,
    newest_wal,
    passed,
    program,
)

SERVICES = tuple(spec.name for spec in PLATFORM.with_database())


def database(service: str) -> str:
    spec = PLATFORM.get(service).database
    assert spec is not None
    return spec.name


def sql(container: Any, service: str, text: str) -> str:
    for _ in range(60):  # a server restarting after a crash answers again within a minute
        code, out = exec_in(container, [*PSQL, database(service), "-c", text])
        if code == 0:
            return out.strip()
        if "recovery mode" not in out and "starting up" not in out:
            break
        time.sleep(1)
    logs = container.logs(tail=20).decode(errors="replace")
    raise RuntimeError(f"{service}: {text[:40]}: {out.strip()}\n{logs}")


def fill(servers: dict[str, Any], rows: int) -> dict[str, int]:
    """Demo rows, more in each next database; the databases' sizes in bytes."""
    sizes = {}
    for n, (service, server) in enumerate(servers.items(), start=1):
        for table in ("drill_orders", "outage_orders"):
            sql(server, service, f"CREATE TABLE {table} (id int PRIMARY KEY)")
        sql(server, service, "CREATE TABLE demo (id bigint PRIMARY KEY, note text)")
        sql(
            server,
            service,
            # An integer of ours, not input from anyone.
            f"INSERT INTO demo SELECT g, md5(g::text) FROM generate_series(1, {rows * n}) g",  # noqa: S608
        )
        sizes[service] = int(sql(server, service, "SELECT pg_database_size(current_database())"))
    return sizes


def repository_passed(repo: Any) -> bool:
    return all(passed(repo, f"/var/lib/pgbackrest/work/agent-status-{s}.json") for s in SERVICES)


def outage(servers: dict[str, Any], repository: Host, repo: Any, seconds: int) -> dict[str, int]:
    """repo2 cut off for `seconds` under writes; the gaps in its archive once it caught up."""
    # About seven writes a second each: they end with the outage.
    writers = {
        s: OrderWriter(server, database(s), count=seconds * 7, table="outage_orders")
        for s, server in servers.items()
    }
    for writer in writers.values():
        writer.start()
    repository.cut()
    time.sleep(seconds)
    repository.mend()
    mended = {s: newest_wal(server, s, 1) for s, server in servers.items()}
    for writer in writers.values():
        writer.join()
    for service, server in servers.items():
        wait_for(
            caught_up(server, service, mended[service]),
            timeout=600,
            what=f"{service}: repo2 caught up with repo1 after the outage",
        )
    return {service: len(gaps(repo, service)) for service in servers}


def lose(servers: dict[str, Any], lost: Host) -> tuple[dict[str, OrderWriter], float]:
    writers = {s: OrderWriter(server, database(s), count=100_000) for s, server in servers.items()}
    for writer in writers.values():
        writer.start()
    time.sleep(30)
    lost_at = time.monotonic()
    lost.lose()
    for writer in writers.values():
        writer.join(timeout=30)
    return writers, lost_at


def logical(server: Any, service: str) -> tuple[float, float]:
    """Seconds to dump the restored database, and to restore the dump into an empty one."""
    started = time.monotonic()
    code, out = exec_in(
        server, ["pg_dump", "-U", "postgres", "-Fc", "-f", "/tmp/bench.dump", database(service)]
    )
    assert code == 0, out
    dumped = time.monotonic()
    sql(server, service, "CREATE DATABASE bench_restore")
    code, out = exec_in(
        server, ["pg_restore", "-U", "postgres", "-d", "bench_restore", "/tmp/bench.dump"]
    )
    assert code == 0, out
    restored = time.monotonic()
    sql(server, service, "DROP DATABASE bench_restore")
    exec_in(server, ["rm", "-f", "/tmp/bench.dump"])
    return dumped - started, restored - dumped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000, help="demo rows in the first database")
    parser.add_argument("--outage", type=int, default=120, help="seconds repo2 is away")
    args = parser.parse_args()
    ensure_images(log=lambda line: print(f"images: {line}"))
    with (
        tempfile.TemporaryDirectory(prefix="bench-dr-") as scratch,
        TestHosts(3, images=list(IMAGES)) as hosts,
    ):
        first, second, third = hosts
        where = {"databases": first, "repository": second}
        home = engine_home(Path(scratch) / "home")
        prefix = f"bdr{uuid.uuid4().hex[:6]}"
        (Path(scratch) / "state").mkdir()
        (Path(scratch) / "project").mkdir()
        env = home.env(Path(scratch) / "state", {}, Path(scratch) / "standin.log")
        stack = auto.create_stack(
            "bench",
            project_name="bench-dr",
            program=lambda: program(prefix, where, SERVICES),
            opts=auto.LocalWorkspaceOptions(
                work_dir=str(Path(scratch) / "project"),
                env_vars={**env, "PYTHONPATH": str(ROOT)},
                pulumi_command=home.command,
                project_settings=auto.ProjectSettings(name="bench-dr", runtime="python"),
            ),
        )
        try:
            stack.up(on_output=lambda _line: None)
            client = first.client()
            servers = {s: client.containers.get(f"{prefix}-{s}-db") for s in SERVICES}
            repo = second.client().containers.get(f"{prefix}-{OFF_HOST_HOME}")
            sizes = fill(servers, args.rows)
            print("demo data in; waiting for the repository's first backup of each", flush=True)
            wait_for(lambda: repository_passed(repo), timeout=900, what="repo2's first backups")
            missing = outage(servers, second, repo, args.outage)
            print(f"repo2 away {args.outage} s under writes: WAL segments missing after: {missing}")
            writers, lost_at = lose(servers, first)
            where["databases"] = third
            recover(stack, Docker(third.docker_host), RestoreTarget("latest"), lambda _l: None)
            rto = time.monotonic() - lost_at
            back = third.client()
            print(f"\nRTO (loss to every database restored, checked, taking writes): {rto:.0f} s\n")
            print("| database | size | writes acknowledged | lost | RPO | pg_dump | pg_restore |")
            print("|---|---|---|---|---|---|---|")
            for service in SERVICES:
                server = back.containers.get(f"{prefix}-{service}-db")
                present = {
                    int(i) for i in sql(server, service, "SELECT id FROM drill_orders").split()
                }
                writer = writers[service]
                lost, rpo = writer.lost(present, lost_at)
                dump, restore = logical(server, service)
                print(
                    f"| {service} | {sizes[service] / 2**20:.0f} MiB | {len(writer.acknowledged)} "
                    f"| {len(lost)} | {rpo:.1f} s | {dump:.1f} s | {restore:.1f} s |"
                )
        finally:
            stack.destroy(on_output=lambda _line: None)
            stack.workspace.remove_stack("bench", force=True)


if __name__ == "__main__":
    main()
