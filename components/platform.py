"""The whole platform of one stack: it reads the settings, creates the parts and wires them.

Each part owns what it knows (components/parts/); where and how each one runs is the engine's
(components/engine/), chosen once here from the settings; the stack's outputs are shaped in
components/outputs.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi

from components.engine import Engine, engine_for
from components.engine.base import Endpoint, HomeLinks
from components.engine.workload import Network
from components.parts.backup_job import OVERDUE_SLACK_HOURS as BACKUP_OVERDUE_SLACK_HOURS
from components.parts.backup_job import BackupJob, BackupJobArgs
from components.parts.built_image import service_image
from components.parts.cache import Cache, CacheArgs
from components.parts.credentials import secret_or_generated
from components.parts.database import Database, DatabaseArgs
from components.parts.edge import EdgeArgs, EdgeProxy, Sites
from components.parts.monitoring import Monitoring, MonitoringArgs
from components.parts.naming import REDIS_ALIAS, database_alias, docker_labels, internal_url
from components.parts.networks import Networks, NetworksArgs
from components.parts.off_host import (
    OffHostArgs,
    OffHostCertificates,
    OffHostRepository,
    database_endpoints,
    repository_endpoint,
)
from components.parts.pitr import PitrArgs, agent_docker_name, overdue_after_hours
from components.parts.pitr_tls import OffHostLink
from components.parts.service import (
    HEALTH_PATH,
    DatabaseConnection,
    RedisConnection,
    Service,
    ServiceArgs,
)
from components.renderers.alert_rules import Thresholds
from stacks.catalogue import Catalogue, Role, ServiceSpec
from stacks.loader import SecretOverrides
from stacks.settings import OFF_HOST_HOME, PitrSettings, PlatformSettings, database_home


@dataclass(frozen=True)
class PlatformArgs:
    settings: PlatformSettings
    catalogue: Catalogue
    secrets: SecretOverrides
    stack: str
    """Stack name, recorded in every Docker object's labels."""
    docker_config: Mapping[str, str] = field(default_factory=dict)
    """The stack's `docker:host`/`docker:context`, for the engine's Docker connections."""


class Platform(pulumi.ComponentResource):
    settings: PlatformSettings
    catalogue: Catalogue
    engine: Engine
    networks: Networks
    cache: Cache
    databases: dict[str, Database]
    services: dict[str, Service]
    monitoring: Monitoring | None
    edge: EdgeProxy
    backup: BackupJob | None
    off_host_certificates: OffHostCertificates | None
    off_host: OffHostRepository | None
    """The off-host backup repository (`pitr.offHost`), where the stack has one."""
    _home_links: HomeLinks
    """How the databases' homes and the repository's reach one another (with one)."""
    _repository_endpoint: Endpoint
    """Where the database servers dial the repository (with one)."""

    def __init__(
        self, name: str, args: PlatformArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ecommerce:index:Platform", name, None, opts)
        self._name, self._args = name, args
        self.settings, self.catalogue = args.settings, args.catalogue
        self.engine = engine_for(
            name,
            args.settings,
            args.docker_config,
            args.secrets.registry_password,
            self,
            [database_home(spec.name) for spec in args.catalogue.with_database()],
        )
        # Every Docker resource below inherits the engine's providers through its parent.
        self._child = pulumi.ResourceOptions(parent=self, providers=self.engine.providers)
        self.networks = self._networks()
        self.cache = self._cache()
        pitr_image = self._pitr_image() if args.settings.pitr.enabled else None
        self.off_host_certificates = self._off_host_certificates()
        # The repository first: each server's start guard asks it for backups.
        self.off_host = self._off_host_repository()
        self.databases = {
            spec.name: self._database(spec, pitr_image) for spec in self.catalogue.with_database()
        }
        jwt_secret = secret_or_generated(f"{name}-jwt-secret", args.secrets.jwt_secret, 64, self)
        # Registered business services first, then the gateway, then the web apps; they start
        # side by side, each after its own database and Redis.
        order = sorted(self.catalogue.services, key=lambda spec: _START_ORDER[spec.role])
        self.services = {spec.name: self._service(spec, jwt_secret) for spec in order}
        # Monitoring before the edge, which serves its UIs; it scrapes the backup job by name.
        self.monitoring = self._monitoring()
        self.edge = self._edge()
        self.backup = self._backup()
        self.register_outputs({})

    def _labels(self, service: str, role: str) -> dict[str, str]:
        return docker_labels(self._args.stack, service, role)

    def _networks(self) -> Networks:
        s = self.settings
        return Networks(
            f"{self._name}-networks",
            NetworksArgs(
                name_prefix=s.name_prefix,
                database_services=[spec.name for spec in self.catalogue.with_database()],
                internal=s.networks.internal,
                engine=self.engine,
                monitoring=s.monitoring.enabled,
                labels=self._labels("platform", "network"),
            ),
            opts=self._child,
        )

    def _cache(self) -> Cache:
        s = self.settings
        return Cache(
            f"{self._name}-redis",
            CacheArgs(
                docker_name=f"{s.name_prefix}-redis",
                settings=s.redis,
                network=self.networks.cache,
                alias=REDIS_ALIAS,
                engine=self.engine,
                labels=self._labels("redis", "cache"),
                password=self._args.secrets.redis_password,
                publish_ip=s.publish_ip,
                protect_data=s.protect_data,
            ),
            opts=self._child,
        )

    def _database(self, spec: ServiceSpec, pitr_image: pulumi.Input[str] | None) -> Database:
        s, service = self.settings, spec.name
        assert spec.database is not None  # the catalogue's databases only
        return Database(
            f"{self._name}-{service}-db",
            DatabaseArgs(
                service=service,
                spec=spec.database,
                docker_name=self._database_docker_name(service),
                image=s.postgres.image,
                network=self.networks.databases[service],
                alias=database_alias(service),
                tuning=s.tuning_of(service),
                resources=s.database_resources(service),
                shm_size_mb=s.postgres.shm_size_mb,
                stop_grace_seconds=s.postgres.stop_grace_seconds,
                pids_limit=s.postgres.pids_limit,
                engine=self.engine,
                labels=self._labels(service, "database"),
                password=self._args.secrets.database_passwords.get(service),
                host_port=s.database(service).host_port,
                publish_ip=s.publish_ip,
                public_host=s.public_host,
                protect_data=s.protect_data,
                pitr=None
                if pitr_image is None
                else PitrArgs(s.pitr, pitr_image, service, self._off_host_link(service)),
                exporter_role=s.monitoring.enabled,
                metrics_network=self.networks.monitoring,
            ),
            opts=self._child,
        )

    def _pitr_image(self, home: str | None = None) -> pulumi.Input[str]:
        """The image of pitr/Dockerfile where `home` runs: published, or built there on
        `postgres.image`."""
        s = self.settings
        source: PitrSettings = s.pitr
        if s.pitr.build is not None:
            build_args = {**s.pitr.build.args, "POSTGRES_IMAGE": s.postgres.image}
            build = s.pitr.build.model_copy(update={"args": build_args})
            source = s.pitr.model_copy(update={"build": build})
        suffix = "" if home is None else f"-{home}"
        return service_image(
            f"{self._name}-postgres-pitr{suffix}",
            source,
            f"{s.name_prefix}-postgres-pitr",
            self,
            self.engine.provider_of(home),
        )

    def _off_host_certificates(self) -> OffHostCertificates | None:
        """The CA and the certificates of both sides of the off-host repository, for where
        the engine's links between their homes have each side dial the other."""
        s = self.settings
        if not (s.pitr.enabled and s.pitr.off_host.enabled):
            return None
        self._home_links = self.engine.links_between_homes(
            f"{self._name}-pitr-links",
            f"{s.name_prefix}-pitr-links",
            self._labels(OFF_HOST_HOME, "network"),
            self.networks,
            hub=OFF_HOST_HOME,
            spokes=[database_home(spec.name) for spec in self.catalogue.with_database()],
        )
        self._repository_endpoint = repository_endpoint(self._home_links, s.name_prefix, s.pitr)
        agents = {
            spec.name: agent_docker_name(self._database_docker_name(spec.name))
            for spec in self.catalogue.with_database()
        }
        return OffHostCertificates(
            f"{self._name}-pitr-certificates",
            s.pitr,
            self._repository_endpoint,
            database_endpoints(self._home_links, agents, s.pitr),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _off_host_link(self, service: str) -> OffHostLink | None:
        certificates = self.off_host_certificates
        if certificates is None:
            return None
        workload = self.off_host.container if self.off_host is not None else None
        return OffHostLink(
            certificates.databases[service], self._repository_endpoint, self._home_links, workload
        )

    def _off_host_repository(self) -> OffHostRepository | None:
        """repo2 on its own home (components/parts/off_host.py)."""
        s, certificates = self.settings, self.off_host_certificates
        if certificates is None:
            return None
        return OffHostRepository(
            f"{self._name}-{OFF_HOST_HOME}",
            OffHostArgs(
                settings=s.pitr,
                stanzas=[spec.name for spec in self.catalogue.with_database()],
                image=self._pitr_image(OFF_HOST_HOME),
                docker_prefix=s.name_prefix,
                labels=self._labels(OFF_HOST_HOME, OFF_HOST_HOME),
                protect_data=s.protect_data,
                engine=self.engine,
                links=self._home_links,
                endpoint=self._repository_endpoint,
            ),
            certificates,
            opts=self._child,
        )

    def _database_docker_name(self, service: str) -> str:
        return f"{self.settings.name_prefix}-{service}-db"

    def _service(self, spec: ServiceSpec, jwt_secret: pulumi.Output[str]) -> Service:
        s = self.settings
        # The edge proxy publishes the gateway and web apps; a business service's own port
        # (dev only) is published by its container.
        host_port = s.services[spec.name].host_port if spec.role is Role.BUSINESS else None
        database, redis, depends_on = self._connections(spec)
        return Service(
            f"{self._name}-{spec.name}",
            ServiceArgs(
                spec=spec,
                settings=s.services[spec.name],
                docker_name=f"{s.name_prefix}-{spec.name}",
                networks=self._app_networks(spec),
                engine=self.engine,
                labels=self._labels(spec.name, spec.role),
                cors_origins=s.cors_origins,
                node_env="production" if s.profile == "prod" else "development",
                database=database,
                redis=redis,
                jwt_secret=jwt_secret if spec.uses_jwt else None,
                upstreams=self._upstreams(spec),
                gateway_url=internal_url(self.catalogue.gateway())
                if spec.role is Role.WEB
                else None,
                host_port=host_port,
                publish_ip=s.publish_ip,
                depends_on=depends_on,
            ),
            opts=self._child,
        )

    def _app_networks(self, spec: ServiceSpec) -> list[Network]:
        """An app's networks: where it is called (edge, backend) and where it calls out."""
        networks, attachments = self.networks, []
        if spec.role in (Role.GATEWAY, Role.WEB):
            attachments.append(Network(networks.edge, spec.name))
        if spec.role in (Role.GATEWAY, Role.BUSINESS):
            # The gateway calls the business services there; nobody calls it there.
            serves = spec.role is Role.BUSINESS
            attachments.append(Network(networks.backend, spec.name, serves=serves))
        if spec.database is not None:
            attachments.append(Network(networks.databases[spec.name], spec.name, serves=False))
        if spec.uses_redis:
            attachments.append(Network(networks.cache, spec.name, serves=False))
        return attachments

    def _connections(
        self, spec: ServiceSpec
    ) -> tuple[DatabaseConnection | None, RedisConnection | None, list[pulumi.Resource]]:
        """An app's database and Redis, and what it waits for: those two only. The gateway
        does not wait for the services behind it, nor the web apps for the gateway: their
        contract is to start without them and answer 502 until they answer."""
        database = redis = None
        depends_on: list[pulumi.Resource] = []
        if spec.database is not None:
            db = self.databases[spec.name]
            database = DatabaseConnection(
                db.host, db.port, spec.database.name, spec.database.user, db.password
            )
            depends_on.append(db.container)
        if spec.uses_redis:
            redis = RedisConnection(self.cache.host, self.cache.port, self.cache.password)
            depends_on.append(self.cache.container)
        return database, redis, depends_on

    def _upstreams(self, spec: ServiceSpec) -> dict[str, str]:
        """The gateway's business services by name and in-network URL."""
        if spec.role is not Role.GATEWAY:
            return {}
        business = [b for b in self.catalogue.services if b.role is Role.BUSINESS]
        return {b.name: internal_url(b) for b in business}

    def _monitoring(self) -> Monitoring | None:
        s, networks, secrets = self.settings, self.networks, self._args.secrets
        if networks.monitoring is None or networks.alerting is None:
            return None
        receivers = {
            "webhook_url": secrets.alert_webhook_url,
            "smtp_password": secrets.alert_smtp_password,
        }
        return Monitoring(
            f"{self._name}-monitoring",
            MonitoringArgs(
                settings=s.monitoring,
                thresholds=self._thresholds(),
                pitr=s.pitr.enabled,
                backup=s.backup.enabled,
                name_prefix=s.name_prefix,
                stack=self._args.stack,
                monitoring_network=networks.monitoring,
                alerting_network=networks.alerting,
                databases=self.databases,
                database_networks=dict(networks.databases),
                cache=self.cache,
                cache_network=networks.cache,
                apps={
                    spec.name: internal_url(spec) + HEALTH_PATH for spec in self.catalogue.services
                },
                # The gateway and web apps answer on the edge network, the business services
                # on the backend one.
                app_networks=[networks.edge, networks.backend],
                engine=self.engine,
                labels=self._labels,
                receivers={k: v for k, v in receivers.items() if v is not None},
                publish_ip=s.publish_ip,
                protect_data=s.protect_data,
            ),
            opts=self._child,
        )

    def _thresholds(self) -> Thresholds:
        """The alert rules' limits: the settings', and when PITR and the backup job are late."""
        s = self.settings
        backup_overdue = s.backup.every_hours + BACKUP_OVERDUE_SLACK_HOURS
        return Thresholds(
            s.monitoring.alerts,
            s.pitr.max_archive_age_minutes if s.pitr.enabled else None,
            overdue_after_hours(s.pitr) if s.pitr.enabled else None,
            backup_overdue if s.backup.enabled else None,
            apps_probed=s.monitoring.health_probe.enabled,
            off_host=s.pitr.enabled and s.pitr.off_host.enabled,
        )

    def _edge(self) -> EdgeProxy:
        s, secrets = self.settings, self._args.secrets
        return EdgeProxy(
            f"{self._name}-edge",
            EdgeArgs(
                settings=s,
                catalogue=self.catalogue,
                docker_name=f"{s.name_prefix}-edge",
                network=self.networks.edge,
                engine=self.engine,
                labels=self._labels("edge", "edge"),
                certificate=secrets.edge_tls_certificate,
                key=secrets.edge_tls_key,
                sites=self.monitoring.sites() if self.monitoring is not None else Sites(),
                metrics_network=self.networks.monitoring,
            ),
            opts=self._child,
        )

    def _backup(self) -> BackupJob | None:
        s = self.settings
        if not s.backup.enabled:
            return None
        return BackupJob(
            f"{self._name}-backup",
            BackupJobArgs(
                docker_name=f"{s.name_prefix}-backup",
                settings=s.backup,
                databases=self.databases,
                database_networks=dict(self.networks.databases),
                engine=self.engine,
                labels=self._labels("backup", "backup"),
                protect_data=s.protect_data,
                metrics_network=self.networks.monitoring,
            ),
            opts=self._child,
        )


_START_ORDER = {Role.BUSINESS: 0, Role.GATEWAY: 1, Role.WEB: 2}
