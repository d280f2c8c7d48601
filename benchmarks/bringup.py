"""Bring-up time of each stack on a real Docker engine, and where it goes.

Deploys each stack with the real Pulumi engine, the stand-in provider plugins (tests/standin/)
and the local test images, then reports the time of the whole `pulumi up`, the time from the
first container created to the last one healthy (Docker's own timestamps), and per kind of
container the mean of: create to start (uploads and network joins), database initialisation
(start to the entrypoint's "init process complete" log line), and health-check wait (ready to
the first passing check; not for the PITR agents, which a deploy does not wait for). Needs a
running engine and the images (`python -m images.build`).
Measures only; asserts nothing.

    .venv/bin/python -m benchmarks.bringup [--repeat 2] [--stacks dev prod]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import docker

from tests.integration.engine import engine_home
from tests.integration.stacks import LiveStack, engine_run

INIT_DONE = "PostgreSQL init process complete"


def epoch(stamp: str) -> float:
    """Docker's RFC 3339 time with nanoseconds; microseconds are plenty here."""
    return datetime.fromisoformat(stamp[:26].rstrip("Z") + "+00:00").timestamp()


def init_finished_at(container: Any) -> float | None:
    """Epoch time of the postgres entrypoint's end-of-initialisation line, if it logged one."""
    for line in container.logs(timestamps=True).decode(errors="replace").splitlines():
        stamp, _, text = line.partition(" ")
        if INIT_DONE in text:
            return epoch(stamp)
    return None


def healthy_at(container: Any) -> float | None:
    """When its first health check passed (Docker keeps the last five results)."""
    passed = [
        epoch(r["End"])
        for r in container.attrs["State"].get("Health", {}).get("Log", [])
        if r["ExitCode"] == 0
    ]
    return min(passed) if passed else None


def kind_of(name: str, prefix: str) -> str:
    role = name.removeprefix(prefix + "-")
    if role.endswith("-db-pitr"):
        return "pitr agent"
    if role.endswith("-db"):
        return "database"
    return role if role in ("redis", "backup", "edge") else "service"


def phases(live: LiveStack) -> tuple[float, dict[str, dict[str, list[float]]]]:
    containers = live.running()
    for container in containers.values():
        container.reload()
    created = {n: epoch(c.attrs["Created"]) for n, c in containers.items()}
    healthy = {
        n: t
        for n, c in containers.items()
        if (t := healthy_at(c)) is not None and kind_of(n, live.prefix) != "pitr agent"
    }
    total = max(healthy.values()) - min(created.values())
    split: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for name, container in containers.items():
        kind = kind_of(name, live.prefix)
        ready = started = epoch(container.attrs["State"]["StartedAt"])
        split[kind]["create to start"].append(started - created[name])
        if kind == "database":
            done = init_finished_at(container)
            if done is not None:
                split[kind]["db init"].append(done - started)
                ready = done
        if name in healthy:
            split[kind]["health wait"].append(healthy[name] - ready)
    return total, split


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Bring-up time of each stack on a real engine")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--stacks", nargs="*", default=["dev", "prod"])
    args = parser.parse_args(argv)
    client = docker.from_env(version="auto")
    home = engine_home(Path(tempfile.mkdtemp(prefix="bringup-pulumi-home-")))
    for stack in args.stacks:
        totals: list[float] = []
        merged: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        ups: list[float] = []
        for _ in range(args.repeat):
            with engine_run(client, home, stack, log=lambda _: None) as live:
                started = time.monotonic()
                live.up()
                ups.append(time.monotonic() - started)
                total, split = phases(live)
            totals.append(total)
            for kind, values in split.items():
                for phase, seconds in values.items():
                    merged[kind][phase] += seconds
        print(
            f"{stack}: `pulumi up` median {statistics.median(ups):.1f} s; first container "
            f"created to all healthy: median {statistics.median(totals):.1f} s over "
            f"{len(totals)} runs"
        )
        for kind, values in sorted(merged.items()):
            parts = ", ".join(f"{p} {statistics.mean(v):.2f} s" for p, v in values.items())
            print(f"  {kind:<9} (mean per container) {parts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
