"""A second `pulumi up` of the same stack changes nothing, and changes reach containers safely:
inputs in the provider's read-back form, a stop grace per role, replacements where Docker only
applies an input at create."""

from __future__ import annotations

from typing import Any

from plan.recorder import Graph, Resource, run_program
from provider.diff import INIT_ERROR, diff
from provider.schema import container_inputs_never_applied
from tests.unit.conftest import edited

GRACE_BY_ROLE = {
    "database": 120,
    "cache": 60,
    "backup": 60,
    "business": 30,
    "gateway": 30,
    "web": 30,
    "edge": 30,
    "pitr": 30,
    "pitr-repository": 30,  # the same setting as the agents (pitr.stopGraceSeconds)
    "prometheus": 60,
    "alertmanager": 10,
    "exporter": 10,
    "grafana": 10,
    "probe": 10,
}


def role_of(container: Resource) -> str:
    labels = {entry["label"]: entry["value"] for entry in container.inputs["labels"]}
    return str(labels["com.ecommerce.role"])


def test_every_running_container_stops_with_the_grace_of_its_role(stack_graph: Graph) -> None:
    roles = set()
    for c in stack_graph.running_containers():
        role = role_of(c)
        roles.add(role)
        assert c.inputs["destroyGraceSeconds"] == GRACE_BY_ROLE[role], c.name
        # `docker stop`, `docker restart` and the daemon's shutdown use the same grace.
        assert c.inputs["stopTimeout"] == c.inputs["destroyGraceSeconds"], c.name
    assert roles >= {"database", "cache", "business", "gateway", "web", "edge"}


def test_the_stop_grace_comes_from_the_stack_file() -> None:
    def graces(platform: dict[str, Any]) -> None:
        platform["services"]["order"]["stopGraceSeconds"] = 45
        platform["postgres"]["stopGraceSeconds"] = 300
        platform["redis"]["stopGraceSeconds"] = 20
        platform["backup"]["stopGraceSeconds"] = 90

    graph = run_program("prod", edited("prod", graces))
    grace = {c.service_name: c.inputs["destroyGraceSeconds"] for c in graph.running_containers()}
    assert (grace["shop-order"], grace["shop-customer"]) == (45, 30)
    assert grace["shop-order-db"] == grace["shop-content-db"] == 300
    assert (grace["shop-redis"], grace["shop-backup"]) == (20, 90)


def test_cpus_and_durations_are_in_the_providers_read_back_form(prod_graph: Graph) -> None:
    cpus = {c.service_name: c.inputs["cpus"] for c in prod_graph.running_containers()}
    assert (cpus["shop-order-db"], cpus["shop-customer-db"]) == ("2.0", "1.0")
    assert (cpus["shop-redis"], cpus["shop-gateway"]) == ("0.5", "1.0")

    def minutes(platform: dict[str, Any]) -> None:
        platform["healthCheck"] = {
            "interval": "1m",
            "timeout": "5s",
            "retries": 3,
            "startPeriod": "90s",
        }

    check = run_program("prod", edited("prod", minutes)).container("shop-gateway").inputs
    assert check["healthcheck"]["interval"] == "1m0s"
    assert check["healthcheck"]["startPeriod"] == "1m30s"


def test_inputs_docker_applies_only_at_create_replace_the_container(stack_graph: Graph) -> None:
    never_applied = container_inputs_never_applied()
    assert {"healthcheck", "tmpfs"} <= set(never_applied)
    for c in stack_graph.running_containers():
        assert set(never_applied) <= set(c.replace_on_changes), c.name


def test_a_container_recorded_unhealthy_is_replaced_by_the_next_up(stack_graph: Graph) -> None:
    for c in stack_graph.containers():  # seeds too: their uploads may fail after create
        assert INIT_ERROR in c.replace_on_changes, c.name
        recorded_with_error = diff(
            c.type, c.inputs, c.inputs, init_errors=True, replace_on_changes=c.replace_on_changes
        )
        assert recorded_with_error.replace_reasons == (INIT_ERROR,), c.name


def test_every_input_the_program_sends_is_in_the_providers_table(stack_graph: Graph) -> None:
    # The stand-in and the offline plan can only predict inputs provider/schema.py describes:
    # diff refuses any other; unchanged, each resource plans as "same".
    for r in stack_graph.resources:
        if r.type.startswith(("docker:", "random:", "pulumi:providers:")):
            assert diff(r.type, r.inputs, r.inputs).action == "same", r.name
