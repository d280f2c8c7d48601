"""The router of a replicated database (HAProxy): one stable address for its current primary.

Every second it asks each member's Patroni `GET /primary` (200 only from the leader that holds
the lock) and forwards connections to the one that answers. A member that stops answering is
out after two checks, and the sessions still open to it are closed, so the apps' pools open new
ones, which land on the new primary. Members are looked up in the swarm's DNS on every check: a
member's address changes when its task is started again, and a member whose node is down has
none.
"""

from __future__ import annotations

from collections.abc import Sequence

from components.renderers.patroni import API_PORT, PG_PORT

HEALTH_PORT = 8404
"""`GET /health` answers 200 while HAProxy runs (its container's health check)."""
CHECK_INTERVAL_MS = 1000


def router_config(members: Sequence[str], port: int = PG_PORT) -> str:
    checks = (
        f"inter {CHECK_INTERVAL_MS} fall 2 rise 1 on-marked-down shutdown-sessions "
        "resolvers docker init-addr none"
    )
    servers = "\n".join(
        f"    server {member} {member}:{PG_PORT} check port {API_PORT}" for member in members
    )
    return f"""global
    maxconn 2000

defaults
    mode tcp
    timeout connect 4s
    # Sessions idle in an app's pool stay open; TCP keepalives find dead peers.
    timeout client 1h
    timeout server 1h
    timeout check 2s
    option clitcpka
    option srvtcpka

# Docker's embedded DNS, asked again on every check; no answer kept past a second.
resolvers docker
    nameserver embedded 127.0.0.11:53
    hold valid 1s
    hold nx 1s
    hold other 1s
    hold refused 1s
    hold timeout 1s
    hold obsolete 1s

frontend health
    mode http
    bind 127.0.0.1:{HEALTH_PORT}
    monitor-uri /health

listen primary
    bind :{port}
    option httpchk
    http-check send meth OPTIONS uri /primary
    http-check expect status 200
    default-server {checks}
{servers}
"""


def router_health_test() -> list[str]:
    """The router's health check: its monitor answers (bash's /dev/tcp: the image has no HTTP
    client)."""
    probe = (
        f"exec 3<>/dev/tcp/127.0.0.1/{HEALTH_PORT} && "
        "printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3 && head -c 12 <&3 | grep -q ' 200'"
    )
    return ["CMD", "bash", "-c", probe]
