"""What a deploy under load costs: a good release side by side (the program) and delete-first
(the old way), and two bad ones.

Brings the prod stack up with the real Pulumi engine on a real Docker engine (stand-in provider
plugins, local images), then ships the same kind of deploy twice while requests go through the
edge over HTTPS: new images of the gateway, the order service and the frontend, and a rotated
JWT secret (which replaces its users too). The first deploy runs the program as it is; the
second runs it with every app container marked delete-before-replace (a resource transform), as
before the edge proxy. Then two bad releases, each followed by the previous images again: a
gateway that never listens, and an order service that starts but answers 500 to everything
(health checks included); the load runs until 30 s after each failed `up`. Prints requests,
failures and latency percentiles per path for each. Needs a running engine and the images
(`python -m images.build`). Measures only; asserts nothing.

    .venv/bin/python -m benchmarks.rolling_deploy
"""

from __future__ import annotations

import json
import runpy
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import pulumi
from pulumi import automation as auto

from tests.integration.engine import engine_home
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
ROLE_LABEL = "com.ecommerce.role"


def new_versions(suffix: str) -> Any:
    def edit(platform: dict[str, Any]) -> None:
        for app in APPS:
            platform["services"][app]["image"] = f"{IMAGES['service']}-{suffix}"

    return edit


def delete_first(project: Path) -> Callable[[], None]:
    """The program with every app container replaced delete-first."""

    def transform(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
        if args.type_ != "docker:index/container:Container":
            return None
        labels = args.props.get("labels")
        if not isinstance(labels, list):
            return None
        roles = {_field(lb, "value") for lb in labels if _field(lb, "label") == ROLE_LABEL}
        if not roles & set(APP_ROLES):
            return None
        opts = pulumi.ResourceOptions.merge(
            args.opts, pulumi.ResourceOptions(delete_before_replace=True)
        )
        return pulumi.ResourceTransformResult(args.props, opts)

    def run() -> None:
        pulumi.runtime.register_resource_transform(transform)
        runpy.run_path(str(project / "__main__.py"), run_name="__main__")

    return run


def _field(label: Any, key: str) -> Any:
    """A label's field, given as an input type or as a dict."""
    return label.get(key) if isinstance(label, dict) else getattr(label, key, None)


BAD_WAIT_S = 40
"""The stack's wait for a new container during the bad releases (a failed one fails sooner)."""
WATCHED_AFTER_S = 30
NEVER_LISTENS = f"{IMAGES['service']}-never-listens"
ANSWERS_500 = f"{IMAGES['service']}-answers-500"


def bad_release(app: str, image: str) -> Any:
    def edit(platform: dict[str, Any]) -> None:
        platform["waitTimeoutSeconds"] = BAD_WAIT_S
        platform["services"][app]["image"] = image

    return edit


def deploy_under_load(live: LiveStack, cafile: str, **up: Any) -> dict[str, str]:
    hosts = live.config[PLATFORM]["edge"]["hosts"]
    loads = {
        "edge -> gateway -> order": Load(
            Target(EDGE_HTTPS_PORT, "/order/", hosts["gateway"], cafile)
        ),
        "edge -> frontend": Load(Target(EDGE_HTTPS_PORT, "/", hosts["frontend"], cafile)),
    }
    reports = {path: load.__enter__() for path, load in loads.items()}
    try:
        time.sleep(1)
        started = time.monotonic()
        try:
            live.up(**up)
            outcome = "done"
        except auto.CommandError:
            outcome = "failed"
            time.sleep(WATCHED_AFTER_S)  # a failed release must not take over afterwards
        seconds = time.monotonic() - started
        time.sleep(1)
    finally:
        for load in loads.values():
            load.__exit__(None, None, None)
    described = {path: report.describe() for path, report in reports.items()}
    described["deploy"] = f"{outcome} in {seconds:.1f} s (with what followed)"
    return described


def main() -> int:
    client = docker.from_env(version="auto")
    for suffix in ("next", "after"):
        repository, tag = f"{IMAGES['service']}-{suffix}".rsplit(":", 1)
        client.images.get(IMAGES["service"]).tag(repository, tag)
    with (
        tempfile.TemporaryDirectory() as home,
        deployed(client, engine_home(Path(home)), "prod", log=lambda _: None) as live,
        tempfile.NamedTemporaryFile("w", suffix=".pem") as cafile,
    ):
        cafile.write(live.config[CERTIFICATE_KEY])
        cafile.flush()
        live.build_image(NEVER_LISTENS, f'FROM {IMAGES["service"]}\nCMD ["sleep", "infinity"]\n')
        live.build_image(
            ANSWERS_500,
            f"FROM {IMAGES['service']}\nCMD "
            + json.dumps(
                [
                    "node",
                    "-e",
                    "require('http').createServer((q, r) => { r.writeHead(500); "
                    "r.end() }).listen(process.env.PORT)",
                ]
            ),
        )
        for mode, suffix in (("side by side", "next"), ("delete-first", "after")):
            rotated = {"ecommerce:jwtSecret": "rotated" + uuid.uuid4().hex}
            up: dict[str, Any] = {"edit": new_versions(suffix), "secrets": rotated}
            if mode == "delete-first":
                up["program"] = delete_first(live.folder)
            report(mode, deploy_under_load(live, cafile.name, **up))
        good = live.config[PLATFORM]["services"]["gateway"]["image"]
        for mode, app, image in (
            ("never listens", "gateway", NEVER_LISTENS),
            ("answers 500", "order", ANSWERS_500),
        ):
            report(mode, deploy_under_load(live, cafile.name, edit=bad_release(app, image)))
            live.up(bad_release(app, good))  # the previous image again
    return 0


def report(mode: str, figures: dict[str, str]) -> None:
    for what, figure in figures.items():
        print(f"{mode:<13} {what:<26} {figure}")


if __name__ == "__main__":
    raise SystemExit(main())
