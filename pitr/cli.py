"""`python -m pitr`: point-in-time recovery of the stack's PostgreSQL servers.

For operators, on the Docker host (docs/pitr.md):
  restore SERVICE|--all --stack S --to TARGET [--force]
                        put a database back as it was at TARGET, in its own volume
  inspect SERVICE --stack S --to TARGET     a scratch server beside the live one, at TARGET
  inspect SERVICE --stack S --remove        remove that scratch server
  (--stack prod reads the prefix from Pulumi.prod.yaml in this folder; or --prefix shop)

Inside the containers (the Pulumi program and `restore` run these):
  agent                 the schedule of checks, backups and drills (pitr/agent.py); beside an
                        off-host repository, on repo1's own configuration (--config), with
                        pgBackRest's TLS server for that repository's backups (--tls-server)
  health                the agent's health check (--tls-port: its TLS server answers too)
  repository            the off-host repository: pgBackRest's TLS server and an agent per
                        stanza on repo2 (pitr/repository.py)
  repository-health     its state: the TLS server answers and every stanza's backups and
                        drills on repo2 are fresh
  serves                a TLS server of pgBackRest answers: a swarm task's health check
  install-keys          copy the TLS keys beside the configuration into the container's own
                        tmpfs, readable by its user alone (pitr/tls.py; the entrypoint runs it)
  guard                 before the server's first start on an empty data directory: refuse
                        it when the stanza holds backups, or cannot be read (pitr/guard.py)
  archive-now           archive the current WAL segment and wait for it (pgbackrest check)
  check-here            the drill's checks on the running server (amcheck, rows per database)
  restore-here          restore the stopped server's own data directory
  serve-copy            restore into an empty data directory, then run a server on it that
                        listens on its socket only and never archives

TARGET: latest, time:"2026-12-02 14:02:30+00" or name:<restore point>.
Exit codes: 0 ok, 1 failed, 2 usage, 3 refused (would lose data), 4 the repository fails
verification, 5 wrong passphrase, 6 unhealthy.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pitr import docker_host, guard, layout, repository, tls
from pitr.agent import Agent, HealthLimits, Schedule, health
from pitr.drill import Drill, ServerChecks
from pitr.errors import EXIT_OK, PitrError, UsageError
from pitr.offhost_watch import OffHostWatch
from pitr.pgbackrest import PgBackRest, RestoreTarget, Stanza

log = logging.getLogger("pitr")


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s pitr %(levelname)s %(message)s")
    args = _parser().parse_args(argv)
    try:
        args.run(args)
    except PitrError as exc:
        print(f"pitr: {exc}", file=sys.stderr)
        return exc.exit_code
    return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pitr", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    restore = commands.add_parser("restore", help="restore a service's database in place")
    restore.add_argument("service", nargs="?", help="e.g. order; or --all")
    restore.add_argument("--all", action="store_true", help="every database of the stack")
    _host_options(restore)
    restore.add_argument("--to", required=True, type=_target, help="the restore target")
    restore.add_argument("--force", action="store_true",
                         help="discard what the database holds after the target")  # fmt: skip
    restore.set_defaults(run=_restore)

    inspect = commands.add_parser("inspect", help="a scratch server at a target, beside the live")
    inspect.add_argument("service")
    _host_options(inspect)
    what = inspect.add_mutually_exclusive_group(required=True)
    what.add_argument("--to", type=_target)
    what.add_argument("--remove", action="store_true")
    inspect.set_defaults(run=_inspect)

    agent = commands.add_parser("agent", help="the agent's loop (in its container)")
    _stanza_option(agent)
    _schedule_options(agent)
    agent.add_argument(
        "--metrics-port",
        type=int,
        help="serve its state as Prometheus metrics on this port (pitr/metrics.py)",
    )
    agent.add_argument(
        "--config", type=Path, default=Path(layout.CONFIG_FILE),
        help="its own pgBackRest configuration (beside an off-host repository: repo1's alone)",
    )  # fmt: skip
    agent.add_argument(
        "--tls-server", action="store_true",
        help="also run pgBackRest's TLS server on the server's configuration, which the "
        "off-host repository takes its backups through",
    )  # fmt: skip
    agent.set_defaults(run=_agent)

    check = commands.add_parser("health", help="the agent's health check")
    _stanza_option(check)
    check.add_argument("--tls-port", type=int, help="its TLS server's, when it runs one")
    _limit_options(check)
    check.set_defaults(run=_health)

    repository = commands.add_parser(
        "repository", help="the off-host repository's TLS server and agents (in its container)"
    )
    _stanzas_option(repository)
    _schedule_options(repository)
    repository.set_defaults(run=_repository)

    repository_check = commands.add_parser(
        "repository-health", help="the off-host repository's health check"
    )
    _stanzas_option(repository_check)
    repository_check.add_argument("--port", type=int, required=True, help="its TLS server's")
    _limit_options(repository_check)
    repository_check.set_defaults(run=_repository_health)

    # A swarm task's whole health check, for the repository and an agent beside it: a swarm
    # restarts an unhealthy task and names a task in its DNS only once healthy, and each side
    # must reach the other's TLS server long before the first backups and drills.
    serves = commands.add_parser("serves", help="a TLS server of pgBackRest answers")
    serves.add_argument("--port", type=int, required=True, help="its port")
    serves.set_defaults(run=_serves)

    keys = commands.add_parser(
        "install-keys", help="copy the TLS keys where pgBackRest accepts them (the entrypoint)"
    )
    keys.set_defaults(run=_install_keys)

    guard = commands.add_parser(
        "guard", help="before the server starts: refuse an empty one over a stanza with backups"
    )
    _stanza_option(guard)
    guard.set_defaults(run=_guard)

    archive = commands.add_parser("archive-now", help="archive the current WAL segment")
    _stanza_option(archive)
    archive.set_defaults(run=lambda a: _tool(a).run("check"))

    checks = commands.add_parser("check-here", help="the drill's checks on the running server")
    checks.set_defaults(run=_check_here)

    here = commands.add_parser("restore-here", help="restore the stopped server's data")
    _stanza_option(here)
    here.add_argument("--to", required=True, type=_target)
    here.add_argument("--force", action="store_true")
    here.set_defaults(run=lambda a: _tool(a).restore(a.to, force=a.force))

    copy = commands.add_parser("serve-copy", help="restore into an empty directory and serve it")
    _stanza_option(copy)
    copy.add_argument("--to", required=True, type=_target)
    copy.set_defaults(run=_serve_copy)
    return parser


def _host_options(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--stack", help="the stack (prod, dev): its file names the prefix")
    which.add_argument("--prefix", help="the stack's namePrefix (shop, shop-dev)")


def _prefix(args: argparse.Namespace) -> str:
    return str(args.prefix or docker_host.stack_prefix(args.stack))


def _schedule_options(parser: argparse.ArgumentParser) -> None:
    for name, default in (("full-every", "168h"), ("diff-every", "24h"), ("incr-every", "1h"),
                          ("drill-every", "24h"), ("check-every", "5m")):  # fmt: skip
        parser.add_argument(f"--{name}", type=_duration_or_off, default=_duration(default))


def _limit_options(parser: argparse.ArgumentParser) -> None:
    for name in ("max-archive-age", "max-backup-age", "max-drill-age"):
        parser.add_argument(f"--{name}", type=_duration, required=True)


def _stanzas_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stanza", dest="stanzas", action="append", required=True,
                        help="a database's stanza it serves (once per database)")  # fmt: skip


def _stanza_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stanza", required=True, help="the service whose server this is")


def _restore(args: argparse.Namespace) -> None:
    if args.all == (args.service is not None):
        raise UsageError("name one service, or pass --all")
    prefix = _prefix(args)
    services = docker_host.services(prefix) if args.all else [args.service]
    for service in services:
        docker_host.restore(prefix, service, args.to, force=args.force)


def _inspect(args: argparse.Namespace) -> None:
    if args.remove:
        docker_host.remove_scratch(_prefix(args), args.service)
    else:
        docker_host.inspect(_prefix(args), args.service, args.to)


def _schedule(args: argparse.Namespace) -> Schedule:
    if args.full_every is None or args.drill_every is None or args.check_every is None:
        raise UsageError("--full-every, --drill-every and --check-every cannot be off")
    return Schedule(args.full_every, args.diff_every, args.incr_every, args.drill_every,
                    args.check_every)  # fmt: skip


def _stop_event() -> threading.Event:
    """Set by SIGTERM (`docker stop`) or SIGINT."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    return stop


def _agent(args: argparse.Namespace) -> None:
    schedule = _schedule(args)
    tool = PgBackRest(container_stanza(args.stanza), args.config)
    drill = Drill(tool, Path(layout.DRILL_PATH))
    stop = _stop_event()
    log.info("agent for stanza %s started", args.stanza)
    if args.metrics_port is not None:
        # Imported here, not at the top: the health check runs this module every few seconds
        # in every PITR container, and the HTTP server's imports would double its cost.
        from pitr import metrics

        volumes = {"data": Path(layout.DATA_MOUNT), "pitr-repo": Path(layout.PGBACKREST_MOUNT)}
        offhost = Path(layout.OFFHOST_STATUS_FILE) if args.tls_server else None
        metrics.serve(
            args.metrics_port, metrics.agent_metrics(Path(layout.STATUS_FILE), volumes, offhost)
        )
    agent = Agent(tool, drill, schedule, Path(layout.STATUS_FILE))
    if not args.tls_server:
        agent.run(stop)
        return
    # The TLS server reads the server's own configuration (both repositories, its listener):
    # the off-host repository names that file when it backs this server up.
    server = repository.TlsServer(["pgbackrest", f"--config={layout.CONFIG_FILE}", "server"])
    # And it looks at repo2 through that file at every check, for the alerts.
    both = PgBackRest(container_stanza(args.stanza), Path(layout.CONFIG_FILE))
    watch = OffHostWatch(both, Path(layout.OFFHOST_STATUS_FILE), schedule.check_every)
    _in_background("offhost", watch.run, stop, schedule.tick)
    repository.serve(server, [agent], schedule.tick, stop)


def _in_background(name: str, target: Callable[..., None], *args: object) -> None:
    threading.Thread(target=target, args=args, name=name, daemon=True).start()


def _health(args: argparse.Namespace) -> None:
    limits = HealthLimits(args.max_archive_age, args.max_backup_age, args.max_drill_age)
    if args.tls_port is not None:
        repository.tls_server_answers(args.tls_port)
    print(health(Path(layout.STATUS_FILE), limits, datetime.now(UTC)))


def _repository(args: argparse.Namespace) -> None:
    schedule = _schedule(args)
    config = Path(layout.CONFIG_FILE)
    server = repository.TlsServer(["pgbackrest", f"--config={config}", "server"])
    agents = []
    for name in args.stanzas:
        tool = PgBackRest(container_stanza(name), config, copies_here=True)
        status = repository.status_file(Path(layout.WORK_PATH), name)
        # One scratch folder for every stanza's drills: the agents tick one after another.
        agents.append(Agent(tool, Drill(tool, Path(layout.DRILL_PATH)), schedule, status))
    log.info("off-host repository for %s started", ", ".join(args.stanzas))
    repository.serve(server, agents, schedule.tick, _stop_event())


def _repository_health(args: argparse.Namespace) -> None:
    limits = HealthLimits(args.max_archive_age, args.max_backup_age, args.max_drill_age)
    work = Path(layout.WORK_PATH)
    print(repository.repository_health(work, args.stanzas, args.port, limits))


def _serves(args: argparse.Namespace) -> None:
    repository.tls_server_answers(args.port)
    print(f"ok: the TLS server answers on port {args.port}")


def _install_keys(_args: argparse.Namespace) -> None:
    copied = tls.install_keys(Path(layout.CONFIG_DIR), Path(layout.KEYS_DIR))
    print(f"pitr: TLS keys {', '.join(copied) or 'none'} in {layout.KEYS_DIR}")


def _guard(args: argparse.Namespace) -> None:
    data = Path(os.environ.get("PGDATA") or layout.PG_PATH)
    request = Path(layout.RECOVERY_REQUEST)
    print(f"pitr guard: {guard.must_not_start_empty(data, _tool(args), request)}")


def _check_here(_args: argparse.Namespace) -> None:
    checks = ServerChecks(Path(layout.SOCKET_DIR), layout.PG_USER).all()
    for check in checks:
        print(f"{check.name}: {check.tables} tables, {check.rows} rows, "
              f"{check.indexes} indexes checked")  # fmt: skip


def _serve_copy(args: argparse.Namespace) -> None:
    data = Path(layout.PG_PATH)
    _tool(args).restore_copy(data, args.to)
    # The server replaces this process, so `docker stop` reaches it directly. hot_standby off:
    # no session before it reaches the target, whatever the live server's max_connections.
    options = ["-c", "listen_addresses=", "-c", "archive_mode=off", "-c", "hot_standby=off"]
    os.execvp("postgres", ["postgres", "-D", str(data), *options])  # noqa: S606 (no shell)


def _tool(args: argparse.Namespace) -> PgBackRest:
    return PgBackRest(container_stanza(args.stanza), Path(layout.CONFIG_FILE))


def container_stanza(name: str) -> Stanza:
    """The stanza of a server in its container (pitr/layout.py); retention is in the file."""
    return Stanza(name, layout.PG_PATH, layout.PG_PORT, layout.SOCKET_DIR, layout.PG_USER,
                  layout.REPO_PATH, layout.WORK_PATH)  # fmt: skip


def _target(text: str) -> RestoreTarget:
    try:
        return RestoreTarget.parse(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(text: str) -> timedelta:
    """`90s`, `30m`, `24h`, `7d`."""
    number, unit = text[:-1], text[-1:]
    if unit not in _UNITS or not number.isdigit() or int(number) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 30m, 24h or 7d")
    return timedelta(seconds=int(number) * _UNITS[unit])


def _duration_or_off(text: str) -> timedelta | None:
    return None if text == "off" else _duration(text)
