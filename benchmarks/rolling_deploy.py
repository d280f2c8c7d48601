"""What a deploy under load costs: side by side (the program) against delete-first (the old way).

Brings the prod stack up on a real engine (stand-in provider, local images), then ships the same
kind of deploy twice while requests go through the edge over HTTPS: new images of the gateway,
the order service and the frontend, and a rotated JWT secret (which replaces its users too).
The first deploy runs the graph as the program builds it; the second runs it with every app
container marked delete-before-replace, as before the edge proxy. Prints requests, failures and
latency percentiles per path for each. Needs a running engine and the images
(`python -m images.build`). Measures only; asserts nothing.

    .venv/bin/python -m benchmarks.rolling_deploy
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
import uuid
from typing import Any

import docker

from plan.recorder import Graph
from policies.rules import role_of
from tests.integration.load import Load, Target
from tests.integration.stacks import (
    CERTIFICATE_KEY,
    EDGE_HTTPS_PORT,
    IMAGES,
    PLATFORM,
    LiveStack,
    deployed,
)

APPS = ("gateway", "order", "frontend")
APP_ROLES = ("gateway", "business", "web")


def new_versions(suffix: str) -> Any:
    def edit(platform: dict[str, Any]) -> None:
        for app in APPS:
            platform["services"][app]["image"] = f"{IMAGES['service']}-{suffix}"

    return edit


def delete_first(graph: Graph) -> Graph:
    """The graph with every app container replaced delete-first."""
    resources = [
        dataclasses.replace(r, delete_before_replace=True)
        if r.type == "docker:index/container:Container" and role_of(r.inputs) in APP_ROLES
        else r
        for r in graph.resources
    ]
    return dataclasses.replace(graph, resources=resources)


def deploy_under_load(live: LiveStack, graph: Graph, cafile: str) -> dict[str, str]:
    hosts = live.config[PLATFORM]["edge"]["hosts"]
    loads = {
        "edge -> gateway -> order": Load(Target(EDGE_HTTPS_PORT, "/order/", hosts["gateway"],
                                                cafile)),
        "edge -> frontend": Load(Target(EDGE_HTTPS_PORT, "/", hosts["frontend"], cafile)),
    }  # fmt: skip
    reports = {path: load.__enter__() for path, load in loads.items()}
    try:
        time.sleep(1)
        started = time.monotonic()
        live.deployment.up(graph)
        seconds = time.monotonic() - started
        time.sleep(1)
    finally:
        for load in loads.values():
            load.__exit__(None, None, None)
    described = {path: report.describe() for path, report in reports.items()}
    described["deploy"] = f"{seconds:.1f} s"
    return described


def main() -> int:
    client = docker.from_env(version="auto")
    for suffix in ("next", "after"):
        repository, tag = f"{IMAGES['service']}-{suffix}".rsplit(":", 1)
        client.images.get(IMAGES["service"]).tag(repository, tag)
    with (
        deployed(client, "prod") as live,
        tempfile.NamedTemporaryFile("w", suffix=".pem") as cafile,
    ):
        cafile.write(live.config[CERTIFICATE_KEY])
        cafile.flush()
        for mode, suffix in (("side by side", "next"), ("delete-first", "after")):
            secret = {"ecommerce:jwtSecret": "rotated" + uuid.uuid4().hex}
            graph = live.program(new_versions(suffix), secrets=secret)
            if mode == "delete-first":
                graph = delete_first(graph)
            for what, figure in deploy_under_load(live, graph, cafile.name).items():
                print(f"{mode:<13} {what:<26} {figure}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
