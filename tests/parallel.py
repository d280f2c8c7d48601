"""Every test, in sessions side by side: what `make test` runs.

    python -m tests.parallel [--logs DIR] [--only NAME ...]

Most of the integration suite's time is waiting (health checks, the engine, Docker), so its
parts overlap even on two cores. Each session is a pytest run of its own:
- those that need no Docker (unit and plan tests; backup and PITR on PostgreSQL servers of
  their own) start at once, in this machine's namespaces;
- each Docker session runs on a test host of its own (tests/hosts/: a `dockerd` in its own
  namespaces, loaded with the test images built once on the machine's engine), inside that
  host's network namespace: its loopback, its published ports and its engine are its own.

Before anything runs, every test id is checked to be in exactly one session. A session's
output goes to DIR/<name>.log; the failures of a failed one are printed at the end. Exit code:
0 when every session passed, 1 otherwise (a session that collected nothing fails too).

Without root, `ip`, `unshare` or a Docker engine, the Docker sessions run one after another on
the machine's engine (or skip there, as plain pytest does on a laptop without Docker).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
PYTEST = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"]
NO_TESTS = 5


@dataclass(frozen=True)
class Session:
    name: str
    args: Sequence[str]
    """What pytest runs: paths and options."""
    docker: bool = False
    """Runs on a Docker engine: a test host of its own."""
    env: dict[str, str] = field(default_factory=dict)


SESSIONS = (
    Session("unit", ["tests/unit", "tests/plan", "tests/probe"]),
    Session("postgres", ["tests/backup", "tests/pitr"]),
    Session("dev", ["tests/integration/test_stacks.py"], True, {"ECOMMERCE_TEST_STACKS": "dev"}),
    Session("prod", ["tests/integration/test_stacks.py"], True, {"ECOMMERCE_TEST_STACKS": "prod"}),
    Session("swarm", ["tests/integration/test_swarm.py"], docker=True),
    Session(
        "docker",
        [
            "tests/integration",
            "--ignore=tests/integration/test_stacks.py",
            "--ignore=tests/integration/test_swarm.py",
        ],
        docker=True,
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
    every = collected([], {})
    seen: dict[str, str] = {}
    for session in sessions:
        for test in collected(session.args, session.env):
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
    argv = [*prefix, *PYTEST, "-q", "-ra", "--durations=25", *session.args]
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


def wait_all(running: list[Running], out: IO[str] = sys.stdout) -> None:
    """Until every session ends, saying each one's result as it comes."""
    waiting = list(running)
    while waiting:
        for run in list(waiting):
            code = run.poll()
            if code is None:
                continue
            waiting.remove(run)
            assert run.ended is not None
            took = run.ended - run.started
            print(f"session {run.session.name}: {summary(run.log)} ({took:.0f} s)", file=out)
            out.flush()
        time.sleep(1)


def test_hosts_possible() -> str | None:
    """Why test hosts cannot be made here, or None."""
    if os.geteuid() != 0:
        return "not root"
    missing = [tool for tool in ("ip", "unshare", "nsenter", "dockerd") if not shutil.which(tool)]
    return f"no {', '.join(missing)}" if missing else None


def run_docker_sessions(sessions: Sequence[Session], logs: Path) -> list[Running]:
    """The Docker sessions, each on a test host of its own; they end before the hosts go."""
    from images.build import RECIPES, ensure_images
    from tests.hosts import TestHosts

    started = time.monotonic()
    ensure_images(log=lambda line: print(f"images: {line}", flush=True))
    tags = [recipe.tag for recipe in RECIPES.values()]
    with TestHosts(len(sessions), images=tags, swarm=True) as hosts:
        print(f"test hosts: {len(hosts)} ready in {time.monotonic() - started:.0f} s", flush=True)
        running = [
            start(session, logs, host.command([]), DOCKER_HOST=host.docker_host)
            for session, host in zip(sessions, hosts, strict=True)
        ]
        wait_all(running)
    return running


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.parallel", description=__doc__)
    parser.add_argument("--logs", type=Path, default=ROOT / ".test-logs")
    parser.add_argument("--only", action="append", default=[], help="run only these sessions")
    args = parser.parse_args(argv)
    sessions = [s for s in SESSIONS if not args.only or s.name in args.only]
    began = time.monotonic()
    count = check_coverage(SESSIONS)
    print(f"{count} tests in {len(SESSIONS)} sessions", flush=True)
    args.logs.mkdir(parents=True, exist_ok=True)
    plain = [start(s, args.logs) for s in sessions if not s.docker]
    docker = [s for s in sessions if s.docker]
    why_not = test_hosts_possible()
    if docker and why_not is None:
        done = run_docker_sessions(docker, args.logs)
    elif docker:
        print(f"test hosts: none ({why_not}); the Docker sessions run one by one here")
        done = []
        for session in docker:
            done.append(start(session, args.logs))
            wait_all(done[-1:])
    else:
        done = []
    wait_all(plain)
    failed = [r for r in [*plain, *done] if r.process.returncode != 0]
    for run in failed:
        print(f"\n===== session {run.session.name} failed: {run.log} =====")
        print(failures(run.log))
    print(f"all sessions: {time.monotonic() - began:.0f} s; {len(failed)} failed")
    return 1 if failed else 0


def failures(log: Path, limit: int = 300) -> str:
    """The failures part of a session's output (its last `limit` lines at most)."""
    text = log.read_text(errors="replace")
    start_at = text.find("= FAILURES =")
    lines = text[text.rfind("\n", 0, start_at) + 1 :].splitlines() if start_at >= 0 else []
    lines = lines or text.splitlines()
    return "\n".join(lines[-limit:])


if __name__ == "__main__":
    raise SystemExit(main())
