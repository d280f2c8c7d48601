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
import functools
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors

from plan.recorder import Graph, run_program, stack_config
from tests.integration.standin import Deployment

RUN_LABEL = "ecommerce-test.run"
PLATFORM = "ecommerce:platform"
IMAGES = {
    "service": "ecommerce-test/reference-service:1",
    "postgres": "ecommerce-test/postgres:15",
    "redis": "ecommerce-test/redis:7",
    "backup": "ecommerce-test/backup:1",
    "edge": "ecommerce-test/edge-proxy:1",
    "pitr": "ecommerce-test/postgres-pitr:15",
}
# No ACME CA is reachable: a stack with TLS serves a certificate made for the run, on ports
# that need no privilege and collide with nothing.
EDGE_HTTP_PORT = 18080
EDGE_HTTPS_PORT = 18443
CERTIFICATE_KEY = "ecommerce:edgeTlsCertificate"
KEY_KEY = "ecommerce:edgeTlsKey"


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

    def program(
        self,
        edit: Callable[[dict[str, Any]], None] | None = None,
        secrets: dict[str, str] | None = None,
    ) -> Graph:
        """The graph the program records for this stack's config, edited by `edit` if given,
        with `secrets` (config keys set with `--secret`) added: what a next `pulumi up` sends."""
        config = copy.deepcopy(self.config) | (secrets or {})
        if edit is not None:
            edit(config["ecommerce:platform"])
        return record(self.stack, config)


def record(stack: str, config: dict[str, Any]) -> Graph:
    """The program's graph; every `ecommerce:` key but the settings is a secret."""
    secret_keys = [key for key in config if key.startswith("ecommerce:") and key != PLATFORM]
    return run_program(stack, config, secret_keys=secret_keys)


@functools.cache
def edge_certificate(hosts: tuple[str, ...]) -> tuple[str, str]:
    """A self-signed certificate (PEM) for the host names, and its key: made once per run."""
    with tempfile.TemporaryDirectory() as folder:
        cert, key = Path(folder) / "cert.pem", Path(folder) / "key.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-days", "2", "-subj", f"/CN={hosts[0]}",
             "-addext", "subjectAltName=" + ",".join(f"DNS:{h}" for h in hosts),
             "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True,
        )  # fmt: skip
        return cert.read_text(), key.read_text()


def engine_config(stack: str, prefix: str) -> dict[str, Any]:
    """The stack file's config with local images, the given prefix and loopback publishing."""
    config = copy.deepcopy(stack_config(stack))
    platform = config[PLATFORM]
    platform["namePrefix"] = prefix
    if platform.get("engine") == "swarm":
        # No IPVS in the test kernel: no routing mesh. The edge publishes in host mode (on
        # every address: Swarm binds no single one); tasks are found by DNS round robin.
        platform["swarm"]["endpointMode"] = "dnsrr"
    else:
        platform["publishIp"] = "127.0.0.1"
    for service in platform["services"].values():
        if "image" in service:  # dev builds the reference service from its own folder
            service["image"] = IMAGES["service"]
    platform["postgres"]["image"] = IMAGES["postgres"]
    platform["redis"]["image"] = IMAGES["redis"]
    if "backup" in platform:
        platform["backup"]["image"] = IMAGES["backup"]
    if "image" in platform.get("pitr", {}):  # dev builds pitr/ on postgres.image, as its file says
        platform["pitr"]["image"] = IMAGES["pitr"]
    edge = platform["edge"]
    if "image" in edge:  # dev builds images/edge-proxy as its file says
        edge["image"] = IMAGES["edge"]
    if edge.get("tls"):
        edge |= {"tls": {"certificates": "files"},
                 "httpPort": EDGE_HTTP_PORT, "httpsPort": EDGE_HTTPS_PORT}  # fmt: skip
        certificate, key = edge_certificate(tuple(sorted(edge["hosts"].values())))
        config |= {CERTIFICATE_KEY: certificate, KEY_KEY: key}
    platform.pop("registry", None)
    return config


def remove_run(client: docker.DockerClient, run_id: str) -> list[str]:
    """Remove every container, network and volume of a run; return what is still there."""
    label = f"{RUN_LABEL}={run_id}"
    swarm = client.info()["Swarm"]["LocalNodeState"] == "active"
    services = client.services.list(filters={"label": label}) if swarm else []
    for service in services:
        service.remove()
    # Swarm stops the tasks' containers itself (each with its grace): give it the time. (The
    # low-level listing: a task's container may vanish between a listing and its inspect.)
    deadline = time.monotonic() + 150
    while (
        services
        and time.monotonic() < deadline
        and client.api.containers(filters={"label": label, "status": "running"})
    ):
        time.sleep(1)
    for c in client.api.containers(all=True, filters={"label": label}):
        with contextlib.suppress(docker.errors.NotFound):
            client.api.remove_container(c["Id"], force=True, v=True)
    for secret in client.secrets.list(filters={"label": label}) if swarm else []:
        secret.remove()
    for n in client.networks.list(filters={"label": label}):
        _remove_network(n)
    for v in client.volumes.list(filters={"label": label}):
        v.remove(force=True)
    for image in client.images.list(filters={"label": label}):  # what the stand-in built
        client.images.remove(image.id, force=True)
    left = [c["Names"][0] for c in client.api.containers(all=True, filters={"label": label})]
    left += [n.name for n in client.networks.list(filters={"label": label})]
    if swarm:
        left += [str(s.name) for s in client.services.list(filters={"label": label})]
        left += [str(s.name) for s in client.secrets.list(filters={"label": label})]
    left += [v.name for v in client.volumes.list(filters={"label": label})]
    left += [str(i.tags or i.id) for i in client.images.list(filters={"label": label})]
    return left


def _remove_network(network: Any) -> None:
    """An overlay network keeps the endpoints of removed tasks for a moment: retry a while."""
    for _ in range(40):
        try:
            network.remove()
            return
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as err:
            if "active endpoints" not in str(err):
                raise
            time.sleep(0.5)
    network.remove()


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
    edit(config[PLATFORM])
    graph = record(stack, config)
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
