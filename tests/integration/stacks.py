"""Bring a real stack file up on the test engine, and always take it down again.

The stack's own file is used as it is, with only what a test machine needs changed, the way an
operator would override it: local images instead of registry ones (no registry is reachable,
so no registry login either), a unique name prefix (so runs never collide), and published
ports on loopback. Images the stack builds (dev's apps) are built from its file as they are,
FROM the local stand-in of the official image they name.
"""

from __future__ import annotations

import contextlib
import copy
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import docker

from plan.recorder import Graph, run_program, stack_config
from tests.integration.standin import Deployment

RUN_LABEL = "ecommerce-test.run"
IMAGES = {
    "service": "ecommerce-test/reference-service:1",
    "postgres": "ecommerce-test/postgres:15",
    "redis": "ecommerce-test/redis:7",
    "backup": "ecommerce-test/backup:1",
}


@dataclass
class LiveStack:
    stack: str
    prefix: str
    config: dict[str, Any]
    """The stack's config the graph was built from."""
    graph: Graph
    deployment: Deployment

    def container(self, role: str) -> Any:
        """A running container by its role name, e.g. `customer-db` or `gateway`."""
        return self.deployment.container(f"{self.prefix}-{role}")

    def program(self, edit: Callable[[dict[str, Any]], None] | None = None) -> Graph:
        """The graph the program records for this stack's config, edited by `edit` if given:
        what a next `pulumi up` would send."""
        config = copy.deepcopy(self.config)
        if edit is not None:
            edit(config["ecommerce:platform"])
        return run_program(self.stack, config)


def engine_config(stack: str, prefix: str) -> dict[str, Any]:
    """The stack file's config with local images, the given prefix and loopback publishing."""
    config = copy.deepcopy(stack_config(stack))
    platform = config["ecommerce:platform"]
    platform["namePrefix"] = prefix
    platform["publishIp"] = "127.0.0.1"
    for service in platform["services"].values():
        if "image" in service:  # dev builds the reference service from its own folder
            service["image"] = IMAGES["service"]
    platform["postgres"]["image"] = IMAGES["postgres"]
    platform["redis"]["image"] = IMAGES["redis"]
    if "backup" in platform:
        platform["backup"]["image"] = IMAGES["backup"]
    platform.pop("registry", None)
    return config


def remove_run(client: docker.DockerClient, run_id: str) -> list[str]:
    """Remove every container, network and volume of a run; return what is still there."""
    label = f"{RUN_LABEL}={run_id}"
    for c in client.containers.list(all=True, filters={"label": label}):
        c.remove(force=True, v=True)
    for n in client.networks.list(filters={"label": label}):
        n.remove()
    for v in client.volumes.list(filters={"label": label}):
        v.remove(force=True)
    for image in client.images.list(filters={"label": label}):  # what the stand-in built
        client.images.remove(image.id, force=True)
    left = [c.name for c in client.containers.list(all=True, filters={"label": label})]
    left += [n.name for n in client.networks.list(filters={"label": label})]
    left += [v.name for v in client.volumes.list(filters={"label": label})]
    left += [str(i.tags or i.id) for i in client.images.list(filters={"label": label})]
    return left


@contextlib.contextmanager
def engine_run(
    client: docker.DockerClient,
    stack: str,
    edit: Callable[[dict[str, Any]], None] = lambda _platform: None,
    log: Callable[[str], None] = lambda _line: None,
) -> Iterator[LiveStack]:
    """The stack's graph and an empty deployment, for a test to `up` itself; everything the
    run created is removed on exit, failure or not."""
    run_id = uuid.uuid4().hex[:8]
    prefix = f"ect{run_id}-{stack}"
    config = engine_config(stack, prefix)
    edit(config["ecommerce:platform"])
    graph = run_program(stack, config)
    try:
        yield LiveStack(stack, prefix, config, graph, Deployment(client, {RUN_LABEL: run_id}, log))
    finally:
        left = remove_run(client, run_id)
        if left:
            raise RuntimeError(f"could not remove {', '.join(left)}")


@contextlib.contextmanager
def deployed(
    client: docker.DockerClient,
    stack: str,
    edit: Callable[[dict[str, Any]], None] = lambda _platform: None,
    log: Callable[[str], None] = lambda _line: None,
) -> Iterator[LiveStack]:
    """The stack, up and healthy (a first `pulumi up`), removed again on exit."""
    with engine_run(client, stack, edit, log) as live:
        live.deployment.up(live.graph)
        yield live
