"""Point-in-time recovery of one database server (docs/pitr.md): its pgBackRest repository,
its configuration with the generated passphrase, and the agent container beside it.

Topology: the repository is a named volume per server. The server writes WAL into it
(`archive-push` from its `archive_command`); the agent, a second container of the same image,
takes the backups, runs the drills and reports health. The agent mounts the server's data
volume read-only at the server's own path and reaches the server through its Unix socket (a
volume both share): pgBackRest backs up a data directory it reads locally, and the server's
`postgres` OS user logs in there. So the agent has no network (but the monitoring network,
where it only serves its metrics), no capability, no Docker socket, a read-only root; it sees
one server's data and one repository. pgBackRest's TLS server would keep the repository out of
the server's container too; docs/pitr.md says why this stack does not use it yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker
import pulumi_random as random

from components.engine import Engine
from components.engine.files import SecretFiles, SecretFilesArgs
from components.engine.workload import FileMount, ImageNeeds, Mount, Network, Workload
from components.parts.pitr_tls import (
    CA_FILE,
    CLIENT_CERT,
    CLIENT_KEY,
    CLIENT_TLS,
    DATABASE_TLS_PORT,
    LISTEN_ALL,
    REPOSITORY_CLIENT,
    SERVER_CERT,
    SERVER_KEY,
    SERVER_TLS,
    OffHostLink,
)
from components.renderers.monitoring_config import PITR_METRICS_PORT as METRICS_PORT
from components.renderers.monitoring_config import pitr_agent_alias as agent_alias
from pitr import layout
from pitr.off_host import Listener, RepositoryAddress, database_config
from pitr.pgbackrest import Stanza, render_config, server_settings
from stacks.settings import PitrSettings

CONFIG_FILE_NAME = layout.CONFIG_FILE.name
PASSPHRASE_LENGTH = 64
# The backups and drills are overdue after their interval and this much more.
OVERDUE_SLACK_HOURS = 2


def overdue_after_hours(s: PitrSettings) -> tuple[int, int]:
    """When the newest backup, and the last drill, are overdue: for the agent's health check
    and the alert rules alike."""
    intervals = [h for h in (s.full_every_hours, s.diff_every_hours, s.incr_every_hours) if h]
    return min(intervals) + OVERDUE_SLACK_HOURS, s.drill_every_hours + OVERDUE_SLACK_HOURS


@dataclass(frozen=True)
class PitrArgs:
    settings: PitrSettings
    image: pulumi.Input[str]
    """The image of pitr/Dockerfile: the server and its agent both run it."""
    stanza: str
    """The stanza's name: the service whose database this is."""
    off_host: OffHostLink | None = None
    """The off-host repository (repo2) this server also archives into, and is backed up from
    through its agent's TLS server; None: repo1 alone."""


def stanza(name: str, s: PitrSettings) -> Stanza:
    """The stanza of a server in its container (pitr/layout.py)."""
    return Stanza(
        name,
        layout.PG_PATH,
        layout.PG_PORT,
        layout.SOCKET_DIR,
        layout.PG_USER,
        layout.REPO_PATH,
        layout.WORK_PATH,
        retention_full=s.keep_full,
        retention_diff=s.keep_diff if s.diff_every_hours is not None else None,
    )


class PitrStorage(pulumi.ComponentResource):
    """The server's side: the repository and socket volumes and the configuration files."""

    repository: docker.Volume
    socket: docker.Volume
    config: SecretFiles
    passphrase: pulumi.Output[str]
    """Encrypts the repository, a Pulumi secret; without it no backup can ever be read."""

    def __init__(
        self,
        name: str,
        args: PitrArgs,
        docker_name: str,
        labels: Mapping[str, str],
        protect_data: bool,
        engine: Engine,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("ecommerce:index:PitrStorage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # Protected with the data: a new passphrase would make every backup unreadable.
        generated = random.RandomPassword(
            f"{name}-passphrase",
            length=PASSPHRASE_LENGTH,
            special=False,
            opts=pulumi.ResourceOptions(parent=self, protect=protect_data),
        )
        self.passphrase = pulumi.Output.secret(generated.result)
        self.repository = engine.volume(
            f"{name}-repository", f"{docker_name}-pitr", labels, self, protect=protect_data
        )
        self.socket = engine.volume(
            f"{name}-socket", f"{docker_name}-socket", scratch_labels(labels), self
        )
        self.config = SecretFiles(
            f"{name}-config",
            SecretFilesArgs(
                docker_name=f"{docker_name}-pitr-config",
                image=args.image,
                files=config_files(args, self.passphrase),
                labels=labels,
                engine=engine,
            ),
            opts=child,
        )
        self.register_outputs({})

    def server_mounts(self) -> list[Mount | FileMount]:
        return [
            Mount(self.repository.name, str(layout.PGBACKREST_MOUNT)),
            Mount(self.socket.name, str(layout.SOCKET_DIR)),
            self.config.mount(str(layout.CONFIG_DIR)),
        ]


def config_files(args: PitrArgs, passphrase: pulumi.Output[str]) -> dict[str, pulumi.Input[str]]:
    """The server's pgbackrest.conf; beside an off-host repository also the agent's own (repo1
    alone) and the server's TLS files."""
    own = stanza(args.stanza, args.settings)
    local = passphrase.apply(lambda p: render_config(own, p))
    link = args.off_host
    if link is None:
        return {CONFIG_FILE_NAME: local}
    repository = RepositoryAddress(
        link.repository.address, link.repository.port, layout.CONFIG_FILE, CLIENT_TLS
    )
    # Its TLS server lets the repository's certificate reach this server's stanza only.
    listener = Listener(LISTEN_ALL, DATABASE_TLS_PORT, SERVER_TLS, {REPOSITORY_CLIENT: [own.name]})
    return {
        CONFIG_FILE_NAME: passphrase.apply(lambda p: database_config(own, p, repository, listener)),
        layout.AGENT_CONFIG_FILE.name: local,
        CA_FILE: link.tls.ca_pem,
        SERVER_CERT: link.tls.server.cert_pem,
        SERVER_KEY: link.tls.server.key_pem,
        CLIENT_CERT: link.tls.client.cert_pem,
        CLIENT_KEY: link.tls.client.key_pem,
    }


def scratch_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """A volume with nothing to keep: the policies let it go unprotected."""
    return {**labels, "com.ecommerce.role": "scratch"}


def archiving_settings(args: PitrArgs) -> dict[str, str]:
    """The server settings that archive every WAL segment into the repository."""
    s = args.settings
    return server_settings(stanza(args.stanza, s), layout.CONFIG_FILE, s.archive_timeout_seconds)


@dataclass(frozen=True)
class AgentArgs:
    pitr: PitrArgs
    storage: PitrStorage
    data_volume: pulumi.Input[str]
    server: docker.Container | docker.Service
    docker_name: str
    engine: Engine
    labels: Mapping[str, str]
    home: str | None = None
    """The server's home (`Workload.home`): the agent shares its volumes."""
    metrics_network: docker.Network | None = None
    """The monitoring network, where the agent serves its metrics (METRICS_PORT)."""
    link_network: docker.Network | None = None
    """Beside an off-host repository, the server's network to the repository's home: the
    agent serves its TLS server there."""


def agent_container(
    name: str, args: AgentArgs, parent: pulumi.Resource
) -> docker.Container | docker.Service:
    """The agent `<docker_name>-pitr` (pitr/agent.py), as `<name>-pitr-container`."""
    s, link = args.pitr.settings, args.pitr.off_host
    published = list(link.tls.endpoint.published) if link is not None else []
    drill = args.engine.volume(
        f"{name}-pitr-drill",
        f"{args.docker_name}-pitr-drill",
        scratch_labels(args.labels),
        parent,
    )
    return args.engine.run(
        Workload(
            name=f"{name}-pitr",
            docker_name=agent_docker_name(args.docker_name),
            image=args.pitr.image,
            command=agent_command(args.pitr, metrics=args.metrics_network is not None),
            mounts=[
                Mount(args.data_volume, str(layout.DATA_MOUNT), read_only=True),
                *args.storage.server_mounts(),
                Mount(drill.name, str(layout.DRILL_PATH)),
            ],
            # It reaches the server through its socket: a network to serve its metrics, and
            # beside an off-host repository the server's link out, where it serves backups.
            networks=[
                Network(network, agent_alias(args.pitr.stanza))
                for network in (args.metrics_network, args.link_network)
                if network is not None
            ],
            # Published where the engine's homes are separate hosts (none on a swarm, whose
            # repository dials the agent's service over their overlay).
            ports=published or None,
            needs=ImageNeeds(non_root_user=layout.PG_USER),
            resources=s.resources,
            # Beside an off-host repository, whose backups it serves: healthy while its TLS
            # server answers (on a swarm its whole health, so the repository can dial it from
            # the start); its state, the backups' and drills' freshness, on one host.
            health_test=[
                "CMD",
                *(serves(DATABASE_TLS_PORT) if link else health_command(args.pitr)),
            ],
            state_test=["CMD", *health_command(args.pitr)] if link else None,
            labels={**args.labels, **args.storage.config.revision_label()},
            stop_grace_seconds=s.stop_grace_seconds,
            pids_limit=s.pids_limit,
            # As the server's OS user in every profile: it reads the server's files and logs
            # in through its socket as that user, and never needs root.
            user=layout.PG_USER,
            # `pulumi up` does not wait for it: it turns healthy after its first full backup
            # and drill, which take as long as the database is large.
            waits=False,
            depends_on=[args.server],
            home=args.home,
        ),
        parent,
    ).container


def agent_docker_name(server_docker_name: str) -> str:
    """The agent's Docker name beside its server's."""
    return f"{server_docker_name}-pitr"


def agent_command(args: PitrArgs, metrics: bool = False) -> list[str]:
    # Beside an off-host repository: its checks and backups on repo1 alone, which repo2 away
    # must not stop, and the TLS server the repository takes its own backups through.
    off_host = ["--config", str(layout.AGENT_CONFIG_FILE), "--tls-server"]
    return [
        "python3",
        "-m",
        "pitr",
        "agent",
        "--stanza",
        args.stanza,
        *schedule_options(args.settings),
        *(["--metrics-port", str(METRICS_PORT)] if metrics else []),
        *(off_host if args.off_host is not None else []),
    ]


def schedule_options(s: PitrSettings) -> list[str]:
    """When an agent backs up, drills and checks (`pitr agent`, `pitr repository`)."""

    def hours(value: int | None) -> str:
        return "off" if value is None else f"{value}h"

    return [
        "--full-every",
        hours(s.full_every_hours),
        "--diff-every",
        hours(s.diff_every_hours),
        "--incr-every",
        hours(s.incr_every_hours),
        "--drill-every",
        hours(s.drill_every_hours),
        "--check-every",
        f"{s.check_every_minutes}m",
    ]


def health_command(args: PitrArgs) -> list[str]:
    """Unhealthy on a stale archive, a failed or overdue backup, a failed or overdue drill, and
    until the first drill has passed."""
    tls = [] if args.off_host is None else ["--tls-port", str(DATABASE_TLS_PORT)]
    return [
        *["python3", "-m", "pitr", "health", "--stanza", args.stanza],
        *limit_options(args.settings),
        *tls,
    ]


def serves(port: int) -> list[str]:
    """A swarm task's health check beside the off-host repository: its TLS server answers."""
    return ["python3", "-m", "pitr", "serves", "--port", str(port)]


def limit_options(s: PitrSettings) -> list[str]:
    """How stale an archive, a backup and a drill may be before a health check fails."""
    backup_hours, drill_hours = overdue_after_hours(s)
    return [
        "--max-archive-age",
        f"{s.max_archive_age_minutes}m",
        "--max-backup-age",
        f"{backup_hours}h",
        "--max-drill-age",
        f"{drill_hours}h",
    ]
