"""The backup job's metrics server (backup/metrics.py), on loopback."""

from __future__ import annotations

import http.client

from backup.metrics import serve


def test_it_answers_metrics_with_its_start_time_and_nothing_else() -> None:
    server = serve(0, lambda: "ecommerce_backup_count 2\n")
    port = server.server_address[1]
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", "/metrics")
        lines = connection.getresponse().read().decode().splitlines()
        assert lines[0] == "ecommerce_backup_count 2"
        # A restart changes it: the rule ProcessRestarting.
        assert lines[2].startswith("process_start_time_seconds ")
        assert float(lines[2].split()[1]) > 0
        connection.request("GET", "/")
        assert connection.getresponse().status == 404
    finally:
        server.shutdown()
