"""Deploy, preview, refresh or destroy a stack of this project.

    python -m deploy preview --stack prod [--diff]
    python -m deploy up --stack prod [--yes]
    python -m deploy refresh --stack dev [--yes]
    python -m deploy destroy --stack dev [--yes]
    python -m deploy recover --stack prod [--to TARGET] [--yes]

`recover` brings the stack back on a new Docker host after the loss of its own, every database
restored from its off-host repository (deploy/recovery.py; docs/operations.md): point
`docker:host` and `pitr.offHost.databasesAddress` at the new host first. On a swarm it brings
the databases of a lost node back on the manager `docker:host` names (deploy/swarm_recovery.py).
TARGET: latest (the default), time:"2026-12-02 14:02:30+00" or name:<restore point>.

`make up|preview|refresh|destroy|recover [STACK=...]` run these. The engine's own progress is
printed as `pulumi` prints it. `up` of a stack with a prod profile, `refresh` and `destroy` show
what they would do first and ask before doing it (unless --yes); another stack deploys without
asking. `recover` always asks first (unless --yes).

Exit codes: 0 done, 1 the engine or a policy refused (its message above) or the recovery
stopped (one line saying why), 2 bad usage or something missing (one line saying what to do),
3 answered no.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pulumi import automation as auto

from deploy import recovery, stackfile, swarm_recovery
from deploy.banner import banner
from deploy.workspace import ROOT, DeployError, engine_env, open_stack, policy_options
from pitr.errors import UsageError
from pitr.pgbackrest import RestoreTarget

OK, FAILED, USAGE, DECLINED = 0, 1, 2, 3

Opener = Callable[[str, Path, dict[str, str]], auto.Stack]
"""Opens a stack: (stack, project folder, environment for the CLI)."""
Ask = Callable[[str], str]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m deploy", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("preview", "up", "refresh", "destroy", "recover"))
    parser.add_argument("--stack", default="dev", help="the stack (Pulumi.<stack>.yaml)")
    parser.add_argument("--yes", action="store_true", help="do it without asking")
    parser.add_argument("--diff", action="store_true", help="preview: show every changed input")
    parser.add_argument(
        "--to", default="latest", type=_target, help="recover: the restore target (latest)"
    )
    return parser


def _print(line: str) -> None:
    print(line, flush=True)


def main(
    argv: Sequence[str] | None = None,
    project: Path = ROOT,
    opener: Opener = open_stack,
    ask: Ask | None = None,
) -> int:
    """`ask` answers the questions (default: the terminal; none without one)."""
    args = _parser().parse_args(argv)
    ask = ask or (input if sys.stdin.isatty() else _nobody)
    color = "always" if sys.stdout.isatty() else "never"
    try:
        policies = policy_options(project, args.stack)
        stack = opener(args.stack, project, engine_env(project, args.stack))
        prod = stackfile.profile(project, args.stack) == "prod"
        if args.command == "preview":
            stack.preview(on_output=_print, color=color, diff=args.diff, **policies)
            return OK
        if args.command == "up":
            show = lambda: stack.preview(on_output=_print, color=color, **policies)  # noqa: E731
            if (
                prod
                and not args.yes
                and not _agreed(show, ask, f"Deploy these changes to stack {args.stack}?")
            ):
                return DECLINED
            result = stack.up(on_output=_print, color=color, **policies)
            _print(
                banner(
                    args.stack,
                    {k: "[secret]" if v.secret else v.value for k, v in result.outputs.items()},
                    stackfile.engine_commands(project, args.stack),
                )
            )
            return OK
        if args.command == "recover":
            return _recover(stack, args, ask, policies)
        if args.command == "refresh":
            show = lambda: stack.preview_refresh(on_output=_print, color=color)  # noqa: E731
            if not args.yes and not _agreed(
                show, ask, f"Record what the engine found in stack {args.stack}?"
            ):
                return DECLINED
            stack.refresh(on_output=_print, color=color)
            return OK
        show = lambda: stack.preview_destroy(on_output=_print, color=color)  # noqa: E731
        if not args.yes and not _agreed(show, ask, f"Delete every resource of stack {args.stack}?"):
            return DECLINED
        stack.destroy(on_output=_print, color=color)
        return OK
    except (DeployError, stackfile.StackFileError) as err:
        print(f"error: {err}", file=sys.stderr)
        return USAGE
    except recovery.RecoveryError as err:
        print(f"error: recovery stopped: {err}", file=sys.stderr)
        return FAILED
    except auto.CommandError as err:
        # The engine printed its progress already; its own error lines say why it stopped.
        print(_engine_error(err), file=sys.stderr)
        return FAILED


def _recover(stack: auto.Stack, args: argparse.Namespace, ask: Ask, policies: Any) -> int:
    host = _docker_host(stack)
    swarm = recovery.on_a_swarm(recovery.resources_of(stack.export_stack().deployment))
    question = (
        f"Recover stack {args.stack} on {host}: forget what the lost host ran, and restore "
        f"every database there to {args.to.text()} from its repositories?"
        if not swarm
        else f"Recover stack {args.stack}: move the lost node's labels to the node of {host}, "
        f"and restore its databases there to {args.to.text()} from their repositories?"
    )
    if not args.yes and not _agreed(lambda: None, ask, question):
        return DECLINED
    started = time.monotonic()
    docker = recovery.Docker(host)
    recover = swarm_recovery.recover_node if swarm else recovery.recover
    for done in recover(stack, docker, args.to, _print, policies):
        _print(f"{done.server}: back\n  " + done.checks.replace("\n", "\n  "))
    _print(f"recovery: stack {args.stack} back on {host} in {time.monotonic() - started:.0f} s")
    return OK


def _docker_host(stack: auto.Stack) -> str:
    """The stack's `docker:host`, else DOCKER_HOST, else the local engine."""
    found = stack.get_all_config().get("docker:host")
    if found is not None:
        return found.value
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def _target(text: str) -> RestoreTarget:
    try:
        return RestoreTarget.parse(text)
    except UsageError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _nobody(question: str) -> str:
    raise DeployError(
        f"{question.removesuffix(' [y/N] ')} Nobody can answer here: pass --yes (make ... YES=1)"
    )


def _agreed(show: Callable[[], object], ask: Ask, question: str) -> bool:
    """What the command would do shown, then whether the answer to `question` is yes."""
    show()
    try:
        return ask(f"{question} [y/N] ").strip().lower() in ("y", "yes")
    except EOFError:
        return False


def _engine_error(err: auto.CommandError) -> str:
    """The CLI's own error lines out of a failed command (its stdout was printed as it ran):
    the Automation API keeps them after ` stderr: ` in the error's text."""
    text = str(err)
    _, found, stderr = text.partition(" stderr: ")
    return stderr.strip() if found else text.strip()
