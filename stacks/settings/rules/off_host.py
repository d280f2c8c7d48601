"""Where the off-host backup repository (`pitr.offHost`) may run: somewhere a lost database
host does not take with it. What it needs from the other domains: PITR itself, and per engine
a place (another Docker host, or another swarm node in prod)."""

from __future__ import annotations

from stacks.catalogue import Catalogue
from stacks.settings.databases import OFF_HOST_HOME, database_home
from stacks.settings.platform import PlatformSettings
from stacks.settings.rules.inventory import host_ports

KEY = "pitr.offHost"
EXAMPLE_HOST = "tcp://backup-1.example.com:2376"
EXAMPLE_DOMAINS = ("example.com", "example.net", "example.org")
"""RFC 2606's names for examples: a stack file's placeholders, never a real host."""
MAX_PORT = 65535


def off_host_problems(s: PlatformSettings, catalogue: Catalogue) -> list[str]:
    off = s.pitr.off_host
    if not off.enabled:
        return []
    if not s.pitr.enabled:
        return [
            f"{KEY}.enabled: needs pitr.enabled: true (the repository keeps the servers' "
            "point-in-time archives); turn both on, or this one off"
        ]
    if s.engine == "swarm":
        return _on_a_swarm(s, catalogue)
    problems = []
    if off.docker_host is not None and not off.docker_host.startswith(("unix://", "tcp://")):
        problems.append(
            f"{KEY}.dockerHost: {off.docker_host} is not supported: the program sends that "
            "host's Docker engine calls of its own (the containers' PIDs limits) over unix:// "
            "or tcp:// only (TLS from DOCKER_CERT_PATH and DOCKER_TLS_VERIFY, as for the "
            "stack's own host); use one of those"
        )
    if off.docker_host is None:
        problems.append(
            f"{KEY}.dockerHost: not filled in; name the Docker engine of another host for the "
            f"backup repository (e.g. {EXAMPLE_HOST}), or set {KEY}.enabled: false to keep "
            "every backup on the databases' own host"
        )
    if off.address is None:
        problems.append(
            f"{KEY}.address: not filled in; name the host name or IP address the database "
            "servers reach the repository's host by (its certificate will carry it)"
        )
    if off.databases_address is not None and off.databases_address == off.address:
        problems.append(
            f"{KEY}.databasesAddress: {off.databases_address} is also the repository's "
            "address; the repository must be on another host than the databases, or a lost "
            "host loses both"
        )
    problems += _tls_ports_taken(s, catalogue)
    if off.databases_address is None:
        problems.append(
            f"{KEY}.databasesAddress: not filled in; name the host name or IP address the "
            "repository's host reaches this stack's Docker host by (it takes the backups "
            "through each database server's TLS server there)"
        )
    return problems


def _tls_ports_taken(s: PlatformSettings, catalogue: Catalogue) -> list[str]:
    """The databases' TLS servers publish `databasePortsFrom` and the next ports on the stack's
    host: none of them may be another published port's, nor past the last port."""
    first = s.pitr.off_host.database_ports_from
    ports = {first + i: spec.name for i, spec in enumerate(catalogue.with_database())}
    if ports and max(ports) > MAX_PORT:
        room = MAX_PORT - len(ports) + 1
        return [
            f"{KEY}.databasePortsFrom: {first} leaves no room for the {len(ports)} databases' TLS "
            f"servers (up to {max(ports)}, past {MAX_PORT}); use at most {room}"
        ]
    return [
        f"{KEY}.databasePortsFrom: host port {port} (the {ports[port]} database's TLS server) is "
        f"already used by {key}; move one of them"
        for key, port in host_ports(s).items()
        if port in ports
    ]


def _on_a_swarm(s: PlatformSettings, catalogue: Catalogue) -> list[str]:
    off = s.pitr.off_host
    problems = [
        f"{KEY}.{key}: a swarm runs the repository as a service of its own, placed by "
        f"swarm.placement.{OFF_HOST_HOME}; remove it"
        for key, value in (
            ("dockerHost", off.docker_host),
            ("address", off.address),
            ("databasesAddress", off.databases_address),
        )
        if value is not None
    ]
    label = s.swarm.placement.get(OFF_HOST_HOME)
    if label is None or s.profile != "prod":
        return problems  # a missing placement: the swarm's rules name it
    shared = [
        database_home(spec.name)
        for spec in catalogue.with_database()
        if s.swarm.placement.get(database_home(spec.name)) == label
    ]
    if shared:
        problems.append(
            f"swarm.placement.{OFF_HOST_HOME}: {label} is also the label of "
            f"{', '.join(shared)}; in prod the repository runs on another node than the "
            "databases, or one lost node loses a database and its off-host backups; label "
            "another node"
        )
    return problems


def off_host_is_the_stacks_host(s: PlatformSettings, stack_host: str | None) -> list[str]:
    """The repository's host the stack's own (`docker:host`, or DOCKER_HOST): off no host."""
    off = s.pitr.off_host
    if not (s.pitr.enabled and off.enabled) or off.docker_host is None:
        return []
    if off.docker_host.rstrip("/") != (stack_host or "unix:///var/run/docker.sock").rstrip("/"):
        return []
    return [
        f"{KEY}.dockerHost: {off.docker_host} is the stack's own Docker host; the repository "
        "must be on another host, or a lost host loses the databases and their backups"
    ]


def example_hosts(s: PlatformSettings) -> dict[str, str]:
    """The off-host keys that still hold a stack file's example host (the shipped prod file's
    placeholders): key -> value. A plan under mocks takes them as they are; a deploy must not
    (components/engine/reachable.py)."""
    off = s.pitr.off_host
    if not (s.pitr.enabled and off.enabled):
        return {}
    values = {
        f"{KEY}.dockerHost": off.docker_host,
        f"{KEY}.address": off.address,
        f"{KEY}.databasesAddress": off.databases_address,
    }
    return {key: value for key, value in values.items() if value and _is_example(value)}


def _is_example(value: str) -> bool:
    host = value.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0].lower()
    return any(host == domain or host.endswith(f".{domain}") for domain in EXAMPLE_DOMAINS)
