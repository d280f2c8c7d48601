"""Fixtures for the backup tool tests: a real PostgreSQL 15 server of its own (session), the
four service databases each owned by its own non-superuser with realistic data, and helpers
to run the tool as operators do (`python -m backup ...` in a child process)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.backup.pgserver import PgServer, ServerUnavailableError, create_service_db, start_server

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {
    "customer": ("customer_user", "customer_db"),
    "product": ("product_user", "product_db"),
    "order": ("order_user", "order_db"),
    "content": ("content_user", "website_content_db"),
}


def _schema(service: str, rows: int) -> str:
    """A few tables with FKs, text/numeric/timestamps/json, a sequence, several thousand rows."""
    p = service
    return f"""
CREATE TABLE {p}_groups (
    id serial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    rate numeric(8, 3) NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE TABLE {p}_items (
    id bigserial PRIMARY KEY,
    group_id integer NOT NULL REFERENCES {p}_groups(id),
    title text NOT NULL,
    body text,
    price numeric(12, 2) NOT NULL,
    attrs jsonb NOT NULL,
    updated_at timestamp
);
CREATE INDEX ON {p}_items (group_id);
CREATE TABLE {p}_events (
    id bigserial PRIMARY KEY,
    item_id bigint NOT NULL REFERENCES {p}_items(id) ON DELETE CASCADE,
    kind text NOT NULL CHECK (kind IN ('created', 'changed', 'deleted')),
    at timestamptz NOT NULL DEFAULT now(),
    payload json
);
CREATE TABLE {p}_empty (id int PRIMARY KEY, note text);
CREATE SEQUENCE {p}_number_seq START 1000;
INSERT INTO {p}_groups (name, rate, created_at)
  SELECT 'group ' || g, g / 7.0, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 day'
  FROM generate_series(1, 50) g;
INSERT INTO {p}_items (group_id, title, body, price, attrs, updated_at)
  SELECT 1 + g % 50, '{service} item ' || g, repeat(md5(g::text), 1 + g % 5), (g * 13 % 10000) / 100.0,
         jsonb_build_object('n', g, 'tags', jsonb_build_array('x', g % 7), 'ok', g % 2 = 0),
         CASE WHEN g % 10 = 0 THEN NULL ELSE timestamp '2024-06-01' + g * interval '17 minutes' END
  FROM generate_series(1, {rows}) g;
INSERT INTO {p}_events (item_id, kind, at, payload)
  SELECT 1 + g % {rows}, (ARRAY['created', 'changed', 'deleted'])[1 + g % 3],
         timestamptz '2024-06-01 00:00:00+00' + g * interval '1 minute',
         json_build_object('by', 'user' || g % 17, 'note', 'quote '' and "double" ' || g)
  FROM generate_series(1, {rows * 2}) g;
SELECT setval('{p}_number_seq', 4242);
ANALYZE;
"""  # noqa: S608 (test data with fixed names)


@dataclass
class Env:
    """The running server and the four service databases."""

    server: PgServer
    passwords: dict[str, str]  # service -> password of its user
    targets_file: Path
    tmp: Path

    def targets(self, databases: dict[str, str] | None = None, **override: Any) -> dict[str, Any]:
        """The targets JSON (as `pulumi stack output databases` gives it)."""
        out: dict[str, Any] = {}
        for service, (user, db) in SERVICES.items():
            out[service] = {
                "host": self.server.host,
                "port": self.server.port,
                "database": (databases or {}).get(service, db),
                "user": user,
                "password": self.passwords[service],
            }
            out[service].update(override.get(service, {}))
        return out

    def write_targets(self, path: Path, data: dict[str, Any]) -> Path:
        path.write_text(json.dumps(data))
        path.chmod(0o600)
        return path

    def psql(self, service: str, sql: str, dbname: str | None = None) -> str:
        user, db = SERVICES[service]
        return self.server.psql(sql, dbname or db, user, self.passwords[service])

    def admin_env(self) -> dict[str, str]:
        return {
            "BACKUP_ADMIN_USER": self.server.superuser,
            "BACKUP_ADMIN_PASSWORD": self.server.password,
        }

    def databases(self) -> set[str]:
        out = self.server.psql("SELECT datname FROM pg_database")
        return {line for line in out.splitlines() if line}


def fingerprint(env: Env, service: str, dbname: str | None = None) -> dict[str, str]:
    """Per user table: row count and md5 of all rows in a stable order; sequence values;
    the owner of every table. Two databases with equal fingerprints hold the same data."""
    tables = env.psql(
        service,
        "SELECT schemaname || '.' || tablename || ' ' || tableowner FROM pg_tables "
        "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
        dbname,
    ).split()
    result: dict[str, str] = {}
    for name, owner in zip(tables[::2], tables[1::2], strict=True):
        out = env.psql(
            service,
            f"SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, E'\\n' "  # noqa: S608
            f"ORDER BY t::text)), '-') FROM {name} t",
            dbname,
        )
        result[name] = f"{out.strip()} owner={owner}"
    seqs = env.psql(
        service,
        "SELECT schemaname || '.' || sequencename || '=' || coalesce(last_value, 0) "
        "FROM pg_sequences ORDER BY 1",
        dbname,
    )
    result["sequences"] = seqs.strip()
    return result


@pytest.fixture(scope="session")
def pgenv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    try:
        server = start_server()
    except ServerUnavailableError as exc:
        if os.environ.get("REQUIRE_INTEGRATION") == "1":
            pytest.fail(f"REQUIRE_INTEGRATION=1 but {exc}")
        pytest.skip(str(exc))
    try:
        passwords: dict[str, str] = {}
        for service, (user, db) in SERVICES.items():
            passwords[service] = create_service_db(server, user, db)
            server.psql(_schema(service, 3000), db, user, passwords[service])
        tmp = tmp_path_factory.mktemp("backup-env")
        env = Env(server=server, passwords=passwords, targets_file=tmp / "targets.json", tmp=tmp)
        env.write_targets(env.targets_file, env.targets())
        yield env
    finally:
        server.stop()


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def restore_args(backup_dir: Path, targets: str | Path) -> tuple[str | Path, ...]:
    """`restore --dest DIR BACKUP --targets F` for a backup directory; options follow."""
    return ("restore", "--dest", backup_dir.parent, backup_dir.name, "--targets", targets)


def run_tool(*args: str | Path, env: dict[str, str] | None = None, timeout: float = 120) -> Result:
    """`python -m backup ARGS` from the project root, as an operator runs it."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "BACKUP_"))}
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "backup", *map(str, args)],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture(scope="session")
def backup_dir(pgenv: Env, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One backup of the four databases, made once for the read-only tests."""
    dest = tmp_path_factory.mktemp("backups")
    r = run_tool("create", "--targets", pgenv.targets_file, "--dest", dest)
    assert r.code == 0, r.err
    return Path(r.out.strip().splitlines()[0])


def copy_backup(src: Path, dest_dir: Path, name: str | None = None) -> Path:
    """A copy of a backup (optionally renamed, its manifest following) to damage freely."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / (name or src.name)
    shutil.copytree(src, target)
    (target / "verified.json").unlink(missing_ok=True)
    if name:
        manifest = json.loads((target / "manifest.json").read_text())
        manifest["name"] = name
        (target / "manifest.json").write_text(json.dumps(manifest))
    return target


SHIM = """#!/bin/sh
# records its argv (one argument a line) then runs the real program
{{ printf '%s\\n' "$0"; for a in "$@"; do printf '%s\\n' "$a"; done; echo --end--; }} >> "$SHIM_LOG"
real={real}
case " $* " in *" --version "*) exec "$real" "$@";; esac
if [ "$(basename "$0")" = pg_dump ] && [ -n "$SHIM_DUMP_SLEEP" ]; then
    sleep "$SHIM_DUMP_SLEEP" </dev/null >/dev/null 2>&1 &
    echo "$$ $!" >> "$SHIM_LOG.pids"
    wait $!
fi
if [ "$(basename "$0")" = pg_restore ] && [ -n "$SHIM_RESTORE_FAIL" ]; then
    case " $* " in
        *" --dbname="*) "$real" "$@"; echo "pg_restore: error: injected failure" >&2; exit 1;;
    esac
fi
exec "$real" "$@"
"""


@pytest.fixture
def shim_bin(pgenv: Env, tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A --pg-bin directory of wrappers that record argv into the returned log file."""
    d = tmp_path / "shim-bin"
    d.mkdir()
    log = tmp_path / "argv.log"
    log.touch()
    for prog in ("pg_dump", "pg_restore", "psql"):
        script = d / prog
        script.write_text(SHIM.format(real=pgenv.server.bin_dir / prog))
        script.chmod(0o755)
    yield d, log
