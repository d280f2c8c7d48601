"""One test host's Docker engine: a `dockerd` of its own (data-root, exec-root, socket) in the
host's network namespace, and in a PID and mount namespace of its own, so that killing it ends
every process and mount of that host at once: its containerd, its shims, its containers (a
`dockerd` killed alone leaves those running).

The engine is started through `unshare --fork --kill-child`: dockerd is the first process of
its PID namespace, and dies with the `unshare` that launched it, taking the namespace along.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

from tests.hosts.links import in_namespace

START_TIMEOUT_SECONDS = 60


class DaemonError(RuntimeError):
    """A host's engine did not start; the message ends with the last lines of its log."""


@dataclass(frozen=True)
class Daemon:
    folder: Path
    """Its data-root, exec-root, socket, log and the launcher's pid file."""

    @property
    def socket(self) -> Path:
        return self.folder / "docker.sock"

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def log(self) -> Path:
        return self.folder / "dockerd.log"

    @property
    def launcher_pid_file(self) -> Path:
        return self.folder / "launcher.pid"

    def start(self, namespace: str, swarm: bool = False) -> None:
        """Start the engine in `namespace` and wait until it answers; again after `kill`, with
        what its data-root kept (a machine back from a power cut)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.launcher_pid() is None:
            # What a killed engine left of its run: as a machine's /run after a power cut,
            # gone (containerd would wait on its old socket and pid file).
            (self.folder / "dockerd.pid").unlink(missing_ok=True)
            shutil.rmtree(self.folder / "exec", ignore_errors=True)
        argv = [
            "unshare",
            "--pid",
            "--fork",
            "--kill-child",
            "--mount",
            "--mount-proc",
            "--propagation",
            "private",
            "dockerd",
            f"--data-root={self.folder / 'data'}",
            f"--exec-root={self.folder / 'exec'}",
            f"--pidfile={self.folder / 'dockerd.pid'}",
            f"--host={self.docker_host}",
        ]
        env = dict(os.environ)
        if swarm:  # services run the images the host has; nothing is pulled
            env["DOCKER_SERVICE_PREFER_OFFLINE_IMAGE"] = "1"
        with self.log.open("ab") as log:
            launcher = subprocess.Popen(
                in_namespace(namespace, argv),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        self.launcher_pid_file.write_text(str(launcher.pid))
        self._wait_ready(launcher)

    def _wait_ready(self, launcher: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if launcher.poll() is not None:
                raise DaemonError(f"dockerd of {self.folder.name} exited: {self._log_tail()}")
            if self._answers():
                return
            time.sleep(0.5)
        self.kill()
        raise DaemonError(
            f"dockerd of {self.folder.name} did not answer in {START_TIMEOUT_SECONDS} s: "
            f"{self._log_tail()}"
        )

    def _answers(self) -> bool:
        try:
            client = docker.DockerClient(base_url=self.docker_host, version="auto", timeout=5)
        except docker.errors.DockerException:  # no socket yet, or not answering
            return False
        try:
            return bool(client.ping())
        except docker.errors.DockerException:
            return False
        finally:
            client.close()

    def kill(self) -> None:
        """End the engine and everything it runs at once, as a lost machine would."""
        pid = self.launcher_pid()
        if pid is None:
            return
        engine = _children(pid)  # dockerd, the first process of the host's PID namespace
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        # Its child, dockerd, dies with it (--kill-child), and with it the whole namespace; but
        # after it, and under load visibly so: wait for both, as a lost machine's processes
        # are all gone at once.
        for _ in range(100):
            if not any(_alive(p) for p in (pid, *engine)):
                return
            time.sleep(0.1)

    def launcher_pid(self) -> int | None:
        """The launcher's pid, while that process is still this host's launcher."""
        try:
            pid = int(self.launcher_pid_file.read_text())
        except (OSError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return None
        return pid if str(self.socket).encode() in b" ".join(cmdline) else None

    def _log_tail(self) -> str:
        try:
            lines = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no log"
        return " | ".join(lines[-5:]) or "empty log"


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):  # reap it, when it is this process's child
        os.waitpid(pid, os.WNOHANG)
    return Path(f"/proc/{pid}").exists() and b"Z" not in _state(pid)


def _state(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/stat").read_bytes().split(b") ", 1)[1][:1]
    except (OSError, IndexError):
        return b""
