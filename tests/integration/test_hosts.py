"""The test hosts (tests/hosts/): separate Docker engines on this machine, linked to each other
and to nothing else, removed with everything they ran, even when the test using them fails."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import docker
import pytest

from tests.hosts import TestHosts, leftovers
from tests.hosts.hosts import remove_leftovers
from tests.hosts.links import add_namespace, namespaces
from tests.integration.conftest import BASE_IMAGE

pytestmark = [pytest.mark.integration, pytest.mark.docker]

# Connects to `host:port` with a short timeout; prints `ok` or the error's name.
CONNECT = (
    "import socket, sys\n"
    "try:\n"
    "    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3).close()\n"
    "    print('ok')\n"
    "except OSError as err:\n"
    "    print(type(err).__name__, err.errno)\n"
)


def connect(argv_prefix: list[str], host: str, port: int) -> str:
    result = subprocess.run(
        [*argv_prefix, sys.executable, "-c", CONNECT, host, str(port)],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def processes_of(folder: Path) -> list[str]:
    """Every process whose command line names the run's folder (its engines, their shims)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if str(folder) in cmdline:
                found.append(f"{proc.name}: {cmdline[:80]}")
    return found


@pytest.mark.usefixtures("test_images")
def test_hosts_reach_each_other_only_and_leave_nothing_behind() -> None:
    hosts_of_run = TestHosts(2, images=[BASE_IMAGE])
    folder = hosts_of_run.folder
    with pytest.raises(RuntimeError, match="a test failed midway"), hosts_of_run as hosts:
        first, second = hosts
        # Each host is an engine of its own, with the machine's image loaded: what one runs,
        # the other does not see.
        one, two = first.client(), second.client()
        assert one.images.get(BASE_IMAGE) and two.images.get(BASE_IMAGE)
        alone = one.containers.create(BASE_IMAGE, ["true"], name="only-on-the-first")
        assert [c.name for c in two.containers.list(all=True)] == []
        assert [c.id for c in one.containers.list(all=True)] == [alone.id]
        one.close()
        two.close()
        # A listener in the second host's namespace, reached from the first over the link.
        listener = subprocess.Popen(
            second.command([sys.executable, "-m", "http.server", "8000", "--bind", second.address]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while connect(first.command([]), second.address, 8000) != "ok":
                assert time.monotonic() < deadline, "the second host never answered the first"
                time.sleep(0.2)
            # Nothing past the link: a host has no route out (the kernel refuses at once, no
            # packet leaves).
            assert connect(first.command([]), "198.19.0.1", 80) == "OSError 101"  # unreachable
            # A pulled cable, then put back.
            second.cut()
            assert connect(first.command([]), second.address, 8000) != "ok"
            second.mend()
            deadline = time.monotonic() + 10
            while connect(first.command([]), second.address, 8000) != "ok":
                assert time.monotonic() < deadline, "the mended link never carried again"
                time.sleep(0.2)
        finally:
            listener.kill()
            listener.wait()
        # A container of the first host, ended with its engine as a lost machine's would be.
        client = first.client()
        container = client.containers.run(BASE_IMAGE, ["sleep", "600"], detach=True)
        shim_pid = client.api.inspect_container(container.id)["State"]["Pid"]
        client.close()
        assert shim_pid > 0
        first.daemon.kill()
        assert not [p for p in processes_of(first.daemon.folder) if "dockerd" in p]
        with pytest.raises(docker.errors.DockerException):
            first.client()
        raise RuntimeError("a test failed midway")
    # The failure above left nothing: namespaces, engines, their processes, the folder.
    assert namespaces(hosts_of_run.run) == []
    assert processes_of(folder) == []
    assert not folder.exists()


def test_what_a_dead_run_left_is_reported_and_removed(tmp_path: Path) -> None:
    prefix = "ecthtest-"  # not PREFIX: the hosts this session may itself run on are live
    run = f"{prefix}dead01"
    (tmp_path / run).mkdir()
    (tmp_path / run / "owner.pid").write_text("999999999")  # no such process
    add_namespace(f"{run}-h1")
    alive = f"{prefix}live01"
    (tmp_path / alive).mkdir()
    (tmp_path / alive / "owner.pid").write_text(str(os.getpid()))
    try:
        assert leftovers(tmp_path, prefix) == [run]
        assert list(remove_leftovers(tmp_path, prefix)) == [f"removed what run {run} left behind"]
        assert leftovers(tmp_path, prefix) == [] and namespaces(run) == []
        assert (tmp_path / alive).exists()  # a live run's hosts are its own
    finally:
        for name in namespaces(run):
            subprocess.run(["ip", "netns", "delete", name], check=False)
