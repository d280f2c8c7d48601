"""Monitoring: Prometheus, Alertmanager, Grafana, an exporter per database server and one for
Redis.

Every part is a Workload like any other (hardened, limited, rotated logs, on both engines), and
each sits on the fewest networks it can:
- a PostgreSQL exporter joins its own database's network (where it calls out, answering to
  no one) and the monitoring network; it logs in as the `exporter` role (pg_monitor only,
  components/exporter_role.py) with a password read from a file;
- the Redis exporter joins the cache network and the monitoring network, the password (prod)
  from a file;
- Prometheus joins the monitoring network alone: it reaches exporters and metrics endpoints,
  never a database; its UI is published on loopback in dev (`monitoring.prometheus.hostPort`);
- Alertmanager joins the monitoring network and its own `alerting` network, its way out to the
  receivers. Its configuration holds the receivers' secrets: a secret file;
- Grafana joins the monitoring network alone; the edge serves it (components/renderers/dashboards.py
  writes its provisioning);
- the apps' health probe (probe/health.py, mounted as a file into a plain Python image) joins
  the apps' networks, where it only calls out, and the monitoring network, where its listener
  is bound; it asks only the apps' fixed URLs (a blackbox exporter would fetch any URL its
  caller names, giving the internal monitoring network a way out through the edge network).
Configuration files are SecretFiles like every other: a new text replaces the part that reads
it. Prometheus's, Alertmanager's and Grafana's data volumes are protected like the databases'.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_docker as docker
import pulumi_random as random

import probe.health
from components.engine import Engine
from components.engine.files import SecretFiles, SecretFilesArgs, secret_path
from components.engine.workload import (
    FileMount,
    ImageNeeds,
    Mount,
    Network,
    Port,
    Running,
    Workload,
)
from components.parts.cache import Cache
from components.parts.credentials import secret_or_generated
from components.parts.database import Database
from components.parts.edge import Sites
from components.parts.exporter_login import EXPORTER_USER, MAINTENANCE_DATABASE
from components.renderers import alert_rules, dashboards
from components.renderers import monitoring_config as config
from stacks.settings.monitoring import Component, MonitoringSettings

NOBODY = ImageNeeds(non_root_user="65534:65534")
"""The official Prometheus, Alertmanager and postgres-exporter images run as nobody."""
REDIS_EXPORTER_NEEDS = ImageNeeds(non_root_user="59000:59000")
GRAFANA_NEEDS = ImageNeeds(non_root_user="472:0")
"""The official Grafana image's user (group root, which owns its folders)."""
GRAFANA_PORT = 3000
GRAFANA_ALIAS = "grafana"
GRAFANA_EDGE_PORT = 3030
"""Where the edge listens for Grafana inside its container (dev's `monitoring.grafana.hostPort`):
Grafana's own 3000 is the gateway's there."""
PROMETHEUS_USERS_FILE = "prometheus-users"
GRAFANA_DATA = "/var/lib/grafana"
GRAFANA_DATASOURCES_DIR = "/etc/grafana/provisioning/datasources"
GRAFANA_PASSWORD_FILE = "admin-password"
GRAFANA_ADMIN = "admin"
PROMETHEUS_DATA = "/prometheus"
PROMETHEUS_CONFIG_DIR = "/etc/prometheus"
ALERTMANAGER_DATA = "/alertmanager"
ALERTMANAGER_CONFIG_DIR = "/etc/alertmanager"
EXPORTER_PASSWORD_FILE = "password"
REDIS_PASSWORD_FILE = "redis-passwords.json"
STOP_GRACE_SECONDS = 10
PROMETHEUS_STOP_GRACE_SECONDS = 60
"""Prometheus writes its head block on SIGTERM."""
HEALTH_PROBE_SCRIPT = "health_probe.py"


def http_check(port: int, path: str) -> list[str]:
    """Health check over loopback with the images' wget (busybox in the official ones)."""
    return ["CMD", "wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{port}{path}"]


@dataclass(frozen=True)
class MonitoringArgs:
    settings: MonitoringSettings
    thresholds: alert_rules.Thresholds
    name_prefix: str
    stack: str
    monitoring_network: docker.Network
    alerting_network: docker.Network
    databases: Mapping[str, Database]
    """Service name -> its database server, each with its exporter's password."""
    database_networks: Mapping[str, docker.Network]
    """Service name -> its database's network, which the database's exporter joins."""
    cache: Cache
    cache_network: docker.Network
    apps: Mapping[str, str]
    """App name -> the URL of its health endpoint, as the health probe asks it."""
    app_networks: Sequence[docker.Network]
    """The networks the apps answer on, which the health probe joins to call them."""
    engine: Engine
    labels: Callable[[str, str], dict[str, str]]
    """(service, role) -> the Docker labels of a part."""
    receivers: Mapping[str, pulumi.Output[str]]
    """The receivers' secrets by field of monitoring_config.Receivers."""
    publish_ip: str = "127.0.0.1"
    protect_data: bool = True
    pitr: bool = False
    """The PITR agents serve metrics to scrape."""
    backup: bool = False
    """The backup job serves metrics to scrape."""


@dataclass(frozen=True)
class Login:
    """A generated login in front of a UI: the user, its password and the password's bcrypt
    hash (what the edge checks), both Pulumi secrets."""

    user: str
    password: pulumi.Output[str]
    bcrypt_hash: pulumi.Output[str]


class Monitoring(pulumi.ComponentResource):
    prometheus: Running
    alertmanager: Running
    exporters: dict[str, Running]
    """By what they watch: `<service>-db` and `redis`."""
    health_probe: Running | None
    grafana: Running | None
    grafana_password: pulumi.Output[str] | None
    """Grafana's `admin` password, a Pulumi secret."""
    prometheus_login: Login | None
    """The edge's basic auth in front of Prometheus's UI (`monitoring.prometheus.host`)."""

    def __init__(
        self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ecommerce:index:Monitoring", name, None, opts)
        self._name, self._args = name, args
        m = args.settings
        self.exporters = {
            f"{service}-db": self._postgres_exporter(service, db)
            for service, db in sorted(args.databases.items())
        }
        self.exporters["redis"] = self._redis_exporter()
        self.alertmanager = self._alertmanager()
        self.health_probe = self._health_probe() if m.health_probe.enabled else None
        targets = config.ScrapeTargets(
            databases=sorted(args.databases),
            pitr=args.pitr,
            backup=args.backup,
            health_probe=self.health_probe is not None,
        )
        prometheus_yml = config.prometheus_config(m, targets, args.stack)
        self.prometheus = self._prometheus(prometheus_yml, alert_rules.render(args.thresholds))
        self.grafana = self.grafana_password = None
        if m.grafana.enabled:
            self.grafana = self._grafana()
        self.prometheus_login = None
        if m.prometheus.host is not None:
            login = random.RandomPassword(
                f"{name}-prometheus-password",
                length=32,
                special=False,
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.prometheus_login = Login(
                m.prometheus.user,
                pulumi.Output.secret(login.result),
                pulumi.Output.secret(login.bcrypt_hash),
            )
        self.register_outputs({})

    def logins(self) -> dict[str, pulumi.Output[str] | str]:
        """The `monitoring` stack output: who logs in where (passwords are secrets)."""
        found: dict[str, pulumi.Output[str] | str] = {}
        if self.grafana_password is not None:
            found |= {"grafanaUser": GRAFANA_ADMIN, "grafanaPassword": self.grafana_password}
        if self.prometheus_login is not None:
            found |= {
                "prometheusUser": self.prometheus_login.user,
                "prometheusPassword": self.prometheus_login.password,
            }
        return found

    def sites(self) -> Sites:
        """How its UIs are served by the edge: Grafana by host name (prod) or by a port the
        edge publishes (dev); Prometheus by host name behind basic auth (prod). Dev's
        Prometheus publishes its own port (`monitoring.prometheus.hostPort`)."""
        m = self._args.settings
        grafana = f"{GRAFANA_ALIAS}:{GRAFANA_PORT}"
        by_host, by_port = {}, {}
        if self.grafana is not None and m.grafana.host is not None:
            by_host[m.grafana.host] = grafana
        if self.grafana is not None and m.grafana.host_port is not None:
            by_port[GRAFANA_EDGE_PORT] = (grafana, m.grafana.host_port)
        login = self.prometheus_login
        if m.prometheus.host is None or login is None:
            return Sites(by_host=by_host, by_port=by_port)
        by_host[m.prometheus.host] = f"{config.PROMETHEUS_ALIAS}:{config.PROMETHEUS_PORT}"
        users = login.bcrypt_hash.apply(lambda hashed: f"{login.user} {hashed}\n")
        return Sites(
            by_host=by_host,
            by_port=by_port,
            basic_auth={m.prometheus.host: PROMETHEUS_USERS_FILE},
            auth_files={PROMETHEUS_USERS_FILE: users},
        )

    # -- parts ------------------------------------------------------------------------------------

    def _part(
        self,
        key: str,
        component: Component,
        needs: ImageNeeds,
        health_test: list[str],
        *,
        command: list[str] | None,
        networks: list[Network],
        mounts: list[Mount | FileMount],
        labels: dict[str, pulumi.Input[str]],
        env: list[str] | None = None,
        ports: list[Port] | None = None,
        depends_on: list[pulumi.Resource] | None = None,
        stop_grace_seconds: int = STOP_GRACE_SECONDS,
        home: str | None = None,
    ) -> Running:
        """One part as a workload; `home`: it uses a data volume of its own (`_volume`)."""
        a = self._args
        return a.engine.run(
            Workload(
                name=f"{self._name}-{key}",
                docker_name=f"{a.name_prefix}-{key}",
                image=component.image,
                command=command,
                env=env,
                mounts=mounts,
                networks=networks,
                ports=ports,
                needs=needs,
                resources=component.resources,
                health_test=health_test,
                labels=labels,
                stop_grace_seconds=stop_grace_seconds,
                pids_limit=component.pids_limit,
                depends_on=depends_on or [],
                home=home,
            ),
            self,
        )

    def _files(
        self,
        key: str,
        image: str,
        labels: Mapping[str, str],
        secret: Mapping[str, pulumi.Input[str]] | None = None,
        plain: Mapping[str, str] | None = None,
    ) -> SecretFiles:
        a = self._args
        return SecretFiles(
            f"{self._name}-{key}-files",
            SecretFilesArgs(
                docker_name=f"{a.name_prefix}-{key}-files",
                image=image,
                files=dict(secret or {}),
                plain_files=dict(plain or {}),
                labels=labels,
                engine=a.engine,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _postgres_exporter(self, service: str, db: Database) -> Running:
        a, m = self._args, self._args.settings.postgres_exporter
        assert db.exporter_password is not None  # the platform asks for the role
        key = config.postgres_exporter_alias(service)
        labels = a.labels(key, "exporter")
        files = self._files(
            key,
            m.image,
            labels,
            secret={EXPORTER_PASSWORD_FILE: db.exporter_password},
            plain={config.EXPORTER_QUERIES: config.exporter_queries()},
        )
        return self._part(
            key,
            m,
            NOBODY,
            http_check(config.POSTGRES_EXPORTER_PORT, "/"),
            command=[
                f"--web.listen-address=:{config.POSTGRES_EXPORTER_PORT}",
                f"--extend.query-path={secret_path(config.EXPORTER_QUERIES)}",
            ],
            # The password as a file: the exporter reads DATA_SOURCE_PASS_FILE itself.
            env=[
                f"DATA_SOURCE_URI={db.host}:{db.port}/{MAINTENANCE_DATABASE}?sslmode=disable",
                f"DATA_SOURCE_USER={EXPORTER_USER}",
                f"DATA_SOURCE_PASS_FILE={secret_path(EXPORTER_PASSWORD_FILE)}",
            ],
            networks=[
                Network(a.database_networks[service], key, serves=False),
                Network(a.monitoring_network, key),
            ],
            mounts=[files.mount()],
            labels={**labels, **files.revision_label()},
            depends_on=[db.container],
        )

    def _redis_exporter(self) -> Running:
        a, m = self._args, self._args.settings.redis_exporter
        key = config.REDIS_EXPORTER_ALIAS
        labels: dict[str, pulumi.Input[str]] = dict(a.labels(key, "exporter"))
        address = f"redis://{a.cache.host}:{a.cache.port}"
        command = [f"--redis.addr={address}", f"--web.listen-address=:{config.REDIS_EXPORTER_PORT}"]
        mounts: list[Mount | FileMount] = []
        if a.cache.password is not None:
            # The exporter's password file: a JSON map from each Redis address to its password.
            passwords = a.cache.password.apply(lambda p: json.dumps({address: p}))
            files = self._files(
                key, m.image, a.labels(key, "exporter"), secret={REDIS_PASSWORD_FILE: passwords}
            )
            command.append(f"--redis.password-file={secret_path(REDIS_PASSWORD_FILE)}")
            mounts.append(files.mount())
            labels |= files.revision_label()
        return self._part(
            key,
            m,
            REDIS_EXPORTER_NEEDS,
            http_check(config.REDIS_EXPORTER_PORT, "/health"),
            command=command,
            networks=[
                Network(a.cache_network, key, serves=False),
                Network(a.monitoring_network, key),
            ],
            mounts=mounts,
            labels=labels,
            depends_on=[a.cache.container],
        )

    def _health_probe(self) -> Running:
        a, m = self._args, self._args.settings.health_probe
        key = config.HEALTH_PROBE_ALIAS
        labels = a.labels(key, "probe")
        script = Path(probe.health.__file__).read_text(encoding="utf-8")
        files = self._files(key, m.image, labels, plain={HEALTH_PROBE_SCRIPT: script})
        # Bound to its address on the monitoring network where the engine can: the apps beside
        # it cannot scrape it.
        bind = a.engine.listen_address(key)
        healthy = f"http://{bind or '127.0.0.1'}:{config.HEALTH_PROBE_PORT}/-/healthy"
        component = Component(image=m.image, resources=m.resources, pids_limit=m.pids_limit)
        return self._part(
            key,
            component,
            NOBODY,
            [
                "CMD",
                "python3",
                "-c",
                f"import urllib.request as r; r.urlopen({healthy!r}, timeout=5)",
            ],
            command=[
                "python3",
                secret_path(HEALTH_PROBE_SCRIPT),
                f"--listen={bind}",
                f"--port={config.HEALTH_PROBE_PORT}",
                f"--interval={m.interval_seconds}",
                f"--timeout={m.timeout_seconds}",
                *(f"--target={app}={url}" for app, url in sorted(a.apps.items())),
            ],
            # Another name on the apps' networks: its own name must resolve, inside it, to its
            # monitoring address only, the one its listener binds.
            networks=[
                Network(a.monitoring_network, key),
                *(Network(n, f"{key}-caller", serves=False) for n in a.app_networks),
            ],
            mounts=[files.mount()],
            labels={**labels, **files.revision_label()},
        )

    def _alertmanager(self) -> Running:
        a, m = self._args, self._args.settings.alertmanager
        key = config.ALERTMANAGER_ALIAS
        labels = a.labels(key, key)
        secrets = dict(a.receivers)

        def render(values: list[str]) -> str:
            receivers = config.Receivers(**dict(zip(secrets, values, strict=True)))
            return config.alertmanager_config(a.settings, receivers)

        # With a receiver's secret in it the file is secret; else plain, shown in previews.
        if secrets:
            text = pulumi.Output.all(*secrets.values()).apply(render)
            files = self._files(key, m.image, labels, secret={config.ALERTMANAGER_CONFIG: text})
        else:
            plain = {config.ALERTMANAGER_CONFIG: render([])}
            files = self._files(key, m.image, labels, plain=plain)
        data = self._volume(key, labels)
        return self._part(
            key,
            m,
            NOBODY,
            http_check(config.ALERTMANAGER_PORT, "/-/healthy"),
            command=[
                f"--config.file={ALERTMANAGER_CONFIG_DIR}/{config.ALERTMANAGER_CONFIG}",
                f"--storage.path={ALERTMANAGER_DATA}",
                f"--web.listen-address=:{config.ALERTMANAGER_PORT}",
                # One instance: no gossip port to open to peers.
                "--cluster.listen-address=",
            ],
            networks=[
                Network(a.monitoring_network, key),
                Network(a.alerting_network, key, serves=False),
            ],
            mounts=[files.mount(ALERTMANAGER_CONFIG_DIR), Mount(data.name, ALERTMANAGER_DATA)],
            labels={**labels, **files.revision_label()},
            home=key,
        )

    def _prometheus(self, prometheus_yml: str, rules: str) -> Running:
        a, m = self._args, self._args.settings.prometheus
        key = config.PROMETHEUS_ALIAS
        labels = a.labels(key, key)
        files = self._files(
            key,
            m.image,
            labels,
            plain={
                config.PROMETHEUS_CONFIG: prometheus_yml,
                config.ALERT_RULES: rules,
            },
        )
        data = self._volume(key, labels)
        component = Component(image=m.image, resources=m.resources, pids_limit=m.pids_limit)
        ports = []
        if m.host_port is not None:
            ports.append(Port(config.PROMETHEUS_PORT, m.host_port, a.publish_ip))
        return self._part(
            key,
            component,
            NOBODY,
            http_check(config.PROMETHEUS_PORT, "/-/healthy"),
            command=[
                f"--config.file={PROMETHEUS_CONFIG_DIR}/{config.PROMETHEUS_CONFIG}",
                f"--storage.tsdb.path={PROMETHEUS_DATA}",
                f"--storage.tsdb.retention.time={m.retention_days}d",
                f"--web.listen-address=:{config.PROMETHEUS_PORT}",
            ],
            networks=[Network(a.monitoring_network, key)],
            mounts=[files.mount(PROMETHEUS_CONFIG_DIR), Mount(data.name, PROMETHEUS_DATA)],
            labels={**labels, **files.revision_label()},
            ports=ports or None,
            stop_grace_seconds=PROMETHEUS_STOP_GRACE_SECONDS,
            home=key,
        )

    def _grafana(self) -> Running:
        a, g = self._args, self._args.settings.grafana
        key = GRAFANA_ALIAS
        labels = a.labels(key, key)
        self.grafana_password = secret_or_generated(
            f"{self._name}-grafana-password", None, 32, self
        )
        datasources, boards = self._grafana_provisioning(labels)
        secrets = self._files(
            f"{key}-secrets", g.image, labels, secret={GRAFANA_PASSWORD_FILE: self.grafana_password}
        )
        data = self._volume(key, labels)
        component = Component(image=g.image, resources=g.resources, pids_limit=g.pids_limit)
        # A new file in any of its three sets restarts it with the files.
        revisions = {
            **datasources.revision_label(),
            **boards.revision_label("dashboards"),
            **secrets.revision_label("secrets"),
        }
        return self._part(
            key,
            component,
            GRAFANA_NEEDS,
            http_check(GRAFANA_PORT, "/api/health"),
            command=None,
            env=grafana_environment(g.host),
            networks=[Network(a.monitoring_network, key)],
            mounts=[
                datasources.mount(GRAFANA_DATASOURCES_DIR),
                boards.mount(dashboards.DASHBOARDS_DIR),
                secrets.mount(),
                Mount(data.name, GRAFANA_DATA),
            ],
            labels={**labels, **revisions},
            home=key,
        )

    def _grafana_provisioning(self, labels: Mapping[str, str]) -> tuple[SecretFiles, SecretFiles]:
        """Grafana's data source (Prometheus) and its dashboards, as two file sets."""
        a, image = self._args, self._args.settings.grafana.image
        found = dashboards.dashboards(
            pitr=a.pitr, backup=a.backup, apps_probed=a.settings.health_probe.enabled
        )
        prometheus = f"http://{config.PROMETHEUS_ALIAS}:{config.PROMETHEUS_PORT}"
        datasources = self._files(
            f"{GRAFANA_ALIAS}-datasources",
            image,
            labels,
            plain={dashboards.DATASOURCES_FILE: dashboards.datasources(prometheus)},
        )
        boards = self._files(
            f"{GRAFANA_ALIAS}-dashboards",
            image,
            labels,
            plain={
                dashboards.PROVIDERS_FILE: dashboards.providers(),
                **{d.file_name: dashboards.dashboard_json(d) for d in found},
            },
        )
        return datasources, boards

    def _volume(self, key: str, labels: Mapping[str, str]) -> docker.Volume:
        """The data volume of the part `key`, protected like the databases' (its workload
        names `key` as its home: on a swarm, `swarm.placement.<key>`)."""
        a = self._args
        return a.engine.volume(
            f"{self._name}-{key}-data",
            f"{a.name_prefix}-{key}-data",
            labels,
            self,
            protect=a.protect_data,
        )


def grafana_environment(host: str | None) -> list[str]:
    """Grafana's settings: the password as a file (it reads any `GF_*__FILE`), nobody signs
    up or looks in anonymously, nothing phones home."""
    return [
        f"GF_SECURITY_ADMIN_USER={GRAFANA_ADMIN}",
        f"GF_SECURITY_ADMIN_PASSWORD__FILE={secret_path(GRAFANA_PASSWORD_FILE)}",
        "GF_USERS_ALLOW_SIGN_UP=false",
        "GF_AUTH_ANONYMOUS_ENABLED=false",
        "GF_ANALYTICS_REPORTING_ENABLED=false",
        "GF_ANALYTICS_CHECK_FOR_UPDATES=false",
        "GF_ANALYTICS_CHECK_FOR_PLUGIN_UPDATES=false",
        # Logs to stdout, where Docker rotates them (the root is read-only).
        "GF_LOG_MODE=console",
        *([f"GF_SERVER_DOMAIN={host}"] if host else []),
    ]
