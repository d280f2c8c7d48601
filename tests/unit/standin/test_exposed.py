"""The stand-in provider records a new overlay network only once the swarm manager shows its
driver and IPAM (tests/standin/docker_provider.py), as pulumi-docker waits for "all fields": a
manager answers for a network it has not allocated yet with neither, and recorded so, the next
`up` would replace it."""

from __future__ import annotations

from typing import Any, cast

import pytest

from provider.schema import NETWORK
from tests.standin.docker_provider import Context, ObjectKind, network_exposed
from tests.standin.read import read_network

NOT_YET = {"Driver": "", "IPAM": {"Driver": "", "Config": None}}
ALLOCATED = {"Driver": "overlay", "IPAM": {"Driver": "default", "Config": []}}
COMMON = {"Name": "shop-db", "Labels": {}, "Internal": True, "Attachable": False}
COMMON |= {"Ingress": False, "EnableIPv6": False, "Options": {}}


def kind(answers: list[dict[str, Any]]) -> ObjectKind:
    asked = iter(answers)
    return ObjectKind(
        cast(Context, type("Ctx", (), {"client": None, "labels": {}})()),
        NETWORK,
        lambda _client, _news, _labels: "net-id",
        lambda _id: COMMON | next(asked),
        read_network,
        lambda _id: None,
        exposed=network_exposed,
    )


def test_a_network_is_recorded_once_the_manager_shows_its_driver() -> None:
    _id, outputs = kind([NOT_YET, NOT_YET, ALLOCATED]).create("urn", {"name": "shop-db"}, False)
    assert (outputs["driver"], outputs["ipamDriver"]) == ("overlay", "default")


def test_a_network_that_never_shows_its_driver_is_an_error_not_a_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("tests.standin.docker_provider.EXPOSED_TIMEOUT_S", 0)
    with pytest.raises(RuntimeError, match="not all fields shown"):
        kind([NOT_YET, NOT_YET, NOT_YET]).create("urn", {"name": "shop-db"}, False)
