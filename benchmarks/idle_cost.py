"""What a deployed stack costs the machine while it only stands there: the CPU its health
checks, servers and agents take, with the stack file's health-check interval and with others.

Deploys the stack with the real Pulumi engine, the stand-in provider plugins and the local
test images, waits for it to settle, then reads the machine's CPU time (/proc/stat) over a
window in which nothing else of this run works, and removes the stack. The integration suite
is CPU-bound on two cores, and a standing stack's checks are most of its CPU
(docs/testing.md#where-the-time-goes): this says what an interval buys. Run it on an otherwise
idle machine; it measures only and asserts nothing.

    .venv/bin/python -m benchmarks.idle_cost [--stack dev] [--intervals 5s 10s] [--seconds 60]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import docker

from tests.integration.engine import EngineHome, engine_home
from tests.integration.stacks import engine_run

SETTLE_SECONDS = 30
"""After the `up`: the PITR agents' first backups and drills, the first scrapes."""


def busy_seconds() -> float:
    """CPU seconds the machine has spent on anything but idling and waiting for I/O."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(f) for f in fields]
    idle, iowait = ticks[3], ticks[4]
    return (sum(ticks[:8]) - idle - iowait) / os.sysconf("SC_CLK_TCK")


def standing_cost(
    client: docker.DockerClient,
    home: EngineHome,
    stack: str,
    interval: str | None,
    seconds: float,
) -> tuple[float, int]:
    """Cores busy while the stack stands (with `interval`, or its file's), and its containers."""

    def edit(platform: dict[str, Any]) -> None:
        if interval is not None:
            platform["healthCheck"] = platform.get("healthCheck", {}) | {"interval": interval}

    with engine_run(client, home, stack, edit, log=lambda _: None) as live:
        live.up()
        time.sleep(SETTLE_SECONDS)
        before, started = busy_seconds(), time.monotonic()
        time.sleep(seconds)
        cores = (busy_seconds() - before) / (time.monotonic() - started)
        return cores, len(live.containers())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="dev")
    parser.add_argument(
        "--intervals", nargs="*", default=[], help="health-check intervals to try, e.g. 10s"
    )
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args(argv)
    client = docker.from_env(version="auto")
    home = engine_home(Path(tempfile.mkdtemp(prefix="idle-cost-pulumi-home-")))
    baseline_before = busy_seconds()
    time.sleep(10)
    print(f"machine before any stack: {(busy_seconds() - baseline_before) / 10:.2f} cores busy")
    for interval in [None, *args.intervals]:
        cores, containers = standing_cost(client, home, args.stack, interval, args.seconds)
        timing = f"every {interval}" if interval else "as its file says"
        print(
            f"{args.stack}, health checks {timing}: {containers} containers, "
            f"{cores:.2f} cores busy over {args.seconds:.0f} s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
