"""Every test, in sessions side by side: what `make test` runs.

    python -m tests.parallel [--one-engine] [--stack-slots N] [--logs DIR] [--only NAME ...]

One session leaves two cores idle about half the time (the integration suite waits on health
checks, the engine, Docker), so sessions overlap even on two cores. Each is a pytest run of its
own:
- those that need no Docker (unit and plan tests; backup and PITR on PostgreSQL servers of
  their own) start at once, at a lower priority: busy on the CPU, bound by no deadline;
- the Docker sessions each get an engine of their own: a test host (tests/hosts/: a `dockerd`
  in namespaces of its own, loaded with the test images built once on the machine's engine),
  inside whose network namespace the session runs, so its loopback, its published ports and its
  engine are its own; or the machine's engine, for the one that needs a way out (below).
A deployed stack keeps the CPU busy with its health checks, so at most `--stack-slots` stacks
(default 2) live at once across the sessions (tests/integration/stacks.py, `stack_slot`).

Before anything runs, every test id is checked to be in exactly one session. A session's
output goes to DIR/<name>.log; the failures of a failed one are printed at the end. Exit code:
0 when every session passed, 1 otherwise (a session that collected nothing fails too).

With `--one-engine`, or without root, `ip`, `unshare` or `dockerd` (a laptop), the Docker
sessions run one after another on the machine's engine (or skip there, as plain pytest does
without Docker), beside the sessions that need no Docker.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Literal

from tests.integration.slots import SLOTS_ENV

ROOT = Path(__file__).resolve().parent.parent
PYTEST = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"]
NO_TESTS = 5


@dataclass(frozen=True)
class Session:
    name: str
    args: Sequence[str]
    """What pytest runs: paths and options."""
    engine: Literal["machine", "test host"] | None = None
    """The Docker engine it needs: a test host of its own, or the machine's for what needs a
    way out, which a test host has not (the dev stack builds its PITR image, downloading
    pgBackRest)."""
    env: dict[str, str] = field(default_factory=dict)
    yields: bool = False
    """Busy on the CPU and bound by no deadline: runs at a lower priority, so the sessions
    that wait for health checks get the cores when they need them."""


STACK_SLOTS = 2
"""Two stacks alive at once fit two cores since their health checks got cheaper: one stack
waits on its health checks, the engine and Docker most of the time (docs/testing.md)."""

INTEGRATION = "tests/integration"
SESSIONS = (
    # `make preview` on a clean clone only asks the machine's engine whether it answers, and
    # installs the pack's virtualenv (a way out): beside the dev session that holds that engine.
    Session(
        "unit",
        ["tests/unit", "tests/plan", "tests/probe", f"{INTEGRATION}/test_make_preview.py"],
        yields=True,
    ),
    Session("postgres", ["tests/backup", "tests/pitr"], yields=True),
    Session(
        "dev",
        [f"{INTEGRATION}/test_stacks.py"],
        "machine",
        {"ECOMMERCE_TEST_STACKS": "dev"},
    ),
    # The replicated database's module makes its own three test hosts: here, after prod's
    # stack, the session ends with the others.
    Session(
        "prod",
        [f"{INTEGRATION}/test_stacks.py", f"{INTEGRATION}/test_replicated_database.py"],
        "test host",
        {"ECOMMERCE_TEST_STACKS": "prod"},
    ),
    # The three-node swarm alone: with the off-host modules beside it, it was the longest
    # session by ten minutes. Those went to `docker` rather than to a session of their own: a
    # seventh at once overloaded the two cores (health checks timed out in dev, Docker lost exec
    # output). Each of these modules makes test hosts of its own.
    Session("swarm", [f"{INTEGRATION}/test_swarm.py"], "test host"),
    Session(
        "docker",
        [
            INTEGRATION,
            f"--ignore={INTEGRATION}/test_stacks.py",
            f"--ignore={INTEGRATION}/test_swarm.py",
            f"--ignore={INTEGRATION}/test_replicated_database.py",
            f"--ignore={INTEGRATION}/test_make_preview.py",
        ],
        "test host",
    ),
)


@dataclass
class Running:
    session: Session
    process: subprocess.Popen[bytes]
    log: Path
    started: float
    ended: float | None = None

    def poll(self) -> int | None:
        code = self.process.poll()
        if code is not None and self.ended is None:
            self.ended = time.monotonic()
        return code


def collected(args: Sequence[str], env: dict[str, str]) -> set[str]:
    """The test ids pytest collects for `args`."""
    result = subprocess.run(
        [*PYTEST, "--collect-only", "-q", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode not in (0, NO_TESTS):
        raise SystemExit(f"error: pytest could not collect {' '.join(args)}:\n{result.stdout}")
    return {line for line in result.stdout.splitlines() if "::" in line}


def check_coverage(sessions: Sequence[Session]) -> int:
    """Every test of the tree in exactly one session; the number of tests."""
    with ThreadPoolExecutor() as pool:
        every_future = pool.submit(collected, [], {})
        by_session = list(pool.map(lambda s: collected(s.args, s.env), sessions))
    every = every_future.result()
    seen: dict[str, str] = {}
    for session, tests in zip(sessions, by_session, strict=True):
        for test in sorted(tests):
            if test in seen:
                raise SystemExit(f"error: {test} is in sessions {seen[test]} and {session.name}")
            seen[test] = session.name
    missing = sorted(every - set(seen))
    if missing:
        raise SystemExit(
            f"error: {len(missing)} tests are in no session of tests/parallel.py, e.g. {missing[0]}"
        )
    return len(every)


def start(session: Session, logs: Path, prefix: Sequence[str] = (), **env: str) -> Running:
    log = logs / f"{session.name}.log"
    nice = ["nice", "-n", "19"] if session.yields else []
    argv = [*prefix, *nice, *PYTEST, "-q", "-ra", "--durations=25", *session.args]
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**os.environ, **session.env, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    print(f"session {session.name}: started ({' '.join(session.args)})", flush=True)
    return Running(session, process, log, time.monotonic())


def summary(log: Path) -> str:
    """pytest's last line: `12 passed, 1 failed in 3.2s`."""
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1].strip("= ") if lines else "no output"


def wait_all(
    running: Sequence[Running], beside: Sequence[Running] = (), out: IO[str] = sys.stdout
) -> None:
    """Until every session of `running` ends, saying each one's result as it comes, and that
    of each session `beside` that ends meanwhile."""
    waiting = [run for run in running if run.ended is None]
    while waiting:
        for run in [*waiting, *(run for run in beside if run.ended is None)]:
            if run.poll() is None:
                continue
            if run in waiting:
                waiting.remove(run)
            assert run.ended is not None
            took = run.ended - run.started
            print(f"session {run.session.name}: {summary(run.log)} ({took:.0f} s)", file=out)
            out.flush()
        time.sleep(1)


STOP_GRACE_S = 90
"""How long a session stopped midway has to remove what it made (pytest's teardown)."""


def stop(running: Sequence[Running]) -> None:
    """End the sessions still running, as Ctrl-C does: pytest tears its fixtures down (its
    stacks are removed); one still running after STOP_GRACE_S is killed."""
    live = [run for run in running if run.process.poll() is None]
    for run in live:
        run.process.send_signal(signal.SIGINT)
    deadline = time.monotonic() + STOP_GRACE_S
    for run in live:
        try:
            run.process.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            run.process.kill()
            run.process.wait()


def test_hosts_possible() -> str | None:
    """Why test hosts cannot be made here, or None."""
    if os.geteuid() != 0:
        return "not root"
    missing = [tool for tool in ("ip", "unshare", "nsenter", "dockerd") if not shutil.which(tool)]
    return f"no {', '.join(missing)}" if missing else None


def run_docker(
    machine: Sequence[Session],
    hosted: Sequence[Session],
    logs: Path,
    one_engine: bool = False,
    beside: Sequence[Running] = (),
) -> list[Running]:
    """The Docker sessions: the machine engine's started at once, the others each on a test
    host of its own, waited for here (they end before their hosts go). With `one_engine`, or
    where test hosts cannot be made, all of them one after another on the machine's engine.
    The sessions `beside` them are reported as they end."""
    if not machine and not hosted:
        return []
    from images.build import RECIPES, ensure_images

    ensure_images(log=lambda line: print(f"images: {line}", flush=True))
    why_not = "--one-engine" if one_engine else test_hosts_possible() if hosted else None
    if why_not is not None:
        print(f"test hosts: none ({why_not}); the Docker sessions run one by one here", flush=True)
        done: list[Running] = []
        for session in [*machine, *hosted]:
            done.append(start(session, logs))
            wait_all(done[-1:], beside)
        return done
    running = [start(session, logs) for session in machine]
    if not hosted:
        return running
    from tests.hosts import TestHosts

    made = time.monotonic()
    tags = [recipe.tag for recipe in RECIPES.values()]
    on_hosts: list[Running] = []
    with contextlib.ExitStack() as hosts_made:
        try:
            # The first (prod, the longest) starts on a host of its own before the others'
            # hosts are made and loaded, which took 76-80 s for three at once.
            for group in (hosted[:1], hosted[1:]):
                if not group:
                    continue
                hosts = hosts_made.enter_context(TestHosts(len(group), images=tags, swarm=True))
                took = time.monotonic() - made
                print(f"test hosts: {len(hosts)} ready after {took:.0f} s", flush=True)
                on_hosts += [
                    start(session, logs, host.command([]), DOCKER_HOST=host.docker_host)
                    for session, host in zip(group, hosts, strict=True)
                ]
            wait_all(on_hosts, [*beside, *running])
        finally:  # the sessions end before their hosts go
            stop(on_hosts)
    return running + on_hosts


def stop_on_sigterm(_signal: int, _frame: FrameType | None) -> None:
    """A SIGTERM (CI's timeout, `kill`) unwinds like Ctrl-C: every session stops and every test
    host goes; a second one (a `timeout` passing it on) does not cut that short."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def failures(log: Path, limit: int = 300) -> str:
    """The failures part of a session's output (its last `limit` lines at most)."""
    text = log.read_text(errors="replace")
    start_at = text.find("= FAILURES =")
    lines = text[text.rfind("\n", 0, start_at) + 1 :].splitlines() if start_at >= 0 else []
    lines = lines or text.splitlines()
    return "\n".join(lines[-limit:])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.parallel", description=__doc__)
    parser.add_argument("--logs", type=Path, default=ROOT / ".test-logs")
    parser.add_argument("--only", action="append", default=[], help="run only these sessions")
    parser.add_argument(
        "--one-engine",
        action="store_true",
        help="the Docker sessions one after another on the machine's engine, no test hosts",
    )
    parser.add_argument(
        "--stack-slots",
        type=int,
        default=STACK_SLOTS,
        help=f"stacks alive at once across the Docker sessions (default {STACK_SLOTS})",
    )
    args = parser.parse_args(argv)
    if args.stack_slots < 1:
        parser.error("--stack-slots must be 1 or more")
    os.environ[SLOTS_ENV] = str(args.stack_slots)  # the sessions read it (stack_slot)
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    sessions = [s for s in SESSIONS if not args.only or s.name in args.only]
    began = time.monotonic()
    count = check_coverage(SESSIONS)
    print(f"{count} tests in {len(SESSIONS)} sessions", flush=True)
    args.logs.mkdir(parents=True, exist_ok=True)
    running = [start(s, args.logs) for s in sessions if s.engine is None]
    try:
        machine = [s for s in sessions if s.engine == "machine"]
        hosted = [s for s in sessions if s.engine == "test host"]
        running += run_docker(machine, hosted, args.logs, args.one_engine, beside=running)
        wait_all(running)
    finally:  # an error of the runner's own, or a stop asked for, leaves no session running
        stop(running)
    failed = [r for r in running if r.process.returncode != 0]
    for run in failed:
        print(f"\n===== session {run.session.name} failed: {run.log} =====")
        print(failures(run.log))
    print(f"all sessions: {time.monotonic() - began:.0f} s; {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
