"""The one place the engine is decided: a workload runs as a container on one Docker host,
or as a service on a swarm (`engine: swarm`, which sets RuntimeProfile.swarm)."""

from __future__ import annotations

import pulumi

from components.containers import run_container
from components.runtime import RuntimeProfile
from components.swarm import run_service
from components.workload import Running, Workload


def run(workload: Workload, profile: RuntimeProfile, parent: pulumi.Resource) -> Running:
    """The workload on the stack's engine, as a child of `parent`."""
    if profile.swarm is not None:
        return run_service(workload, profile, parent)
    return run_container(workload, profile, parent)
