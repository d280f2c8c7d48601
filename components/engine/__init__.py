"""The engine layer: where and how each workload runs, decided here and nowhere else.

The parts (components/parts/) say what runs: workloads (workload.py), the files they read
(files.py), their networks and volumes. The stack's engine, chosen once by `engine_for` from
the settings, makes provider resources of them:
- `ContainerEngine` (`engine: containers`, containers.py): containers on one Docker host, but
  for the homes placed on another (the off-host backup repository's, `pitr.offHost`), each
  with a Docker provider of its own;
- `SwarmEngine` (`engine: swarm`, swarm.py): services on a Docker Swarm, once its nodes carry
  every label the stack places by (placement.py).
Both share one interface (base.py) and the stack-wide runtime profile (profile.py). The operator's
commands for each engine (`docker logs` or `docker service logs`, ...) are in commands.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi

from components.engine.base import Engine
from components.engine.containers import ContainerEngine, OtherHost
from components.engine.placement import Spread, must_be_placeable
from components.engine.profile import RuntimeProfile
from components.engine.reachable import must_answer, must_be_filled_in
from components.engine.registry import docker_provider
from components.engine.swarm import SwarmEngine
from stacks.settings import OFF_HOST_HOME, PlatformSettings, RegistrySettings
from stacks.settings.rules.off_host import example_hosts


def engine_for(
    name: str,
    settings: PlatformSettings,
    docker_config: Mapping[str, str],
    registry_password: pulumi.Input[str] | None,
    parent: pulumi.Resource,
    database_homes: Sequence[str] = (),
) -> Engine:
    """The stack's engine, with the Docker provider its parts use (`<name>-docker`, a child
    of `parent`, where the stack pulls from a private registry). `database_homes`: the
    databases' (`<service>-db`), which a swarm's off-host repository must not share a node
    with in prod."""
    s = settings
    profile = RuntimeProfile(
        hardening=s.hardening,
        logs=s.logs,
        restart=s.restart,
        health=s.health_check,
        wait_timeout_seconds=s.wait_timeout_seconds,
    )
    providers: list[pulumi.ProviderResource] = []
    if s.registry is not None:
        providers.append(
            docker_provider(f"{name}-docker", s.registry, registry_password, docker_config, parent)
        )
    if s.engine == "swarm":
        off_host = s.pitr.enabled and s.pitr.off_host.enabled and s.profile == "prod"
        apart = {OFF_HOST_HOME: list(database_homes)} if off_host else {}
        must_be_placeable(docker_config.get("host"), s.swarm.placement, apart, _spreads(s))
        return SwarmEngine(profile, s.swarm, providers)
    return ContainerEngine(
        profile,
        docker_config.get("host"),
        providers,
        _other_hosts(name, settings, registry_password, parent),
    )


def _spreads(settings: PlatformSettings) -> list[Spread]:
    """The apps (rolled start-first: nothing pins one) and the edge (stop-first: it holds its
    node's ports), whose replicas each run on a node of their own."""
    spreads = [
        Spread(f"services.{name}.replicas", service.replicas)
        for name, service in sorted(settings.services.items())
    ]
    edge_nodes = settings.swarm.placement.get("edge")
    spreads.append(Spread("edge.replicas", settings.edge.replicas, edge_nodes, start_first=False))
    return spreads


def _other_hosts(
    name: str,
    settings: PlatformSettings,
    registry_password: pulumi.Input[str] | None,
    parent: pulumi.Resource,
) -> dict[str, OtherHost]:
    """The homes whose workloads run on another Docker host than the stack's, each with a
    Docker provider of that host (`<name>-<home>-docker`): the off-host backup repository's."""
    pitr = settings.pitr
    off = pitr.off_host
    if not (pitr.enabled and off.enabled) or off.docker_host is None:
        return {}
    must_be_filled_in(
        example_hosts(settings),
        "your backup host's Docker engine and the addresses both hosts reach each other by",
        "set pitr.offHost.enabled: false to keep every backup on the databases' host",
    )
    return {
        OFF_HOST_HOME: other_host(
            f"{name}-{OFF_HOST_HOME}-docker",
            off.docker_host,
            "the off-host repository's host",
            "pitr.offHost.dockerHost",
            parent,
            settings.registry,
            registry_password,
        )
    }


def other_host(
    provider_name: str,
    docker_host: str,
    role: str,
    setting: str,
    parent: pulumi.Resource,
    registry: RegistrySettings | None = None,
    registry_password: pulumi.Input[str] | None = None,
) -> OtherHost:
    """Another Docker host, with a provider of its own; it must answer first (reachable.py).
    `role`: what it is for; `setting`: the stack file's key that names it."""
    must_answer(docker_host, role, setting)
    provider = docker_provider(
        provider_name, registry, registry_password, {"host": docker_host}, parent
    )
    return OtherHost(docker_host, provider)


__all__ = ["Engine", "engine_for", "other_host"]
