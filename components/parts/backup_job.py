"""The scheduled backup container: the backup tool (backup/) on every database network.

It dumps each database with that service's own credentials (the owner of its database), on a
schedule, into a named volume, and prunes by the stack's retention. On one Docker host its health
check fails when the last run failed or is older than the schedule allows, so `docker ps` shows a
stale backup; beside monitoring on a swarm, its metrics say so instead (see `BackupJob`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.engine import Engine
from components.engine.files import SecretFiles, SecretFilesArgs, secret_path
from components.engine.workload import ImageNeeds, Mount, Network, Workload, answers_http
from components.parts.database import Database
from components.renderers.monitoring_config import BACKUP_ALIAS as ALIAS
from components.renderers.monitoring_config import BACKUP_METRICS_PORT as METRICS_PORT
from stacks.settings import BackupSettings

BACKUP_DIR = "/backups"
TARGETS_FILE = "targets.json"
HOME = "backup"
"""Where its volume is (`swarm.placement.backup`)."""


@dataclass(frozen=True)
class BackupJobArgs:
    docker_name: str
    settings: BackupSettings
    databases: Mapping[str, Database]
    """Service name -> its database; the job joins each one's network."""
    database_networks: Mapping[str, docker.Network]
    engine: Engine
    labels: Mapping[str, str]
    protect_data: bool = True
    metrics_network: docker.Network | None = None
    """The monitoring network, where it serves its metrics (METRICS_PORT)."""


class BackupJob(pulumi.ComponentResource):
    container: docker.Container | docker.Service
    """What runs it: a container, or a service on a swarm."""

    def __init__(
        self, name: str, args: BackupJobArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ecommerce:index:BackupJob", name, None, opts)
        s = args.settings
        assert s.image is not None  # the settings require it when the job is enabled
        secrets = SecretFiles(
            f"{name}-secrets",
            SecretFilesArgs(
                docker_name=f"{args.docker_name}-secrets",
                image=s.image,
                files={TARGETS_FILE: in_network_targets(args.databases)},
                labels=args.labels,
                engine=args.engine,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        metrics = args.metrics_network is not None
        data = args.engine.volume(
            f"{name}-data", f"{args.docker_name}-data", args.labels, self, protect=args.protect_data
        )
        self.container = args.engine.run(
            Workload(
                name=name,
                docker_name=args.docker_name,
                image=s.image,
                command=schedule_command(s, metrics=metrics),
                mounts=[Mount(data.name, BACKUP_DIR), secrets.mount()],
                networks=[
                    *(Network(n, ALIAS) for _, n in sorted(args.database_networks.items())),
                    *([Network(args.metrics_network, ALIAS)] if args.metrics_network else []),
                ],
                needs=ImageNeeds(non_root_user=s.user),
                resources=s.resources,
                # Beside monitoring, which reads its state from its metrics: healthy while that
                # server answers (on a swarm its whole health, since a swarm restarts an
                # unhealthy task: a failed run would stop the next try midway, every time);
                # its state, the backups' freshness, on one host.
                health_test=["CMD", *(serves_command() if metrics else status_command(s))],
                state_test=["CMD", *status_command(s)] if metrics else None,
                labels={**args.labels, **secrets.revision_label()},
                stop_grace_seconds=s.stop_grace_seconds,
                pids_limit=s.pids_limit,
                home=HOME,
                depends_on=[db.container for db in args.databases.values()],
            ),
            self,
        ).container
        self.register_outputs({})


def schedule_command(s: BackupSettings, metrics: bool = False) -> list[str]:
    command = [
        "python3",
        "-m",
        "backup",
        "schedule",
        "--quiet",
        "--targets",
        secret_path(TARGETS_FILE),
        "--dest",
        BACKUP_DIR,
        "--every",
        f"{s.every_hours}h",
        "--keep-last",
        str(s.keep_last),
    ]
    if s.keep_days is not None:
        command += ["--keep-days", str(s.keep_days)]
    if metrics:
        command += ["--metrics-port", str(METRICS_PORT)]
    return command


def serves_command() -> list[str]:
    """Healthy while its metrics server answers: the scheduler runs."""
    return answers_http(f"http://127.0.0.1:{METRICS_PORT}/metrics")


OVERDUE_SLACK_HOURS = 2
"""A backup is overdue after its interval and this much more: the health check and the
alert rules alike."""


def status_command(s: BackupSettings) -> list[str]:
    """Healthy while the last scheduled run succeeded and is not overdue."""
    max_age = f"{s.every_hours + OVERDUE_SLACK_HOURS}h"
    return ["python3", "-m", "backup", "status", "--dest", BACKUP_DIR, "--max-age", max_age]


def in_network_targets(databases: Mapping[str, Database]) -> pulumi.Output[str]:
    """The backup tool's targets file, reaching each database by its alias on its network."""
    services = sorted(databases)

    def render(passwords: list[str]) -> str:
        targets = {
            service: {
                "host": databases[service].host,
                "port": databases[service].port,
                "database": databases[service].database,
                "user": databases[service].user,
                "password": password,
            }
            for service, password in zip(services, passwords, strict=True)
        }
        return json.dumps(targets, indent=2, sort_keys=True)

    passwords = pulumi.Output.all(*(databases[s].password for s in services))
    return pulumi.Output.secret(passwords.apply(render))
