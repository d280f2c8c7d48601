"""What a swarm (`engine: swarm`) cannot run: builds, ports published outside the edge, a
bound address, workloads with a volume left unpinned, replicas on one Docker host, and in prod
a shop that one lost node would stop (an app or the edge with a single task)."""

from __future__ import annotations

from stacks.catalogue import Catalogue
from stacks.settings.databases import OFF_HOST_HOME, database_home
from stacks.settings.platform import PlatformSettings
from stacks.settings.rules.inventory import host_ports, published_by_the_edge


def pinned_workloads(s: PlatformSettings, catalogue: Catalogue) -> list[str]:
    """What runs on the nodes of a label: what holds a volume, so runs on one node (Redis,
    the backup job, each database (its PITR agent goes with it), the off-host
    backup repository, Prometheus, Alertmanager and Grafana."""
    pinned = ["redis", "edge", *(database_home(spec.name) for spec in catalogue.with_database())]
    pinned += ["backup"] if s.backup.enabled else []
    pinned += [OFF_HOST_HOME] if s.pitr.enabled and s.pitr.off_host.enabled else []
    if s.monitoring.enabled:
        pinned += [
            "prometheus",
            "alertmanager",
            *(["grafana"] if s.monitoring.grafana.enabled else []),
        ]
    return pinned


def swarm_problems(s: PlatformSettings, catalogue: Catalogue) -> list[str]:
    replicated = {f"services.{n}.replicas": svc.replicas for n, svc in s.services.items()}
    replicated["edge.replicas"] = s.edge.replicas
    if s.engine == "containers":
        return [
            f"{key}: {n} replicas need engine: swarm; one Docker host runs one of each"
            for key, n in replicated.items()
            if n > 1
        ]
    pinned = pinned_workloads(s, catalogue)
    problems = [
        f"swarm.placement.{key}: missing; name the label of the node that holds its volume, "
        f"e.g. `{key}: ecommerce.data` after `docker node update --label-add ecommerce.data=true "
        "<node>`"
        for key in pinned
        if key not in s.swarm.placement
    ]
    problems += [
        f"swarm.placement.{key}: nothing with a volume is called that; expected one of "
        f"{', '.join(pinned)}"
        for key in s.swarm.placement
        if key not in pinned
    ]
    builds = [f"services.{n}.build" for n, svc in s.services.items() if svc.build is not None]
    builds += ["edge.build"] if s.edge.build is not None else []
    builds += ["pitr.build"] if s.pitr.enabled and s.pitr.build is not None else []
    problems += [
        f"{key}: a swarm runs published images that every node can pull; push the "
        "image and set it instead"
        for key in builds
    ]
    problems += [
        f"{key}: only the edge publishes on a swarm (its ports reach every node); remove it"
        for key in host_ports(s)
        if not key.startswith("edge.") and not published_by_the_edge(key, catalogue)
    ]
    if s.publish_ip != "0.0.0.0":  # noqa: S104 (a comparison, not a bind)
        problems.append(
            f"publishIp: {s.publish_ip} cannot be kept on a swarm, which publishes on every "
            "address of its nodes; set 0.0.0.0 and filter with the hosts' firewalls"
        )
    tls = s.edge.tls
    if tls is not None and tls.certificates == "auto" and s.edge.replicas > 1:
        # Each edge keeps its ACME account and certificates on its own node: the CA's check
        # of one edge's order lands on whichever edge its DNS answer names.
        problems.append(
            f"edge.tls.certificates: auto with edge.replicas {s.edge.replicas}: each edge "
            "would ask the CA on its own and answer only its own challenges; use `files` "
            "(one certificate every edge serves) or 1 edge"
        )
    if s.profile == "prod":
        problems += [
            f"{key}: {n} on a prod swarm: losing its node would stop it; set 2 or more (no two "
            "run on one node)"
            for key, n in replicated.items()
            if n < 2
        ]
    return problems
