"""What the integration tests need to look at a stack's monitoring: Prometheus's API (asked
from inside its container: prod publishes nothing), and a webhook receiver run by the test
where the stack's Alertmanager sends its alerts (`ALERT_WEBHOOK_URL`, set by engine_config)."""

from __future__ import annotations

import json
from typing import Any

from tests.integration.conftest import exec_in
from tests.integration.stacks import ALERT_HOOK_ALIAS, ALERT_HOOK_PORT, IMAGES, RUN_LABEL, LiveStack

# The receiver prints each request's body (one JSON document per line) on stdout: its logs.
RECEIVER = f"""
import http.server, sys
class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        sys.stdout.write(body.decode().replace("\\n", " ") + "\\n")
        sys.stdout.flush()
        self.send_response(200)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("", {ALERT_HOOK_PORT}), Hook).serve_forever()
"""


LOST_OUTPUT_TRIES = 3


def json_from(container: Any, url: str) -> Any:
    """The JSON a GET of `url` from inside `container` answers. Docker now and then loses the
    output of a quick exec on a busy machine (exit code 0, nothing read: moby/moby#27289,
    docker/docker-py#2042; twice in one CI run here), so an empty answer to this read-only
    request is asked again, a few times at most; any other answer is taken as it is."""
    for _ in range(LOST_OUTPUT_TRIES):
        code, output = exec_in(container, ["wget", "-qO-", url])
        assert code == 0, output
        if output.strip():
            return json.loads(output)
    raise AssertionError(f"GET {url} in {container.name}: no output in {LOST_OUTPUT_TRIES} tries")


def prometheus_api(live: LiveStack, path: str) -> Any:
    """The `data` of a Prometheus API answer, e.g. `targets` or `query?query=up`."""
    answer = json_from(live.container("prometheus"), f"http://127.0.0.1:9090/api/v1/{path}")
    assert answer["status"] == "success", answer
    return answer["data"]


def alertmanager_alerts(live: LiveStack) -> list[dict[str, Any]]:
    """The alerts Alertmanager holds (asked from Prometheus's container, on the monitoring
    network)."""
    return list(json_from(live.container("prometheus"), "http://alertmanager:9093/api/v2/alerts"))


def start_alert_hook(live: LiveStack) -> Any:
    """The webhook receiver, on the stack's alerting network under the name the stack's
    webhook URL gives; removed with the run."""
    container = live.client.containers.run(
        IMAGES["backup"],
        ["python3", "-c", RECEIVER],
        detach=True,
        user="65534:65534",
        name=f"{live.prefix}-alert-hook",
        labels={RUN_LABEL: live.run_id},
        network=f"{live.prefix}-alerting",
        networking_config={
            f"{live.prefix}-alerting": live.client.api.create_endpoint_config(
                aliases=[ALERT_HOOK_ALIAS]
            )
        },
    )
    return container


def hook_alerts(hook: Any) -> list[dict[str, Any]]:
    """Every alert the receiver got, each as Alertmanager sent it (with its group's status)."""
    found = []
    for line in hook.logs(stdout=True, stderr=False).decode(errors="replace").splitlines():
        if line.strip():
            message = json.loads(line)
            found += [alert | {"groupStatus": message["status"]} for alert in message["alerts"]]
    return found
