"""The local images keep the contracts of the official images the Pulumi program deploys, on a
real Docker engine, started the way development (as root) and production (hardened) start them.
Also the engine facts the program relies on: secrets seeded through put_archive, the read-only
trap, network isolation.
"""

from __future__ import annotations

import concurrent.futures
import functools
import io
import json
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import docker.errors
import pytest

from components.renderers.caddyfile import EdgeRoutes, render
from images.build import HASH_LABEL, RECIPES, Outcome, recipe_hash
from stacks.settings import EdgeTls

from .conftest import (
    BASE_IMAGE,
    HARDENED,
    NODE_IMAGE,
    POSTGRES_IMAGE,
    REDIS_IMAGE,
    Harness,
    exec_in,
    host_port,
    http_get,
    ip_on,
    logs_of,
    running,
    secrets_tar,
    wait_for,
    wait_postgres_ready,
)

pytestmark = [pytest.mark.docker, pytest.mark.integration]

PG_USER = "customer_user"
PG_DB = "customer_db"

# The health check command the Pulumi program puts on every Node.js service container.
NODE_HEALTH_CHECK = [
    "node",
    "-e",
    "require('http').get('http://127.0.0.1:'+process.env.PORT+'/health',"
    "r=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1))",
]


def password() -> str:
    return uuid.uuid4().hex


def proc1_ids(container: Any) -> tuple[str, str, str]:
    """Real uid, real gid and effective capabilities of the container's main process."""
    code, status = exec_in(container, ["cat", "/proc/1/status"])
    assert code == 0, status
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return (
        fields["Uid"].split()[0],
        fields["Gid"].split()[0],
        fields["CapEff"].strip(),
    )


def psql(
    container: Any, host: str, sql: str, *, user: str = PG_USER, secret: str, db: str = PG_DB
) -> tuple[int, str]:
    """psql over TCP to `host` (not loopback: pg_hba's scram-sha-256 rule applies)."""
    return exec_in(
        container,
        ["psql", "-h", host, "-U", user, "-d", db, "-v", "ON_ERROR_STOP=1", "-Atc", sql],
        env={"PGPASSWORD": secret, "PGCONNECT_TIMEOUT": "5"},
    )


def stat(image: str, dock: Harness, *paths: str) -> list[str]:
    code, out = dock.run_once(image, "stat", ["stat", "-c", "%n %u:%g %a", *paths], user="0")
    assert code == 0, out
    return out.split("\n")[: len(paths)]


# ----------------------------------------------------------------------------------------------
# The images: built from their recipes, with the official images' metadata


def test_images_are_labelled_with_their_recipe_hash(
    docker_client: Any, test_images: list[Outcome]
) -> None:
    assert [o.recipe.name for o in test_images] == list(RECIPES)
    for recipe in RECIPES.values():
        labels = docker_client.images.get(recipe.tag).labels
        assert labels[HASH_LABEL] == recipe_hash(recipe), recipe.tag


def test_postgres_image_contract(docker_client: Any, dock: Harness) -> None:
    config = docker_client.images.get(POSTGRES_IMAGE).attrs["Config"]
    assert config["Cmd"] == ["postgres"]
    assert config["Entrypoint"] == ["docker-entrypoint.sh"]
    assert "/var/lib/postgresql/data" in config["Volumes"]
    assert "PGDATA=/var/lib/postgresql/data" in config["Env"]
    assert config["StopSignal"] == "SIGINT"
    code, out = dock.run_once(
        POSTGRES_IMAGE,
        "ids",
        [
            "sh",
            "-c",
            "id postgres; for c in postgres pg_isready psql initdb gosu; do command -v $c; done",
        ],
    )
    assert code == 0, out
    assert out.startswith("uid=999(postgres) gid=999(postgres)"), out
    assert "/usr/lib/postgresql/15/bin/postgres" in out
    assert "/usr/bin/pg_isready" in out or "/usr/lib/postgresql/15/bin/pg_isready" in out
    assert stat(POSTGRES_IMAGE, dock, "/var/lib/postgresql/data", "/var/run/postgresql") == [
        "/var/lib/postgresql/data 999:999 1777",
        "/var/run/postgresql 999:999 3777",
    ]


def test_redis_image_contract(docker_client: Any, dock: Harness) -> None:
    config = docker_client.images.get(REDIS_IMAGE).attrs["Config"]
    assert config["Cmd"] == ["redis-server"]
    assert config["WorkingDir"] == "/data"
    assert "/data" in config["Volumes"]
    code, out = dock.run_once(REDIS_IMAGE, "ids", ["sh", "-c", "id redis; redis-server --version"])
    assert code == 0, out
    assert out.startswith("uid=999(redis) gid=999(redis)"), out
    assert "Redis server v=7." in out
    assert stat(REDIS_IMAGE, dock, "/data") == ["/data 999:999 755"]


def test_node_service_image_contract(docker_client: Any, dock: Harness) -> None:
    config = docker_client.images.get(NODE_IMAGE).attrs["Config"]
    assert config["Cmd"] == ["node", "/app/server.js"]
    assert config["User"] == "node"
    code, out = dock.run_once(NODE_IMAGE, "ids", ["sh", "-c", "id; command -v node; node -v"])
    assert code == 0, out
    assert out.startswith("uid=1000(node) gid=1000(node)"), out
    # Where the official image has it, and the version its name carries (node:22.12.0-...).
    assert out.splitlines()[1:] == ["/usr/local/bin/node", "v22.12.0"], out


def test_edge_proxy_starts_with_no_capability_where_the_official_image_cannot(
    dock: Harness,
) -> None:
    # The official image's binary carries cap_net_bind_service: with every capability dropped
    # the kernel refuses to run it. images/edge-proxy removes it and gives /data its user.
    official = RECIPES["caddy-base"].tag
    unprivileged = {**HARDENED, "user": "1000:1000"}
    code, out = dock.run_once(official, "official", ["caddy", "version"], **unprivileged)
    assert code != 0 and "operation not permitted" in out, (code, out)
    edge = RECIPES["edge-proxy"].tag
    probe = ["sh", "-c", "id -u; stat -c '%u %n' /data /config; caddy version"]
    code, out = dock.run_once(edge, "edge", probe, **HARDENED)
    assert code == 0, out
    assert out.splitlines()[:3] == ["1000", "1000 /data", "1000 /config"], out


def test_the_pitr_postgres_image_runs_the_pgbackrest_of_every_other_side(dock: Harness) -> None:
    # pgBackRest refuses a peer of another version: the image's must be the host's (Debian's).
    host = subprocess.run(["pgbackrest", "version"], capture_output=True, text=True, check=True)
    probe = [
        "sh",
        "-c",
        "pgbackrest version; stat -c '%U %n' /var/lib/pgbackrest "
        "/var/spool/pgbackrest /var/log/pgbackrest /var/lib/pgbackrest-drill; "
        "python3 -m pitr archive-now --help | head -1",
    ]
    code, out = dock.run_once(
        RECIPES["postgres-pitr"].tag, "pitr", probe, user="postgres", **HARDENED
    )
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == host.stdout.strip() == "pgBackRest 2.45"
    assert lines[1:5] == [
        "postgres /var/lib/pgbackrest",
        "postgres /var/spool/pgbackrest",
        "postgres /var/log/pgbackrest",
        "postgres /var/lib/pgbackrest-drill",
    ]
    assert lines[5].startswith("usage: python -m pitr archive-now"), out  # the agent's tool


EDGE_ROUTES = {
    "dev-ports": EdgeRoutes(by_port={3000: "gateway:3000", 3008: "frontend:3008"}),
    "hosts-plain-http": EdgeRoutes(by_host={"shop.example.com": "frontend:3008"}),
    "tls-auto": EdgeRoutes(
        by_host={"shop.example.com": "frontend:3008"},
        tls=EdgeTls(certificates="auto", email="ops@example.com"),
    ),
    "tls-files": EdgeRoutes(
        by_host={"shop.example.com": "frontend:3008", "api.example.com": "gateway:3000"},
        tls=EdgeTls(certificates="files"),
        https_port=8443,
    ),
    "tls-internal": EdgeRoutes(
        by_host={"shop.example.com": "frontend:3008"},
        tls=EdgeTls(certificates="internal"),
        retry_seconds=0,
    ),
}


@pytest.mark.parametrize("case", sorted(EDGE_ROUTES))
def test_every_kind_of_edge_configuration_is_one_caddy_accepts(dock: Harness, case: str) -> None:
    # What no CA can be asked for here (ACME) is still parsed by Caddy itself.
    script = 'printf %s "$CADDYFILE" > /tmp/Caddyfile && caddy adapt --config /tmp/Caddyfile'
    code, out = dock.run_once(
        RECIPES["edge-proxy"].tag,
        "adapt",
        ["sh", "-c", script],
        environment={"CADDYFILE": render(EDGE_ROUTES[case])},
    )
    assert code == 0, out
    adapted = json.loads(out[out.index("{") :])
    servers = adapted["apps"]["http"]["servers"]
    assert adapted["admin"] == {"disabled": True}
    # No HTTP/3 (only TCP is published): no server speaks it, none advertises it.
    assert all(server["protocols"] == ["h1", "h2"] for server in servers.values())
    listening = sorted(address for server in servers.values() for address in server["listen"])
    tls = EDGE_ROUTES[case].tls
    if tls is None:
        assert "127.0.0.1:8079" in listening and ":8443" not in listening
    else:
        assert {":8080", ":8443", "127.0.0.1:8079"} <= set(listening)
        if tls.certificates == "files":
            assert adapted["apps"]["tls"]["certificates"]["load_files"][0]["certificate"] == (
                "/etc/caddy/tls-certificate.pem"
            )
        if tls.certificates == "internal":
            (policy,) = adapted["apps"]["tls"]["automation"]["policies"]
            assert policy["issuers"] == [{"module": "internal"}]


# Two upstreams under one name: one answers, the other takes the first connection made to it,
# never answers it, and then refuses every other (an address on a machine gone mid-request; the
# refusal stands for the dials that then go unanswered, which Caddy passes over too).
APP_ANSWERS = (
    "require('http').createServer((q, r) => r.end('answered ' + q.method))"
    ".listen(3000, () => console.log('listening'))"
)
APP_HOLDS_ONE = (
    "const held = []; const s = require('net').createServer((c) => {"
    " held.push(c); s.close(); console.log('held a request'); });"
    " s.listen(3000, () => console.log('listening'))"
)


def test_the_edge_tries_a_get_again_when_an_address_takes_it_and_never_answers(
    dock: Harness,
) -> None:
    network = dock.network("answer-net")
    holder, answerer = (
        dock.run(NODE_IMAGE, role, command=["node", "-e", script])
        for role, script in (("holds", APP_HOLDS_ONE), ("answers", APP_ANSWERS))
    )
    # The name `app` is at first the holder's alone, so that the GET goes there.
    network.connect(holder, aliases=["app"])
    caddyfile = render(EdgeRoutes(by_port={8081: "app:3000"}, retry_seconds=8, answer_seconds=2))
    script = 'printf %s "$CADDYFILE" > /tmp/Caddyfile && exec caddy run --config /tmp/Caddyfile'
    edge = dock.run(
        RECIPES["edge-proxy"].tag,
        "edge",
        command=["sh", "-c", script],
        environment={"CADDYFILE": caddyfile},
        network=network.name,
        ports={"8081/tcp": ("127.0.0.1", None)},
    )
    port = host_port(edge, "8081/tcp")
    for container in (holder, answerer):
        wait_for(functools.partial(logged, container, "listening"), timeout=30, what=container.name)
    wait_for(functools.partial(logged, edge, "serving initial"), timeout=30, what="the edge")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        get = pool.submit(http_get_text, f"http://127.0.0.1:{port}/")
        wait_for(functools.partial(logged, holder, "held a request"), timeout=10, what="held")
        # Another address under the name while the GET waits, as Swarm starts a lost task again.
        network.connect(answerer, aliases=["app"])
        answer = get.result(timeout=15)
    waited = time.monotonic() - started
    assert answer == (200, "answered GET")
    assert waited >= 2, f"answered after {waited:.1f} s, before the answer timeout"


def logged(container: Any, text: str) -> bool:
    return text in logs_of(container)


def http_get_text(url: str) -> tuple[int, str]:
    """GET `url` (loopback only): the status and the body as text."""
    assert url.startswith("http://127.0.0.1:"), url
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (loopback)
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as err:
        return int(err.code), err.read().decode()


# ----------------------------------------------------------------------------------------------
# Secrets as files: the engine behaviour the Pulumi program builds on


def test_put_archive_into_created_container_reaches_a_read_only_consumer(dock: Harness) -> None:
    secret = password()
    volume = dock.seed_secrets("secrets", {"db_password": secret})
    code, out = dock.run_once(
        BASE_IMAGE,
        "reader",
        [
            "sh",
            "-c",
            "id -u; stat -c '%u:%g %a' /run/secrets/db_password; cat /run/secrets/db_password;"
            " echo; touch /run/secrets/other 2>&1 || echo not-writable",
        ],
        user="1000:1000",
        volumes={volume: {"bind": "/run/secrets", "mode": "ro"}},
        **HARDENED,
    )
    assert code == 0, out
    assert out.splitlines()[:3] == ["1000", "0:0 444", secret], out
    assert "not-writable" in out


def test_put_archive_is_refused_when_the_root_filesystem_is_read_only(dock: Harness) -> None:
    """The trap in ARCHITECTURE.md: the provider's uploads target `/`, which is refused on a
    read-only root even though the file would land on the mounted volume."""
    volume = dock.volume("secrets")
    target = dock.create(
        BASE_IMAGE,
        "readonly",
        command=["true"],
        read_only=True,
        volumes={volume.name: {"bind": "/run/secrets", "mode": "rw"}},
    )
    with pytest.raises(docker.errors.APIError, match="rootfs is marked read-only"):
        target.put_archive("/", secrets_tar({"db_password": "x"}))
    # The daemon checks the destination *path*: an archive put to the volume's mount point
    # itself is accepted (daemon/archive.go: checkIfPathIsInAVolume), but the provider's
    # uploads always target `/`, hence the separate seed container.
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("db_password")
        info.size, info.mode = 1, 0o444
        tar.addfile(info, io.BytesIO(b"x"))
    assert target.put_archive("/run/secrets", buffer.getvalue())


# ----------------------------------------------------------------------------------------------
# PostgreSQL


def test_postgres_as_root_initialises_from_password_file_and_drops_to_postgres(
    dock: Harness,
) -> None:
    secret = password()
    secrets = dock.seed_secrets("secrets", {"db_password": secret})
    network = dock.network("net")
    pg = dock.run(
        POSTGRES_IMAGE,
        "pg",
        command=["-c", "max_connections=200", "-c", "shared_buffers=256MB"],
        environment={
            "POSTGRES_USER": PG_USER,
            "POSTGRES_DB": PG_DB,
            "POSTGRES_PASSWORD_FILE": "/run/secrets/db_password",
        },
        volumes={secrets: {"bind": "/run/secrets", "mode": "ro"}},
        network=network.name,
    )
    wait_postgres_ready(pg, PG_USER, PG_DB)
    ip = ip_on(pg, network)

    assert proc1_ids(pg)[:2] == ("999", "999")
    assert psql(pg, ip, "SHOW max_connections", secret=secret) == (0, "200\n")
    assert psql(pg, ip, "SHOW shared_buffers", secret=secret) == (0, "256MB\n")
    assert psql(pg, ip, "SHOW listen_addresses", secret=secret) == (0, "*\n")
    assert psql(pg, ip, "SELECT current_user || '@' || current_database()", secret=secret) == (
        0,
        f"{PG_USER}@{PG_DB}\n",
    )
    code, out = psql(
        pg,
        ip,
        "SELECT left(rolpassword, 14) FROM pg_authid WHERE rolname = current_user",
        secret=secret,
    )
    assert (code, out) == (0, "SCRAM-SHA-256$\n")
    code, hba = exec_in(pg, ["cat", "/var/lib/postgresql/data/pg_hba.conf"])
    assert code == 0
    assert "host all all all scram-sha-256" in hba.splitlines()

    code, out = psql(pg, ip, "SELECT 1", secret="wrong-" + secret)
    assert code != 0
    assert f'password authentication failed for user "{PG_USER}"' in out


def test_postgres_hardened_as_postgres_user_and_restart(dock: Harness) -> None:
    """Production: --user postgres, read-only root, no capabilities, no-new-privileges, tmpfs."""
    secret = password()
    secrets = dock.seed_secrets("secrets", {"db_password": secret})
    data = dock.volume("data")
    network = dock.network("net")
    pg = dock.run(
        POSTGRES_IMAGE,
        "pg",
        command=["-c", "max_connections=200", "-c", "shared_buffers=256MB"],
        user="postgres",
        environment={
            "POSTGRES_USER": PG_USER,
            "POSTGRES_DB": PG_DB,
            "POSTGRES_PASSWORD_FILE": "/run/secrets/db_password",
        },
        volumes={
            secrets: {"bind": "/run/secrets", "mode": "ro"},
            data.name: {"bind": "/var/lib/postgresql/data", "mode": "rw"},
        },
        tmpfs={"/var/run/postgresql": "", "/tmp": ""},
        network=network.name,
        **HARDENED,
    )
    wait_postgres_ready(pg, PG_USER, PG_DB)
    ip = ip_on(pg, network)
    assert proc1_ids(pg) == ("999", "999", "0000000000000000")
    assert psql(pg, ip, "SHOW max_connections", secret=secret) == (0, "200\n")
    code, out = psql(pg, ip, "CREATE TABLE kept AS SELECT 42 AS v", secret=secret)
    assert code == 0, out

    pg.restart(timeout=30)
    wait_postgres_ready(pg, PG_USER, PG_DB)
    assert "Skipping initialization" in logs_of(pg)
    assert psql(pg, ip, "SELECT v FROM kept", secret=secret) == (0, "42\n")
    code, out = psql(pg, ip, "SELECT 1", secret="wrong")
    assert code != 0
    assert "password authentication failed" in out


# ----------------------------------------------------------------------------------------------
# Redis


def test_redis_hardened_with_password_conf_and_options(dock: Harness) -> None:
    secret = password()
    secrets = dock.seed_secrets("secrets", {"redis.conf": f"requirepass {secret}\n"})
    network = dock.network("net")
    redis = dock.run(
        REDIS_IMAGE,
        "redis",
        command=[
            "redis-server",
            "/run/secrets/redis.conf",
            "--maxmemory",
            "128mb",
            "--maxmemory-policy",
            "allkeys-lru",
            "--appendonly",
            "yes",
        ],
        user="redis",
        volumes={secrets: {"bind": "/run/secrets", "mode": "ro"}},
        tmpfs={"/tmp": ""},
        network=network.name,
        **HARDENED,
    )
    wait_for(
        lambda: running(redis) and "Ready to accept connections" in logs_of(redis),
        timeout=30,
        what="redis to accept connections (logged to stdout)",
        describe=lambda: logs_of(redis),
    )
    assert proc1_ids(redis) == ("999", "999", "0000000000000000")
    ip = ip_on(redis, network)

    code, out = exec_in(redis, ["redis-cli", "-h", ip, "ping"])
    assert "NOAUTH" in out, out
    auth = {"REDISCLI_AUTH": secret}
    assert exec_in(redis, ["redis-cli", "-h", ip, "ping"], env=auth) == (0, "PONG\n")
    wrong = exec_in(redis, ["redis-cli", "-h", ip, "ping"], env={"REDISCLI_AUTH": "wrong"})
    assert "WRONGPASS" in wrong[1], wrong

    def config(name: str) -> str:
        code, out = exec_in(
            redis, ["redis-cli", "-h", ip, "--raw", "config", "get", name], env=auth
        )
        assert code == 0, out
        return out.splitlines()[1]

    assert config("maxmemory") == str(128 * 1024 * 1024)
    assert config("maxmemory-policy") == "allkeys-lru"
    assert config("appendonly") == "yes"
    assert config("daemonize") == "no"
    assert config("dir") == "/data"
    assert config("logfile") == ""
    assert config("bind") == "* -::*"
    assert exec_in(redis, ["redis-cli", "-h", ip, "set", "k", "v"], env=auth) == (0, "OK\n")
    code, listing = exec_in(redis, ["ls", "/data"])
    assert code == 0, listing
    assert "appendonlydir" in listing, listing


def test_redis_as_root_drops_to_redis_and_serves_the_network(dock: Harness) -> None:
    """No password: like the official image, protected mode is off and it binds every address."""
    network = dock.network("net")
    redis = dock.run(REDIS_IMAGE, "redis", network=network.name)
    wait_for(
        lambda: running(redis) and "Ready to accept connections" in logs_of(redis),
        timeout=30,
        what="redis to accept connections",
        describe=lambda: logs_of(redis),
    )
    assert proc1_ids(redis)[:2] == ("999", "999")
    code, out = dock.run_once(
        REDIS_IMAGE,
        "client",
        ["redis-cli", "-h", redis.name, "ping"],
        network=network.name,
        user="redis",
        **HARDENED,
    )
    assert (code, out.strip()) == (0, "PONG"), out


# ----------------------------------------------------------------------------------------------
# Node.js service stand-in, over a user-defined network


@pytest.fixture(scope="module")
def backing(module_dock: Harness) -> dict[str, Any]:
    """One network with a hardened PostgreSQL and a hardened password-protected Redis."""
    dock = module_dock
    db_secret, redis_secret, jwt = password(), password(), password()
    secrets = dock.seed_secrets(
        "secrets",
        {
            "db_password": db_secret,
            "db_password_wrong": "wrong-" + db_secret,
            "redis_password": redis_secret,
            "redis_password_wrong": "wrong-" + redis_secret,
            "redis.conf": f"requirepass {redis_secret}\n",
            "jwt_secret": jwt,
            "empty": "",
        },
    )
    network = dock.network("net")
    ro_secrets = {secrets: {"bind": "/run/secrets", "mode": "ro"}}
    pg = dock.run(
        POSTGRES_IMAGE,
        "pg",
        user="postgres",
        environment={
            "POSTGRES_USER": PG_USER,
            "POSTGRES_DB": PG_DB,
            "POSTGRES_PASSWORD_FILE": "/run/secrets/db_password",
        },
        volumes=ro_secrets,
        tmpfs={"/var/run/postgresql": "", "/tmp": ""},
        network=network.name,
        **HARDENED,
    )
    redis = dock.run(
        REDIS_IMAGE,
        "redis",
        command=["/run/secrets/redis.conf", "--appendonly", "yes"],
        user="redis",
        volumes=ro_secrets,
        network=network.name,
        **HARDENED,
    )
    wait_postgres_ready(pg, PG_USER, PG_DB)
    return {"network": network, "secrets": secrets, "pg": pg, "redis": redis}


def node_service(
    dock: Harness, backing: dict[str, Any], role: str, env: dict[str, str], port: int = 3001
) -> tuple[Any, int]:
    """A hardened reference-service container published on 127.0.0.1:<random>; (container, port)."""
    environment = {
        "PORT": str(port),
        "SERVICE_NAME": role,
        "NODE_ENV": "production",
        "CORS_ORIGINS": "http://localhost:13008,http://localhost:13009",
        "JWT_SECRET_FILE": "/run/secrets/jwt_secret",
        **env,
    }
    container = dock.run(
        NODE_IMAGE,
        role,
        user="1000:1000",
        environment=environment,
        volumes={backing["secrets"]: {"bind": "/run/secrets", "mode": "ro"}},
        tmpfs={"/tmp": ""},
        network=backing["network"].name,
        ports={f"{port}/tcp": ("127.0.0.1", None)},
        **HARDENED,
    )
    wait_for(
        lambda: running(container) and "listening on" in logs_of(container),
        timeout=30,
        what=f"{role} to listen",
        describe=lambda: logs_of(container),
    )
    return container, host_port(container, f"{port}/tcp")


def database_env(backing: dict[str, Any], password_file: str) -> dict[str, str]:
    return {
        "DATABASE_HOST": backing["pg"].name,
        "DATABASE_PORT": "5432",
        "DATABASE_NAME": PG_DB,
        "DATABASE_USER": PG_USER,
        "DATABASE_PASSWORD_FILE": f"/run/secrets/{password_file}",
    }


def redis_env(backing: dict[str, Any], password_file: str) -> dict[str, str]:
    return {
        "REDIS_HOST": backing["redis"].name,
        "REDIS_PORT": "6379",
        "REDIS_PASSWORD_FILE": f"/run/secrets/{password_file}",
    }


def test_node_service_healthy_with_right_credentials_and_gateway_proxies(
    dock: Harness, backing: dict[str, Any]
) -> None:
    env = {**database_env(backing, "db_password"), **redis_env(backing, "redis_password")}
    customer, port = node_service(dock, backing, "customer", env)
    status, body, headers = http_get(
        f"http://127.0.0.1:{port}/health", headers={"Origin": "http://localhost:13008"}
    )
    assert status == 200, body
    assert headers["Access-Control-Allow-Origin"] == "http://localhost:13008"
    assert headers["X-Content-Type-Options"] == "nosniff"
    _, _, headers = http_get(
        f"http://127.0.0.1:{port}/health", headers={"Origin": "http://evil.invalid"}
    )
    assert "Access-Control-Allow-Origin" not in headers
    assert body["status"] == "ok"
    assert body["service"] == "customer"
    assert body["checks"]["jwt"] == "ok"
    assert body["checks"]["database"].startswith(f"ok ({PG_USER}@")
    assert body["checks"]["redis"].startswith("ok (")
    assert proc1_ids(customer) == ("1000", "1000", "0000000000000000")
    assert exec_in(customer, NODE_HEALTH_CHECK)[0] == 0

    gateway, gateway_port = node_service(
        dock,
        backing,
        "gateway",
        {"UPSTREAMS": f"customer=http://{customer.name}:3001"},
        port=3000,
    )
    status, body, _ = http_get(f"http://127.0.0.1:{gateway_port}/customer/health")
    assert (status, body["service"]) == (200, "customer"), body
    status, body, _ = http_get(f"http://127.0.0.1:{gateway_port}/health")
    assert (status, body["service"], body["checks"]) == (200, "gateway", {"jwt": "ok"}), body
    assert http_get(f"http://127.0.0.1:{gateway_port}/nowhere/health")[0] == 404
    assert exec_in(gateway, NODE_HEALTH_CHECK)[0] == 0


def test_gateway_forwarding_survives_a_starved_loop_and_a_gone_address(dock: Harness) -> None:
    # The gateway's forwarding (images/reference-service/upstream.js) under Node's own test
    # runner, in the image it ships in: a connection made while the event loop was kept busy
    # past the connect timeout still counts, and an answer whose only address refuses is looked
    # up once more (tests/integration/upstream.test.js, on the container's loopback).
    script = (Path(__file__).parent / "upstream.test.js").read_bytes()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("upstream.test.js")
        info.size, info.mode = len(script), 0o444
        tar.addfile(info, io.BytesIO(script))
    runner = dock.create(
        NODE_IMAGE, "upstream-test", command=["node", "--test", "/app/upstream.test.js"]
    )
    assert runner.put_archive("/app", buffer.getvalue()), "put_archive of the test failed"
    runner.start()
    status = runner.wait(timeout=120)
    output = runner.logs().decode(errors="replace")
    assert status["StatusCode"] == 0, output
    # Every test in the script ran and passed (a script that stopped early would pass fewer).
    written = script.decode().count("\ntest(")
    assert written >= 4 and f"# pass {written}\n" in output and "# fail 0\n" in output, output


def test_node_service_unhealthy_with_wrong_database_password(
    dock: Harness, backing: dict[str, Any]
) -> None:
    env = {**database_env(backing, "db_password_wrong"), **redis_env(backing, "redis_password")}
    service, port = node_service(dock, backing, "order", env)
    status, body, _ = http_get(f"http://127.0.0.1:{port}/health")
    assert status == 503, body
    assert body["status"] == "unhealthy"
    assert f'password authentication failed for user "{PG_USER}"' in body["reason"]
    assert body["reason"].startswith("database:")
    assert body["checks"]["redis"].startswith("ok (")
    assert exec_in(service, NODE_HEALTH_CHECK)[0] == 1


def test_node_service_unhealthy_with_wrong_redis_password_or_empty_jwt(
    dock: Harness, backing: dict[str, Any]
) -> None:
    env = {
        **redis_env(backing, "redis_password_wrong"),
        "JWT_SECRET_FILE": "/run/secrets/empty",
    }
    _, port = node_service(dock, backing, "cart", env)
    status, body, _ = http_get(f"http://127.0.0.1:{port}/health")
    assert status == 503, body
    assert "redis: AUTH refused: WRONGPASS" in body["reason"]
    assert "jwt: JWT_SECRET_FILE: /run/secrets/empty is empty" in body["reason"]


# ----------------------------------------------------------------------------------------------
# Networks: bridge isolation (iptables) and the internal-network trap


def test_internal_network_isolation_and_no_published_ports(dock: Harness) -> None:
    internal = dock.network("internal", internal=True)
    other = dock.network("other")
    redis = dock.run(REDIS_IMAGE, "redis", network=other.name)
    wait_for(
        lambda: running(redis) and "Ready to accept connections" in logs_of(redis),
        timeout=30,
        what="redis",
        describe=lambda: logs_of(redis),
    )
    redis_ip = ip_on(redis, other)
    probe = ["timeout", "3", "redis-cli", "-h", redis_ip, "ping"]

    # Same network: reachable. Another network (here an internal one): not reachable.
    assert dock.run_once(REDIS_IMAGE, "same", probe, network=other.name) == (
        0,
        "PONG\n",
    )
    code, out = dock.run_once(REDIS_IMAGE, "across", probe, network=internal.name)
    assert code != 0, out
    assert "PONG" not in out, out

    # A container only on an internal network gets no published port, whatever it asks for.
    node = dock.run(
        NODE_IMAGE,
        "published",
        environment={"PORT": "3000"},
        network=internal.name,
        ports={"3000/tcp": ("127.0.0.1", None)},
    )
    node.reload()
    assert not node.attrs["NetworkSettings"]["Ports"], node.attrs["NetworkSettings"]["Ports"]
