"""The whole platform of one stack: networks, Redis, a database per business service, services."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi

from components.alert_rules import Thresholds
from components.backup_job import OVERDUE_SLACK_HOURS as BACKUP_OVERDUE_SLACK_HOURS
from components.backup_job import BackupJob, BackupJobArgs
from components.built_image import service_image
from components.cache import Cache, CacheArgs
from components.caddyfile import AUTH_DIR, HTTP_PORT, HTTPS_PORT, EdgeRoutes
from components.database import Database, DatabaseArgs
from components.docker_provider import docker_provider
from components.edge import EdgeArgs, EdgeProxy
from components.monitoring import GRAFANA_ALIAS, GRAFANA_PORT, Monitoring, MonitoringArgs
from components.monitoring_config import EDGE_METRICS_ALIAS, PROMETHEUS_ALIAS, PROMETHEUS_PORT
from components.networks import Networks, NetworksArgs
from components.pitr import PitrArgs, overdue_after_hours
from components.runtime import RuntimeProfile, docker_labels, secret_or_generated
from components.service import (
    HEALTH_PATH,
    DatabaseConnection,
    RedisConnection,
    Service,
    ServiceArgs,
)
from components.workload import Network, Port
from stacks.catalogue import Catalogue, Role, ServiceSpec
from stacks.loader import SecretOverrides
from stacks.settings import PitrSettings, PlatformSettings, edge_apps

REDIS_ALIAS = "redis"
GRAFANA_EDGE_PORT = 3030
"""Where the edge listens for Grafana inside its container (dev's `monitoring.grafana.hostPort`):
Grafana's own 3000 is the gateway's there."""
PROMETHEUS_USERS_FILE = "prometheus-users"


@dataclass(frozen=True)
class PlatformArgs:
    settings: PlatformSettings
    catalogue: Catalogue
    secrets: SecretOverrides
    stack: str
    """Stack name, recorded in every Docker object's labels."""
    docker_config: Mapping[str, str] = field(default_factory=dict)
    """The stack's `docker:host`/`docker:context`, for the provider made for a registry."""


class Platform(pulumi.ComponentResource):
    networks: Networks
    cache: Cache
    databases: dict[str, Database]
    services: dict[str, Service]
    backup: BackupJob | None
    edge: EdgeProxy
    monitoring: Monitoring | None
    urls: dict[str, str]
    """Per service: the published URL, or the in-network one for private services."""
    containers: dict[str, pulumi.Input[str]]
    """Per service: its container's name, for `docker logs`."""

    def __init__(
        self, name: str, args: PlatformArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ecommerce:index:Platform", name, None, opts)
        s, catalogue = args.settings, args.catalogue
        self._settings = s
        child = pulumi.ResourceOptions(parent=self)
        if s.registry is not None:
            provider = docker_provider(
                f"{name}-docker",
                s.registry,
                args.secrets.registry_password,
                args.docker_config,
                parent=self,
            )
            # Every Docker resource below inherits it through its parent.
            child = pulumi.ResourceOptions(parent=self, providers=[provider])
        runtime = RuntimeProfile(
            hardening=s.hardening,
            logs=s.logs,
            restart=s.restart,
            health=s.health_check,
            wait_timeout_seconds=s.wait_timeout_seconds,
            docker_host=args.docker_config.get("host"),
            swarm=s.swarm if s.engine == "swarm" else None,
        )
        prefix = s.name_prefix
        # On a swarm, the node each workload with a volume is pinned to (settings check that
        # every one has a label).
        placement = s.swarm.placement if s.engine == "swarm" else {}

        def labels(service: str, role: str) -> dict[str, str]:
            return docker_labels(args.stack, service, role)

        self.networks = Networks(
            f"{name}-networks",
            NetworksArgs(
                name_prefix=prefix,
                database_services=[spec.name for spec in catalogue.with_database()],
                internal=s.networks.internal,
                overlay=s.engine == "swarm",
                monitoring=s.monitoring.enabled,
                labels=labels("platform", "network"),
            ),
            opts=child,
        )
        self.cache = Cache(
            f"{name}-redis",
            CacheArgs(
                docker_name=f"{prefix}-redis",
                settings=s.redis,
                network=self.networks.cache,
                alias=REDIS_ALIAS,
                runtime=runtime,
                labels=labels("redis", "cache"),
                password=args.secrets.redis_password,
                publish_ip=s.publish_ip,
                protect_data=s.protect_data,
                node_label=placement.get("redis"),
            ),
            opts=child,
        )
        pitr_image = self._pitr_image(name, s) if s.pitr.enabled else None
        self.databases = {}
        for spec in catalogue.with_database():
            assert spec.database is not None
            self.databases[spec.name] = Database(
                f"{name}-{spec.name}-db",
                DatabaseArgs(
                    spec=spec.database,
                    docker_name=f"{prefix}-{spec.name}-db",
                    image=s.postgres.image,
                    network=self.networks.databases[spec.name],
                    alias=database_alias(spec.name),
                    tuning=s.tuning_of(spec.name),
                    resources=s.database_resources(spec.name),
                    shm_size_mb=s.postgres.shm_size_mb,
                    stop_grace_seconds=s.postgres.stop_grace_seconds,
                    pids_limit=s.postgres.pids_limit,
                    runtime=runtime,
                    labels=labels(spec.name, "database"),
                    password=args.secrets.database_passwords.get(spec.name),
                    host_port=s.database(spec.name).host_port,
                    publish_ip=s.publish_ip,
                    public_host=s.public_host,
                    protect_data=s.protect_data,
                    pitr=None if pitr_image is None else PitrArgs(s.pitr, pitr_image, spec.name),
                    node_label=placement.get(f"{spec.name}-db"),
                    exporter_role=s.monitoring.enabled,
                    metrics_network=self.networks.monitoring,
                ),
                opts=child,
            )
        jwt_secret = secret_or_generated(f"{name}-jwt-secret", args.secrets.jwt_secret, 64, self)

        # Registered business services first, then the gateway, then the web apps (the order
        # of the outputs); they start side by side, each after its own database and Redis.
        self.services = {}
        order = sorted(catalogue.services, key=lambda spec: _START_ORDER[spec.role])
        for spec in order:
            self.services[spec.name] = Service(
                f"{name}-{spec.name}",
                self._service_args(spec, args, runtime, jwt_secret, labels(spec.name, spec.role)),
                opts=child,
            )
        # Monitoring before the edge, which serves its UIs; it scrapes the backup job by name.
        self.monitoring = self._monitoring(name, args, runtime, child)
        self.edge = self._edge_proxy(name, args, runtime, child)
        self.backup = None
        if s.backup.enabled:
            self.backup = BackupJob(
                f"{name}-backup",
                BackupJobArgs(
                    docker_name=f"{prefix}-backup",
                    settings=s.backup,
                    databases=self.databases,
                    database_networks=dict(self.networks.databases),
                    runtime=runtime,
                    labels=labels("backup", "backup"),
                    protect_data=s.protect_data,
                    node_label=placement.get("backup"),
                    metrics_network=self.networks.monitoring,
                ),
                opts=child,
            )
        self.urls = {spec.name: service_url(spec, s) for spec in catalogue.services}
        self.containers = {n: service.docker_name for n, service in sorted(self.services.items())}
        self.containers["edge"] = self.edge.container.name
        self.register_outputs({})

    def _pitr_image(self, name: str, s: PlatformSettings) -> pulumi.Input[str]:
        """The image of pitr/Dockerfile: published, or built here on `postgres.image`."""
        source: PitrSettings = s.pitr
        if s.pitr.build is not None:
            args = {**s.pitr.build.args, "POSTGRES_IMAGE": s.postgres.image}
            source = s.pitr.model_copy(
                update={"build": s.pitr.build.model_copy(update={"args": args})}
            )
        return service_image(
            f"{name}-postgres-pitr", source, f"{s.name_prefix}-postgres-pitr", self
        )

    def _monitoring(
        self, name: str, args: PlatformArgs, runtime: RuntimeProfile, opts: pulumi.ResourceOptions
    ) -> Monitoring | None:
        s, networks = args.settings, self.networks
        if networks.monitoring is None or networks.alerting is None:
            return None
        receivers = {
            "webhook_url": args.secrets.alert_webhook_url,
            "smtp_password": args.secrets.alert_smtp_password,
        }
        return Monitoring(
            f"{name}-monitoring",
            MonitoringArgs(
                settings=s.monitoring,
                thresholds=Thresholds(
                    s.monitoring.alerts,
                    s.pitr.max_archive_age_minutes if s.pitr.enabled else None,
                    overdue_after_hours(s.pitr) if s.pitr.enabled else None,
                    s.backup.every_hours + BACKUP_OVERDUE_SLACK_HOURS if s.backup.enabled else None,
                    apps_probed=s.monitoring.health_probe.enabled,
                ),
                pitr=s.pitr.enabled,
                backup=s.backup.enabled,
                name_prefix=s.name_prefix,
                stack=args.stack,
                monitoring_network=networks.monitoring,
                alerting_network=networks.alerting,
                databases=self.databases,
                database_networks=dict(networks.databases),
                cache=self.cache,
                cache_network=networks.cache,
                apps={
                    spec.name: internal_url(spec) + HEALTH_PATH for spec in args.catalogue.services
                },
                # The gateway and web apps answer on the edge network, the business services on
                # the backend one.
                app_networks=[networks.edge, networks.backend],
                runtime=runtime,
                labels=lambda service, role: docker_labels(args.stack, service, role),
                receivers={k: v for k, v in receivers.items() if v is not None},
                publish_ip=s.publish_ip,
                protect_data=s.protect_data,
                placement=s.swarm.placement if s.engine == "swarm" else None,
            ),
            opts=opts,
        )

    def monitoring_output(self) -> dict[str, pulumi.Output[str] | str]:
        """The `monitoring` stack output: the UIs' URLs and their logins."""
        assert self.monitoring is not None
        s = self._settings
        m = s.monitoring
        found: dict[str, pulumi.Output[str] | str] = {}
        if m.grafana.enabled and m.grafana.host is not None:
            found["grafanaUrl"] = edge_url(m.grafana.host, s)
        elif m.grafana.enabled and m.grafana.host_port is not None:
            found["grafanaUrl"] = f"http://{s.public_host}:{m.grafana.host_port}"
        if m.prometheus.host is not None:
            found["prometheusUrl"] = edge_url(m.prometheus.host, s)
        elif m.prometheus.host_port is not None:
            found["prometheusUrl"] = f"http://{s.public_host}:{m.prometheus.host_port}"
        return found | self.monitoring.logins()

    def pitr_passphrases(self) -> dict[str, pulumi.Output[str]]:
        """Per service, its repository's passphrase (a secret): keep a copy outside the stack's
        state, without it no backup of the repository can be read."""
        return {n: db.pitr.passphrase for n, db in self.databases.items() if db.pitr is not None}

    def _edge_proxy(
        self,
        name: str,
        args: PlatformArgs,
        runtime: RuntimeProfile,
        opts: pulumi.ResourceOptions,
    ) -> EdgeProxy:
        s, catalogue = args.settings, args.catalogue
        edge = s.edge
        by_port, ports = {}, []
        for app in edge_apps(catalogue):
            spec = catalogue.get(app)
            host_port = s.services[app].host_port
            if host_port is not None:
                # Inside the proxy, each app's port map entry listens on the app's own port.
                by_port[spec.container_port] = _upstream(spec)
                ports.append(Port(spec.container_port, host_port, s.publish_ip))
        by_host = {host: _upstream(catalogue.get(app)) for app, host in edge.hosts.items()}
        basic_auth, auth_files = {}, {}
        monitoring = s.monitoring
        if self.monitoring is not None:
            grafana = f"{GRAFANA_ALIAS}:{GRAFANA_PORT}"
            if monitoring.grafana.enabled and monitoring.grafana.host is not None:
                by_host[monitoring.grafana.host] = grafana
            if monitoring.grafana.enabled and monitoring.grafana.host_port is not None:
                by_port[GRAFANA_EDGE_PORT] = grafana
                ports.append(Port(GRAFANA_EDGE_PORT, monitoring.grafana.host_port, s.publish_ip))
            login = self.monitoring.prometheus_login
            if monitoring.prometheus.host is not None and login is not None:
                by_host[monitoring.prometheus.host] = f"{PROMETHEUS_ALIAS}:{PROMETHEUS_PORT}"
                basic_auth[monitoring.prometheus.host] = f"{AUTH_DIR}/{PROMETHEUS_USERS_FILE}"
                auth_files[PROMETHEUS_USERS_FILE] = login.bcrypt_hash.apply(
                    lambda hashed: f"{login.user} {hashed}\n"
                )
        if by_host:
            ports.append(Port(HTTP_PORT, edge.http_port, s.publish_ip))
        if by_host and edge.tls is not None:
            ports.append(Port(HTTPS_PORT, edge.https_port, s.publish_ip))
        routes = EdgeRoutes(
            by_port=by_port,
            by_host=by_host,
            tls=edge.tls,
            https_port=edge.https_port,
            retry_seconds=edge.upstream_retry_seconds,
            basic_auth=basic_auth,
            grace_seconds=edge.stop_grace_seconds,
            # By its name on the monitoring network; on a swarm that name is the service's.
            metrics_bind=None
            if self.networks.monitoring is None
            else ""
            if s.engine == "swarm"
            else EDGE_METRICS_ALIAS,
        )
        return EdgeProxy(
            f"{name}-edge",
            EdgeArgs(
                settings=edge,
                docker_name=f"{s.name_prefix}-edge",
                routes=routes,
                ports=ports,
                network=self.networks.edge,
                runtime=runtime,
                labels=docker_labels(args.stack, "edge", "edge"),
                protect_data=s.protect_data,
                certificate=args.secrets.edge_tls_certificate,
                key=args.secrets.edge_tls_key,
                node_label=(s.swarm.placement if s.engine == "swarm" else {}).get("edge"),
                metrics_network=self.networks.monitoring,
                auth_files=auth_files,
            ),
            opts=opts,
        )

    def _service_args(
        self,
        spec: ServiceSpec,
        args: PlatformArgs,
        runtime: RuntimeProfile,
        jwt_secret: pulumi.Output[str],
        labels: dict[str, str],
    ) -> ServiceArgs:
        s, catalogue = args.settings, args.catalogue
        networks = self.networks
        attachments: list[Network] = []
        depends_on: list[pulumi.Resource] = []
        if spec.role in (Role.GATEWAY, Role.WEB):
            attachments.append(Network(networks.edge, spec.name))
        if spec.role in (Role.GATEWAY, Role.BUSINESS):
            # The gateway calls the business services there; nobody calls it there.
            attachments.append(
                Network(networks.backend, spec.name, serves=spec.role is Role.BUSINESS)
            )
        database = None
        if spec.database is not None:
            db = self.databases[spec.name]
            attachments.append(Network(networks.databases[spec.name], spec.name, serves=False))
            database = DatabaseConnection(
                db.host, db.port, spec.database.name, spec.database.user, db.password
            )
            depends_on.append(db.container)
        redis = None
        if spec.uses_redis:
            attachments.append(Network(networks.cache, spec.name, serves=False))
            redis = RedisConnection(self.cache.host, self.cache.port, self.cache.password)
            depends_on.append(self.cache.container)
        # An app waits for its own database and Redis only: the gateway does not wait for the
        # services behind it, nor the web apps for the gateway. Their contract is to start
        # without them and answer 502 until they answer (an upstream restarts on its own too).
        upstreams = {}
        if spec.role is Role.GATEWAY:
            business = [b for b in catalogue.services if b.role is Role.BUSINESS]
            upstreams = {b.name: internal_url(b) for b in business}
        gateway_url = None
        if spec.role is Role.WEB:
            gateway_url = internal_url(catalogue.gateway())
        return ServiceArgs(
            spec=spec,
            settings=s.services[spec.name],
            docker_name=f"{s.name_prefix}-{spec.name}",
            networks=attachments,
            runtime=runtime,
            labels=labels,
            cors_origins=s.cors_origins,
            node_env="production" if s.profile == "prod" else "development",
            database=database,
            redis=redis,
            jwt_secret=jwt_secret if spec.uses_jwt else None,
            upstreams=upstreams,
            gateway_url=gateway_url,
            # The edge proxy publishes the gateway and web apps; a business service's own port
            # (dev only) is published by its container.
            host_port=s.services[spec.name].host_port if spec.role is Role.BUSINESS else None,
            publish_ip=s.publish_ip,
            depends_on=depends_on,
        )

    def database_targets(self) -> dict[str, dict[str, pulumi.Input[str] | pulumi.Input[int]]]:
        """The `databases` stack output, the shape the backup tool reads: where an operator's
        machine reaches each database (published port in dev, in-network alias in prod)."""
        targets: dict[str, dict[str, pulumi.Input[str] | pulumi.Input[int]]] = {}
        for service, db in self.databases.items():
            targets[service] = {
                "host": db.reachable_host,
                "port": db.reachable_port,
                "database": db.database,
                "user": db.user,
                "password": db.password,
            }
        return targets


_START_ORDER = {Role.BUSINESS: 0, Role.GATEWAY: 1, Role.WEB: 2}


def database_alias(service: str) -> str:
    """Host name of a service's database on its private network."""
    return f"{service}-db"


def service_url(spec: ServiceSpec, settings: PlatformSettings) -> str:
    """The published URL of a service (by host name first), or its in-network URL."""
    host = settings.edge.hosts.get(spec.name)
    if host is not None:
        return edge_url(host, settings)
    host_port = settings.services[spec.name].host_port
    if host_port is None:
        return internal_url(spec)
    return f"http://{settings.public_host}:{host_port}"


def edge_url(host: str, settings: PlatformSettings) -> str:
    """Where the edge serves a host name: HTTPS with `edge.tls`, else plain HTTP."""
    edge = settings.edge
    if edge.tls is not None:
        return f"https://{host}" + ("" if edge.https_port == 443 else f":{edge.https_port}")
    return f"http://{host}" + ("" if edge.http_port == 80 else f":{edge.http_port}")


def _upstream(spec: ServiceSpec) -> str:
    """An app as the edge proxy dials it: its network alias and port."""
    return f"{spec.name}:{spec.container_port}"


def internal_url(spec: ServiceSpec) -> str:
    return f"http://{spec.name}:{spec.container_port}"
