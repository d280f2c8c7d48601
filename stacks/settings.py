"""Typed, frozen settings of one stack: everything that differs between environments.

A stack file holds one object under the key `ecommerce:platform`; it is validated here in one
`model_validate_json` against the service catalogue. Unknown keys and wrong types are errors
(strict models, `extra="forbid"`); the cross-field rules below name the key that is wrong.
Defaults are the secure choice: a stack relaxes them explicitly (dev does), never by omission.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic.alias_generators import to_camel

from provider import canonical
from stacks.catalogue import SERVICE_ENV_NAMES, Catalogue, Role
from stacks.images import is_pinned

Port = Annotated[int, Field(ge=1, le=65535)]
# PostgreSQL memory units as the server accepts them in `-c` settings.
PgMemory = Annotated[str, Field(pattern=r"^[1-9][0-9]*(kB|MB|GB|TB)$")]
# Docker's json-file log driver size, e.g. `10m`.
LogSize = Annotated[str, Field(pattern=r"^[1-9][0-9]*[kmg]$")]
Duration = Annotated[str, Field(pattern=r"^[1-9][0-9]*(ms|s|m|h)$")]
PidsLimit = Annotated[int, Field(ge=16, le=1_000_000)]
RedisPolicy = Literal[
    "noeviction",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
]


class StrictModel(BaseModel):
    """Base of every settings model: camelCase keys in YAML, no unknown keys, immutable."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=True,
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        # A field's docstring is its description: in the editor schema and docs/settings.md.
        use_attribute_docstrings=True,
    )


class Resources(StrictModel):
    """Limits of one container."""

    memory_mb: int = Field(default=512, ge=16)
    """Hard memory limit (swap disabled)."""
    cpus: float = Field(default=1.0, gt=0, le=64)
    """CPU time, in cores (`docker run --cpus`)."""

    @field_validator("cpus")
    @classmethod
    def _kept_by_provider(cls, cpus: float) -> float:
        # A value the provider reads back differently would replace the container on every
        # deploy (provider/canonical.py).
        try:
            canonical.cpus(cpus)
        except canonical.NotKeptError as err:
            raise ValueError(f"{err}; use a value it keeps, such as 0.1, 0.25, 1 or 1.5") from None
        return cpus


class Hardening(StrictModel):
    """Container security profile applied to every container of the stack."""

    read_only_root: bool = True
    """Read-only root filesystem; writable paths come from volumes and tmpfs."""
    drop_all_capabilities: bool = True
    """Drop every Linux capability (`cap_drop: ALL`); needs `runAsNonRoot`."""
    no_new_privileges: bool = True
    """No process may gain privileges (setuid binaries, file capabilities)."""
    run_as_non_root: bool = True
    """Start as the image's unprivileged user instead of root-then-drop (needed with no caps)."""


class Logs(StrictModel):
    """Rotation of each container's logs by Docker's json-file driver."""

    max_size: LogSize = "10m"
    """Size of one log file before it is rotated (`10m`, `1g`)."""
    max_files: int = Field(default=5, ge=1, le=100)
    """Rotated files kept per container."""


class HealthCheck(StrictModel):
    """Docker's health check timing of every container (what `pulumi up` waits for)."""

    interval: Duration = "10s"
    """Time between two checks."""
    timeout: Duration = "5s"
    """A check that takes longer fails."""
    retries: int = Field(default=5, ge=1, le=100)
    """Failed checks in a row that make a container unhealthy."""
    start_period: Duration = "30s"
    """Failures in this time after a start do not count (the app is starting)."""


class BuildSettings(StrictModel):
    """An image built from source on the Docker host (like Compose's `build:`), never pushed."""

    context: str = Field(min_length=1)
    """The build context folder, relative to the project (e.g. `../customer-service`)."""
    dockerfile: str | None = None
    """Relative to the context; default `Dockerfile`."""
    args: dict[str, str] = Field(default_factory=dict)
    """Build arguments (`ARG`s of the Dockerfile): not secret, they stay in the image."""
    platform: str = Field(default="linux/amd64", pattern=r"^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$")
    """The platform it is built for (`docker build --platform`), `os/arch[/variant]`: the
    Docker host's, e.g. `linux/arm64` on Apple silicon (another one runs emulated, if at all)."""


class ServiceSettings(StrictModel):
    """One app of the catalogue (the gateway, a business service or a web app)."""

    image: str | None = Field(default=None, min_length=1)
    """A published image; exactly one of `image` and `build`."""
    build: BuildSettings | None = None
    """Build the image from source instead (dev)."""
    host_port: Port | None = None
    """Published on `publishIp`; None keeps the service private."""
    resources: Resources = Resources()
    """The app container's limits."""
    user: str = "1000:1000"
    """Unprivileged user the container runs as when `hardening.runAsNonRoot` is on."""
    env: dict[str, str] = Field(default_factory=dict)
    """Extra non-secret environment for the app (feature flags, log level)."""
    health_command: tuple[str, ...] | None = None
    """Overrides the default `node` probe of `GET /health`, in Docker's `CMD` form."""
    stop_grace_seconds: int = Field(default=30, ge=1, le=3600)
    """From SIGTERM to SIGKILL when the container is stopped, replaced or removed: time to
    finish in-flight requests."""
    pids_limit: PidsLimit = 256
    """Most processes (threads included) the container may run: a fork bomb or a thread leak
    stops there instead of exhausting the host."""
    replicas: int = Field(default=1, ge=1, le=100)
    """Tasks of the app on a swarm (`engine: swarm`); one Docker host runs one."""


class DatabaseTuning(StrictModel):
    """PostgreSQL server settings, passed as `-c` options."""

    max_connections: int = Field(default=200, ge=10, le=10_000)
    """PostgreSQL's `max_connections`: the most sessions at once."""
    shared_buffers: PgMemory = "256MB"
    """PostgreSQL's `shared_buffers`: its own cache (`kB`, `MB`, `GB`, `TB`)."""
    effective_cache_size: PgMemory = "1GB"
    """PostgreSQL's `effective_cache_size`: the planner's guess of all caches together."""
    extra: dict[str, str] = Field(default_factory=dict)
    """Any further server settings, e.g. `work_mem: 8MB`."""


class PostgresSettings(StrictModel):
    """What the databases share; each database may override tuning and resources."""

    image: str = Field(min_length=1)
    """The PostgreSQL image of every database server (`postgres:16.6-bookworm`)."""
    tuning: DatabaseTuning = DatabaseTuning()
    """Server settings of every database, unless it sets its own."""
    resources: Resources = Resources(memory_mb=1024)
    """Limits of each database server, unless it sets its own."""
    shm_size_mb: int = Field(default=256, ge=64)
    """/dev/shm for parallel queries; Docker's 64 MB default is too small for 256MB buffers."""
    stop_grace_seconds: int = Field(default=120, ge=10, le=3600)
    """From the stop signal (SIGINT, PostgreSQL's fast shutdown) to SIGKILL: time to end the
    sessions and write the shutdown checkpoint, so the next start needs no crash recovery."""
    pids_limit: PidsLimit = 1024
    """Most processes of each server: PostgreSQL runs one per connection, so it must exceed
    every database's `maxConnections` with room for the server's own workers."""


class DatabaseSettings(StrictModel):
    """One business service's database server, by the service's name."""

    @model_validator(mode="before")
    @classmethod
    def _one_server(cls, data: Any) -> Any:
        if isinstance(data, dict) and "replicas" in data:
            raise ValueError(
                "replicas: a database runs as one server pinned to the node of its volume "
                "(swarm.placement); scale the apps instead"
            )
        return data

    host_port: Port | None = None
    """Published on `publishIp` (dev, for a local client); unset keeps it private."""
    tuning: DatabaseTuning | None = None
    """Replaces `postgres.tuning` for this server."""
    resources: Resources | None = None
    """Replaces `postgres.resources` for this server."""


class RedisSettings(StrictModel):
    """The Redis server the cart service uses."""

    image: str = Field(min_length=1)
    """The Redis image (`redis:7.4.1-bookworm`)."""
    host_port: Port | None = None
    """Published on `publishIp` (dev); unset keeps it private."""
    require_password: bool = True
    """Clients log in with the generated `redisPassword`."""
    max_memory_mb: int = Field(default=256, ge=8)
    """Redis's `maxmemory`; below the container's memory limit."""
    max_memory_policy: RedisPolicy = "allkeys-lru"
    """What Redis evicts at `maxMemoryMb` (its `maxmemory-policy`)."""
    append_only: bool = True
    """Every write logged to disk (`appendonly`), so a restart loses at most the last second."""
    resources: Resources = Resources(memory_mb=512, cpus=0.5)
    """The Redis container's limits."""
    stop_grace_seconds: int = Field(default=60, ge=10, le=3600)
    """From SIGTERM to SIGKILL: time for Redis to flush its append-only file and save."""
    pids_limit: PidsLimit = 64
    """Most processes (threads included) the container may run: a fork bomb or a thread leak
    stops there instead of exhausting the host."""


class Networks(StrictModel):
    """The stack's private networks."""

    internal: bool = True
    """Private networks (backend, cache, one per database) have no route out of the host."""


class BackupSettings(StrictModel):
    """The scheduled logical backup job (docs/backup.md)."""

    enabled: bool = False
    """Run the backup job container."""
    image: str | None = None
    """Image with the backup tool (built from backup/Dockerfile); required when enabled."""
    every_hours: int = Field(default=24, ge=1, le=24 * 7)
    """A backup of every database this often."""
    keep_last: int = Field(default=7, ge=1)
    """Backups kept, at least, whatever their age."""
    keep_days: int | None = Field(default=30, ge=1)
    """Older backups beyond `keepLast` are pruned; unset: by count only."""
    resources: Resources = Resources(memory_mb=512, cpus=1.0)
    """The job container's limits."""
    user: str = "dbbackup"
    """The backup image's unprivileged user (backup/Dockerfile)."""
    stop_grace_seconds: int = Field(default=60, ge=5, le=3600)
    """From SIGTERM to SIGKILL: a run in progress aborts, ends its dumps and removes its
    partial backup in that time."""
    pids_limit: PidsLimit = 128
    """Most processes (threads included) the container may run: a fork bomb or a thread leak
    stops there instead of exhausting the host."""


class PitrSettings(StrictModel):
    """Point-in-time recovery of every database with pgBackRest (docs/pitr.md): WAL archived
    continuously into an encrypted repository volume per server, physical backups, restore
    drills, all run by an agent container beside each server."""

    enabled: bool = False
    """Run the archiving servers and their agents."""
    image: str | None = Field(default=None, min_length=1)
    """A published image of pitr/Dockerfile built on `postgres.image`; exactly one of `image`
    and `build` when enabled. It runs the servers and their agents."""
    build: BuildSettings | None = None
    """Build pitr/Dockerfile on the Docker host instead (dev); `postgres.image` is passed as its
    POSTGRES_IMAGE, so the server stays the one the stack names."""
    archive_timeout_seconds: int = Field(default=60, ge=10, le=3600)
    """A WAL segment is switched and archived at least this often while anything is written:
    the most committed data a lost volume can cost (the RPO)."""
    full_every_hours: int = Field(default=168, ge=1, le=24 * 90)
    """A full backup this often."""
    diff_every_hours: int | None = Field(default=24, ge=1)
    """A differential backup (changes since the last full) this often; None: none."""
    incr_every_hours: int | None = Field(default=4, ge=1)
    """An incremental backup (changes since the last backup) this often; None: none."""
    keep_full: int = Field(default=2, ge=1, le=100)
    """Full backups kept; older ones and the WAL only they need are expired."""
    keep_diff: int = Field(default=7, ge=1, le=100)
    """Differential backups kept (when `diffEveryHours` makes them)."""
    drill_every_hours: int = Field(default=24, ge=1, le=24 * 31)
    """A restore drill (the latest backup restored, started and checked) this often."""
    check_every_minutes: int = Field(default=5, ge=1, le=60)
    """An end-to-end archiving check (a WAL switch awaited in the repository) this often."""
    max_archive_age_minutes: int = Field(default=15, ge=2, le=24 * 60)
    """The agent turns unhealthy when no check has passed for longer."""
    resources: Resources = Resources(memory_mb=512, cpus=1.0)
    """The agent's: pgBackRest's compression and the drills' throwaway server."""
    stop_grace_seconds: int = Field(default=30, ge=5, le=3600)
    """From SIGTERM to SIGKILL of the agent: a backup or drill in progress stops cleanly."""
    pids_limit: PidsLimit = 256
    """The agent's; its drills run a small PostgreSQL server."""


class SwarmSettings(StrictModel):
    """How the services of a swarm (`engine: swarm`) are placed, published and rolled."""

    endpoint_mode: Literal["vip", "dnsrr"] = "vip"
    """`vip`: the edge's ports through the routing mesh (every node answers, IPVS balances);
    `dnsrr`: each node that runs the edge publishes its ports itself (hosts without IPVS, or
    behind an external balancer)."""
    placement: dict[str, NodeLabel] = Field(default_factory=dict)
    """The node label that pins each workload with a volume to the node holding it: `redis`,
    `edge`, `backup` (when on) and `<service>-db` per database, e.g. `order-db: ecommerce.db`
    runs it on the node labelled with `docker node update --label-add ecommerce.db=true`."""
    update_delay_seconds: int = Field(default=10, ge=0, le=3600)
    """Between two tasks of a rolling update."""
    monitor_seconds: int = Field(default=30, ge=5, le=3600)
    """How long a new task must stay healthy before the update goes on; one that fails within
    it rolls the service back."""
    converge_timeout_seconds: int = Field(default=300, ge=30, le=1140)
    """How long `pulumi up` waits for a service's tasks to run (within the provider's own
    20-minute limit)."""


class RegistrySettings(StrictModel):
    """The private registry the stack's images are pulled from."""

    address: str = Field(pattern=r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?$")
    """Host (and port) as it starts the image names, e.g. `registry.example.com`."""
    username: str | None = Field(default=None, min_length=1)
    """Login; its password is the secret `ecommerce:registryPassword`. Left out, the Docker
    provider uses what `docker login <address>` stored on the machine that runs Pulumi."""


_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
HostName = Annotated[str, Field(pattern=rf"^{_LABEL}(\.{_LABEL})+$")]
"""A fully qualified DNS name in lower case, e.g. `shop.example.com` (no wildcard, no port)."""
NodeLabel = Annotated[str, Field(pattern=r"^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$")]
"""A Swarm node label's key, e.g. `ecommerce.db`."""


class EdgeTls(StrictModel):
    """HTTPS on the edge: where its certificates come from."""

    certificates: Literal["auto", "files", "internal"] = "auto"
    """`auto`: the proxy obtains and renews them from an ACME CA (Let's Encrypt); the host names
    must resolve to this host and `httpPort`/`httpsPort` reach it from the internet. `files`: one
    certificate chain for every host name, from the secrets `ecommerce:edgeTlsCertificate` and
    `ecommerce:edgeTlsKey` (PEM). `internal`: the proxy's own local CA, which no browser trusts
    (staging, tests)."""
    email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+$")
    """ACME account contact (`auto` only): the CA writes there before a certificate expires."""


class EdgeSettings(StrictModel):
    """The edge proxy (Caddy, images/edge-proxy): the one container that publishes the web apps
    and the gateway, by host name over HTTPS and/or on their `hostPort` over plain HTTP."""

    image: str | None = Field(default=None, min_length=1)
    """A published image of images/edge-proxy; exactly one of `image` and `build`."""
    build: BuildSettings | None = None
    """Build images/edge-proxy on the Docker host instead (dev)."""
    hosts: dict[str, HostName] = Field(default_factory=dict)
    """Host name per edge app (`gateway`, `frontend`, `backoffice`), e.g.
    `frontend: shop.example.com`; served on `httpsPort` with `tls`, else on `httpPort`."""
    tls: EdgeTls | None = None
    """HTTPS for the host names, plain HTTP redirecting to it; None: plain HTTP only."""
    http_port: Port = 80
    """Host port of plain HTTP for the host names (a redirect to HTTPS when `tls` is on)."""
    https_port: Port = 443
    """Host port of HTTPS for the host names."""
    resources: Resources = Resources(memory_mb=256, cpus=0.5)
    """The proxy container's limits."""
    user: str = "1000:1000"
    """The image's unprivileged user (images/edge-proxy/Dockerfile)."""
    stop_grace_seconds: int = Field(default=30, ge=1, le=3600)
    """From SIGTERM to SIGKILL: Caddy finishes the requests in flight within it."""
    pids_limit: PidsLimit = 256
    """Most processes (threads included) the container may run: a fork bomb or a thread leak
    stops there instead of exhausting the host."""
    upstream_retry_seconds: int = Field(default=5, ge=0, le=60)
    """How long a request keeps trying the app's other addresses when one refuses (while an
    app is replaced side by side, Docker's DNS answers with both containers)."""
    replicas: int = Field(default=1, ge=1, le=100)
    """Tasks of the proxy on a swarm (`engine: swarm`), all on its pinned node."""


class PlatformSettings(StrictModel):
    """One environment of the platform, as the stack file `ecommerce:platform` describes it."""

    profile: Literal["dev", "prod"]
    """`prod` turns on the production rules (the last column of this reference)."""
    name_prefix: str = Field(pattern=r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")
    """Prefix of every container, network and volume name, e.g. `shop-dev`."""
    publish_ip: str = "127.0.0.1"
    """Host address published ports bind to; loopback unless the stack opens it up."""
    public_host: str = "localhost"
    """Host name in the exported URLs of published services."""
    cors_origins: tuple[str, ...] = Field(min_length=1)
    """Origins the apps accept cross-origin requests from (`https://shop.example.com`)."""
    services: dict[str, ServiceSettings]
    """Every app of the catalogue by name: gateway, customer, product, order, cart, content,
    frontend, backoffice."""
    postgres: PostgresSettings
    """What every database server shares."""
    databases: dict[str, DatabaseSettings] = Field(default_factory=dict)
    """Per database server, by its service's name (customer, product, order, content)."""
    redis: RedisSettings
    """The Redis server."""
    edge: EdgeSettings
    """The edge proxy that publishes the gateway and the web apps."""
    hardening: Hardening = Hardening()
    """The security profile of every container."""
    logs: Logs = Logs()
    """Log rotation of every container."""
    restart: Literal["no", "on-failure", "always", "unless-stopped"] = "unless-stopped"
    """Docker's restart policy of every long-running container."""
    health_check: HealthCheck = HealthCheck()
    """Health check timing of every container."""
    wait_timeout_seconds: int = Field(default=180, ge=10)
    """How long `pulumi up` waits for a container to become healthy."""
    networks: Networks = Networks()
    """The private networks."""
    protect_data: bool = True
    """Pulumi refuses to delete database and Redis volumes while this is on."""
    backup: BackupSettings = BackupSettings()
    """The scheduled logical backups."""
    pitr: PitrSettings = PitrSettings()
    """Point-in-time recovery."""
    engine: Literal["containers", "swarm"] = "containers"
    """`containers`: one Docker host; `swarm`: services on a Docker Swarm (docs/swarm.md)."""
    swarm: SwarmSettings = SwarmSettings()
    """Placement and rollout on a swarm (`engine: swarm`)."""
    registry: RegistrySettings | None = None
    """Credentials for pulling the stack's private images; none for local or public images."""

    @model_validator(mode="after")
    def _check_against_catalogue(self, info: ValidationInfo) -> Self:
        context = info.context or {}
        catalogue: Catalogue | None = context.get("catalogue")
        if catalogue is None:
            raise ValueError("internal: settings must be validated with a catalogue context")
        problems = _problems(self, catalogue)
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def database(self, service: str) -> DatabaseSettings:
        return self.databases.get(service, DatabaseSettings())

    def tuning_of(self, service: str) -> DatabaseTuning:
        return self.database(service).tuning or self.postgres.tuning

    def database_resources(self, service: str) -> Resources:
        return self.database(service).resources or self.postgres.resources


def _problems(s: PlatformSettings, catalogue: Catalogue) -> list[str]:
    """Cross-field rules, each message starting with the key it is about."""
    known = catalogue.names()
    problems: list[str] = []
    for name in s.services:
        if name not in known:
            problems.append(f"services.{name}: unknown service; known: {', '.join(known)}")
    for name in known:
        if name not in s.services:
            problems.append(
                f"services.{name}: missing; every service needs an entry with an image or a build"
            )
    for name, svc in s.services.items():
        if (svc.image is None) == (svc.build is None):
            problems.append(
                f"services.{name}: set exactly one of image (a published image) and build "
                "(a source folder to build)"
            )
        if svc.stop_grace_seconds > s.wait_timeout_seconds:
            problems.append(
                f"services.{name}.stopGraceSeconds: {svc.stop_grace_seconds} is longer than "
                f"waitTimeoutSeconds ({s.wait_timeout_seconds}): a deploy would give an old "
                "container longer to finish its requests than a new one to start; keep it within"
            )
        for key in sorted(set(svc.env) & SERVICE_ENV_NAMES):
            problems.append(f"services.{name}.env.{key}: set by the platform; choose another name")
    with_db = [spec.name for spec in catalogue.with_database()]
    for name in s.databases:
        if name not in with_db:
            problems.append(
                f"databases.{name}: no such database; services with one: {', '.join(with_db)}"
            )
    if s.backup.enabled and s.backup.image is None:
        problems.append("backup.image: required when backup.enabled is true")
    problems += _postgres_process_room(s, catalogue)
    problems += _pitr_problems(s.pitr)
    problems += _archiving_overridden(s, catalogue)
    if s.redis.max_memory_mb >= s.redis.resources.memory_mb:
        problems.append(
            f"redis.maxMemoryMb: {s.redis.max_memory_mb} must stay below the container's "
            f"memory limit redis.resources.memoryMb ({s.redis.resources.memory_mb})"
        )
    problems += [f"corsOrigins: {o!r} is not an origin like https://shop.example.com"
                 for o in s.cors_origins if not _ORIGIN.match(o)]  # fmt: skip
    if s.hardening.drop_all_capabilities and not s.hardening.run_as_non_root:
        problems.append(
            "hardening.dropAllCapabilities: needs hardening.runAsNonRoot; the official postgres "
            "and redis images start as root and cannot drop privileges without capabilities"
        )
    problems += _edge_problems(s, catalogue)
    problems += _engine_problems(s, catalogue)
    problems += _duplicate_host_ports(s)
    problems += _unpublishable_ports(s, catalogue)
    if s.registry is not None and s.registry.address not in {
        registry_of(i) for i in images(s).values()
    }:
        problems.append(
            f"registry.address: no image of the stack is on {s.registry.address}; images name "
            "their registry first, as in registry.example.com/shop/api:1.0"
        )
    if s.profile == "prod":
        problems += _production_problems(s, catalogue)
    return problems


# PostgreSQL's own processes beside its connections: postmaster, checkpointer, background and
# WAL writers, autovacuum launcher and workers, parallel workers (max_worker_processes 8), ...
POSTGRES_OWN_PROCESSES = 32


def _postgres_process_room(s: PlatformSettings, catalogue: Catalogue) -> list[str]:
    problems = []
    for spec in catalogue.with_database():
        needed = s.tuning_of(spec.name).max_connections + POSTGRES_OWN_PROCESSES
        if s.postgres.pids_limit < needed:
            problems.append(
                f"postgres.pidsLimit: {s.postgres.pids_limit} leaves no room for the "
                f"{s.tuning_of(spec.name).max_connections} connections of the {spec.name} "
                f"database (one process each, and {POSTGRES_OWN_PROCESSES} of the server's "
                f"own); raise it to at least {needed}"
            )
    return problems


def _pitr_problems(p: PitrSettings) -> list[str]:
    if not p.enabled:
        return []
    problems = []
    if (p.image is None) == (p.build is None):
        problems.append(
            "pitr: set exactly one of image (a published image of pitr/Dockerfile) and build "
            "(e.g. build: { context: pitr })"
        )
    if p.build is not None and "POSTGRES_IMAGE" in p.build.args:
        problems.append(
            "pitr.build.args.POSTGRES_IMAGE: set by the platform from postgres.image; remove it"
        )
    hours = {"fullEveryHours": p.full_every_hours, "diffEveryHours": p.diff_every_hours,
             "incrEveryHours": p.incr_every_hours}  # fmt: skip
    for shorter, longer in (("diffEveryHours", "fullEveryHours"),
                            ("incrEveryHours", "diffEveryHours"),
                            ("incrEveryHours", "fullEveryHours")):  # fmt: skip
        small, large = hours[shorter], hours[longer]
        if small is not None and large is not None and small >= large:
            problems.append(f"pitr.{shorter}: {small} must be shorter than pitr.{longer} "
                            f"({large}); the {longer[:4]} backups make it pointless")  # fmt: skip
    needed = p.check_every_minutes + -(-p.archive_timeout_seconds // 60) + 1
    if p.max_archive_age_minutes < needed:
        problems.append(
            f"pitr.maxArchiveAgeMinutes: {p.max_archive_age_minutes} would report a stale "
            f"archive between two checks (checkEveryMinutes {p.check_every_minutes}, each "
            f"waiting up to archiveTimeoutSeconds); use at least {needed}"
        )
    return problems


# What PITR sets on every server (pitr/pgbackrest.py, server_settings).
ARCHIVING_SETTINGS = frozenset({"wal_level", "archive_mode", "archive_command", "archive_timeout"})


def _archiving_overridden(s: PlatformSettings, catalogue: Catalogue) -> list[str]:
    if not s.pitr.enabled:
        return []
    tunings = {"postgres.tuning": s.postgres.tuning}
    for spec in catalogue.with_database():
        tuning = s.database(spec.name).tuning
        if tuning is not None:
            tunings[f"databases.{spec.name}.tuning"] = tuning
    return [
        f"{key}.extra.{name}: set by pitr (archiving into pgBackRest); remove it"
        for key, tuning in tunings.items()
        for name in sorted(set(tuning.extra) & ARCHIVING_SETTINGS)
    ]


def pinned_workloads(s: PlatformSettings, catalogue: Catalogue) -> list[str]:
    """What holds a volume, so runs on one node of a swarm: Redis, the edge (its
    certificates), the backup job, each database (its PITR agent goes with it)."""
    pinned = ["redis", "edge", *(f"{spec.name}-db" for spec in catalogue.with_database())]
    return pinned + (["backup"] if s.backup.enabled else [])


def _engine_problems(s: PlatformSettings, catalogue: Catalogue) -> list[str]:
    replicated = {f"services.{n}.replicas": svc.replicas for n, svc in s.services.items()}
    replicated["edge.replicas"] = s.edge.replicas
    if s.engine == "containers":
        return [f"{key}: {n} replicas need engine: swarm; one Docker host runs one of each"
                for key, n in replicated.items() if n > 1]  # fmt: skip
    pinned = pinned_workloads(s, catalogue)
    problems = [
        f"swarm.placement.{key}: missing; name the label of the node that holds its volume, "
        f"e.g. `{key}: ecommerce.data` after `docker node update --label-add ecommerce.data=true "
        "<node>`"
        for key in pinned
        if key not in s.swarm.placement
    ]
    problems += [
        f"swarm.placement.{key}: nothing with a volume is called that; expected one of "
        f"{', '.join(pinned)}"
        for key in s.swarm.placement
        if key not in pinned
    ]
    builds = [f"services.{n}.build" for n, svc in s.services.items() if svc.build is not None]
    builds += ["edge.build"] if s.edge.build is not None else []
    builds += ["pitr.build"] if s.pitr.enabled and s.pitr.build is not None else []
    problems += [f"{key}: a swarm runs published images that every node can pull; push the "
                 "image and set it instead" for key in builds]  # fmt: skip
    problems += [
        f"{key}: only the edge publishes on a swarm (its ports reach every node); remove it"
        for key in host_ports(s)
        if not key.startswith("edge.") and not _published_by_the_edge(key, catalogue)
    ]
    if s.publish_ip != "0.0.0.0":  # noqa: S104 (a comparison, not a bind)
        problems.append(
            f"publishIp: {s.publish_ip} cannot be kept on a swarm, which publishes on every "
            "address of its nodes; set 0.0.0.0 and filter with the hosts' firewalls"
        )
    if s.swarm.endpoint_mode == "dnsrr" and s.edge.replicas > 1:
        problems.append(
            f"edge.replicas: {s.edge.replicas} with swarm.endpointMode dnsrr: each task "
            "publishes its ports on its own node, where only one task can hold them (a pinned "
            "edge has one node); use 1, or endpointMode vip"
        )
    return problems


def edge_apps(catalogue: Catalogue) -> list[str]:
    """The services the edge proxy serves: the gateway and the web apps."""
    return [spec.name for spec in catalogue.services if spec.role is not Role.BUSINESS]


def _edge_problems(s: PlatformSettings, catalogue: Catalogue) -> list[str]:
    edge, problems = s.edge, []
    if (edge.image is None) == (edge.build is None):
        problems.append(
            "edge: set exactly one of image (a published image of images/edge-proxy) and build "
            "(e.g. build: { context: images/edge-proxy })"
        )
    apps = edge_apps(catalogue)
    for app in edge.hosts:
        if app not in apps:
            problems.append(f"edge.hosts.{app}: only {', '.join(apps)} sit behind the edge")
    first_app: dict[str, str] = {}
    for app, host in edge.hosts.items():
        if host in first_app:
            problems.append(f"edge.hosts.{app}: {host} is already the host of {first_app[host]}")
        first_app.setdefault(host, app)
    if edge.tls is not None and not edge.hosts:
        problems.append(
            "edge.tls: HTTPS needs the host names to serve; set edge.hosts (e.g. "
            "frontend: shop.example.com) or remove tls"
        )
    if edge.tls is not None and edge.tls.email is not None and edge.tls.certificates != "auto":
        problems.append(
            f"edge.tls.email: only used with certificates: auto (ACME), not "
            f"{edge.tls.certificates}; remove it"
        )
    if edge.tls is not None and edge.tls.certificates == "auto":
        problems += _acme_unreachable(s)
    if edge.stop_grace_seconds > s.wait_timeout_seconds:
        problems.append(
            f"edge.stopGraceSeconds: {edge.stop_grace_seconds} is longer than "
            f"waitTimeoutSeconds ({s.wait_timeout_seconds}); keep it within"
        )
    return problems


def _acme_unreachable(s: PlatformSettings) -> list[str]:
    """Why an ACME CA could never reach this host to hand out certificates, if it could not."""
    edge = s.edge
    if s.publish_ip.startswith("127.") or s.publish_ip == "::1":
        return [
            f"edge.tls.certificates: auto needs the ACME CA to reach the edge, but publishIp is "
            f"{s.publish_ip} (loopback); publish on the host's address, or use certificates: "
            "files or internal"
        ]
    if edge.http_port != 80 and edge.https_port != 443:
        return [
            f"edge.tls.certificates: auto needs port 80 or 443 (the ACME challenges), but "
            f"httpPort is {edge.http_port} and httpsPort {edge.https_port}; use the standard "
            "ports, or certificates: files or internal"
        ]
    return []


_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$")


def host_ports(s: PlatformSettings) -> dict[str, int]:
    """Every published host port by the key that sets it."""
    ports: dict[str, int] = {}
    for name, svc in s.services.items():
        if svc.host_port is not None:
            ports[f"services.{name}.hostPort"] = svc.host_port
    for name, db in s.databases.items():
        if db.host_port is not None:
            ports[f"databases.{name}.hostPort"] = db.host_port
    if s.redis.host_port is not None:
        ports["redis.hostPort"] = s.redis.host_port
    if s.edge.hosts:
        ports["edge.httpPort"] = s.edge.http_port
    if s.edge.hosts and s.edge.tls is not None:
        ports["edge.httpsPort"] = s.edge.https_port
    return ports


def _duplicate_host_ports(s: PlatformSettings) -> list[str]:
    first_key: dict[int, str] = {}
    problems = []
    for key, port in host_ports(s).items():
        if port in first_key:
            problems.append(f"{key}: host port {port} is already used by {first_key[port]}")
        else:
            first_key[port] = key
    return problems


def _unpublishable_ports(s: PlatformSettings, catalogue: Catalogue) -> list[str]:
    # Docker publishes no port of a container attached only to internal networks; everything but
    # the edge sits on private networks only, so a host port there needs them non-internal.
    if not s.networks.internal:
        return []
    return [
        f"{key}: cannot be published while networks.internal is true (Docker publishes no port "
        "on internal networks); remove the port or set networks.internal to false"
        for key in host_ports(s)
        if not _published_by_the_edge(key, catalogue)
    ]


def _published_by_the_edge(key: str, catalogue: Catalogue) -> bool:
    """Whether the edge proxy (on the edge network, never internal) publishes this port."""
    if key.startswith("edge."):
        return True
    return key.startswith("services.") and key.split(".")[1] in edge_apps(catalogue)


def images(s: PlatformSettings) -> dict[str, str]:
    """Every image of the stack by the key that sets it."""
    found = {f"services.{n}.image": svc.image for n, svc in s.services.items() if svc.image}
    found["postgres.image"] = s.postgres.image
    found["redis.image"] = s.redis.image
    if s.backup.image is not None:
        found["backup.image"] = s.backup.image
    if s.edge.image is not None:
        found["edge.image"] = s.edge.image
    if s.pitr.enabled and s.pitr.image is not None:
        found["pitr.image"] = s.pitr.image
    return found


def registry_of(image: str) -> str | None:
    """The registry host an image is pulled from, when its name gives one (Docker's rule: a
    first component with a dot or a port, or `localhost`); None for Docker Hub."""
    first, slash, _ = image.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first
    return None


_UNPINNED = "an image without a version tag (with a digit) or a digest"
_BUILT = "any: prod runs pinned published images, built and pushed in CI"
PROD_REFUSES: dict[str, str] = {
    "services.<name>.build": _BUILT,
    "services.<name>.image": _UNPINNED,
    "services.<name>.hostPort": "any: only the edge proxy publishes ports (`edge.hosts`)",
    "postgres.image": _UNPINNED,
    "databases.<name>.hostPort": "any: databases are never published",
    "redis.image": _UNPINNED,
    "redis.hostPort": "any: Redis is never published",
    "redis.requirePassword": "`false`",
    "edge.image": _UNPINNED,
    "edge.build": _BUILT,
    "edge.tls": "unset: prod serves HTTPS",
    "backup.image": _UNPINNED,
    "pitr.image": _UNPINNED,
    "pitr.build": _BUILT,
    "hardening.readOnlyRoot": "`false`",
    "hardening.dropAllCapabilities": "`false`",
    "hardening.noNewPrivileges": "`false`",
    "hardening.runAsNonRoot": "`false`",
    "networks.internal": "`false`",
    "corsOrigins": "an origin that is not `https://`",
}
"""What the prod profile refuses, by key (`<name>`: any service or database), for the settings
reference (stacks/reference.py); a unit test holds it to `_production_problems` below."""


def _production_problems(s: PlatformSettings, catalogue: Catalogue) -> list[str]:
    problems = [
        f"services.{name}.build: prod runs pinned published images; build and push them in CI, "
        f"then set services.{name}.image"
        for name, svc in s.services.items()
        if svc.build is not None
    ]
    for key, image in images(s).items():
        if not is_pinned(image):
            problems.append(
                f"{key}: {image!r} is not pinned; prod needs a version tag (with a digit, e.g. "
                "1.4.2) or a digest"
            )
    if s.pitr.build is not None:
        problems.append(
            "pitr.build: prod runs a pinned published image; build pitr/Dockerfile in CI on "
            "postgres.image, push it and set pitr.image"
        )
    if s.edge.build is not None:
        problems.append(
            "edge.build: prod runs a pinned published image; build images/edge-proxy in CI, "
            "push it and set edge.image"
        )
    if s.edge.tls is None:
        problems.append(
            "edge.tls: must be set in prod: the edge serves HTTPS for edge.hosts (certificates: "
            "auto, files or internal)"
        )
    apps = edge_apps(catalogue)
    for key in host_ports(s):
        if key.startswith("databases.") or key == "redis.hostPort":
            problems.append(f"{key}: databases and Redis are never published in prod")
        elif key.startswith("services.") and key.split(".")[1] in apps:
            app = key.split(".")[1]
            problems.append(
                f"{key}: prod serves the edge apps by host name over HTTPS only; remove it and "
                f"set edge.hosts.{app}"
            )
        elif key.startswith("services."):
            problems.append(
                f"{key}: only the edge proxy publishes ports in prod (edge.hosts, edge.tls)"
            )
    for flag, on in s.hardening.model_dump(by_alias=True).items():
        if not on:
            problems.append(f"hardening.{flag}: must be true in prod")
    if not s.networks.internal:
        problems.append("networks.internal: must be true in prod")
    if not s.redis.require_password:
        problems.append("redis.requirePassword: must be true in prod")
    problems += [f"corsOrigins: {o!r} must use https in prod"
                 for o in s.cors_origins if not o.startswith("https://")]  # fmt: skip
    return problems
