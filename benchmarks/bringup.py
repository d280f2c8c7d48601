"""Bring-up time of each stack on a real Docker engine, and where it goes.

Deploys each stack with the provider stand-in (tests/integration/standin.py) and the local test
images, then reports the time from the first container requested to the last one healthy, and
per kind of container the mean of: create (create + uploads + network joins), start, database
initialisation (start to the entrypoint's "init process complete" log line), and health-check
wait (ready to healthy; not for the PITR agents, which a deploy does not wait for). Needs a
running engine and the images (`python -m images.build`).
Measures only; asserts nothing.

    .venv/bin/python -m benchmarks.bringup [--repeat 2] [--stacks dev prod]
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from datetime import datetime
from typing import Any

import docker

from tests.integration.stacks import LiveStack, deployed

INIT_DONE = "PostgreSQL init process complete"


def init_finished_at(container: Any) -> float | None:
    """Epoch time of the postgres entrypoint's end-of-initialisation line, if it logged one."""
    for line in container.logs(timestamps=True).decode(errors="replace").splitlines():
        stamp, _, text = line.partition(" ")
        if INIT_DONE in text:
            # Docker stamps RFC 3339 with nanoseconds; microseconds are plenty here.
            return datetime.fromisoformat(stamp[:26] + "+00:00").timestamp()
    return None


def kind_of(name: str, prefix: str) -> str:
    role = name.removeprefix(prefix + "-")
    if role.endswith("-db-pitr"):
        return "pitr agent"
    if role.endswith("-db"):
        return "database"
    return role if role in ("redis", "backup", "edge") else "service"


def phases(live: LiveStack) -> tuple[float, dict[str, dict[str, list[float]]]]:
    timings = {n: t for n, t in live.deployment.timings.items() if t.started}
    first = min(t.requested for t in live.deployment.timings.values())
    total = max(t.healthy for t in timings.values()) - first
    split: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for name, t in timings.items():
        kind = kind_of(name, live.prefix)
        split[kind]["create"].append(t.created - t.requested)
        split[kind]["start"].append(t.started - t.created)
        ready = t.started
        if kind == "database":
            done = init_finished_at(live.deployment.containers[name])
            if done is not None:
                split[kind]["db init"].append(done - t.started)
                ready = done
        if t.healthy:  # a PITR agent is not waited for (it turns healthy after its first drill)
            split[kind]["health wait"].append(t.healthy - ready)
    return total, split


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Bring-up time of each stack on a real engine")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--stacks", nargs="*", default=["dev", "prod"])
    args = parser.parse_args(argv)
    client = docker.from_env(version="auto")
    for stack in args.stacks:
        totals: list[float] = []
        merged: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        for _ in range(args.repeat):
            with deployed(client, stack) as live:
                total, split = phases(live)
            totals.append(total)
            for kind, values in split.items():
                for phase, seconds in values.items():
                    merged[kind][phase] += seconds
        print(f"{stack}: first container requested to all healthy: median "
              f"{statistics.median(totals):.1f} s over {len(totals)} runs")  # fmt: skip
        for kind, values in sorted(merged.items()):
            parts = ", ".join(f"{p} {statistics.mean(v):.2f} s" for p, v in values.items())
            print(f"  {kind:<9} (mean per container) {parts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
