"""CPU of the Pulumi program's own process over a dev `up` and three previews, with the SDK's
wait for pending outputs and with sdk/output_wait.py's. Measures only; asserts nothing.

    .venv/bin/python -m benchmarks.program_cpu [--repeat 2]

Each measurement runs in a fresh Python process (the program runs in it through the Automation
API, as the tests and `make up` run it) on a running Docker engine with the test images
(`python -m images.build`); the stack is removed afterwards. The CPU counted is that process's
(all its threads), not the CLI's nor the providers'.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VARIANTS = ("sdk", "replaced")
PREVIEWS = 3


def measure_here(variant: str) -> None:
    """One measurement in this process: prints `<cpu seconds> <wall seconds>`."""
    import docker
    from pulumi.runtime import stack as sdk_stack

    from tests.integration.engine import engine_home
    from tests.integration.stacks import engine_run

    if variant == "sdk":
        sdk_wait = sdk_stack.wait_for_rpcs

        async def sdk_own(await_all_outstanding_tasks: bool = True) -> None:
            await sdk_wait(await_all_outstanding_tasks)

        # output_wait.install() leaves any function it was not written against alone.
        sdk_stack.wait_for_rpcs = sdk_own
    client = docker.from_env(version="auto")
    home = engine_home(Path(tempfile.mkdtemp(prefix="program-cpu-home-")))
    with engine_run(client, home, "dev", log=lambda _: None) as live:
        started = time.monotonic()
        before = resource.getrusage(resource.RUSAGE_SELF)
        live.up()
        for _ in range(PREVIEWS):
            live.preview()
        after = resource.getrusage(resource.RUSAGE_SELF)
        wall = time.monotonic() - started
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    print(f"{cpu:.2f} {wall:.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.variant:
        measure_here(args.variant)
        return 0
    print(f"the program's process, a dev `up` and {PREVIEWS} previews, {args.repeat} runs each:")
    for variant in VARIANTS:
        cpus, walls = [], []
        for _ in range(args.repeat):
            out = subprocess.run(
                [sys.executable, "-m", "benchmarks.program_cpu", "--variant", variant],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
            cpus.append(float(out[-2]))
            walls.append(float(out[-1]))
        print(
            f"  {variant:<9} CPU median {statistics.median(cpus):5.1f} s "
            f"(runs: {', '.join(f'{c:.1f}' for c in cpus)}), wall median "
            f"{statistics.median(walls):.1f} s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
