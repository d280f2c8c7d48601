"""Command line: parse arguments, set up logging, run one action, map failures to exit codes.

Every expected failure is one line on stderr (`ecommerce-backup: error: ...`) and a distinct
exit code (backup/errors.py); --verbose adds the details (child commands, tracebacks)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

from backup import __version__, errors, pg
from backup.compress import Compression
from backup.create import DEFAULT_COMPRESSION, create_backup, ensure_dest, now_utc
from backup.errors import BackupToolError, UsageError
from backup.listing import as_json, as_text, list_backups
from backup.lock import locked
from backup.manifest import scan
from backup.proc import RedactingFilter, install_signal_handlers, kill_all_children, redact
from backup.prune import prune
from backup.restore import restore
from backup.schedule import parse_duration, run_loop, status
from backup.targets import Target, load_targets_file, load_targets_from_stack, select
from backup.verify import DeepOptions, verify, verify_one

PROG = "ecommerce-backup"
log = logging.getLogger("backup")

EPILOG = f"""\
exit codes:
{errors.exit_code_table()}
  130 interrupted (Ctrl-C or SIGTERM)

Passwords come only from --targets/--stack (the Pulumi output) and BACKUP_ADMIN_PASSWORD;
they reach PostgreSQL programs through their environment, never the command line.
See docs/backup.md."""


T = TypeVar("T")


def _checked(parse: Callable[[str], T]) -> Callable[[str], T]:
    """An argparse type from a parser that raises ValueError with a readable message."""

    def convert(text: str) -> T:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


_compression = _checked(Compression.parse)
_duration = _checked(parse_duration)


def _positive_int(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def _positive_float(text: str) -> float:
    x = float(text)
    if x <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return x


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", help="debug output")
    common.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    common.add_argument(
        "--pg-bin",
        metavar="DIR",
        help="directory of pg_dump/pg_restore/psql (default: $PG_BIN, else the newest of "
        "PATH and /usr/lib/postgresql/N/bin)",
    )

    dest = argparse.ArgumentParser(add_help=False)
    dest.add_argument("--dest", required=True, type=Path, metavar="DIR", help="backup directory")

    source = argparse.ArgumentParser(add_help=False)
    src = source.add_mutually_exclusive_group()
    src.add_argument(
        "--targets",
        type=Path,
        metavar="FILE",
        help="JSON of `pulumi stack output databases --json --show-secrets`",
    )
    src.add_argument(
        "--stack", metavar="NAME", help="ask `pulumi stack output databases` of this stack"
    )

    only = argparse.ArgumentParser(add_help=False)
    only.add_argument(
        "--only",
        nargs="+",
        action="extend",
        metavar="SERVICE",
        help="only these services (customer, product, order, content, ...)",
    )

    jobs = argparse.ArgumentParser(add_help=False)
    jobs.add_argument(
        "--jobs",
        type=_positive_int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="parallel jobs in total (default: CPU count, %(default)s here)",
    )

    admin = argparse.ArgumentParser(add_help=False)
    admin.add_argument(
        "--admin-user",
        default=os.environ.get("BACKUP_ADMIN_USER") or None,
        metavar="ROLE",
        help="role that creates/renames/drops databases (superuser, or CREATEDB and member of "
        "the service role); password from $BACKUP_ADMIN_PASSWORD or ~/.pgpass. "
        "Default: $BACKUP_ADMIN_USER, else the service's own user (needs CREATEDB)",
    )
    admin.add_argument(
        "--admin-db", default="postgres", metavar="DB", help="maintenance database (postgres)"
    )

    dump = argparse.ArgumentParser(add_help=False)
    dump.add_argument(
        "--compress",
        type=_compression,
        default=DEFAULT_COMPRESSION,
        metavar="METHOD[:LEVEL]",
        help="compression of the table data: zstd[:1-19] (needs the zstd program) or "
        "gzip[:0-9] (pg_dump's own; a bare number is a gzip level). Default %(default)s: "
        "smallest and fastest, measured",
    )
    dump.add_argument(
        "--archive", action="store_true", help="also write <name>.tar.gz of the backup"
    )

    retention = argparse.ArgumentParser(add_help=False)
    retention.add_argument(
        "--keep-last", type=_positive_int, required=True, metavar="N", help="keep the newest N"
    )
    retention.add_argument(
        "--keep-days",
        type=_positive_float,
        metavar="D",
        help="also keep every backup younger than D days",
    )

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Back up, verify, restore and prune the platform's PostgreSQL databases.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(
        name: str, help_: str, parents: list[argparse.ArgumentParser]
    ) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=help_,
            description=help_,
            parents=[common, *parents],
            epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    p = add("create", "dump the databases into a new backup", [source, dest, only, jobs, dump])
    p.set_defaults(func=cmd_create)

    p = add("list", "list the backups, newest first", [dest])
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_list)

    p = add("verify", "check the checksums and readability of backups", [dest, source, admin, jobs])
    p.add_argument("backup", nargs="?", metavar="BACKUP", help="one backup (default: all)")
    p.add_argument(
        "--deep",
        action="store_true",
        help="also restore into scratch databases and compare row counts (needs --targets)",
    )
    p.set_defaults(func=cmd_verify)

    p = add("restore", "restore databases from a backup", [source, dest, only, admin, jobs])
    p.add_argument("backup", metavar="BACKUP", help="name of the backup (see `list`)")
    p.add_argument(
        "--force", action="store_true", help="replace a database that already has tables"
    )
    p.add_argument(
        "--keep-old",
        action="store_true",
        help="keep the replaced database as <db>_old_<ts> instead of dropping it",
    )
    p.set_defaults(func=cmd_restore)

    p = add("prune", "delete old backups (retention)", [dest, retention])
    p.add_argument("--dry-run", action="store_true", help="only say what would be deleted")
    p.set_defaults(func=cmd_prune)

    p = add(
        "schedule",
        "loop: create, verify, prune, sleep (the backup container)",
        [source, dest, only, jobs, dump, retention, admin],
    )
    p.add_argument(
        "--every",
        type=_duration,
        default=timedelta(hours=24),
        metavar="DURATION",
        help="interval, e.g. 24h, 30m (default 24h)",
    )
    p.add_argument(
        "--retry-after",
        type=_duration,
        default=timedelta(minutes=1),
        metavar="DURATION",
        help="after a failed run, try again this much later, twice as long after each further "
        "failure, at most --every (default 1m)",
    )
    p.add_argument("--deep", action="store_true", help="deep-verify each new backup")
    p.add_argument("--once", action="store_true", help="one run, then exit with its code")
    p.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve the backups' state as Prometheus metrics (backup/metrics.py)",
    )
    p.set_defaults(func=cmd_schedule)

    p = add("status", "health check of the scheduled runs", [dest])
    p.add_argument(
        "--max-age",
        type=_duration,
        default=timedelta(hours=26),
        metavar="DURATION",
        help="the last successful run must be younger (default 26h)",
    )
    p.set_defaults(func=cmd_status)
    return parser


def _targets(args: argparse.Namespace, required: bool = True) -> dict[str, Target] | None:
    if args.targets is not None:
        return load_targets_file(args.targets)
    if args.stack is not None:
        return load_targets_from_stack(args.stack)
    if required:
        raise UsageError(f"{args.command} needs --targets FILE or --stack NAME")
    return None


def _authority(args: argparse.Namespace) -> pg.Authority:
    return pg.Authority(
        admin_user=args.admin_user,
        admin_password=os.environ.get("BACKUP_ADMIN_PASSWORD", ""),
        admin_db=args.admin_db,
    )


def _bars(args: argparse.Namespace) -> bool:
    return sys.stderr.isatty() and not args.quiet and not args.verbose


def _selected(args: argparse.Namespace, targets: dict[str, Target]) -> list[Target]:
    return select(targets, args.only)


def cmd_create(args: argparse.Namespace) -> int:
    targets = _targets(args)
    assert targets is not None
    chosen = _selected(args, targets)
    tools = pg.find_tools(args.pg_bin)
    result = create_backup(
        chosen,
        args.dest,
        tools,
        jobs=args.jobs,
        compression=args.compress,
        archive=args.archive,
        bars=_bars(args),
    )
    print(result.path)
    if result.archive:
        print(result.archive)
    return errors.OK


def cmd_list(args: argparse.Namespace) -> int:
    found = list_backups(args.dest)
    print(json.dumps(as_json(found), indent=2) if args.json else as_text(found))
    return errors.OK


def cmd_verify(args: argparse.Namespace) -> int:
    tools = pg.find_tools(args.pg_bin)
    deep = None
    if args.deep:
        targets = _targets(args)
        assert targets is not None
        deep = DeepOptions(targets, _authority(args), args.jobs)
    verify(args.dest, args.backup, tools, deep)
    print(f"verified: {args.backup or 'all backups'} OK")
    return errors.OK


def cmd_restore(args: argparse.Namespace) -> int:
    if not args.dest.is_dir():
        raise UsageError(f"backup directory {args.dest} does not exist")
    targets = _targets(args)
    assert targets is not None
    if args.only:
        select(targets, args.only)
    tools = pg.find_tools(args.pg_bin)
    done = restore(
        args.dest,
        args.backup,
        targets,
        args.only,
        tools,
        _authority(args),
        force=args.force,
        keep_old=args.keep_old,
        jobs=args.jobs,
    )
    for r in done:
        print(r.describe())
    return errors.OK


def cmd_prune(args: argparse.Namespace) -> int:
    plan = prune(args.dest, args.keep_last, args.keep_days, args.dry_run, now_utc())
    verb = "would delete" if args.dry_run else "deleted"
    for name in plan.delete:
        print(f"{verb} {name}")
    for name in plan.leftovers:
        print(f"{verb} leftover {name}")
    for name, why in plan.keep:
        print(f"kept {name} ({why})")
    return errors.OK


def cmd_schedule(args: argparse.Namespace) -> int:
    targets = _targets(args)
    assert targets is not None
    chosen = _selected(args, targets)
    tools = pg.find_tools(args.pg_bin)
    ensure_dest(args.dest)
    deep = DeepOptions(targets, _authority(args), args.jobs) if args.deep else None

    def one_run() -> str:
        result = create_backup(
            chosen,
            args.dest,
            tools,
            jobs=args.jobs,
            compression=args.compress,
            archive=args.archive,
            bars=False,
        )
        with locked(args.dest, "verify", wait_s=600):
            found = next(b for b in scan(args.dest).backups if b.name == result.path.name)
            problems = verify_one(found, tools, deep)
        if problems:
            raise errors.VerifyError(f"new backup {found.name} failed verification: {problems[0]}")
        prune(args.dest, args.keep_last, args.keep_days, False, now_utc())
        return result.path.name

    log.info("schedule: every %s into %s, keep last %d", args.every, args.dest, args.keep_last)
    if args.metrics_port is not None:
        # Imported here, not at the top: the job's health check (`status`) runs this module
        # every few seconds, and the HTTP server's imports would double its cost.
        from backup import metrics

        metrics.serve(args.metrics_port, lambda: metrics.render(args.dest))
    return run_loop(args.dest, args.every, args.once, one_run, threading.Event(), args.retry_after)


def cmd_status(args: argparse.Namespace) -> int:
    print(status(args.dest, args.max_age))
    return errors.OK


def setup_logging(verbose: bool, quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    if sys.stderr.isatty():
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S%z")
        )
    root = logging.getLogger("backup")
    root.handlers[:] = [handler]
    root.propagate = False
    root.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else errors.USAGE
    setup_logging(args.verbose, args.quiet)
    install_signal_handlers()
    try:
        code: int = args.func(args)
        return code
    except BackupToolError as exc:
        log.debug("failure", exc_info=True)
        print(f"{PROG}: error: {redact(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        log.debug("internal error", exc_info=True)
        print(
            f"{PROG}: internal error: {type(exc).__name__}: {redact(str(exc))} "
            "(rerun with --verbose for details)",
            file=sys.stderr,
        )
        return errors.INTERNAL_ERROR
    finally:
        kill_all_children()
        sys.stderr.flush()
