"""Fixtures for the tests that need a real Docker engine and the locally built images.

- ``answering_engine`` (session): a client of a reachable engine. No engine: the tests skip with
  the reason, unless ``REQUIRE_INTEGRATION=1`` (CI), where they fail.
- ``docker_client`` (session): that client, with the engine held by this session alone (the
  engine lock) and cleared of what an interrupted session left.
- ``test_images`` (session): builds or reuses the images of images/ (see images/build.py).
- ``pulumi_home`` (session): the pinned Pulumi CLI and a plugin cache of the session's own with
  the stand-in provider plugins (engine.py), needing no Docker engine. No CLI: skipped, or failed under ``REQUIRE_INTEGRATION=1``.
- ``engine_home`` (session): ``pulumi_home`` on a reachable engine with the test images.
- ``dock`` (per test) and ``module_dock`` (per module): a :class:`Harness` that labels everything it
  creates with a unique ``ecommerce-test.run`` value and removes every container, network and
  volume carrying that label in a finalizer, whether the test passed or failed midway.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import docker
import docker.errors
import pytest

from images.build import RECIPES, BuildError, Outcome, ensure_images
from tests.integration.engine import EngineHome, cli, install_standins
from tests.integration.stacks import remove_run

SESSION_LABEL = "ecommerce-test.session"
RUN_LABEL = "ecommerce-test.run"
SESSION_ID = uuid.uuid4().hex

BASE_IMAGE = RECIPES["debian-base"].tag
POSTGRES_IMAGE = RECIPES["postgres"].tag
REDIS_IMAGE = RECIPES["redis"].tag
NODE_IMAGE = RECIPES["reference-service"].tag

# What production does to every container (see docs/integration.md).
HARDENED: dict[str, Any] = {
    "read_only": True,
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges"],
}


def _required() -> bool:
    return os.environ.get("REQUIRE_INTEGRATION") == "1"


def _unavailable(reason: str) -> NoReturn:
    if _required():
        pytest.fail(f"REQUIRE_INTEGRATION=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def answering_engine() -> docker.DockerClient:
    """A client of an engine that answers, not held: enough for what only reads it (a preview
    of a new stack), beside the session that holds it."""
    try:
        # version="auto": the daemon may be older than the SDK's default API version. A pool of
        # 32 connections: the reachability checks probe 24 containers at once.
        client = docker.from_env(version="auto", timeout=120, max_pool_size=32)
        client.ping()
    except Exception as err:  # any failure to reach the engine means "no engine"
        _unavailable(
            f"no Docker engine answers ({err}); start one with scripts/docker-engine start"
        )
    return client


@pytest.fixture(scope="session")
def docker_client(answering_engine: docker.DockerClient) -> Iterator[docker.DockerClient]:
    client = answering_engine
    # Before removing "earlier" sessions' objects: a second session started beside a running one
    # would remove the running one's stacks under it.
    with engine_lock(engine_lock_path(os.environ.get("DOCKER_HOST") or DEFAULT_ENGINE)):
        _remove_earlier_sessions(client)
        try:
            yield client
        finally:
            _remove_labelled(client, f"{SESSION_LABEL}={SESSION_ID}")
            client.close()


DEFAULT_ENGINE = "unix:///var/run/docker.sock"


def engine_lock_path(engine: str) -> Path:
    """The lock of one Docker engine (by its address): sessions on other engines (test hosts,
    tests/hosts/) run beside it."""
    digest = hashlib.sha256(engine.encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"ecommerce-test-engine-{digest}.lock"


class EngineBusyError(RuntimeError):
    """Another test session holds the engine."""


@contextlib.contextmanager
def engine_lock(path: Path) -> Iterator[None]:
    """This session's hold on the engine, for as long as it runs; a second session fails at
    once, saying which process holds it (the kernel drops the lock with that process)."""
    with path.open("a+") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            holder = file.read().strip() or "another process"
            raise EngineBusyError(
                f"another integration test session (pid {holder}) is using this Docker engine; "
                "wait for it to end: two sessions would remove each other's stacks"
            ) from None
        file.seek(0)
        file.truncate()
        file.write(str(os.getpid()))
        file.flush()
        try:
            yield
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def test_images(docker_client: docker.DockerClient) -> list[Outcome]:
    try:
        outcomes = ensure_images(log=lambda line: print(f"images: {line}"))
    except BuildError as err:
        _unavailable(f"the test images could not be built: {err}")
    for outcome in outcomes:
        docker_client.images.get(outcome.recipe.tag)  # raises if the tag is missing
    return outcomes


@pytest.fixture(scope="session")
def pulumi_home(tmp_path_factory: pytest.TempPathFactory) -> EngineHome:
    found = cli()
    if found is None:
        _unavailable("no Pulumi CLI: build the pinned one with `make pulumi-cli` (needs Go)")
    return install_standins(found, tmp_path_factory.mktemp("pulumi-home"))


@pytest.fixture(scope="session")
def engine_home(pulumi_home: EngineHome, test_images: list[Outcome]) -> EngineHome:
    return pulumi_home


def _remove_earlier_sessions(client: docker.DockerClient) -> None:
    """Remove what an earlier, interrupted test session left on this engine.

    A killed session leaves its stacks behind, and the engine restarts their containers when it
    starts again: an old edge holding the published ports made every later stack fail. The tests
    run on an engine of their own (scripts/docker-engine), one session at a time, so whatever
    carries the tests' labels and is not this session's is a leftover.
    """
    swarm = client.info()["Swarm"]["LocalNodeState"] == "active"
    labelled = [
        *client.api.containers(all=True, filters={"label": RUN_LABEL}),
        *[n.attrs for n in client.networks.list(filters={"label": RUN_LABEL})],
        *[v.attrs for v in client.volumes.list(filters={"label": RUN_LABEL})],
    ]
    if swarm:
        labelled += [s.attrs["Spec"] for s in client.services.list(filters={"label": RUN_LABEL})]
    runs = {(item.get("Labels") or {})[RUN_LABEL] for item in labelled}
    for run_id in sorted(runs):
        print(f"removing what the earlier test run {run_id} left on the engine")
        left = remove_run(client, run_id)
        assert not left, f"could not remove the earlier test run {run_id}: {left}"
    problems = _remove_labelled(client, SESSION_LABEL)
    assert not problems, f"could not remove what an earlier test session left: {problems}"


def _remove_labelled(client: docker.DockerClient, label: str) -> list[str]:
    """Remove every container, then network, then volume carrying `label`; return what failed."""
    problems: list[str] = []
    for container in client.containers.list(all=True, filters={"label": label}):
        try:
            container.remove(force=True, v=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as err:
            problems.append(f"container {container.name}: {err}")
    for network in client.networks.list(filters={"label": label}):
        try:
            network.remove()
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as err:
            problems.append(f"network {network.name}: {err}")
    for volume in client.volumes.list(filters={"label": label}):
        try:
            volume.remove(force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as err:
            problems.append(f"volume {volume.name}: {err}")
    return problems


@dataclass
class Harness:
    """Creates labelled Docker objects for one test (or module) and knows how to remove them."""

    client: docker.DockerClient
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:10])

    @property
    def labels(self) -> dict[str, str]:
        return {SESSION_LABEL: SESSION_ID, RUN_LABEL: self.run_id}

    def name(self, role: str) -> str:
        return f"ect-{self.run_id}-{role}"

    def network(self, role: str, *, internal: bool = False) -> Any:
        return self.client.networks.create(
            self.name(role), driver="bridge", internal=internal, labels=self.labels
        )

    def volume(self, role: str) -> Any:
        return self.client.volumes.create(name=self.name(role), labels=self.labels)

    def create(self, image: str, role: str, **kwargs: Any) -> Any:
        """A created, not started, container."""
        labels = {**kwargs.pop("labels", {}), **self.labels}
        return self.client.containers.create(image, name=self.name(role), labels=labels, **kwargs)

    def run(self, image: str, role: str, **kwargs: Any) -> Any:
        """A started, detached container."""
        labels = {**kwargs.pop("labels", {}), **self.labels}
        return self.client.containers.run(
            image, name=self.name(role), labels=labels, detach=True, **kwargs
        )

    def run_once(self, image: str, role: str, command: list[str], **kwargs: Any) -> tuple[int, str]:
        """Run `command` to its end; return its exit code and combined output."""
        container = self.create(image, role, command=command, **kwargs)
        try:
            container.start()
            status = container.wait(timeout=120)
            output = container.logs(stdout=True, stderr=True).decode(errors="replace")
            return int(status["StatusCode"]), output
        finally:
            container.remove(force=True, v=True)

    def seed_secrets(self, role: str, files: Mapping[str, str]) -> str:
        """A named volume holding `files` (name -> content) at /run/secrets, written the way
        pulumi-docker's `uploads` do it: a tar put to `/` of a created, never started container
        that mounts the volume and has a writable root. Mode 0444, owner root. Returns the volume.
        """
        volume = self.volume(role)
        seed = self.create(
            BASE_IMAGE,
            f"{role}-seed",
            command=["true"],
            volumes={volume.name: {"bind": "/run/secrets", "mode": "rw"}},
        )
        assert seed.put_archive("/", secrets_tar(files)), "put_archive into the seed failed"
        return str(volume.name)

    def cleanup(self) -> None:
        problems = _remove_labelled(self.client, f"{RUN_LABEL}={self.run_id}")
        assert not problems, f"cleanup of run {self.run_id} left: {problems}"


def secrets_tar(files: Mapping[str, str], *, mode: int = 0o444) -> bytes:
    """A tar with run/secrets/<name> entries, owner root, like the provider's uploads."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, content in files.items():
            data = content.encode()
            info = tarfile.TarInfo(f"run/secrets/{name}")
            info.size, info.mode, info.uid, info.gid = len(data), mode, 0, 0
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def dock(docker_client: docker.DockerClient, test_images: list[Outcome]) -> Iterator[Harness]:
    harness = Harness(docker_client)
    try:
        yield harness
    finally:
        harness.cleanup()


@pytest.fixture(scope="module")
def module_dock(
    docker_client: docker.DockerClient, test_images: list[Outcome]
) -> Iterator[Harness]:
    harness = Harness(docker_client)
    try:
        yield harness
    finally:
        harness.cleanup()


# ----------------------------------------------------------------------------------------------
# Waiting and probing


def wait_for(
    check: Callable[[], bool], *, timeout: float, what: str, describe: Callable[[], str] = str
) -> None:
    """Poll `check` until it is true; fail naming `what` and `describe()` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{describe()}")
        time.sleep(0.3)


def logs_of(container: Any) -> str:
    try:
        container.reload()
        state = container.attrs["State"]
        tail = container.logs(stdout=True, stderr=True, tail=40).decode(errors="replace")
        return f"state: {state.get('Status')} exit {state.get('ExitCode')}\n--- logs ---\n{tail}"
    except docker.errors.APIError as err:
        return f"(no logs: {err})"


def exec_in(
    container: Any, command: list[str], *, env: Mapping[str, str] | None = None
) -> tuple[int, str]:
    result = container.exec_run(command, environment=dict(env or {}), demux=False)
    return int(result.exit_code), (result.output or b"").decode(errors="replace")


def running(container: Any) -> bool:
    container.reload()
    if container.status != "running":
        raise AssertionError(f"container {container.name} stopped\n{logs_of(container)}")
    return True


def wait_postgres_ready(container: Any, user: str, database: str, timeout: float = 90) -> None:
    """The image's health check: pg_isready over TCP (the init server listens on no TCP port)."""
    wait_for(
        lambda: (
            running(container)
            and exec_in(container, ["pg_isready", "-U", user, "-d", database, "-h", "127.0.0.1"])[0]
            == 0
        ),
        timeout=timeout,
        what=f"PostgreSQL in {container.name}",
        describe=lambda: logs_of(container),
    )


def ip_on(container: Any, network: Any) -> str:
    container.reload()
    return str(container.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"])


def host_port(container: Any, container_port: str) -> int:
    container.reload()
    bindings = container.attrs["NetworkSettings"]["Ports"].get(container_port) or []
    assert bindings, f"{container.name}: {container_port} is not published"
    assert bindings[0]["HostIp"] == "127.0.0.1"
    return int(bindings[0]["HostPort"])


def http_get(
    url: str, *, headers: Mapping[str, str] | None = None, timeout: float = 10
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """GET `url` (loopback only); return the status, the JSON body and the response headers."""
    assert url.startswith("http://127.0.0.1:"), url
    request = urllib.request.Request(url, headers=dict(headers or {}))  # noqa: S310 (loopback)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return (
                int(response.status),
                json.loads(response.read() or b"null"),
                dict(response.headers.items()),
            )
    except urllib.error.HTTPError as err:
        return int(err.code), json.loads(err.read() or b"null"), dict(err.headers.items())
