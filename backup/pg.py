"""PostgreSQL specifics: finding the client programs, connection environments (the password
goes only into the child's environment), queries through psql, snapshots, row counts, and
the database-level operations restore needs (create, rename, drop, terminate)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from backup.errors import ConnectError, OperationError, UsageError
from backup.proc import ProcessError, base_env, redact, run
from backup.targets import Target

log = logging.getLogger(__name__)

CLIENT_PROGRAMS = ("pg_dump", "pg_restore", "psql")
DEBIAN_BIN_ROOT = Path("/usr/lib/postgresql")
_VERSION_RE = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")
_CONNECT_MARKERS = (
    "connection to server",
    "could not connect",
    "password authentication failed",
    "no password supplied",
    "connection refused",
    "could not translate host name",
    "timeout expired",
    "does not exist",
    "no pg_hba.conf entry",
    "server closed the connection",
    "ssl",
)


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def conninfo_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class Conn:
    """Where and as whom to connect. The password never leaves this object except into a
    child's environment."""

    host: str
    port: int
    user: str
    dbname: str
    password: str = field(repr=False)
    label: str = ""

    @classmethod
    def of(cls, target: Target) -> Conn:
        return cls(
            host=target.host,
            port=target.port,
            user=target.user,
            dbname=target.database,
            password=target.password,
            label=target.service,
        )

    def to_db(self, dbname: str) -> Conn:
        return replace(self, dbname=dbname)

    def env(self) -> dict[str, str]:
        env = base_env()
        env.update(
            PGHOST=self.host,
            PGPORT=str(self.port),
            PGUSER=self.user,
            PGDATABASE=self.dbname,
            PGCONNECT_TIMEOUT=env.get("PGCONNECT_TIMEOUT", "10"),
            PGAPPNAME="ecommerce-backup",
        )
        if self.password:
            env["PGPASSWORD"] = self.password
        return env

    def describe(self) -> str:
        who = f"'{self.label}' " if self.label else ""
        return f"{who}({self.dbname} on {self.host}:{self.port} as {self.user})"


@dataclass(frozen=True)
class Tools:
    bin_dir: Path
    major: int
    version: str

    def path(self, program: str) -> str:
        return str(self.bin_dir / program)


def _client_version(program: Path) -> tuple[int, str] | None:
    try:
        out = subprocess.run(
            [str(program), "--version"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env=base_env(),
        ).stdout
    except OSError:
        return None
    m = _VERSION_RE.search(out)
    if not m:
        return None
    return int(m.group(1)), m.group(1) + (f".{m.group(2)}" if m.group(2) else "")


def find_tools(pg_bin: str | None) -> Tools:
    """`--pg-bin`/`PG_BIN` if given; else the newest of PATH and /usr/lib/postgresql/N/bin."""
    chosen = pg_bin or os.environ.get("PG_BIN") or None
    if chosen:
        candidates = [Path(chosen)]
    else:
        candidates = []
        on_path = shutil.which("pg_dump")
        if on_path:
            candidates.append(Path(on_path).parent)
        if DEBIAN_BIN_ROOT.is_dir():
            versioned = [p for p in DEBIAN_BIN_ROOT.glob("*/bin") if p.parent.name.isdigit()]
            candidates += sorted(versioned, key=lambda p: int(p.parent.name), reverse=True)
    best: Tools | None = None
    for cand in candidates:
        if not all((cand / prog).is_file() for prog in CLIENT_PROGRAMS):
            if chosen:
                missing = next(p for p in CLIENT_PROGRAMS if not (cand / p).is_file())
                raise UsageError(f"--pg-bin {cand}: no {missing} there")
            continue
        version = _client_version(cand / "pg_dump")
        if version is None:
            if chosen:
                raise UsageError(f"--pg-bin {cand}: `pg_dump --version` does not run")
            continue
        if best is None or version[0] > best.major:
            best = Tools(bin_dir=cand, major=version[0], version=version[1])
    if best is None:
        raise ConnectError(
            "PostgreSQL client programs (pg_dump, pg_restore, psql) not found: install "
            "postgresql-client (same major version as the servers or newer), or pass --pg-bin DIR"
        )
    return best


def _connect_error(conn: Conn, exc: ProcessError) -> ConnectError | None:
    text = exc.stderr.strip()
    first = text.splitlines()[0] if text else ""
    low = text.lower()
    if not any(marker in low for marker in _CONNECT_MARKERS):
        return None
    if "does not exist" in low and "database" not in low and "role" not in low:
        return None
    reason = re.sub(r"^(psql|pg_dump|pg_restore): error: ", "", first)
    reason = re.sub(
        r'^connection to server at "[^"]*"(?: \([^)]*\))?, port \d+ failed: ', "", reason
    )
    reason = reason.replace("FATAL:  ", "")
    return ConnectError(f"cannot connect to {conn.describe()}: {redact(reason)}")


def classify(conn: Conn, exc: ProcessError) -> Exception:
    """A ConnectError when the child could not connect, else the failure as it was."""
    return _connect_error(conn, exc) or exc


def psql(tools: Tools, conn: Conn, sql: str, *, what: str = "psql", timeout: float = 3600) -> str:
    """Run SQL (stdin, ON_ERROR_STOP) and return tuples-only unaligned output."""
    argv = [tools.path("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
    try:
        return run(argv, conn.env(), what=what, input_text=sql, timeout=timeout)
    except ProcessError as exc:
        raise classify(conn, exc) from None


def server_version_num(tools: Tools, conn: Conn) -> int:
    out = psql(tools, conn, "SHOW server_version_num;", what=f"psql on {conn.describe()}")
    try:
        return int(out.strip())
    except ValueError:
        raise OperationError(f"{conn.describe()}: unexpected server_version_num") from None


def server_info(tools: Tools, conn: Conn) -> tuple[int, int]:
    """(server_version_num, pg_database_size) in one connection."""
    out = psql(
        tools,
        conn,
        "SELECT current_setting('server_version_num') || ' ' || "
        "pg_database_size(current_database());",
        what=f"psql on {conn.describe()}",
    )
    try:
        num, size = out.split()
        return int(num), int(size)
    except ValueError:
        raise OperationError(f"{conn.describe()}: unexpected answer to the version query") from None


def check_client(tools: Tools, server_num: int, service: str) -> None:
    server_major = server_num // 10000
    if tools.major < server_major:
        raise ConnectError(
            f"pg_dump {tools.major} is older than server {server_major} of '{service}': install "
            f"postgresql-client-{server_major} (or pass --pg-bin /usr/lib/postgresql/"
            f"{server_major}/bin)"
        )


def version_string(num: int) -> str:
    return f"{num // 10000}.{num % 10000}"


# Tables whose rows pg_dump writes: ordinary tables outside system schemas that are not
# members of an extension (partitioned parents hold no rows themselves).
_USER_TABLES = """
SELECT n.nspname, c.relname, c.oid
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
"""


def _count_sql() -> str:
    return (
        "SELECT format('SELECT json_build_array(%L, %L, count(*)) FROM %I.%I', "  # noqa: S608 (identifiers and literals quoted)
        f"nspname, relname, nspname, relname) FROM ({_USER_TABLES}) t "
        "ORDER BY nspname, relname\n\\gexec\n"
    )


def _parse_counts(out: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in out.splitlines():
        if line.strip():
            schema, table, n = json.loads(line)
            counts[f"{schema}.{table}"] = int(n)
    return counts


def table_counts(tools: Tools, conn: Conn, snapshot: str | None = None) -> dict[str, int]:
    """Exact `count(*)` per user table, in `snapshot` when given (the dump's snapshot)."""
    head = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;\n"
    if snapshot:
        head += f"SET TRANSACTION SNAPSHOT {quote_literal(snapshot)};\n"
    sql = head + _count_sql() + "COMMIT;\n"
    return _parse_counts(psql(tools, conn, sql, what=f"row count on {conn.describe()}"))


def table_sizes(tools: Tools, conn: Conn) -> tuple[int, dict[str, int]]:
    """(pg_database_size, {schema.table: bytes}) for progress estimates."""
    sql = (
        "SELECT json_build_array(pg_database_size(current_database()), "  # noqa: S608 (identifiers and literals quoted)
        f"(SELECT coalesce(json_object_agg(nspname || '.' || relname, "
        f"pg_total_relation_size(oid)), '{{}}') FROM ({_USER_TABLES}) t));\n"
    )
    out = psql(tools, conn, sql, what=f"size query on {conn.describe()}")
    db_size, tables = json.loads(out.strip())
    return int(db_size), {str(k): int(v) for k, v in tables.items()}


def user_table_summary(tools: Tools, conn: Conn) -> tuple[int, int]:
    """(number of user tables, number of those holding at least one row)."""
    sql = (
        "SELECT format('SELECT json_build_array(1, (SELECT count(*) FROM "  # noqa: S608 (identifiers and literals quoted)
        "(SELECT 1 FROM %I.%I LIMIT 1) x))', nspname, relname) "
        f"FROM ({_USER_TABLES}) t\n\\gexec\n"
    )
    out = psql(tools, conn, sql, what=f"table check on {conn.describe()}")
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    return len(rows), sum(1 for r in rows if r[1])


def database_exists(tools: Tools, admin: Conn, name: str) -> bool:
    out = psql(
        tools,
        admin,
        f"SELECT 1 FROM pg_database WHERE datname = {quote_literal(name)};",  # noqa: S608 (identifiers and literals quoted)
        what="database lookup",
    )
    return out.strip() == "1"


def role_can_createdb(tools: Tools, conn: Conn) -> bool:
    out = psql(
        tools,
        conn,
        "SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user;",
        what="privilege check",
    )
    return out.strip() == "t"


def create_database(tools: Tools, admin: Conn, name: str, owner: str | None) -> None:
    sql = f"CREATE DATABASE {quote_ident(name)} TEMPLATE template0"
    if owner is not None and owner != admin.user:
        sql += f" OWNER {quote_ident(owner)}"
    psql(tools, admin, sql + ";\n", what=f"CREATE DATABASE {name}")


def terminate_connections(tools: Tools, admin: Conn, name: str) -> None:
    psql(
        tools,
        admin,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "  # noqa: S608 (identifiers and literals quoted)
        f"WHERE datname = {quote_literal(name)} AND pid <> pg_backend_pid();\n",
        what=f"terminating connections to {name}",
    )


def drop_database(tools: Tools, admin: Conn, name: str) -> None:
    terminate_connections(tools, admin, name)
    psql(tools, admin, f"DROP DATABASE IF EXISTS {quote_ident(name)};\n", what=f"DROP {name}")


def set_allow_connections(tools: Tools, admin: Conn, name: str, allow: bool) -> None:
    flag = "true" if allow else "false"
    psql(
        tools,
        admin,
        f"ALTER DATABASE {quote_ident(name)} WITH ALLOW_CONNECTIONS {flag};\n",
        what=f"ALTER DATABASE {name} ALLOW_CONNECTIONS",
    )


def swap_databases(tools: Tools, admin: Conn, live: str, new: str, old: str) -> None:
    """In one transaction: `live` becomes `old`, `new` becomes `live`."""
    psql(
        tools,
        admin,
        "BEGIN;\n"
        f"ALTER DATABASE {quote_ident(live)} RENAME TO {quote_ident(old)};\n"
        f"ALTER DATABASE {quote_ident(new)} RENAME TO {quote_ident(live)};\n"
        "COMMIT;\n",
        what=f"renaming {new} to {live}",
    )


def rename_database(tools: Tools, admin: Conn, name: str, to: str) -> None:
    psql(
        tools,
        admin,
        f"ALTER DATABASE {quote_ident(name)} RENAME TO {quote_ident(to)};\n",
        what=f"renaming {name} to {to}",
    )


def scratch_name(base: str, kind: str, suffix: str) -> str:
    """`<base>_<kind>_<suffix>` within PostgreSQL's 63-byte identifier limit."""
    tail = f"_{kind}_{suffix}"
    room = 63 - len(tail.encode())
    cut = base.encode()[:room].decode("utf-8", errors="ignore")
    return cut + tail


class Snapshot:
    """A psql session holding a REPEATABLE READ transaction open, whose exported snapshot
    pg_dump (--snapshot) and the row counts share, so counts match the dump exactly."""

    def __init__(self, tools: Tools, conn: Conn) -> None:
        self._conn = conn
        self._proc = subprocess.Popen(
            [tools.path("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"],
            env=conn.env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.id = ""

    def start(self) -> str:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        try:
            self._proc.stdin.write(
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;\nSELECT pg_export_snapshot();\n"
            )
            self._proc.stdin.flush()
        except BrokenPipeError:
            pass
        line = self._proc.stdout.readline().strip()
        if not line:
            self._proc.wait(timeout=30)
            err = self._proc.stderr.read() if self._proc.stderr else ""
            failed = ProcessError("psql (snapshot)", self._proc.returncode or 1, redact(err))
            raise classify(self._conn, failed)
        self.id = line
        return line

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self._proc.stdin is not None and self._proc.poll() is None:
                self._proc.stdin.write("COMMIT;\n")
                self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        for stream in (self._proc.stdout, self._proc.stderr):
            if stream is not None:
                stream.close()


@contextlib.contextmanager
def snapshot(tools: Tools, conn: Conn) -> Iterator[str]:
    snap = Snapshot(tools, conn)
    try:
        yield snap.start()
    finally:
        snap.close()


@dataclass(frozen=True)
class Authority:
    """Who creates, renames and drops databases for restore and deep verify: an admin role
    (`--admin-user`, password from BACKUP_ADMIN_PASSWORD or ~/.pgpass) or, without one, the
    service's own user, which then needs CREATEDB."""

    admin_user: str | None = None
    admin_password: str = field(default="", repr=False)
    admin_db: str = "postgres"

    def admin(self, target: Target) -> Conn:
        if self.admin_user:
            return Conn(
                host=target.host,
                port=target.port,
                user=self.admin_user,
                dbname=self.admin_db,
                password=self.admin_password,
                label=target.service,
            )
        return Conn.of(target).to_db(self.admin_db)

    def check(self, tools: Tools, target: Target) -> Conn:
        """The admin connection, after checking it may create databases."""
        admin = self.admin(target)
        if not role_can_createdb(tools, admin):
            if self.admin_user:
                raise ConnectError(
                    f"admin user '{admin.user}' may not create databases on "
                    f"{target.host}:{target.port}: use a role with CREATEDB (or a superuser)"
                )
            raise ConnectError(
                f"user '{admin.user}' of '{target.service}' may not create databases: pass "
                "--admin-user ROLE (password in BACKUP_ADMIN_PASSWORD) of a superuser or a "
                "CREATEDB role that is a member of the service role, or grant it CREATEDB"
            )
        return admin


def restore_dump(
    tools: Tools,
    admin: Conn,
    target: Target,
    dump_dir: Path,
    new_db: str,
    jobs: int,
) -> None:
    """Create `new_db` owned by the service user and pg_restore `dump_dir` into it, objects
    owned by the service user. On failure the new database is dropped again."""
    create_database(tools, admin, new_db, target.user)
    try:
        _pg_restore(tools, admin, target, dump_dir, new_db, [f"--jobs={max(1, jobs)}"])
    except BaseException:
        with contextlib.suppress(Exception):
            drop_database(tools, admin, new_db)
        raise


def restore_into_empty(tools: Tools, conn: Conn, target: Target, dump_dir: Path) -> None:
    """pg_restore `dump_dir` into the service's existing, empty database in one transaction:
    it needs no CREATEDB, and a failure leaves the database as it was."""
    _pg_restore(tools, conn, target, dump_dir, target.database, ["--single-transaction"])


def _pg_restore(
    tools: Tools, conn: Conn, target: Target, dump_dir: Path, dbname: str, options: list[str]
) -> None:
    """pg_restore as `conn`'s user, every object owned by the service user."""
    owner = target.user
    argv = [
        tools.path("pg_restore"),
        *options,
        "--no-owner",
        "--exit-on-error",
        f"--dbname=dbname={conninfo_quote(dbname)}",
    ]
    if conn.user != owner:
        argv.append(f"--role={owner}")
    argv.append(str(dump_dir))
    try:
        run(argv, conn.to_db(dbname).env(), what=f"pg_restore of '{target.service}' into {dbname}")
    except ProcessError as exc:
        raise classify(conn, exc) from None
