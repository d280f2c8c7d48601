"""The off-host repository's container (docs/pitr.md): pgBackRest's TLS server, which every
database server archives into and the backups are read through, and the PITR agent of each
stanza on the repository's own side: checks of the off-host archive end to end, backups into
repo2, drills restored here.

The agents tick one after another, so one drill at a time runs on this host, whatever the
number of databases. The TLS server is a child process, watched every second and started again
when it dies: while it is down every database queues its WAL for repo2. SIGTERM stops both.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from pitr.agent import HealthLimits, health
from pitr.errors import UnhealthyError

log = logging.getLogger(__name__)

RESTART_AFTER_S = 5.0
"""Between a dead TLS server and its next start: a server that cannot start (a bad
certificate) is not restarted in a tight loop, and its error stays readable in the log."""
STOP_TIMEOUT_S = 10.0


class Ticking(Protocol):
    def tick(self) -> None: ...


class TlsServer:
    """`pgbackrest server`, kept running."""

    def __init__(self, argv: Sequence[str], clock: Callable[[], float] = time.monotonic) -> None:
        self.argv = list(argv)
        self.clock = clock
        self.process: subprocess.Popen[bytes] | None = None
        self.died_at: float | None = None

    def keep_running(self) -> None:
        """Start it if it is not running and the pause after its death has passed."""
        if self.process is not None:
            code = self.process.poll()
            if code is None:
                return
            log.error("pgbackrest server exited with code %s; starting it again", code)
            self.process, self.died_at = None, self.clock()
        if self.died_at is not None and self.clock() - self.died_at < RESTART_AFTER_S:
            return
        self.process, self.died_at = subprocess.Popen(self.argv), None

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def serve(
    server: TlsServer, agents: Sequence[Ticking], tick: timedelta, stop: threading.Event
) -> None:
    """Until `stop`: the server watched every second, every agent ticked in turn each `tick`."""

    def watch() -> None:
        while not stop.is_set():
            server.keep_running()
            stop.wait(1)

    watcher = threading.Thread(target=watch, name="tls-server", daemon=True)
    server.keep_running()
    watcher.start()
    try:
        while not stop.is_set():
            for agent in agents:
                if stop.is_set():
                    break
                agent.tick()
            stop.wait(tick.total_seconds())
    finally:
        stop.set()
        watcher.join()
        server.stop()


def tls_server_answers(port: int) -> None:
    """UnhealthyError unless pgBackRest's TLS server accepts a connection on `port`."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError as exc:
        raise UnhealthyError(f"the TLS server does not answer on port {port}: {exc}") from exc


def status_file(work: Path, stanza: str) -> Path:
    """Each stanza's agent state, side by side in the repository host's work folder."""
    return work / f"agent-status-{stanza}.json"


def repository_health(
    work: Path, stanzas: Sequence[str], port: int, limits: HealthLimits, now: datetime | None = None
) -> str:
    """Healthy while the TLS server answers and every stanza's agent is (pitr/agent.py);
    otherwise UnhealthyError naming the first thing that is not."""
    tls_server_answers(port)
    at = now or datetime.now(UTC)
    said = []
    for stanza in stanzas:
        try:
            said.append(f"{stanza}: {health(status_file(work, stanza), limits, at)}")
        except UnhealthyError as exc:
            raise UnhealthyError(f"{stanza}: {exc}") from exc
    return "; ".join(said)
