"""One business service's PostgreSQL, replicated: members on several nodes, one primary at a time
(Patroni), and a router the service dials by the database's usual host name (docs/replication.md).

Each member is a workload of its own, with its own volume and home (`order-db-1`, ...), which
the swarm's placement puts on a node of its own: a lost node takes at most one member. The
members dial each other by their names on the database's replication network; Patroni reaches
the consensus store on its network; the router sits on both the service's network (where it
answers as the database) and the replication network. The consensus network is shared by every
replicated database's members, and the store has no login yet (docs/replication.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_docker as docker

from components.engine import Engine
from components.engine.files import SecretFiles, SecretFilesArgs, secret_path
from components.engine.workload import (
    ImageNeeds,
    Mount,
    Network,
    Running,
    Workload,
    answers_http,
)
from components.parts.consensus import Consensus
from components.parts.credentials import secret_or_generated
from components.renderers.db_router import router_config, router_health_test
from components.renderers.patroni import (
    API_PORT,
    PG_PORT,
    SUPERUSER,
    Member,
    Passwords,
    Synchronous,
    Timing,
    patroni_config,
)
from pitr import layout
from stacks.catalogue import DatabaseSpec
from stacks.settings import Resources

CONFIG_FILE = "patroni.yml"
SERVICE_PASSWORD_FILE = "service-password"
POST_BOOTSTRAP_SCRIPT = "create-service-role.sh"
ROUTER_CONFIG_FILE = "haproxy.cfg"
RESOLVER_OPTIONS = "timeout:1 attempts:2"
ROUTER_REPLICAS = 2
"""Two, never on one node (the engine spreads replicas): a lost node leaves one."""

MEMBER_NEEDS = ImageNeeds(
    non_root_user="postgres",
    # The server's socket and lock file; Patroni's password file.
    writable_paths=(str(layout.SOCKET_DIR), "/tmp"),
)
ROUTER_NEEDS = ImageNeeds(non_root_user="haproxy")


def member_home(database_home: str, member: int) -> str:
    """A member's home (`Workload.home`): `order-db-1`, its key in `swarm.placement`."""
    return f"{database_home}-{member}"


@dataclass(frozen=True)
class ReplicatedDatabaseArgs:
    spec: DatabaseSpec
    home: str
    """The database's home (`order-db`); its members' are `<home>-1`, `<home>-2`, ..."""
    docker_name: str
    """Base of the Docker names: member `<docker_name>-1`, router `<docker_name>`."""
    image: pulumi.Input[str]
    """A PostgreSQL image with Patroni (pitr/Dockerfile)."""
    router_image: pulumi.Input[str]
    network: docker.Network
    """The database's private network, shared with its service."""
    alias: str
    """The host name the service dials on that network: the router answers to it."""
    consensus: Consensus
    replicas: int
    engine: Engine
    labels: Mapping[str, str]
    resources: Resources
    synchronous: Synchronous = "preferred"
    parameters: Mapping[str, str] | None = None
    timing: Timing = field(default_factory=Timing)
    stop_grace_seconds: int = 60
    pids_limit: int = 512
    router_resources: Resources = field(default_factory=lambda: Resources(memory_mb=128, cpus=0.25))
    protect_data: bool = True


class ReplicatedDatabase(pulumi.ComponentResource):
    password: pulumi.Output[str]
    """The service user's password, a Pulumi secret."""
    admin_password: pulumi.Output[str]
    """The `postgres` superuser's, a Pulumi secret: for operators and Patroni, never services."""
    members: list[Running]
    router: Running
    host: str
    port: int

    def __init__(
        self, name: str, args: ReplicatedDatabaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ecommerce:index:ReplicatedDatabase", name, None, opts)
        if args.replicas < 2:
            raise ValueError(f"{name}: a replicated database needs 2 or more members")
        self._name, self._args = name, args
        self.password = secret_or_generated(f"{name}-password", None, 32, self)
        self.admin_password = secret_or_generated(f"{name}-admin-password", None, 32, self)
        passwords = pulumi.Output.all(
            self.admin_password,
            secret_or_generated(f"{name}-replication-password", None, 32, self),
            secret_or_generated(f"{name}-api-password", None, 32, self),
        ).apply(lambda p: Passwords(superuser=p[0], replication=p[1], api=p[2]))
        self.replication_network = args.engine.network(
            f"{name}-replication", f"{args.docker_name}-replication", True, args.labels, self
        )
        names = [f"{args.docker_name}-{n}" for n in range(1, args.replicas + 1)]
        self.members = [self._member(n, names[n - 1], passwords) for n in range(1, len(names) + 1)]
        self.router = self._router(names)
        self.host, self.port = args.alias, PG_PORT
        self.register_outputs({})

    def _member(self, n: int, me: str, passwords: pulumi.Output[Passwords]) -> Running:
        args = self._args
        home = member_home(args.home, n)
        member = Member(
            scope=args.docker_name,
            name=me,
            consensus=args.consensus.endpoints,
            data_dir=str(layout.PG_PATH),
            post_bootstrap=f"sh {secret_path(POST_BOOTSTRAP_SCRIPT)}",
            synchronous=args.synchronous,
            parameters=args.parameters,
            timing=args.timing,
        )
        secrets = SecretFiles(
            f"{self._name}-{n}-secrets",
            SecretFilesArgs(
                docker_name=f"{me}-secrets",
                image=args.image,
                files={
                    CONFIG_FILE: passwords.apply(lambda p: patroni_config(member, p)),
                    SERVICE_PASSWORD_FILE: self.password,
                    POST_BOOTSTRAP_SCRIPT: post_bootstrap_script(args.spec),
                },
                labels=args.labels,
                engine=args.engine,
                home=home,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        data = args.engine.volume(
            f"{self._name}-{n}-data",
            f"{me}-data",
            args.labels,
            self,
            protect=args.protect_data,
            home=home,
        )
        return args.engine.run(
            Workload(
                name=f"{self._name}-{n}",
                docker_name=me,
                image=args.image,
                command=["patroni", secret_path(CONFIG_FILE)],
                # A lookup of a member whose node was just lost can go unanswered by the
                # swarm's DNS; the resolver's default (5 s, twice) held the standby's last
                # check of the old primary ~10 s before it promoted itself.
                env=[f"RES_OPTIONS={RESOLVER_OPTIONS}"],
                mounts=[Mount(data.name, str(layout.DATA_MOUNT)), secrets.mount()],
                networks=[
                    Network(self.replication_network, me),
                    Network(args.consensus.network, me, serves=False),
                ],
                needs=MEMBER_NEEDS,
                # Patroni runs the server, which never runs as root.
                user=MEMBER_NEEDS.non_root_user,
                resources=args.resources,
                # Patroni answers: the member may be a primary, a standby, or one still copying
                # the primary's data (a new member), which a stricter check would kill midway.
                health_test=["CMD", *answers_http(f"http://127.0.0.1:{API_PORT}/liveness", 3)],
                labels={**args.labels, **secrets.revision_label()},
                stop_grace_seconds=args.stop_grace_seconds,
                pids_limit=args.pids_limit,
                home=home,
                depends_on=[m.container for m in args.consensus.members],
            ),
            self,
        )

    def _router(self, members: Sequence[str]) -> Running:
        args = self._args
        files = SecretFiles(
            f"{self._name}-router-files",
            SecretFilesArgs(
                docker_name=f"{args.docker_name}-router-files",
                image=args.router_image,
                files={},
                plain_files={ROUTER_CONFIG_FILE: router_config(members)},
                labels=args.labels,
                engine=args.engine,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return args.engine.run(
            Workload(
                name=f"{self._name}-router",
                docker_name=args.docker_name,
                image=args.router_image,
                command=["haproxy", "-W", "-db", "-f", secret_path(ROUTER_CONFIG_FILE)],
                mounts=[files.mount()],
                networks=[
                    Network(args.network, args.alias),
                    Network(self.replication_network, f"{args.docker_name}-router", serves=False),
                ],
                needs=ROUTER_NEEDS,
                resources=args.router_resources,
                health_test=router_health_test(),
                labels={**args.labels, **files.revision_label()},
                stop_grace_seconds=10,
                pids_limit=128,
                replicas=ROUTER_REPLICAS,
                side_by_side=True,
                depends_on=[m.container for m in self.members],
            ),
            self,
        )


def post_bootstrap_script(spec: DatabaseSpec) -> str:
    """Run once by Patroni after it initialised the cluster, with the superuser's connection
    string as its argument: the service's login role and its database, owned by it. The
    password is read from its file inside psql, so it is never on a command line."""
    user, database = f'"{spec.user}"', f'"{spec.name}"'
    psql = "psql -v ON_ERROR_STOP=1 --no-psqlrc --no-password"
    return f"""set -eu
{psql} "$1" <<'SQL'
\\set service_password `cat {secret_path(SERVICE_PASSWORD_FILE)}`
-- Never logged, even when the statement fails or the stack logs DDL.
SET log_statement = none;
SET log_min_error_statement = panic;
CREATE ROLE {user} LOGIN CREATEDB NOSUPERUSER NOCREATEROLE PASSWORD :'service_password';
CREATE DATABASE {database} OWNER {user};
REVOKE ALL ON DATABASE {database} FROM PUBLIC;
SQL
{psql} --username {SUPERUSER} --dbname {database} <<'SQL'
ALTER SCHEMA public OWNER TO {user};
SQL
"""
