"""The agent's state as Prometheus metrics, served on the monitoring network (`agent
--metrics-port`): each task's last success and failures, read from the status file at every
scrape, and how full the server's data and repository volumes are.

    ecommerce_pitr_last_success_timestamp_seconds{task}   absent until the task first passes
    ecommerce_pitr_last_attempt_failed{task}              1 when its last attempt failed
    ecommerce_pitr_consecutive_failures{task}
    ecommerce_volume_free_bytes{volume}, ecommerce_volume_size_bytes{volume}
    process_start_time_seconds                            when it started (restarts)

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


def agent_metrics(status_file: Path, volumes: Mapping[str, Path]) -> Callable[[], str]:
    """What the agent serves: its status file and volumes as they are at each scrape."""

    def body() -> str:
        return render({n: TaskState() for n in TASKS} | load_tasks(status_file), volumes)

    return body
