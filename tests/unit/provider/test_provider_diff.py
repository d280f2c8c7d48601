"""The provider's diff and Pulumi's engine rules, on hand-made states."""

from __future__ import annotations

from typing import Any

import pytest

from provider.diff import INIT_ERROR, UnknownInputError, diff
from provider.schema import CONTAINER, NETWORK, RANDOM_PASSWORD

RECORDED: dict[str, Any] = {
    "name": "shop-api",
    "image": "shop/api:1",
    "cpus": "1.0",
    "memory": 512,
    "memorySwap": 512,
    "restart": "unless-stopped",
    "envs": ["A=1", "B=2"],
    "user": "node",
    "command": ["node"],
    "healthcheck": {
        "tests": ["CMD", "true"],
        "interval": "10s",
        "timeout": "5s",
        "startPeriod": "30s",
        "startInterval": "0s",
        "retries": 5,
    },
    "tmpfs": {"/tmp": "size=64m"},
    "destroyGraceSeconds": 30,
    "shmSize": 64,
    "logDriver": "json-file",
}
SENT: dict[str, Any] = {
    "name": "shop-api",
    "image": "shop/api:1",
    "cpus": "1.0",
    "memory": 512,
    "memorySwap": 512,
    "restart": "unless-stopped",
    "envs": ["B=2", "A=1"],
    "command": ["node"],
    "healthcheck": {
        "tests": ["CMD", "true"],
        "interval": "10s",
        "timeout": "5s",
        "startPeriod": "30s",
        "retries": 5,
    },
    "tmpfs": {"/tmp": "size=64m"},
    "destroyGraceSeconds": 30,
}
PROGRAM_RULES = ["healthcheck", "tmpfs", INIT_ERROR]


def changed(**inputs: Any) -> dict[str, Any]:
    return {**SENT, **inputs}


def test_inputs_equal_to_what_read_recorded_change_nothing() -> None:
    # The set in another order, the computed user and shm size left out, the defaults filled.
    assert diff(CONTAINER, RECORDED, SENT).action == "same"


def test_a_whole_number_of_cpus_written_plainly_replaces_on_every_run() -> None:
    # The bug the canonical forms fix: "1" against the recorded "1.0".
    found = diff(CONTAINER, RECORDED, changed(cpus="1"))
    assert (found.action, found.replace_reasons) == ("replace", ("cpus",))
    assert found.delete_before_replace  # pulumi-docker's choice for every container


def test_memory_is_updated_in_place() -> None:
    found = diff(CONTAINER, RECORDED, changed(memory=1024, memorySwap=1024))
    assert (found.action, found.paths) == ("update", ("memory", "memorySwap"))


def test_a_stop_grace_change_is_an_update_of_the_state_only() -> None:
    found = diff(CONTAINER, RECORDED, changed(destroyGraceSeconds=120))
    assert (found.action, found.paths) == ("update", ("destroyGraceSeconds",))


def test_an_image_change_replaces_and_names_the_reason() -> None:
    found = diff(CONTAINER, RECORDED, changed(image="shop/api:2"), replace_on_changes=PROGRAM_RULES)
    assert (found.action, found.replace_reasons) == ("replace", ("image",))


def test_health_check_and_tmpfs_edits_only_replace_when_the_program_asks() -> None:
    edits: list[dict[str, Any]] = [
        changed(healthcheck={**SENT["healthcheck"], "interval": "1m0s"}),
        changed(tmpfs={"/tmp": "size=128m"}),
    ]
    for desired in edits:
        # The provider alone would record the edit and never apply it...
        assert diff(CONTAINER, RECORDED, desired).action == "update"
    # ... so the program's replace_on_changes turns each into a replacement.
    health = diff(CONTAINER, RECORDED, edits[0], replace_on_changes=PROGRAM_RULES)
    assert (health.action, health.paths) == ("replace", ("healthcheck.interval",))
    assert health.replace_reasons == ("healthcheck",)
    assert diff(
        CONTAINER, RECORDED, edits[1], replace_on_changes=PROGRAM_RULES
    ).replace_reasons == ("tmpfs",)


def test_a_resource_with_an_initialisation_error_is_replaced_only_with_the_rule() -> None:
    assert diff(CONTAINER, RECORDED, SENT, init_errors=True).action == "update"
    found = diff(CONTAINER, RECORDED, SENT, init_errors=True, replace_on_changes=PROGRAM_RULES)
    assert (found.action, found.paths, found.replace_reasons) == ("replace", (), (INIT_ERROR,))


def test_an_explicit_delete_before_replace_option_wins_over_the_provider() -> None:
    found = diff(CONTAINER, RECORDED, changed(image="x:2"), delete_before_replace=False)
    assert not found.delete_before_replace


def test_absent_inputs_equal_their_zero_and_defaults_fill_in() -> None:
    recorded = {**RECORDED, "maxRetryCount": 0, "readOnly": False, "networkMode": "bridge"}
    assert diff(CONTAINER, recorded, SENT).action == "same"
    assert diff(CONTAINER, {**recorded, "networkMode": "host"}, SENT).paths == ("networkMode",)


def test_an_input_outside_the_table_is_refused() -> None:
    with pytest.raises(UnknownInputError, match=r"\['gpus'\] are not described"):
        diff(CONTAINER, RECORDED, changed(gpus="all"))
    with pytest.raises(UnknownInputError, match=r"healthcheck: nested inputs \['cmd'\]"):
        diff(CONTAINER, RECORDED, changed(healthcheck={"cmd": "true"}))


def test_networks_replace_on_any_change_and_random_values_too() -> None:
    labels = [{"label": "a", "value": "1"}]
    network = {"name": "shop-edge", "driver": "bridge", "labels": labels}
    assert diff(NETWORK, network, {"name": "shop-edge", "labels": labels}).action == "same"
    assert diff(NETWORK, network, {"name": "shop-edge"}).replace_reasons == ("labels",)
    assert diff(RANDOM_PASSWORD, {"length": 32}, {"length": 64}).action == "replace"
    assert diff("pulumi:providers:docker", {"host": "a"}, {"host": "b"}).action == "update"


def test_ignored_inputs_keep_their_recorded_value() -> None:
    # A secrets seed ignores a new image of its consumer: it never runs it.
    new_image = changed(image="shop/api:2")
    assert diff(CONTAINER, RECORDED, new_image, ignore_changes=["image"]).action == "same"
    found = diff(
        CONTAINER,
        RECORDED,
        changed(image="shop/api:2", memory=1024, memorySwap=1024),
        ignore_changes=["image"],
    )
    assert (found.action, found.paths) == ("update", ("memory", "memorySwap"))
    with pytest.raises(UnknownInputError, match=r"ignore_changes \['healthcheck.interval'\]"):
        diff(CONTAINER, RECORDED, SENT, ignore_changes=["healthcheck.interval"])


def test_inputs_from_a_replaced_resource_are_known_after_apply() -> None:
    # A volume name from a volume being replaced: the mount changes, so the container goes too.
    found = diff(CONTAINER, RECORDED, SENT, unknown_inputs=["volumes"])
    assert (found.action, found.replace_reasons) == ("replace", ("volumes",))
    assert diff(CONTAINER, RECORDED, SENT, unknown_inputs=["memory"]).action == "update"
