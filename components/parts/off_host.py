"""The off-host backup repository (`pitr.offHost`, docs/pitr.md): repo2 on another host than
the databases, which every server archives its WAL into beside repo1 and which takes its own
backups of each, so that a lost host loses neither.

Here the repository's side, on its home (`OFF_HOST_HOME`: another Docker host, or another swarm
node): the certificates of both sides, signed by a CA of the stack's own; repo2's passphrase,
which only that host holds; its protected volume; its configuration and TLS files; and the
container (`python3 -m pitr repository`, pitr/repository.py) that runs pgBackRest's TLS server
on its published port and an agent per stanza. pitr/off_host.py renders both sides'
configuration; the database side reads `DatabaseTls` from here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker
import pulumi_random as random

from components.dynamic.certificates import CertificateAuthority, IssuedCertificate
from components.engine import Engine
from components.engine.files import SecretFiles, SecretFilesArgs
from components.engine.workload import ImageNeeds, Mount, Network, Port, Workload
from components.parts.pitr import (
    CONFIG_FILE_NAME,
    PASSPHRASE_LENGTH,
    limit_options,
    schedule_options,
    scratch_labels,
    stanza,
)
from components.parts.pitr_tls import (
    CA_FILE,
    CLIENT_CERT,
    CLIENT_KEY,
    CLIENT_TLS,
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
        stanzas: Sequence[str],
        repository_names: Sequence[str],
        database_names: Sequence[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
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
            "repository-server", REPOSITORY_CLIENT, "server", repository_names
        )
        self.repository_client = issued("repository-client", REPOSITORY_CLIENT, "client")
        self.databases = {
            stanza: DatabaseTls(
                self.authority.cert_pem,
                issued(f"{stanza}-server", stanza, "server", database_names or [stanza]),
                issued(f"{stanza}-client", stanza, "client"),
                off.database_ports_from + index,
            )
            for index, stanza in enumerate(stanzas)
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
        databases_address: str,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("ecommerce:index:OffHostRepository", name, None, opts)
        s, off, engine = args.settings, args.settings.off_host, args.engine
        docker_name = f"{args.docker_prefix}-{OFF_HOST_HOME}"
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
                databases_address,
                certificates.databases[service].port,
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
                off.keep_full,
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
        # Its own network on its host: the published port needs one with a route out.
        network = engine.network(
            f"{name}-network", docker_name, False, args.labels, self, home=OFF_HOST_HOME
        )
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
                networks=[Network(network, OFF_HOST_HOME)],
                ports=[Port(REPOSITORY_TLS_PORT, off.port, LISTEN_ALL)],
                needs=ImageNeeds(non_root_user=layout.PG_USER),
                resources=s.resources,
                health_test=[
                    "CMD",
                    *["python3", "-m", "pitr", "repository-health", *stanza_flags],
                    *["--port", str(REPOSITORY_TLS_PORT), *limit_options(s)],
                ],
                labels={**args.labels, **files.revision_label()},
                stop_grace_seconds=s.stop_grace_seconds,
                pids_limit=s.pids_limit,
                user=layout.PG_USER,
                # Like the databases' agents, it turns healthy after its first backups and
                # drills, which take as long as the data are large.
                waits=False,
                home=OFF_HOST_HOME,
            ),
            self,
        ).container
        self.register_outputs({})
