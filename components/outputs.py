"""The stack's outputs: what operators and the backup tool read after a deploy
(`pulumi stack output`; docs/deploying.md#outputs)."""

from __future__ import annotations

from typing import Any

import pulumi

from components.parts.naming import edge_url, port_url, service_url
from components.platform import Platform
from stacks.outputs import DATABASES, MONITORING, PITR_PASSPHRASES
from stacks.settings import OFF_HOST_HOME


def stack_outputs(platform: Platform) -> dict[str, Any]:
    """Every output by name, in the order they are exported."""
    outputs: dict[str, Any] = {
        "urls": urls(platform),
        "containers": containers(platform),
        "networks": platform.networks.names(),
        # Read by the backup tool: `pulumi stack output databases --json --show-secrets`.
        DATABASES: database_targets(platform),
    }
    if platform.settings.pitr.enabled:
        outputs[PITR_PASSPHRASES] = pitr_passphrases(platform)
    if platform.monitoring is not None:
        outputs[MONITORING] = monitoring(platform)
    return outputs


def urls(platform: Platform) -> dict[str, str]:
    """Per service: the published URL, or the in-network one for private services."""
    return {spec.name: service_url(spec, platform.settings) for spec in platform.catalogue.services}


def containers(platform: Platform) -> dict[str, pulumi.Input[str]]:
    """Per app, and the edge: its current container (or service) name, for its logs."""
    found = {name: service.docker_name for name, service in sorted(platform.services.items())}
    found["edge"] = platform.edge.container.name
    return found


def database_targets(
    platform: Platform,
) -> dict[str, dict[str, pulumi.Input[str] | pulumi.Input[int]]]:
    """The shape the backup tool reads: where an operator's machine reaches each database
    (published port in dev, in-network alias in prod), and its login (a secret password)."""
    return {
        service: {
            "host": db.reachable_host,
            "port": db.reachable_port,
            "database": db.database,
            "user": db.user,
            "password": db.password,
        }
        for service, db in platform.databases.items()
    }


def pitr_passphrases(platform: Platform) -> dict[str, pulumi.Output[str]]:
    """Per service, its repository's passphrase (a secret), and the off-host repository's
    (`pitr-repository`) where there is one: keep a copy outside the stack's state, without it
    no backup of that repository can be read."""
    passphrases = {
        n: db.pitr.passphrase for n, db in platform.databases.items() if db.pitr is not None
    }
    if platform.off_host is not None:
        passphrases[OFF_HOST_HOME] = platform.off_host.passphrase
    return passphrases


def monitoring(platform: Platform) -> dict[str, pulumi.Output[str] | str]:
    """The monitoring UIs' URLs and their logins (the passwords are secrets)."""
    assert platform.monitoring is not None
    s = platform.settings
    m = s.monitoring
    found: dict[str, pulumi.Output[str] | str] = {}
    if m.grafana.enabled and m.grafana.host is not None:
        found["grafanaUrl"] = edge_url(m.grafana.host, s)
    elif m.grafana.enabled and m.grafana.host_port is not None:
        found["grafanaUrl"] = port_url(m.grafana.host_port, s)
    if m.prometheus.host is not None:
        found["prometheusUrl"] = edge_url(m.prometheus.host, s)
    elif m.prometheus.host_port is not None:
        found["prometheusUrl"] = port_url(m.prometheus.host_port, s)
    return found | platform.monitoring.logins()
