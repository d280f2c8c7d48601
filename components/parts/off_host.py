"""The off-host backup repository (`pitr.offHost`, docs/pitr.md): repo2 on another host than
the databases, which every server archives its WAL into beside repo1 and which takes its own
backups of each, so that a lost host loses neither.

Here the repository's side, on its home (`OFF_HOST_HOME`: another Docker host, or another swarm
node): the certificates of both sides, signed by a CA of the stack's own; repo2's passphrase,
which only that host holds; its protected volume; its configuration and TLS files; and the
workload (`python3 -m pitr repository`, pitr/repository.py) that runs pgBackRest's TLS server
and an agent per stanza. Where each side dials the other (a host's name and published port, or
a swarm service's name on an overlay) is the engine's (`HomeLinks`). pitr/off_host.py renders
both sides' configuration; the database side reads `DatabaseTls` from here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker
import pulumi_random as random

from components.dynamic.certificates import CertificateAuthority, IssuedCertificate
from components.engine import Engine
from components.engine.base import Endpoint, HomeLinks
from components.engine.files import SecretFiles, SecretFilesArgs
from components.engine.workload import ImageNeeds, Mount, Network, Workload
from components.parts.pitr import (
    CONFIG_FILE_NAME,
    PASSPHRASE_LENGTH,
    limit_options,
    schedule_options,
    scratch_labels,
    serves,
    stanza,
)
from components.parts.pitr_tls import (
    CA_FILE,
    CLIENT_CERT,
    CLIENT_KEY,
    CLIENT_TLS,
    DATABASE_TLS_PORT,
    LISTEN_ALL,
    REPOSITORY_CLIENT,
    REPOSITORY_TLS_PORT,
    SERVER_CERT,
    SERVER_KEY,
    SERVER_TLS,
    DatabaseTls,
)
from pitr import layout
from pitr.off_host import Listener, RemoteDatabase, repository_config
from stacks.settings import OFF_HOST_HOME, PitrSettings


@dataclass(frozen=True)
class OffHostArgs:
    settings: PitrSettings
    stanzas: Sequence[str]
    """Every database's stanza (its service's name), in the catalogue's order: the order of
    their published ports."""
    image: pulumi.Input[str]
    """The image of pitr/Dockerfile on the repository's host."""
    docker_prefix: str
    labels: Mapping[str, str]
    protect_data: bool
    engine: Engine
    links: HomeLinks
    """The engine's links between the repository's home and the databases'."""
    endpoint: Endpoint
    """Where the database servers dial the repository (`repository_endpoint`)."""


def repository_endpoint(links: HomeLinks, docker_prefix: str, s: PitrSettings) -> Endpoint:
    """Where the database servers dial the repository's TLS server (on a separate host, at
    `offHost.address` on its published `offHost.port`)."""
    off = s.off_host
    return links.endpoint(
        repository_docker_name(docker_prefix), REPOSITORY_TLS_PORT, off.address, off.port
    )


def database_endpoints(
    links: HomeLinks, agents: Mapping[str, str], s: PitrSettings
) -> dict[str, Endpoint]:
    """Stanza -> where the repository dials its database's TLS server, in its agent (`agents`:
    stanza -> the agent's Docker name, in the order of their published ports, from
    `offHost.databasePortsFrom` on `offHost.databasesAddress` on a separate host)."""
    off = s.off_host
    return {
        stanza: links.endpoint(
            agent, DATABASE_TLS_PORT, off.databases_address, off.database_ports_from + index
        )
        for index, (stanza, agent) in enumerate(agents.items())
    }


def repository_docker_name(docker_prefix: str) -> str:
    return f"{docker_prefix}-{OFF_HOST_HOME}"


class OffHostCertificates(pulumi.ComponentResource):
    """A CA of the stack's own and every certificate it signs for the two sides."""

    authority: CertificateAuthority
    repository_server: IssuedCertificate
    repository_client: IssuedCertificate
    databases: dict[str, DatabaseTls]

    def __init__(
        self,
        name: str,
        settings: PitrSettings,
        repository: Endpoint,
        databases: Mapping[str, Endpoint],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`repository`, `databases` (stanza -> endpoint): where each side's TLS server is
        dialled, the names its certificate carries."""
        super().__init__("ecommerce:index:OffHostCertificates", name, None, opts)
        off = settings.off_host
        child = pulumi.ResourceOptions(parent=self)
        days = {"valid_days": off.certificate_days, "renew_before_days": off.renew_before_days}
        self.authority = CertificateAuthority(f"{name}-ca", "ecommerce pitr CA", opts=child, **days)

        def issued(
            suffix: str, common_name: str, usage: str, dns: Sequence[str] = ()
        ) -> IssuedCertificate:
            return IssuedCertificate(
                f"{name}-{suffix}",
                self.authority,
                common_name,
                "server" if usage == "server" else "client",
                dns_names=dns,
                opts=child,
                **days,
            )

        self.repository_server = issued(
            "repository-server", REPOSITORY_CLIENT, "server", [repository.address]
        )
        self.repository_client = issued("repository-client", REPOSITORY_CLIENT, "client")
        self.databases = {
            stanza: DatabaseTls(
                self.authority.cert_pem,
                issued(f"{stanza}-server", stanza, "server", [endpoint.address]),
                issued(f"{stanza}-client", stanza, "client"),
                endpoint,
            )
            for stanza, endpoint in databases.items()
        }
        self.register_outputs({})


class OffHostRepository(pulumi.ComponentResource):
    """repo2 on its home: passphrase, volume, configuration and the repository's container."""

    passphrase: pulumi.Output[str]
    """Encrypts repo2, a Pulumi secret; without it no off-host backup can ever be read."""
    repository: docker.Volume
    container: docker.Container | docker.Service

    def __init__(
        self,
        name: str,
        args: OffHostArgs,
        certificates: OffHostCertificates,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("ecommerce:index:OffHostRepository", name, None, opts)
        s, engine = args.settings, args.engine
        docker_name = repository_docker_name(args.docker_prefix)
        # Protected with the data it encrypts: a new passphrase would make repo2 unreadable.
        generated = random.RandomPassword(
            f"{name}-passphrase",
            length=PASSPHRASE_LENGTH,
            special=False,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect_data),
        )
        self.passphrase = pulumi.Output.secret(generated.result)
        self.repository = engine.volume(
            f"{name}-repository",
            docker_name,
            args.labels,
            self,
            protect=args.protect_data,
            home=OFF_HOST_HOME,
        )
        drill = engine.volume(
            f"{name}-drill",
            f"{docker_name}-drill",
            scratch_labels(args.labels),
            self,
            home=OFF_HOST_HOME,
        )
        databases = [
            RemoteDatabase(
                stanza(service, s),
                certificates.databases[service].endpoint.address,
                certificates.databases[service].endpoint.port,
                layout.CONFIG_FILE,
            )
            for service in args.stanzas
        ]
        # Each database's certificate (its stanza's name) may reach its own stanza only.
        listener = Listener(
            LISTEN_ALL, REPOSITORY_TLS_PORT, SERVER_TLS, {db: [db] for db in args.stanzas}
        )
        config = self.passphrase.apply(
            lambda passphrase: repository_config(
                databases,
                passphrase,
                layout.REPO_PATH,
                layout.WORK_PATH,
                listener,
                CLIENT_TLS,
                s.off_host.keep_full,
            )
        )
        # The certificates too: a renewed one replaces the container, which reads it at start.
        files = SecretFiles(
            f"{name}-config",
            SecretFilesArgs(
                docker_name=f"{docker_name}-config",
                image=args.image,
                files={
                    CONFIG_FILE_NAME: config,
                    CA_FILE: certificates.authority.cert_pem,
                    SERVER_CERT: certificates.repository_server.cert_pem,
                    SERVER_KEY: certificates.repository_server.key_pem,
                    CLIENT_CERT: certificates.repository_client.cert_pem,
                    CLIENT_KEY: certificates.repository_client.key_pem,
                },
                labels=args.labels,
                engine=engine,
                home=OFF_HOST_HOME,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        # The engine's networks to the databases' homes (on a host of its own, one with a
        # route out, for its published port).
        networks = args.links.hub_networks(f"{name}-network", docker_name, args.labels, self)
        stanza_flags = [flag for db in args.stanzas for flag in ("--stanza", db)]
        command = ["python3", "-m", "pitr", "repository", *stanza_flags, *schedule_options(s)]
        self.container = engine.run(
            Workload(
                name=name,
                docker_name=docker_name,
                image=args.image,
                command=command,
                mounts=[
                    Mount(self.repository.name, str(layout.PGBACKREST_MOUNT)),
                    Mount(drill.name, str(layout.DRILL_PATH)),
                    files.mount(str(layout.CONFIG_DIR)),
                ],
                networks=[Network(network, OFF_HOST_HOME) for network in networks],
                ports=list(args.endpoint.published) or None,
                needs=ImageNeeds(non_root_user=layout.PG_USER),
                resources=s.resources,
                # Healthy while it serves: on a swarm that is its whole health (a swarm names a
                # task in its DNS only once healthy, and the servers' start guards ask it for
                # backups before its first ones). On one host, its state: every stanza's
                # backups and drills on repo2 fresh too.
                health_test=["CMD", *serves(REPOSITORY_TLS_PORT)],
                state_test=[
                    "CMD",
                    *["python3", "-m", "pitr", "repository-health", *stanza_flags],
                    *["--port", str(REPOSITORY_TLS_PORT), *limit_options(s)],
                ],
                labels={**args.labels, **files.revision_label()},
                stop_grace_seconds=s.stop_grace_seconds,
                pids_limit=s.pids_limit,
                user=layout.PG_USER,
                # Like the databases' agents, its state turns healthy after its first backups
                # and drills, which take as long as the data are large.
                waits=False,
                home=OFF_HOST_HOME,
            ),
            self,
        ).container
        self.register_outputs({})
