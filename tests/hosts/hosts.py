"""Separate Docker hosts on this machine, for tests that need more than one engine: a test
session each, another host for an off-host service, the nodes of a swarm.

    with TestHosts(3, images=["ecommerce-test/postgres:15"]) as hosts:
        hosts[0].docker_host          # unix:///.../h1/docker.sock, for DOCKER_HOST
        hosts[0].command(["pytest"])  # argv run inside h1's network namespace
        hosts[1].address              # h2's address on the link between the hosts

Each host is a network namespace with one address on a private link (links.py) and a `dockerd`
of its own (daemon.py). Images are loaded once from the machine's engine into every host
(`docker save`, then `docker load` into each, side by side). Everything is removed when the
block ends, a failed test's too; what an earlier run left (its process gone) is removed and
reported when the next one starts, and `python -m tests.hosts` reports it at any time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import docker

from tests.hosts import links
from tests.hosts.daemon import Daemon

PREFIX = "ecth-"
"""Of every namespace and folder a run makes (`ip netns list | grep ecth-`)."""
ROOT = Path(tempfile.gettempdir()) / "ecommerce-test-hosts"
SUBNET = "198.18.0"
"""The link's /24: an address range set aside for network tests, never routed."""


@dataclass(frozen=True)
class Host:
    name: str
    """`h1`, `h2`, ..."""
    namespace: str
    address: str
    """Its address on the link between the hosts."""
    port: str
    """Its link's end at the switch."""
    switch: str
    """The namespace of the bridge the hosts' links meet on."""
    daemon: Daemon

    @property
    def docker_host(self) -> str:
        return self.daemon.docker_host

    def command(self, argv: Sequence[str]) -> list[str]:
        """`argv` run inside this host's network namespace: its loopback is the host's."""
        return links.in_namespace(self.namespace, argv)

    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.docker_host, version="auto", timeout=120)

    def cut(self) -> None:
        """Off the link, as by a pulled cable: the others no longer reach it, nor it them."""
        links.cut(self.switch, self.port)

    def mend(self) -> None:
        links.mend(self.switch, self.port)

    def lose(self) -> None:
        """Lost with its disk: the engine killed with everything it ran, its data-root (the
        images, the containers, the volumes) deleted. The namespace stays, empty."""
        self.daemon.kill()
        shutil.rmtree(self.daemon.folder / "data")


class TestHosts:
    """`count` hosts for the length of a `with` block (see the module's docstring)."""

    __test__ = False  # a fixture's helper, not a test class

    def __init__(
        self, count: int, images: Sequence[str] = (), swarm: bool = False, root: Path = ROOT
    ) -> None:
        self.run = f"{PREFIX}{uuid.uuid4().hex[:6]}"
        self.folder = root / self.run
        self.switch = f"{self.run}-sw"
        self.images = list(images)
        self.swarm = swarm
        self.hosts = [
            Host(
                name=f"h{n}",
                namespace=f"{self.run}-h{n}",
                address=f"{SUBNET}.{10 + n}",
                port=f"{self.run[len(PREFIX) :]}h{n}",
                switch=self.switch,
                daemon=Daemon(self.folder / f"h{n}"),
            )
            for n in range(1, count + 1)
        ]

    def __enter__(self) -> list[Host]:
        for line in remove_leftovers(self.folder.parent):
            print(f"test hosts: {line}")
        # The folder appears with its owner in it (a rename): another run's leftover sweep
        # must never see it ownerless, and take it for a leftover.
        staging = self.folder.with_name(f".{self.folder.name}")
        staging.mkdir(parents=True)
        (staging / "owner.pid").write_text(str(os.getpid()))
        staging.rename(self.folder)
        try:
            links.add_switch(self.switch)
            for host in self.hosts:
                links.add_namespace(host.namespace)
                links.link(host.namespace, self.switch, host.port, host.address)
            with ThreadPoolExecutor(max_workers=len(self.hosts)) as pool:
                list(pool.map(lambda h: h.daemon.start(h.namespace, self.swarm), self.hosts))
            if self.images:
                self._share_images()
        except BaseException:
            self.close()
            raise
        return self.hosts

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Remove everything of this run; raise naming what could not be removed."""
        left = remove_run(self.folder)
        if left:
            raise RuntimeError(f"test hosts of run {self.run} left behind: {'; '.join(left)}")

    def _share_images(self) -> None:
        """The machine engine's images, saved once and loaded into every host at once."""
        archive = self.folder / "images.tar"
        machine = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
        _docker(["save", "--output", str(archive), *self.images], machine)

        def load(host: Host) -> None:
            _docker(["--host", host.docker_host, "load", "--quiet", "--input", str(archive)])

        with ThreadPoolExecutor(max_workers=len(self.hosts)) as pool:
            list(pool.map(load, self.hosts))
        archive.unlink()


def _docker(args: list[str], env: dict[str, str] | None = None) -> None:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        said = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"docker {' '.join(args[:3])} failed: {said}")


def remove_run(folder: Path) -> list[str]:
    """Remove a run's engines, namespaces and folder; what remains, said in words."""
    run = folder.name
    for host_folder in sorted(folder.glob("h*")):
        Daemon(host_folder).kill()
    for namespace in links.namespaces(f"{run}-"):
        links.delete_namespace(namespace)
    shutil.rmtree(folder, ignore_errors=True)
    left = [f"namespace {n}" for n in links.namespaces(f"{run}-")]
    left += [
        f"engine {Daemon(f).folder.name}" for f in folder.glob("h*") if Daemon(f).launcher_pid()
    ]
    left += [f"folder {folder}"] if folder.exists() else []
    return left


def leftovers(root: Path = ROOT, prefix: str = PREFIX) -> list[str]:
    """Runs whose owner is gone but whose namespaces or folder remain."""
    runs = {"-".join(n.split("-")[:2]) for n in links.namespaces(prefix)}
    runs |= {p.name for p in root.glob(f"{prefix}*")}
    return sorted(run for run in runs if not _owner_alive(root / run))


def remove_leftovers(root: Path = ROOT, prefix: str = PREFIX) -> Iterator[str]:
    for run in leftovers(root, prefix):
        left = remove_run(root / run)
        yield f"removed what run {run} left behind" + (f", but not {left}" if left else "")


def _owner_alive(folder: Path) -> bool:
    try:
        pid = int((folder / "owner.pid").read_text())
    except (OSError, ValueError):
        return False
    return Path(f"/proc/{pid}").exists()
