"""The stand-in for the pulumi-docker provider plugin (`pulumi-resource-docker`).

The engine starts it, configures it (`docker:host`, or an explicit provider's `host`) and
drives each Docker resource of the program through it: containers, networks, volumes, built
images, and on a swarm services and secrets. What each does on the engine is in containers.py
and swarm.py, what Read records in read.py; both from the provider's own code.

Test-machine settings come from the environment the engine passes on to its plugins:
- `ECOMMERCE_STANDIN_LABELS` (JSON object): labels put on everything created (the test run's),
  taken out again by Read;
- `ECOMMERCE_STANDIN_LOG`: a file each operation is appended to, for whoever reads a test.
Build contexts are read from the plugin's working folder, the project folder, as the provider
reads them.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors

from plan.recorder import context_digest
from provider.schema import (
    CONTAINER,
    DELETE_BEFORE_REPLACE,
    IMAGE,
    NETWORK,
    SECRET,
    SERVICE,
    VOLUME,
)
from tests.hosts.hosts import ROOT as TEST_HOSTS_ROOT
from tests.standin import containers, swarm
from tests.standin.checked import diff, preview_outputs, with_defaults
from tests.standin.plugin import (
    UNKNOWN,
    CheckFailedError,
    Diff,
    Engine,
    InitFailedError,
    KeptState,
    Kind,
    Properties,
    Provider,
    serve,
)
from tests.standin.read import read_container, read_network, read_volume

PLUGIN_NAME = "docker"
LABELS_VARIABLE = "ECOMMERCE_STANDIN_LABELS"
LOG_VARIABLE = "ECOMMERCE_STANDIN_LOG"
EXPOSED_TIMEOUT_S = 30
"""How long a new object may take to show every field (pulumi-docker waits as long)."""
PLATFORM_WARNING = (
    "consider explicitly setting the `platform` field on ImageBuildOptions to avoid "
    "building for the wrong architecture"
)


@dataclass
class Context:
    client: docker.DockerClient
    labels: dict[str, str]
    """The test run's labels, on everything created."""
    engine: Engine
    project: Path
    on_test_host: bool = False
    """The engine is a test host's (tests/hosts/): its network namespace has only its link, so
    a port may be published on every address there."""

    def log(self, line: str) -> None:
        path = os.environ.get(LOG_VARIABLE)
        if path:
            with Path(path).open("a") as file:
                file.write(f"{time.time():.3f} {line}\n")


class ContainerKind:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def check(self, urn: str, olds: Properties, news: Properties) -> Properties:
        unknown = sorted(set(news) - containers.KNOWN_CONTAINER_INPUTS)
        if unknown:
            raise CheckFailedError({k: "the stand-in does not handle this input" for k in unknown})
        return with_defaults(CONTAINER, news)

    def diff(self, resource_id: str, olds: Properties, news: Properties) -> Diff:
        return diff(CONTAINER, olds, news, delete_before_replace=CONTAINER in DELETE_BEFORE_REPLACE)

    def create(self, urn: str, news: Properties, preview: bool) -> tuple[str, Properties]:
        if preview:
            return "", preview_outputs(CONTAINER, news)
        self.ctx.log(f"create container {news['name']}")
        try:
            container_id = containers.create_container(
                self.ctx.client, news, self.ctx.labels, self.ctx.on_test_host
            )
        except containers.CreateError as err:
            # Recorded with the inputs sent: the provider's Read comes only after a success.
            raise InitFailedError(err.container_id, dict(news), [str(err)]) from None
        self.ctx.log(f"created container {news['name']}")
        return container_id, read_container(
            self.ctx.client.api.inspect_container(container_id), news
        )

    def read(
        self, resource_id: str, state: Properties, inputs: Properties
    ) -> tuple[str, Properties, Properties] | None:
        try:
            inspect = self.ctx.client.api.inspect_container(resource_id)
        except docker.errors.NotFound:
            return None
        return resource_id, read_container(inspect, state), inputs

    def update(
        self, urn: str, resource_id: str, olds: Properties, news: Properties, preview: bool
    ) -> Properties:
        if not preview:
            self.ctx.log(f"update container {news['name']}")
            containers.update_container(self.ctx.client, resource_id, olds, news)
        # The provider's update reads nothing back: the state is the new inputs.
        return {**olds, **news}

    def delete(self, resource_id: str, state: Properties) -> None:
        self.ctx.log(f"delete container {state.get('name')}")
        containers.delete_container(self.ctx.client, resource_id, state)


class ObjectKind:
    """A Docker object every input of which replaces it: a network or a volume (a network
    joins a swarm's services by its ID). Created, read back and removed; no update."""

    def __init__(
        self,
        ctx: Context,
        type_token: str,
        create: Callable[[docker.DockerClient, Properties, Mapping[str, str]], str],
        inspect: Callable[[str], Any],
        read_back: Callable[[Any, Properties, Collection[str]], Properties],
        remove: Callable[[str], Any],
        exposed: Callable[[Any], bool] = lambda _found: True,
    ) -> None:
        self.ctx, self.type = ctx, type_token
        self._create, self._inspect, self._read, self._remove = create, inspect, read_back, remove
        self._exposed = exposed

    def check(self, urn: str, olds: Properties, news: Properties) -> Properties:
        return with_defaults(self.type, news)

    def diff(self, resource_id: str, olds: Properties, news: Properties) -> Diff:
        return diff(self.type, olds, news)

    def create(self, urn: str, news: Properties, preview: bool) -> tuple[str, Properties]:
        if preview:
            return "", preview_outputs(self.type, news)
        resource_id = self._create(self.ctx.client, news, self.ctx.labels)
        return resource_id, self._read(self._read_exposed(resource_id), news, self.ctx.labels)

    def _read_exposed(self, resource_id: str) -> Any:
        """Its inspection once it shows every field, as pulumi-docker waits for it: a swarm
        manager answers for an overlay network it has not allocated yet with no driver and no
        IPAM, which recorded as such would replace it at the next `up`."""
        deadline = time.monotonic() + EXPOSED_TIMEOUT_S
        found = self._inspect(resource_id)
        while not self._exposed(found):
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.type} {resource_id}: not all fields shown after {EXPOSED_TIMEOUT_S} s"
                )
            time.sleep(0.5)
            found = self._inspect(resource_id)
        return found

    def read(
        self, resource_id: str, state: Properties, inputs: Properties
    ) -> tuple[str, Properties, Properties] | None:
        try:
            found = self._inspect(resource_id)
        except docker.errors.NotFound:
            return None
        return resource_id, self._read(found, state, self.ctx.labels), inputs

    def update(
        self, urn: str, resource_id: str, olds: Properties, news: Properties, preview: bool
    ) -> Properties:
        raise RuntimeError(f"{news.get('name')}: a {self.type} has no in-place update")

    def delete(self, resource_id: str, state: Properties) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            self._remove(resource_id)


def network_exposed(found: Mapping[str, Any]) -> bool:
    """Whether a network's inspection shows its driver and IPAM (a swarm manager's may not yet,
    right after it was created)."""
    return bool(found["Driver"] and found["IPAM"]["Driver"])


class ImageKind(KeptState):
    """pulumi-docker's own `Image` (provider/image.go): Check adds the hash of the build context
    and the Dockerfile (`build.contextDigest`), so an unchanged context is no change at all;
    any change is an update, which builds again. With `skipPush` the build stays local and its
    ID is `repoDigest`. Deleting one leaves the image on the host."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def check(self, urn: str, olds: Properties, news: Properties) -> Properties:
        build = news.get("build")
        if not isinstance(build, Mapping):
            raise CheckFailedError({"build": "the stand-in builds images; give `build`"})
        if not build.get("platform"):
            self.ctx.engine.warn(urn, PLATFORM_WARNING)
        dockerfile = build.get("dockerfile")
        digest = context_digest(
            self.ctx.project / str(build.get("context", ".")),
            self.ctx.project / dockerfile if dockerfile else None,
        )
        return {**news, "build": {**build, "contextDigest": digest}}

    def diff(self, resource_id: str, olds: Properties, news: Properties) -> Diff:
        return diff(IMAGE, {k: v for k, v in olds.items() if k in news}, news)

    def create(self, urn: str, news: Properties, preview: bool) -> tuple[str, Properties]:
        if preview:
            return "", self._outputs(news, UNKNOWN)
        self.ctx.log(f"build {news['imageName']}")
        image_id = containers.build_image(self.ctx.client, news, self.ctx.project, self.ctx.labels)
        return news["imageName"], self._outputs(news, image_id)

    def _outputs(self, news: Properties, image_id: str) -> Properties:
        build = news["build"]
        return {
            **news,
            "repoDigest": image_id,
            "baseImageName": news["imageName"],
            "context": build.get("context"),
            "dockerfile": build.get("dockerfile"),
            "platform": build.get("platform"),
            "registryServer": "",
        }

    def update(
        self, urn: str, resource_id: str, olds: Properties, news: Properties, preview: bool
    ) -> Properties:
        if preview:
            return self._outputs(news, UNKNOWN)
        self.ctx.log(f"build {news['imageName']}")
        return self._outputs(
            news, containers.build_image(self.ctx.client, news, self.ctx.project, self.ctx.labels)
        )


class ServiceKind:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def check(self, urn: str, olds: Properties, news: Properties) -> Properties:
        return with_defaults(SERVICE, news)

    def diff(self, resource_id: str, olds: Properties, news: Properties) -> Diff:
        # The program asks for delete-first (a fixed name cannot exist twice).
        return diff(SERVICE, olds, news)

    def create(self, urn: str, news: Properties, preview: bool) -> tuple[str, Properties]:
        if preview:
            return "", preview_outputs(SERVICE, news)
        client = self.ctx.client
        self.ctx.log(f"create service {news['name']}")
        spec = swarm.service_spec(news, self.ctx.labels)
        service_id = str(client.api.create_service(**swarm.service_kwargs(spec))["ID"])
        converge = news.get("convergeConfig")
        if converge is not None:
            delay = swarm.seconds(converge.get("delay", "7s"))
            timeout = swarm.seconds(converge.get("timeout", "3m"))
            if not swarm.wait_created(client, service_id, delay, timeout):
                # The provider deletes a service that did not converge; nothing is recorded.
                # (The tasks' errors are the stand-in's addition, for whoever reads the test.)
                why = swarm.task_errors(client, service_id)
                swarm.delete_service(client, service_id, swarm.grace_of(news))
                raise RuntimeError(
                    f"{news['name']}: Service with ID ({service_id}) did not converge after "
                    f"{converge.get('timeout', '3m')}; tasks: {why}"
                )
        inspect = client.api.inspect_service(service_id)
        return service_id, swarm.read_service(inspect, news, self.ctx.labels)

    def read(
        self, resource_id: str, state: Properties, inputs: Properties
    ) -> tuple[str, Properties, Properties] | None:
        try:
            inspect = self.ctx.client.api.inspect_service(resource_id)
        except docker.errors.NotFound:
            return None
        return resource_id, swarm.read_service(inspect, state, self.ctx.labels), inputs

    def update(
        self, urn: str, resource_id: str, olds: Properties, news: Properties, preview: bool
    ) -> Properties:
        """`ServiceUpdate` with the whole spec; Docker rolls the tasks by `update_config`."""
        if preview:
            return {**olds, **news}
        client = self.ctx.client
        self.ctx.log(f"update service {news['name']}")
        version = client.api.inspect_service(resource_id)["Version"]["Index"]
        spec = swarm.service_spec(news, self.ctx.labels)
        client.api.update_service(
            resource_id, version, **swarm.service_kwargs(spec), fetch_current_spec=False
        )
        converge = news.get("convergeConfig")
        if converge is not None:
            try:
                swarm.wait_updated(
                    client, resource_id, swarm.seconds(converge.get("timeout", "3m"))
                )
            except swarm.ServiceError as err:
                # The SDK hands back the planned values with the error: the state holds the
                # new inputs, though Docker may have rolled the service back.
                raise InitFailedError(resource_id, dict(news), [f"{news['name']}: {err}"]) from None
        inspect = client.api.inspect_service(resource_id)
        return swarm.read_service(inspect, news, self.ctx.labels)

    def delete(self, resource_id: str, state: Properties) -> None:
        self.ctx.log(f"delete service {state.get('name')}")
        with contextlib.suppress(docker.errors.NotFound):
            swarm.delete_service(self.ctx.client, resource_id, swarm.grace_of(state))


class SecretKind:
    """Swarm secrets: every input replaces; Read keeps the name only (the data cannot be read
    back); the engine deletes a replaced one at the end of the run, once nothing uses it."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def check(self, urn: str, olds: Properties, news: Properties) -> Properties:
        return with_defaults(SECRET, news)

    def diff(self, resource_id: str, olds: Properties, news: Properties) -> Diff:
        return diff(SECRET, olds, news)

    def create(self, urn: str, news: Properties, preview: bool) -> tuple[str, Properties]:
        if preview:
            return "", dict(news)
        return swarm.create_secret(self.ctx.client, news, self.ctx.labels), dict(news)

    def read(
        self, resource_id: str, state: Properties, inputs: Properties
    ) -> tuple[str, Properties, Properties] | None:
        try:
            inspect = self.ctx.client.api.inspect_secret(resource_id)
        except docker.errors.NotFound:
            return None
        return resource_id, {**state, "name": inspect["Spec"]["Name"]}, inputs

    def update(
        self, urn: str, resource_id: str, olds: Properties, news: Properties, preview: bool
    ) -> Properties:
        raise RuntimeError(f"{news.get('name')}: secrets have no in-place update")

    def delete(self, resource_id: str, state: Properties) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            self.ctx.client.api.remove_secret(resource_id)


_clients: dict[str, docker.DockerClient] = {}
_clients_lock = threading.Lock()


def _client(host: str | None) -> docker.DockerClient:
    """One client per Docker host (the default provider and an explicit one share it)."""
    key = host or ""
    with _clients_lock:
        if key not in _clients:
            _clients[key] = (
                docker.DockerClient(base_url=host, version="auto", timeout=300)
                if host
                else docker.from_env(version="auto", timeout=300)
            )
        return _clients[key]


def kinds(config: Mapping[str, Any], engine: Engine) -> dict[str, Kind]:
    labels = json.loads(os.environ.get(LABELS_VARIABLE) or "{}")
    host = config.get("host")
    on_test_host = bool(host) and str(host).startswith(f"unix://{TEST_HOSTS_ROOT}/")
    ctx = Context(_client(host), labels, engine, Path.cwd(), on_test_host)
    api = ctx.client.api
    return {
        CONTAINER: ContainerKind(ctx),
        NETWORK: ObjectKind(
            ctx,
            NETWORK,
            containers.create_network,
            api.inspect_network,
            read_network,
            api.remove_network,
            exposed=network_exposed,
        ),
        VOLUME: ObjectKind(
            ctx,
            VOLUME,
            containers.create_volume,
            api.inspect_volume,
            read_volume,
            api.remove_volume,
        ),
        IMAGE: ImageKind(ctx),
        SERVICE: ServiceKind(ctx),
        SECRET: SecretKind(ctx),
    }


def main() -> None:
    from tests.standin.versions import DOCKER_VERSION

    serve(Provider(PLUGIN_NAME, DOCKER_VERSION, kinds), sys.argv[1:])


if __name__ == "__main__":
    main()
