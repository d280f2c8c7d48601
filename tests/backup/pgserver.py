"""A throwaway PostgreSQL server for the backup tests and the benchmark.

`initdb` into a fresh temporary directory (superuser with a generated password, scram auth on
TCP, trust only on the private Unix socket), `pg_ctl start` on a free loopback port, and
`stop()` that stops the server and removes the directory. As root, the server binaries run as
an unprivileged user (`postgres`, or `nobody`) through `runuser`, since PostgreSQL refuses to
run as root.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

SUPERUSER = "backup_admin"


class ServerUnavailableError(Exception):
    """The PostgreSQL server binaries are not installed."""


def find_server_bin() -> Path:
    """Newest `/usr/lib/postgresql/<N>/bin` that has initdb, or the one given by `PG_SERVER_BIN`."""
    env = os.environ.get("PG_SERVER_BIN")
    if env:
        candidates = [Path(env)]
    else:
        base = Path("/usr/lib/postgresql")
        found = [p for p in base.glob("*/bin") if p.parent.name.isdigit()] if base.is_dir() else []
        candidates = sorted(found, key=lambda p: int(p.parent.name), reverse=True)
        on_path = shutil.which("initdb")
        if on_path:
            candidates.append(Path(on_path).resolve().parent)
    for cand in candidates:
        if (cand / "initdb").is_file() and (cand / "pg_ctl").is_file():
            return cand
    raise ServerUnavailableError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: install the Debian package "
        "`postgresql` (or set PG_SERVER_BIN)"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _run_as_prefix() -> tuple[list[str], str | None]:
    """Command prefix that drops root, and the user name it drops to (None when not root)."""
    if os.geteuid() != 0:
        return [], None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        runuser = shutil.which("runuser")
        if runuser:
            return [runuser, "-u", name, "--"], name
        setpriv = shutil.which("setpriv")
        if setpriv:
            ent = pwd.getpwnam(name)
            return [
                setpriv,
                f"--reuid={ent.pw_uid}",
                f"--regid={ent.pw_gid}",
                "--init-groups",
            ], name
    raise ServerUnavailableError("running as root and found neither runuser nor setpriv to drop it")


@dataclass
class PgServer:
    """One running server. Connect over TCP to `host:port` as `SUPERUSER` with `password`."""

    bin_dir: Path
    root: Path
    port: int
    password: str
    host: str = "127.0.0.1"
    superuser: str = SUPERUSER
    _prefix: list[str] = field(default_factory=list)
    major: int = 0

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "sock"

    def env(self, user: str | None = None, password: str | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(
            PGHOST=self.host,
            PGPORT=str(self.port),
            PGUSER=user or self.superuser,
            PGPASSWORD=password if password is not None else self.password,
            PGDATABASE="postgres",
            PGCONNECT_TIMEOUT="10",
        )
        return env

    def psql(
        self,
        sql: str,
        dbname: str = "postgres",
        user: str | None = None,
        password: str | None = None,
    ) -> str:
        """Run SQL (through stdin) and return unaligned, tuples-only output."""
        proc = subprocess.run(
            [str(self.bin_dir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"],
            input=sql,
            capture_output=True,
            text=True,
            env={**self.env(user, password), "PGDATABASE": dbname},
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"psql failed on {dbname}: {proc.stderr.strip()}")
        return proc.stdout

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            subprocess.run(
                [
                    *self._prefix,
                    str(self.bin_dir / "pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                ],
                capture_output=True,
                check=False,
                timeout=60,
            )
        shutil.rmtree(self.root, ignore_errors=True)


def start_server(settings: dict[str, str] | None = None) -> PgServer:
    """initdb + pg_ctl start; on any failure everything made so far is removed."""
    bin_dir = find_server_bin()
    prefix, user = _run_as_prefix()
    root = Path(tempfile.mkdtemp(prefix="backup-test-pg-"))
    password = secrets.token_urlsafe(18)
    server = PgServer(bin_dir=bin_dir, root=root, port=free_port(), password=password)
    server._prefix = prefix
    try:
        root.chmod(0o755)
        server.socket_dir.mkdir()
        pwfile = root / "pwfile"
        pwfile.write_text(password + "\n")
        pwfile.chmod(0o600)
        if user is not None:
            ent = pwd.getpwnam(user)
            for p in (root, server.socket_dir, pwfile):
                os.chown(p, ent.pw_uid, ent.pw_gid)
        subprocess.run(
            [
                *prefix,
                str(bin_dir / "initdb"),
                "-D",
                str(server.data_dir),
                "-U",
                SUPERUSER,
                f"--pwfile={pwfile}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        pwfile.unlink()
        options = {
            "listen_addresses": "127.0.0.1",
            "port": str(server.port),
            "unix_socket_directories": str(server.socket_dir),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "60",
            **(settings or {}),
        }
        opts = " ".join(f"-c {k}={v}" for k, v in options.items())
        subprocess.run(
            [
                *prefix,
                str(bin_dir / "pg_ctl"),
                "-D",
                str(server.data_dir),
                "-l",
                str(root / "server.log"),
                "-o",
                opts,
                "-w",
                "-t",
                "60",
                "start",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        out = server.psql("SHOW server_version_num")
        server.major = int(out.strip()) // 10000
    except subprocess.CalledProcessError as exc:
        log = root / "server.log"
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        server.stop()
        raise RuntimeError(f"could not start PostgreSQL: {exc.stderr}\n{tail}") from exc
    except BaseException:
        server.stop()
        raise
    return server


_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


def create_service_db(server: PgServer, user: str, database: str) -> str:
    """A non-superuser login role owning its own database, as the stack makes them. Returns
    the generated password."""
    assert _IDENT.match(user) and _IDENT.match(database)
    password = secrets.token_urlsafe(18)
    server.psql(
        f"CREATE ROLE {user} LOGIN PASSWORD '{password}' NOSUPERUSER NOCREATEDB NOCREATEROLE;\n"
        f"CREATE DATABASE {database} OWNER {user};\n"
    )
    return password
