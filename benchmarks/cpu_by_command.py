"""Where the CPU goes while a command runs, by command name: what made the integration suite
CPU-bound on two cores (docs/testing.md#where-the-time-goes).

    python -m benchmarks.cpu_by_command [--top 25] -- .venv/bin/pytest tests/integration

Short processes are what a sampler of /proc misses: a health check is a process started in its
container every few seconds (`node -e ...`, `pg_isready`, the `runc` that starts it), gone in a
fraction of a second. The kernel's process accounting (Debian's `acct` package: `accton`,
`dump-acct`) records every process that ends, with its CPU time; what still runs at the end
(dockerd, a stack's servers) is read from /proc before and after. Needs root; process accounting
is machine-wide, so it is turned on into a file of this run's own and off again at the end (one
that was on before is off after: turn it on again). Measures only; asserts nothing. Exits with
the command's exit code.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
ACCOUNTING_TICKS = 100
"""`dump-acct` prints CPU times in the accounting record's units: hundredths of a second."""


@dataclass
class Usage:
    """CPU seconds and process counts by command name."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    processes: Counter[str] = field(default_factory=Counter)

    def add(self, command: str, seconds: float, processes: int = 1) -> None:
        self.seconds[command] += seconds
        self.processes[command] += processes


Snapshot = dict[int, tuple[str, str, float]]
"""Every live process: pid -> (command, start time in ticks since boot, CPU seconds so far).
The start tells a reused pid apart; a kernel worker's name changes with its work."""


def snapshot() -> Snapshot:
    found: Snapshot = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # ended meanwhile
            continue
        command = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        seconds = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        found[int(entry.name)] = (command, fields[19], seconds)
    return found


def ended(dump: str, before: Snapshot) -> Iterable[tuple[str, float]]:
    """(command, CPU seconds in the run) of each process `dump-acct` lists, less what one that
    was already running had used before."""
    for line in dump.splitlines():
        fields = [f.strip() for f in line.split("|")]
        if len(fields) < 10:
            continue
        command, user, system, pid = fields[0], float(fields[2]), float(fields[3]), fields[9]
        seconds = (user + system) / ACCOUNTING_TICKS
        earlier = before.get(int(pid))
        if earlier is not None and earlier[0] == command:
            seconds = max(0.0, seconds - earlier[2])
        yield command, seconds


def still_running(before: Snapshot, after: Snapshot) -> Iterable[tuple[str, float]]:
    for pid, (command, start, seconds) in after.items():
        earlier = before.get(pid)
        yield command, seconds - (earlier[2] if earlier and earlier[1] == start else 0.0)


def measure(argv: Sequence[str]) -> tuple[int, Usage, float]:
    """Run `argv`; its exit code, the machine's CPU use by command meanwhile, the wall time."""
    usage = Usage()
    with tempfile.TemporaryDirectory() as folder:
        records = Path(folder) / "pacct"
        records.touch()
        subprocess.run(["accton", str(records)], check=True, capture_output=True)
        try:
            before, began = snapshot(), time.monotonic()
            code = subprocess.run(argv, check=False).returncode
            wall, after = time.monotonic() - began, snapshot()
        finally:
            subprocess.run(["accton", "off"], check=True, capture_output=True)
        dump = subprocess.run(
            ["dump-acct", str(records)], check=True, capture_output=True, text=True
        ).stdout
    for command, seconds in ended(dump, before):
        usage.add(command, seconds)
    for command, seconds in still_running(before, after):
        usage.add(command, seconds, processes=0)
    return code, usage, wall


def report(usage: Usage, wall: float, top: int) -> str:
    total = sum(usage.seconds.values())
    lines = [
        f"{wall / 60:.1f} min, {total / 60:.1f} CPU-min: {total / wall:.2f} cores busy on average",
        f"{'CPU s':>9} {'share':>6} {'ended':>7}  command",
    ]
    busiest = sorted(usage.seconds.items(), key=lambda item: -item[1])[:top]
    for command, seconds in (item for item in busiest if item[1] >= 0.05):
        share = seconds / total if total else 0.0
        lines.append(f"{seconds:9.1f} {share:6.1%} {usage.processes[command]:7d}  {command}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cpu_by_command")
    parser.add_argument("--top", type=int, default=25, help="commands listed (default 25)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- the command to run")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("name the command to measure after --")
    if os.geteuid() != 0:
        parser.error("process accounting needs root: run it as root")
    missing = [tool for tool in ("accton", "dump-acct") if shutil.which(tool) is None]
    if missing:
        parser.error(f"{' and '.join(missing)} not found: install Debian's acct package")
    code, usage, wall = measure(command)
    print(report(usage, wall, args.top), file=sys.stderr)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
