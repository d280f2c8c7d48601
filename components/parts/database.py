"""One business service's PostgreSQL: its own server, volume, login and private network alias."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.engine import Engine
from components.engine.files import SecretFiles, SecretFilesArgs, secret_path
from components.engine.workload import (
    FileMount,
    ImageNeeds,
    Mount,
    Network,
    Running,
    Workload,
    published_ports,
)
from components.parts.credentials import secret_or_generated
from components.parts.exporter_login import PASSWORD_FILE as EXPORTER_PASSWORD_FILE
from components.parts.exporter_login import SCRIPT_FILE as EXPORTER_ROLE_SCRIPT
from components.parts.exporter_login import role_script
from components.parts.pitr import (
    AgentArgs,
    PitrArgs,
    PitrStorage,
    agent_container,
    archiving_settings,
)
from pitr import layout
from stacks.catalogue import DatabaseSpec
from stacks.settings import DatabaseTuning, Resources, database_home

PORT = layout.PG_PORT
DATA_MOUNT = str(layout.DATA_MOUNT)
# A subdirectory, so initdb never meets the volume root's lost+found or other mount leftovers.
PGDATA = str(layout.PG_PATH)
ADMIN_PASSWORD_FILE = "postgres-password"
SERVICE_PASSWORD_FILE = "service-password"
ROLE_SCRIPT = "create-service-role.sh"
# The official image runs the scripts of this folder once, when it initialises an empty volume.
INIT_DIR = "/docker-entrypoint-initdb.d"
ADMIN_USER = "postgres"

POSTGRES_NEEDS = ImageNeeds(
    non_root_user="postgres",
    # Unix socket and lock file, and the entrypoint's scratch files.
    writable_paths=(str(layout.SOCKET_DIR), "/tmp"),
)
# With PITR the socket directory is a volume shared with the agent.
PITR_POSTGRES_NEEDS = ImageNeeds(non_root_user="postgres", writable_paths=("/tmp",))


@dataclass(frozen=True)
class DatabaseArgs:
    service: str
    """The business service that owns it; `<service>-db` is where it runs
    (`swarm.placement`)."""
    spec: DatabaseSpec
    """Database name and the owning service's login."""
    docker_name: str
    """Base of the Docker names: container `<docker_name>`, volume `<docker_name>-data`."""
    image: str
    network: docker.Network
    """The database's private network, shared only with its service (and the backup job)."""
    alias: str
    """Host name of the server on that network."""
    tuning: DatabaseTuning
    resources: Resources
    shm_size_mb: int
    stop_grace_seconds: int
    pids_limit: int
    """From SIGINT (the image's fast shutdown) to SIGKILL, when the server is stopped."""
    engine: Engine
    labels: Mapping[str, str]
    password: pulumi.Input[str] | None = None
    """Operator-set password; a random one is generated when absent."""
    host_port: int | None = None
    """Published on `publish_ip` (dev only); None keeps the server private."""
    publish_ip: str = "127.0.0.1"
    public_host: str = "localhost"
    """Host name operators use for published ports (the stack's `publicHost`)."""
    protect_data: bool = True
    """Pulumi refuses to delete the data volume while this is on."""
    pitr: PitrArgs | None = None
    """Point-in-time recovery: the server archives its WAL and an agent runs beside it."""
    exporter_role: bool = False
    """Give the metrics exporter a login of its own (components/exporter_role.py)."""
    metrics_network: docker.Network | None = None
    """The monitoring network, where the PITR agent serves its metrics."""


class Database(pulumi.ComponentResource):
    """PostgreSQL for one service.

    The image's superuser (`postgres`, with its own generated password) only initialises the
    server; the service logs in as a role that owns its database and is no superuser.
    """

    container: docker.Container | docker.Service
    """What runs it: a container, or a service on a swarm."""
    password: pulumi.Output[str]
    """The service user's password, a Pulumi secret."""
    admin_password: pulumi.Output[str]
    """The `postgres` superuser's password, a Pulumi secret; for operators, never for services."""
    host: str
    """Host name on the database's private network."""
    port: int
    database: str
    user: str
    reachable_host: str
    """Where an operator reaches it: the published address in dev, else the network alias."""
    reachable_port: int
    pitr: PitrStorage | None
    pitr_agent: docker.Container | docker.Service | None
    pitr_link: docker.Network | None
    """Beside an off-host repository, the server's network to the repository's home (its
    agent serves the repository's backups there); None otherwise."""
    exporter_password: pulumi.Output[str] | None
    """The exporter role's password, a Pulumi secret (None without `exporter_role`)."""

    def __init__(
        self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ecommerce:index:Database", name, None, opts)
        self._name, self._args = name, args
        self.password = secret_or_generated(f"{name}-password", args.password, 32, self)
        self.admin_password = secret_or_generated(f"{name}-admin-password", None, 32, self)
        self.exporter_password = (
            secret_or_generated(f"{name}-exporter-password", None, 32, self)
            if args.exporter_role
            else None
        )
        data = args.engine.volume(
            f"{name}-data", f"{args.docker_name}-data", args.labels, self, protect=args.protect_data
        )
        self.pitr = self.pitr_agent = None
        self.pitr_link = None
        if args.pitr is not None and args.pitr.off_host is not None:
            # The server archives into the off-host repository and its agent serves that
            # repository's backups: the engine's network between this home and the
            # repository's, which no other database joins (on one Docker host, one of this
            # server's own with a route out: its database network has none).
            self.pitr_link = args.pitr.off_host.homes.spoke_network(
                self.home,
                f"{name}-pitr-link",
                f"{args.docker_name}-pitr-link",
                {**args.labels, "com.ecommerce.role": "pitr-link"},
                self,
            )
        if args.pitr is not None:
            self.pitr = PitrStorage(
                f"{name}-pitr",
                args.pitr,
                args.docker_name,
                args.labels,
                args.protect_data,
                args.engine,
                pulumi.ResourceOptions(parent=self),
            )
        server = self._server(data.name, self._secret_files())
        self.container = server.container
        if args.exporter_role:
            # Where the engine reaches a running server: one whose volume is older than the
            # exporter's login never ran the init script (parts/exporter_login.py).
            args.engine.run_in_each_instance(
                f"{name}-exporter-role", server, ["sh", secret_path(EXPORTER_ROLE_SCRIPT)], self
            )
        self.host, self.port = args.alias, PORT
        self.database, self.user = args.spec.name, args.spec.user
        # Where an operator's machine reaches it: the published port in dev, else the alias.
        self.reachable_host = args.alias if args.host_port is None else args.public_host
        self.reachable_port = args.host_port or PORT
        if args.pitr is not None and self.pitr is not None:
            self.pitr_agent = self._pitr_agent(args.pitr, self.pitr, data.name)
        # The password stays an attribute for the program: registered as the component's
        # output it would be one more copy in the state, outside the places secrets belong.
        self.register_outputs({})

    @property
    def home(self) -> str:
        """Where it runs, with its agent (`swarm.placement.<service>-db`)."""
        return database_home(self._args.service)

    def _secret_files(self) -> SecretFiles:
        """Its passwords and init scripts (the exporter's login too, with monitoring)."""
        args = self._args
        files: dict[str, pulumi.Input[str]] = {
            ADMIN_PASSWORD_FILE: self.admin_password,
            SERVICE_PASSWORD_FILE: self.password,
            ROLE_SCRIPT: service_role_script(args.spec),
        }
        if self.exporter_password is not None:
            files[EXPORTER_PASSWORD_FILE] = self.exporter_password
            files[EXPORTER_ROLE_SCRIPT] = role_script(secret_path(EXPORTER_PASSWORD_FILE))
        return SecretFiles(
            f"{self._name}-secrets",
            SecretFilesArgs(
                docker_name=f"{args.docker_name}-secrets",
                image=args.image,
                files=files,
                labels=args.labels,
                engine=args.engine,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _server(self, data: pulumi.Output[str], secrets: SecretFiles) -> Running:
        args = self._args
        user, database = args.spec.user, args.spec.name
        image: pulumi.Input[str] = args.image
        needs, archiving = POSTGRES_NEEDS, {}
        pitr_mounts: list[Mount | FileMount] = []
        if args.pitr is not None and self.pitr is not None:
            image, needs = args.pitr.image, PITR_POSTGRES_NEEDS
            archiving, pitr_mounts = archiving_settings(args.pitr), self.pitr.server_mounts()
        return args.engine.run(
            Workload(
                name=self._name,
                docker_name=args.docker_name,
                image=image,
                command=["postgres", *server_options(args.tuning, archiving)],
                env=[
                    f"POSTGRES_USER={ADMIN_USER}",
                    f"POSTGRES_DB={database}",
                    f"POSTGRES_PASSWORD_FILE={secret_path(ADMIN_PASSWORD_FILE)}",
                    f"PGDATA={PGDATA}",
                    # The PITR image's entrypoint checks that an empty data directory is a
                    # first start, not a lost volume over this stanza's backups (pitr/guard.py).
                    *([f"PITR_STANZA={args.pitr.stanza}"] if args.pitr is not None else []),
                ],
                mounts=[
                    Mount(data, DATA_MOUNT),
                    secrets.mount(),
                    # The same files again where the entrypoint looks for init scripts; it runs
                    # the role script and logs that it ignores the password files beside it.
                    secrets.mount(INIT_DIR),
                    *pitr_mounts,
                ],
                networks=[
                    Network(args.network, args.alias),
                    *(
                        []
                        if self.pitr_link is None
                        else [Network(self.pitr_link, args.alias, False)]
                    ),
                ],
                ports=published_ports(PORT, args.host_port, args.publish_ip),
                shm_size_mb=args.shm_size_mb,
                needs=needs,
                resources=args.resources,
                # Over TCP, so the init-time server (socket only) does not count as ready.
                health_test=pg_isready(user, database),
                labels={**args.labels, **secrets.revision_label()},
                stop_grace_seconds=args.stop_grace_seconds,
                pids_limit=args.pids_limit,
                home=self.home,
                depends_on=_after_the_repository(args.pitr),
                # The server reads its pgBackRest file at each archive-push: a rewritten file
                # (new retention) needs no restart, so no revision label of it.
            ),
            self,
        )

    def _pitr_agent(
        self, pitr: PitrArgs, storage: PitrStorage, data: pulumi.Output[str]
    ) -> docker.Container | docker.Service:
        args = self._args
        return agent_container(
            self._name,
            AgentArgs(
                pitr=pitr,
                storage=storage,
                data_volume=data,
                server=self.container,
                docker_name=args.docker_name,
                engine=args.engine,
                labels={**args.labels, "com.ecommerce.role": "pitr"},
                home=self.home,
                metrics_network=args.metrics_network,
                link_network=self.pitr_link,
            ),
            self,
        )


def _after_the_repository(pitr: PitrArgs | None) -> list[pulumi.Resource]:
    link = pitr.off_host if pitr is not None else None
    if link is None or link.repository_workload is None:
        return []
    return [link.repository_workload]


def pg_isready(user: str, database: str) -> list[str]:
    """Health check: the service's own user reaches its own database over TCP."""
    return ["CMD", "pg_isready", "-h", "127.0.0.1", "-p", str(PORT), "-U", user, "-d", database]


def service_role_script(spec: DatabaseSpec) -> str:
    """Init script: the service's login role, owner of its database and nothing more.

    CREATEDB lets the backup tool restore beside the live database and swap; the password is
    read from its file inside psql, so it is never on a command line.
    """
    user, database = f'"{spec.user}"', f'"{spec.name}"'
    psql = 'psql -v ON_ERROR_STOP=1 --no-psqlrc --no-password --username "$POSTGRES_USER"'
    return f"""# Sourced by the postgres entrypoint once, when it initialises an empty data dir.
{psql} --dbname postgres <<'SQL'
\\set service_password `cat {secret_path(SERVICE_PASSWORD_FILE)}`
CREATE ROLE {user} LOGIN CREATEDB NOSUPERUSER NOCREATEROLE PASSWORD :'service_password';
ALTER DATABASE {database} OWNER TO {user};
REVOKE ALL ON DATABASE {database} FROM PUBLIC;
SQL
{psql} --dbname {database} <<'SQL'
ALTER SCHEMA public OWNER TO {user};
SQL
"""


def server_options(tuning: DatabaseTuning, archiving: Mapping[str, str]) -> list[str]:
    """`-c name=value` options for the server: the SPEC tuning first, then the extras, then
    what archiving needs (PITR)."""
    settings = {
        "max_connections": str(tuning.max_connections),
        "shared_buffers": tuning.shared_buffers,
        "effective_cache_size": tuning.effective_cache_size,
        **tuning.extra,
        **archiving,
    }
    options: list[str] = []
    for key, value in settings.items():
        options += ["-c", f"{key}={value}"]
    return options
