"""The backup job's state as Prometheus metrics, served on the monitoring network (`schedule
--metrics-port`), read from the backup directory at every scrape:

    ecommerce_backup_last_success_timestamp_seconds   the newest backup that passed verification
    ecommerce_backup_last_run_failed                  1 when the last scheduled run failed
    ecommerce_backup_consecutive_failures
    ecommerce_backup_count                            complete backups kept
    ecommerce_volume_free_bytes{volume="backups"}, ecommerce_volume_size_bytes{volume="backups"}
    process_start_time_seconds                            when it started (restarts)

The alert rules (components/renderers/alert_rules.py) read them.

Its HTTP handler is the same few lines as the PITR agent's (pitr/metrics.py) and the health
probe's (probe/health.py), on purpose: each runs alone where the others are not, the backup
image with only backup/, the PITR image with only pitr/ (its Dockerfile copies nothing else),
the probe as one standard-library file mounted into a plain Python image. A module shared by
the three would have to be copied into every image and mounted beside the probe, for seven
lines.
"""

from __future__ import annotations

import http.server
import json
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from backup.manifest import scan
from backup.schedule import LAST_RUN

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def render(dest: Path) -> str:
    found = scan(dest).backups
    verified = [b for b in found if b.verification is not None and b.verification.ok]
    lines = ["# TYPE ecommerce_backup_last_success_timestamp_seconds gauge"]
    if verified:
        newest = max(_timestamp(b.manifest.created_at) for b in verified)
        lines.append(f"ecommerce_backup_last_success_timestamp_seconds {newest}")
    try:
        last = json.loads((dest / LAST_RUN).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        last = {}
    if "ok" in last:
        failures = int(last.get("failures_in_a_row", 0))
        lines += [
            "# TYPE ecommerce_backup_last_run_failed gauge",
            f"ecommerce_backup_last_run_failed {int(not last['ok'])}",
            "# TYPE ecommerce_backup_consecutive_failures gauge",
            f"ecommerce_backup_consecutive_failures {failures}",
        ]
    lines += ["# TYPE ecommerce_backup_count gauge", f"ecommerce_backup_count {len(found)}"]
    try:
        fs = os.statvfs(dest)
    except OSError:
        fs = None
    if fs is not None:
        free, size = fs.f_bavail * fs.f_frsize, fs.f_blocks * fs.f_frsize
        lines += [
            "# TYPE ecommerce_volume_free_bytes gauge",
            f'ecommerce_volume_free_bytes{{volume="backups"}} {free}',
            "# TYPE ecommerce_volume_size_bytes gauge",
            f'ecommerce_volume_size_bytes{{volume="backups"}} {size}',
        ]
    return "\n".join(lines) + "\n"


def _timestamp(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(UTC).timestamp())


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
