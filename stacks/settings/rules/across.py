"""Rules across domains: what one settings object cannot judge alone because another one
decides it too (a grace period against the deploy's wait, the database servers' room for their
connections, PITR against the servers' own archiving, ACME against the published address, host
names and host ports taken twice, a registry that no image names)."""

from __future__ import annotations

from stacks.catalogue import Catalogue
from stacks.settings.monitoring import monitoring_hosts
from stacks.settings.platform import PlatformSettings
from stacks.settings.registry import registry_of
from stacks.settings.rules.inventory import host_ports, images, published_by_the_edge


def app_graces_within_the_wait(s: PlatformSettings) -> list[str]:
    return [
        f"services.{name}.stopGraceSeconds: {svc.stop_grace_seconds} is longer than "
        f"waitTimeoutSeconds ({s.wait_timeout_seconds}): a deploy would give an old "
        "container longer to finish its requests than a new one to start; keep it within"
        for name, svc in s.services.items()
        if svc.stop_grace_seconds > s.wait_timeout_seconds
    ]


def edge_grace_within_the_wait(s: PlatformSettings) -> list[str]:
    if s.edge.stop_grace_seconds > s.wait_timeout_seconds:
        return [
            f"edge.stopGraceSeconds: {s.edge.stop_grace_seconds} is longer than "
            f"waitTimeoutSeconds ({s.wait_timeout_seconds}); keep it within"
        ]
    return []


# PostgreSQL's own processes beside its connections: postmaster, checkpointer, background and
# WAL writers, autovacuum launcher and workers, parallel workers (max_worker_processes 8), ...
POSTGRES_OWN_PROCESSES = 32


def postgres_process_room(s: PlatformSettings, catalogue: Catalogue) -> list[str]:
    problems = []
    for spec in catalogue.with_database():
        needed = s.tuning_of(spec.name).max_connections + POSTGRES_OWN_PROCESSES
        if s.postgres.pids_limit < needed:
            problems.append(
                f"postgres.pidsLimit: {s.postgres.pids_limit} leaves no room for the "
                f"{s.tuning_of(spec.name).max_connections} connections of the {spec.name} "
                f"database (one process each, and {POSTGRES_OWN_PROCESSES} of the server's "
                f"own); raise it to at least {needed}"
            )
    return problems


# What PITR sets on every server (pitr/pgbackrest.py, server_settings).
ARCHIVING_SETTINGS = frozenset({"wal_level", "archive_mode", "archive_command", "archive_timeout"})


def archiving_overridden(s: PlatformSettings, catalogue: Catalogue) -> list[str]:
    if not s.pitr.enabled:
        return []
    tunings = {"postgres.tuning": s.postgres.tuning}
    for spec in catalogue.with_database():
        tuning = s.database(spec.name).tuning
        if tuning is not None:
            tunings[f"databases.{spec.name}.tuning"] = tuning
    return [
        f"{key}.extra.{name}: set by pitr (archiving into pgBackRest); remove it"
        for key, tuning in tunings.items()
        for name in sorted(set(tuning.extra) & ARCHIVING_SETTINGS)
    ]


def acme_unreachable(s: PlatformSettings) -> list[str]:
    """Why an ACME CA could never reach this host to hand out certificates, if it could not."""
    edge = s.edge
    if edge.tls is None or edge.tls.certificates != "auto":
        return []
    if s.publish_ip.startswith("127.") or s.publish_ip == "::1":
        return [
            f"edge.tls.certificates: auto needs the ACME CA to reach the edge, but publishIp is "
            f"{s.publish_ip} (loopback); publish on the host's address, or use certificates: "
            "files or internal"
        ]
    if edge.http_port != 80 and edge.https_port != 443:
        return [
            f"edge.tls.certificates: auto needs port 80 or 443 (the ACME challenges), but "
            f"httpPort is {edge.http_port} and httpsPort {edge.https_port}; use the standard "
            "ports, or certificates: files or internal"
        ]
    return []


def monitoring_hosts_taken(s: PlatformSettings) -> list[str]:
    """A monitoring UI's host name that an edge app, or the other UI, already has."""
    problems = []
    apps = {host: f"edge.hosts.{app}" for app, host in s.edge.hosts.items()}
    for key, host in monitoring_hosts(s.monitoring).items():
        if host in apps:
            problems.append(f"{key}: {host} is already the host of {apps[host]}")
        apps.setdefault(host, key)
    return problems


def duplicate_host_ports(s: PlatformSettings) -> list[str]:
    first_key: dict[int, str] = {}
    problems = []
    for key, port in host_ports(s).items():
        if port in first_key:
            problems.append(f"{key}: host port {port} is already used by {first_key[port]}")
        else:
            first_key[port] = key
    return problems


def unpublishable_ports(s: PlatformSettings, catalogue: Catalogue) -> list[str]:
    # Docker publishes no port of a container attached only to internal networks; everything but
    # the edge sits on private networks only, so a host port there needs them non-internal.
    if not s.networks.internal:
        return []
    return [
        f"{key}: cannot be published while networks.internal is true (Docker publishes no port "
        "on internal networks); remove the port or set networks.internal to false"
        for key in host_ports(s)
        if not published_by_the_edge(key, catalogue)
    ]


def registry_unused(s: PlatformSettings) -> list[str]:
    """A registry set for the stack that none of its images is pulled from."""
    if s.registry is None or s.registry.address in {registry_of(i) for i in images(s).values()}:
        return []
    return [
        f"registry.address: no image of the stack is on {s.registry.address}; images name "
        "their registry first, as in registry.example.com/shop/api:1.0"
    ]
