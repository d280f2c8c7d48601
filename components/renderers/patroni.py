"""Patroni's configuration for one member of a replicated database (docs/replication.md).

Patroni runs the PostgreSQL server of each member, holds the leader lock in the consensus store
(etcd) and promotes a standby when the primary stops renewing it. What every member must agree
on (the timing, synchronous replication, the settings PostgreSQL requires equal on a standby)
is under `bootstrap.dcs`: written to the store once, by the member that initialises the cluster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import yaml

API_PORT = 8008
"""Patroni's REST API: the router asks each member `GET /primary` on it."""
PG_PORT = 5432
SUPERUSER = "postgres"
REPLICATION_USER = "replicator"
API_USER = "patroni"
PASSFILE = "/tmp/pgpass"
"""Patroni writes the passwords it dials other members with here (the root may be read-only)."""

Synchronous = Literal["off", "preferred", "required"]
"""`off`: a commit returns once written on the primary (a failover may lose the last ones).
`preferred`: once the synchronous standby has it too, while there is one; with none left, the
primary goes on alone. `required`: never without a synchronous standby (writes wait while it is
down). With either of the last two, Patroni promotes only the synchronous standby."""


@dataclass(frozen=True)
class Timing:
    """How soon a lost primary is replaced. The leader lock lapses `ttl` seconds after the
    primary last renewed it (every `loop_wait`); the standby sees it at its next loop, asks the
    other members whether one is further ahead (2 s for a lost one to time out) and promotes
    itself: within about `ttl + loop_wait + 2` seconds of the loss, 16 to 22 s here (Patroni's
    own defaults, 30/10/10, take up to 42). Patroni's documentation asks `loop_wait + 2 *
    retry_timeout <= ttl` (3.0.2 does not check it; later versions do, and raise a `ttl` below
    20 to 20); a primary that cannot renew the lock within `retry_timeout` steps down."""

    ttl: int = 16
    loop_wait: int = 4
    retry_timeout: int = 5

    def __post_init__(self) -> None:
        if self.loop_wait + 2 * self.retry_timeout > self.ttl:
            raise ValueError(
                f"failover timing: loop_wait + 2 * retry_timeout ({self.loop_wait} + 2 * "
                f"{self.retry_timeout}) must not exceed ttl ({self.ttl})"
            )


@dataclass(frozen=True)
class Passwords:
    superuser: str
    replication: str
    api: str
    """Patroni's REST API asks it for what changes the cluster (a switchover, a restart)."""


@dataclass(frozen=True)
class Member:
    scope: str
    """The replicated database's name in the store: the same for all its members."""
    name: str
    """The member's own name, also the host name the others dial it by."""
    consensus: Sequence[str]
    """`host:port` of every member of the consensus store."""
    data_dir: str
    post_bootstrap: str
    """Command run once, after the first member initialised the cluster (roles, database)."""
    synchronous: Synchronous = "preferred"
    parameters: Mapping[str, str] | None = None
    """PostgreSQL settings; every member gets the same. Like `synchronous` and `timing`, read
    once, when the cluster is initialised (Patroni keeps them in the store after)."""
    timing: Timing = Timing()


REPLICATION_PARAMETERS: dict[str, str | int] = {
    "wal_level": "replica",
    "hot_standby": "on",
    "wal_log_hints": "on",  # pg_rewind needs it (or data checksums, which initdb turns on too)
    "max_wal_senders": 10,
    "max_replication_slots": 10,
}


def replication_parameters(stack: Mapping[str, str]) -> dict[str, str | int]:
    """The stack's server settings, then what replication needs, which they cannot turn off (a
    `wal_level` of `logical` is kept: it includes `replica`)."""
    needed: dict[str, str | int] = dict(REPLICATION_PARAMETERS)
    if stack.get("wal_level") == "logical":
        needed["wal_level"] = "logical"
    return {**stack, **needed}


def patroni_config(member: Member, passwords: Passwords) -> str:
    """The member's configuration file (it holds passwords: deliver it as a secret)."""
    superuser = {"username": SUPERUSER, "password": passwords.superuser}
    config = {
        "scope": member.scope,
        "name": member.name,
        "restapi": {
            "listen": f"0.0.0.0:{API_PORT}",
            "connect_address": f"{member.name}:{API_PORT}",
            "authentication": {"username": API_USER, "password": passwords.api},
        },
        "etcd3": {"hosts": list(member.consensus)},
        "bootstrap": {
            "dcs": {
                "ttl": member.timing.ttl,
                "loop_wait": member.timing.loop_wait,
                "retry_timeout": member.timing.retry_timeout,
                "synchronous_mode": member.synchronous != "off",
                "synchronous_mode_strict": member.synchronous == "required",
                # A standby further behind than this is never promoted (without synchronous
                # replication, the most it may lose).
                "maximum_lag_on_failover": 1024 * 1024,
                "postgresql": {
                    # A former primary rejoins as a standby of the new one on its own.
                    "use_pg_rewind": True,
                    "use_slots": True,
                    "parameters": replication_parameters(member.parameters or {}),
                },
            },
            "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}, "data-checksums"],
            "post_bootstrap": member.post_bootstrap,
        },
        "postgresql": {
            "listen": f"0.0.0.0:{PG_PORT}",
            "connect_address": f"{member.name}:{PG_PORT}",
            "data_dir": member.data_dir,
            "pgpass": PASSFILE,
            "authentication": {
                "superuser": superuser,
                "replication": {"username": REPLICATION_USER, "password": passwords.replication},
                "rewind": superuser,
            },
            "pg_hba": [
                # Patroni itself, the scripts it runs and `docker exec psql` inside the member.
                "local all postgres peer",
                f"host replication {REPLICATION_USER} all scram-sha-256",
                "host all all all scram-sha-256",
            ],
        },
        # Without a watchdog device (a container has none), a primary that cannot reach the
        # store demotes itself within ttl by Patroni's own loop.
        "watchdog": {"mode": "off"},
    }
    return yaml.safe_dump(config, sort_keys=False)
