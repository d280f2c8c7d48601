"""The engine layer: where and how each workload runs, decided here and nowhere else.

The parts (components/parts/) say what runs: workloads (workload.py), the files they read
(files.py), their networks and volumes. The stack's engine, chosen once by `engine_for` from
the settings, makes provider resources of them:
- `ContainerEngine` (`engine: containers`, containers.py): containers on one Docker host;
- `SwarmEngine` (`engine: swarm`, swarm.py): services on a Docker Swarm.
Both share one interface (base.py) and the stack-wide runtime profile (profile.py). The operator's
commands for each engine (`docker logs` or `docker service logs`, ...) are in commands.py.
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi

from components.engine.base import Engine
from components.engine.containers import ContainerEngine
from components.engine.profile import RuntimeProfile
from components.engine.registry import docker_provider
from components.engine.swarm import SwarmEngine
from stacks.settings import PlatformSettings


def engine_for(
    name: str,
    settings: PlatformSettings,
    docker_config: Mapping[str, str],
    registry_password: pulumi.Input[str] | None,
    parent: pulumi.Resource,
) -> Engine:
    """The stack's engine, with the Docker provider its parts use (`<name>-docker`, a child
    of `parent`, where the stack pulls from a private registry)."""
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
        return SwarmEngine(profile, s.swarm, providers)
    return ContainerEngine(profile, docker_config.get("host"), providers)


__all__ = ["Engine", "engine_for"]
