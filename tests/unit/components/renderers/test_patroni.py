"""Patroni's configuration and the router's (components/renderers/patroni.py, db_router.py)."""

from __future__ import annotations

import re

import pytest
import yaml

from components.renderers.db_router import router_config
from components.renderers.patroni import (
    API_PORT,
    PG_PORT,
    REPLICATION_USER,
    Member,
    Passwords,
    Timing,
    patroni_config,
)

PASSWORDS = Passwords(superuser="super-pw", replication="repl-pw", api="api-pw")


def member(**changes: object) -> Member:
    fields: dict[str, object] = {
        "scope": "shop-order-db",
        "name": "shop-order-db-2",
        "consensus": ["shop-consensus-1:2379", "shop-consensus-2:2379"],
        "data_dir": "/var/lib/postgresql/data/pgdata",
        "post_bootstrap": "sh /run/secrets/create-service-role.sh",
    }
    return Member(**{**fields, **changes})  # type: ignore[arg-type]


def config(**changes: object) -> dict[str, object]:
    return dict(yaml.safe_load(patroni_config(member(**changes), PASSWORDS)))


@pytest.mark.parametrize(
    ("synchronous", "mode", "strict"),
    [("off", False, False), ("preferred", True, False), ("required", True, True)],
)
def test_the_synchronous_setting_is_patronis_two_modes(
    synchronous: str, mode: bool, strict: bool
) -> None:
    dcs = config(synchronous=synchronous)["bootstrap"]["dcs"]  # type: ignore[index]
    assert (dcs["synchronous_mode"], dcs["synchronous_mode_strict"]) == (mode, strict)


def test_a_member_is_dialled_by_its_own_name_and_reaches_every_consensus_member() -> None:
    found = config()
    assert found["name"] == "shop-order-db-2" and found["scope"] == "shop-order-db"
    assert found["restapi"]["connect_address"] == f"shop-order-db-2:{API_PORT}"  # type: ignore[index]
    postgresql = found["postgresql"]
    assert postgresql["connect_address"] == f"shop-order-db-2:{PG_PORT}"  # type: ignore[index]
    assert found["etcd3"] == {"hosts": ["shop-consensus-1:2379", "shop-consensus-2:2379"]}


def test_passwords_are_in_the_file_and_replication_logins_need_one() -> None:
    found = config()
    authentication = found["postgresql"]["authentication"]  # type: ignore[index]
    assert authentication["replication"] == {"username": REPLICATION_USER, "password": "repl-pw"}
    assert authentication["superuser"]["password"] == "super-pw"
    assert found["restapi"]["authentication"]["password"] == "api-pw"  # type: ignore[index]
    hba = found["postgresql"]["pg_hba"]  # type: ignore[index]
    assert not [line for line in hba if "trust" in line]
    assert f"host replication {REPLICATION_USER} all scram-sha-256" in hba


def test_the_stacks_settings_join_what_replication_needs_for_every_member() -> None:
    stack = {"max_connections": "300", "wal_level": "logical", "max_wal_senders": "0"}
    parameters = config(parameters=stack)["bootstrap"]["dcs"]["postgresql"]["parameters"]  # type: ignore[index]
    assert parameters["max_connections"] == "300"
    assert parameters["wal_level"] == "logical"  # includes what replication needs
    assert parameters["max_wal_senders"] == 10  # replication's word wins
    assert parameters["hot_standby"] == "on"


def test_a_timing_patroni_would_refuse_is_refused_here_naming_the_rule() -> None:
    with pytest.raises(ValueError, match=r"loop_wait \+ 2 \* retry_timeout"):
        Timing(ttl=10, loop_wait=5, retry_timeout=5)
    dcs = config(timing=Timing(ttl=30, loop_wait=10, retry_timeout=10))["bootstrap"]["dcs"]  # type: ignore[index]
    assert (dcs["ttl"], dcs["loop_wait"], dcs["retry_timeout"]) == (30, 10, 10)


def test_the_router_checks_each_member_for_the_primary_and_drops_sessions_to_a_lost_one() -> None:
    text = router_config(["shop-order-db-1", "shop-order-db-2"])
    servers = re.findall(r"^\s+server (\S+) (\S+) check port (\d+)$", text, re.MULTILINE)
    assert servers == [
        ("shop-order-db-1", f"shop-order-db-1:{PG_PORT}", str(API_PORT)),
        ("shop-order-db-2", f"shop-order-db-2:{PG_PORT}", str(API_PORT)),
    ]
    assert "http-check send meth OPTIONS uri /primary" in text
    assert "on-marked-down shutdown-sessions" in text
    assert f"bind :{PG_PORT}" in text
