"""The database servers, Redis and point-in-time recovery: their settings and their own rules
(databases only for services with one, Redis's memory within its container, PITR's image and
backup cadences). The servers' room for their connections and the archiving settings PITR
owns span several keys: stacks/settings/rules/across.py."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, Field, ValidationInfo, model_validator

from stacks.settings.common import (
    BuildSettings,
    PgMemory,
    PidsLimit,
    Port,
    Problem,
    Resources,
    StrictModel,
    catalogue_of,
    reject_if_any,
)

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


def _only_services_with_one(
    databases: dict[str, DatabaseSettings], info: ValidationInfo
) -> dict[str, DatabaseSettings]:
    with_db = [spec.name for spec in catalogue_of(info).with_database()]
    reject_if_any(
        [
            (name, f"no such database; services with one: {', '.join(with_db)}")
            for name in databases
            if name not in with_db
        ]
    )
    return databases


Databases = Annotated[dict[str, DatabaseSettings], AfterValidator(_only_services_with_one)]
"""Database servers by their service's name (checked against the catalogue)."""


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

    @model_validator(mode="after")
    def _memory_within_the_container(self) -> Self:
        if self.max_memory_mb >= self.resources.memory_mb:
            reject_if_any(
                [
                    (
                        "maxMemoryMb",
                        f"{self.max_memory_mb} must stay below the container's memory limit "
                        f"redis.resources.memoryMb ({self.resources.memory_mb})",
                    )
                ]
            )
        return self


DockerHost = Annotated[str, Field(pattern=r"^(unix|tcp|ssh)://\S+$")]
"""A Docker engine's address as `DOCKER_HOST` spells it: `unix://`, `tcp://` or `ssh://`."""


OFF_HOST_HOME = "pitr-repository"
"""The off-host repository's home (`Workload.home`): its key in `swarm.placement`."""


def database_home(service: str) -> str:
    """A service's database's home (`Workload.home`), with its PITR agent: its key in
    `swarm.placement`."""
    return f"{service}-db"


class OffHostSettings(StrictModel):
    """The off-host backup repository (docs/pitr.md): a pgBackRest repository (repo2) on
    another host than the databases', which every server archives its WAL into beside repo1
    and which takes its own backups of each, so that a lost host loses neither."""

    enabled: bool = False
    """Run it (needs `pitr.enabled`)."""
    docker_host: DockerHost | None = None
    """The containers engine: the Docker engine of the repository's host, another than the
    stack's (`tcp://backup-1.example.com:2376` with TLS from DOCKER_CERT_PATH, the same as the
    stack's own host's, or a second engine's `unix://` socket; not `ssh://`: the program calls
    that engine itself). A swarm: unset; the repository is a service on the node
    `swarm.placement.pitr-repository` names."""
    address: str | None = Field(default=None, pattern=r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")
    """The containers engine: the name or IP address the database servers reach the
    repository's host by (its certificate carries it). A swarm: unset (the service's name)."""
    port: Port = 8432
    """The containers engine: the repository's TLS port, published on its host. A swarm
    publishes nothing (the servers dial the service over an overlay)."""
    databases_address: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$"
    )
    """The containers engine: the name or IP address the repository's host reaches the
    databases' host (the stack's own) by, to take their backups through each server's TLS
    server (their certificates carry it). A swarm: unset (each server's service name)."""
    database_ports_from: Port = 8433
    """The containers engine: each database server's TLS server is published on the
    databases' host on this port and the next ones, one per database in the catalogue's order
    (customer, product, order, content). A swarm publishes nothing."""
    keep_full: int = Field(default=4, ge=1, le=100)
    """Full backups kept in repo2 (longer than repo1's `keepFull`: it is the one left after a
    host's loss)."""
    certificate_days: int = Field(default=365, ge=30, le=3650)
    """How long the certificates of the repository and the servers are valid."""
    renew_before_days: int = Field(default=30, ge=1, le=365)
    """A deploy this close to a certificate's end replaces it."""

    @model_validator(mode="after")
    def _renewal_within_validity(self) -> Self:
        if self.renew_before_days >= self.certificate_days:
            reject_if_any(
                [
                    (
                        "renewBeforeDays",
                        f"{self.renew_before_days} is not shorter than certificateDays "
                        f"({self.certificate_days}): every deploy would replace the certificates",
                    )
                ]
            )
        return self


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
    off_host: OffHostSettings = OffHostSettings()
    """A second repository on another host (`offHost.enabled`); off: every backup is on the
    databases' own host."""

    @model_validator(mode="after")
    def _runnable(self) -> Self:
        if self.enabled:
            reject_if_any(self._problems())
        return self

    def _problems(self) -> list[Problem]:
        problems: list[Problem] = []
        if (self.image is None) == (self.build is None):
            problems.append(
                (
                    "",
                    "set exactly one of image (a published image of pitr/Dockerfile) and build "
                    "(e.g. build: { context: pitr })",
                )
            )
        if self.build is not None and "POSTGRES_IMAGE" in self.build.args:
            problems.append(
                ("build.args.POSTGRES_IMAGE", "set by the platform from postgres.image; remove it")
            )
        hours = {
            "fullEveryHours": self.full_every_hours,
            "diffEveryHours": self.diff_every_hours,
            "incrEveryHours": self.incr_every_hours,
        }
        for shorter, longer in (
            ("diffEveryHours", "fullEveryHours"),
            ("incrEveryHours", "diffEveryHours"),
            ("incrEveryHours", "fullEveryHours"),
        ):
            small, large = hours[shorter], hours[longer]
            if small is not None and large is not None and small >= large:
                problems.append(
                    (
                        shorter,
                        f"{small} must be shorter than pitr.{longer} ({large}); the "
                        f"{longer[:4]} backups make it pointless",
                    )
                )
        needed = self.check_every_minutes + -(-self.archive_timeout_seconds // 60) + 1
        if self.max_archive_age_minutes < needed:
            problems.append(
                (
                    "maxArchiveAgeMinutes",
                    f"{self.max_archive_age_minutes} would report a stale archive between two "
                    f"checks (checkEveryMinutes {self.check_every_minutes}, each waiting up to "
                    f"archiveTimeoutSeconds); use at least {needed}",
                )
            )
        return problems
