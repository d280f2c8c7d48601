"""Follow the logs of every container of a stack, each line prefixed with what it comes from,
like `docker compose logs -f`.

    python -m deploy.logs --stack dev [--service order-db] [--tail 20] [--no-follow]

`make logs [STACK=prod] [SERVICE=order-db]` runs it from the project folder. The stack file
(`Pulumi.<stack>.yaml` here) gives the containers' name prefix and the engine: on one Docker
host each running container of the stack is followed with `docker logs`; on a swarm each
service with `docker service logs` (run it on a manager). A line is prefixed with the
container's name without the stack's prefix (and an app's generation): `order`, `order-db`,
`order-db-pitr`, `prometheus`. Containers started after it begins (a deploy's new generation)
are not followed: run it again.

Exit codes: 0 every log ended (or --no-follow), 2 bad usage or nothing to follow, 130
interrupted.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import yaml

from components.engine.commands import OperatorCommands, operator_commands
from components.engine.rolling import SEPARATOR as GENERATION_SEPARATOR

OK, USAGE, INTERRUPTED = 0, 2, 130


class LogsError(Exception):
    """Nothing can be followed; the message says why and what to do."""


@dataclass(frozen=True)
class Source:
    label: str
    """What the lines are prefixed with."""
    argv: list[str]


def stack_file(folder: Path, stack: str) -> tuple[str, OperatorCommands]:
    """The `namePrefix` of `Pulumi.<stack>.yaml` in `folder`, and the commands of its engine."""
    path = folder / f"Pulumi.{stack}.yaml"
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError:
        raise LogsError(f"no {path.name} here: run from the project folder") from None
    except yaml.YAMLError:
        raise LogsError(f"{path.name} is not valid YAML; fix it and retry") from None
    platform = (document.get("config") or {}).get("ecommerce:platform") or {}
    prefix = platform.get("namePrefix") if isinstance(platform, dict) else None
    if not isinstance(prefix, str):
        raise LogsError(f"{path.name}: ecommerce:platform.namePrefix is missing")
    try:
        return prefix, operator_commands(str(platform.get("engine", "containers")))
    except ValueError as err:
        raise LogsError(f"{path.name}: ecommerce:platform.{err}") from None


def name_in_stack(docker_name: str, prefix: str) -> str | None:
    """`shop-order--3fa2c1` -> `order`; None for a name outside the stack."""
    if not docker_name.startswith(f"{prefix}-"):
        return None
    return docker_name.removeprefix(f"{prefix}-").split(GENERATION_SEPARATOR)[0]


def sources(
    stack: str,
    prefix: str,
    commands: OperatorCommands,
    service: str | None,
    tail: int,
    follow: bool,
) -> list[Source]:
    """What to follow: one `docker logs` (or `docker service logs`) per container (service)."""
    names = _docker(commands.list_stack(stack, names_only=True)).split()
    found = {n: short for n in sorted(names) if (short := name_in_stack(n, prefix)) is not None}
    if not found:
        raise LogsError(
            f"nothing of stack {stack} runs here (no {commands.kind} named {prefix}-*); "
            f"deploy it with make up STACK={stack}"
        )
    if service is not None:
        chosen = {n: short for n, short in found.items() if short == service}
        if not chosen:
            raise LogsError(
                f"no {service} in stack {stack}; choose one of: "
                f"{', '.join(sorted(set(found.values())))}"
            )
        found = chosen
    options = ["--tail", str(tail), *(["--follow"] if follow else [])]
    return [Source(short, [*commands.bare_logs, *options, name]) for name, short in found.items()]


def follow_all(found: Sequence[Source], out: IO[str] = sys.stdout) -> None:
    """Run every source, printing each line prefixed, until all have ended."""
    width = max(len(s.label) for s in found)
    lock = threading.Lock()
    processes = []

    def pump(source: Source, stream: IO[str]) -> None:
        for line in stream:
            with lock:
                out.write(f"{source.label:<{width}} | {line.rstrip()}\n")
                out.flush()

    threads = []
    try:
        for source in found:
            process = subprocess.Popen(
                source.argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
            )
            processes.append(process)
            assert process.stdout is not None
            thread = threading.Thread(target=pump, args=(source, process.stdout), daemon=True)
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join()
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
            process.wait()


def _docker(argv: list[str]) -> str:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise LogsError("the docker CLI is missing; install Docker") from None
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise LogsError(f"{' '.join(argv[:3])} failed: {last}")
    return result.stdout


def main(argv: Sequence[str] | None = None, folder: Path | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.logs", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--stack", default="dev", help="the stack (Pulumi.<stack>.yaml)")
    parser.add_argument("--service", help="only this one, e.g. order, order-db, prometheus")
    parser.add_argument("--tail", type=int, default=20, help="lines of history first")
    parser.add_argument("--no-follow", action="store_true", help="print the history and stop")
    args = parser.parse_args(argv)
    try:
        prefix, commands = stack_file(folder or Path.cwd(), args.stack)
        found = sources(args.stack, prefix, commands, args.service, args.tail, not args.no_follow)
        follow_all(found)
    except LogsError as err:
        print(f"error: {err}", file=sys.stderr)
        return USAGE
    except KeyboardInterrupt:
        return INTERRUPTED
    return OK


if __name__ == "__main__":
    sys.exit(main())
