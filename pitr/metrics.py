"""The agent's state as Prometheus metrics, served on the monitoring network (`agent
--metrics-port`): each task's last success and failures, read from the status file at every
scrape, and how full the server's data and repository volumes are.

    ecommerce_pitr_last_success_timestamp_seconds{task}   absent until the task first passes
    ecommerce_pitr_last_attempt_failed{task}              1 when its last attempt failed
    ecommerce_pitr_consecutive_failures{task}
    ecommerce_volume_free_bytes{volume}, ecommerce_volume_size_bytes{volume}
    process_start_time_seconds                            when it started (restarts)

Beside an off-host repository, what the agent last saw of repo2 (pitr/offhost_watch.py):

    ecommerce_pitr_offhost_up                             1 when repo2 answered its last look
    ecommerce_pitr_offhost_caught_up_timestamp_seconds    when repo2 last held repo1's newest WAL
    ecommerce_pitr_offhost_last_backup_timestamp_seconds  when repo2's newest backup ended
    (either, before there is one: the agent's first look at repo2)

The alert rules (components/alert_rules.py) read them.
"""

from __future__ import annotations

import http.server
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from pitr.agent import TASKS, TaskState, load_tasks
from pitr.offhost_watch import OffHostState, load_state

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def render(tasks: Mapping[str, TaskState], volumes: Mapping[str, Path]) -> str:
    lines = [
        "# HELP ecommerce_pitr_last_success_timestamp_seconds When the task last passed.",
        "# TYPE ecommerce_pitr_last_success_timestamp_seconds gauge",
    ]
    lines += [f'ecommerce_pitr_last_success_timestamp_seconds{{task="{name}"}} '
              f"{int(t.ok_at.timestamp())}"
              for name, t in tasks.items() if t.ok_at is not None]  # fmt: skip
    lines += [
        "# HELP ecommerce_pitr_last_attempt_failed 1 when the task's last attempt failed.",
        "# TYPE ecommerce_pitr_last_attempt_failed gauge",
    ]
    lines += [f'ecommerce_pitr_last_attempt_failed{{task="{name}"}} {int(t.ok is False)}'
              for name, t in tasks.items()]  # fmt: skip
    lines += [
        "# HELP ecommerce_pitr_consecutive_failures Failed attempts in a row of the task.",
        "# TYPE ecommerce_pitr_consecutive_failures gauge",
    ]
    lines += [f'ecommerce_pitr_consecutive_failures{{task="{name}"}} {t.failures}'
              for name, t in tasks.items()]  # fmt: skip
    return "\n".join([*lines, *volume_lines(volumes)]) + "\n"


def volume_lines(volumes: Mapping[str, Path]) -> list[str]:
    """Free and total bytes of the filesystem under each path (a volume mounted there)."""
    lines = [
        "# HELP ecommerce_volume_free_bytes Bytes free for unprivileged writers on the volume.",
        "# TYPE ecommerce_volume_free_bytes gauge",
        "# HELP ecommerce_volume_size_bytes Size of the volume's filesystem.",
        "# TYPE ecommerce_volume_size_bytes gauge",
    ]
    for name, path in volumes.items():
        try:
            fs = os.statvfs(path)
        except OSError:
            continue  # not mounted here: no series, rather than a false zero
        lines.append(f'ecommerce_volume_free_bytes{{volume="{name}"}} {fs.f_bavail * fs.f_frsize}')
        lines.append(f'ecommerce_volume_size_bytes{{volume="{name}"}} {fs.f_blocks * fs.f_frsize}')
    return lines


def serve(port: int, body: Callable[[], str]) -> http.server.ThreadingHTTPServer:
    """`GET /metrics` answers `body()` and the process's start time (a restart changes it: the
    rule ProcessRestarting), on a daemon thread; anything else is 404."""
    started = (
        f"# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds {time.time():.3f}\n"
    )

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/metrics":
                self.send_error(404)
                return
            payload = (body() + started).encode()
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *_args: object) -> None:
            """Every scrape would be a log line: none."""

    server = http.server.ThreadingHTTPServer(("", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def agent_metrics(
    status_file: Path, volumes: Mapping[str, Path], offhost_file: Path | None = None
) -> Callable[[], str]:
    """What the agent serves: its status file and volumes as they are at each scrape, and what
    it last saw of the off-host repository when it watches one."""

    def body() -> str:
        tasks = {n: TaskState() for n in TASKS} | load_tasks(status_file)
        seen = None if offhost_file is None else load_state(offhost_file)
        return render(tasks, volumes) + "".join(f"{line}\n" for line in offhost_lines(seen))

    return body


def offhost_lines(state: OffHostState | None) -> list[str]:
    """repo2 as the agent last saw it; nothing before its first look (no false zero)."""
    if state is None:
        return []
    lines = [
        "# HELP ecommerce_pitr_offhost_up 1 when the off-host repository answered the last look.",
        "# TYPE ecommerce_pitr_offhost_up gauge",
        f"ecommerce_pitr_offhost_up {int(state.reachable)}",
    ]
    # Never caught up, or no backup yet: counted from the first look, so that a repo2 that never
    # gets one still trips the alert once the limit has passed.
    for name, at, text in (
        ("caught_up", state.caught_up_at, "When repo2 last held repo1's newest WAL segment."),
        ("last_backup", state.backup_at, "When the off-host repository's newest backup ended."),
    ):
        at = at or state.since
        if at is None:
            continue
        metric = f"ecommerce_pitr_offhost_{name}_timestamp_seconds"
        lines += [f"# HELP {metric} {text}", f"# TYPE {metric} gauge"]
        lines.append(f"{metric} {int(at.timestamp())}")
    return lines
