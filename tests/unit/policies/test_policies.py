"""The production rules on the resources the program builds: prod passes every one, and a
component that breaks the hardening is caught even while the settings still ask for it.

The same rules run in the CrossGuard pack (policies/pack.py), whose validate functions are
called here directly: constructing the `PolicyPack` itself would start its server.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pulumi
import pulumi_docker
import pytest
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from plan.recorder import Graph, Resource, run_program
from plan.report import subjects
from policies.pack import policies, validate_secrets
from policies.rules import (
    RULES,
    STACK_RULES,
    Subject,
    check,
    enforcement_for,
    secret_values_leaked,
)
from tests.unit.components.test_secrets import secrets_outside_files


def rules_broken(graph: Graph) -> dict[str, set[str]]:
    broken: dict[str, set[str]] = {}
    for v in check(subjects(graph)):
        broken.setdefault(v.rule, set()).add(v.name)
    return broken


def test_prod_passes_every_rule(prod_graph: Graph) -> None:
    assert rules_broken(prod_graph) == {}


def test_dev_breaks_what_its_settings_relax(dev_graph: Graph) -> None:
    broken = rules_broken(dev_graph)
    # Dev keeps roots writable, capabilities, the SPEC's port map and unprotected volumes:
    # advisory there. Its apps run the images it builds, by ID: pinned.
    assert set(broken) == {
        "read-only-root",
        "drop-all-capabilities",
        "only-edge-published",
        "data-volumes-protected",
    }
    assert "platform-gateway-container" not in broken["only-edge-published"]
    assert "platform-customer-container" in broken["only-edge-published"]
    assert enforcement_for("dev") == "advisory" and enforcement_for("prod") == "mandatory"


def test_secret_seeds_are_exempt_from_the_runtime_rules(dev_graph: Graph) -> None:
    broken = rules_broken(dev_graph)
    assert not any(name.endswith("-seed") for names in broken.values() for name in names)


# ----------------------------------------------------------------------------------------------
# Components that break what the settings ask for


class _Patched(pulumi_docker.Container):
    """Containers as a buggy component would build them: `change` edits their arguments."""

    change: Any = None

    def __init__(self, resource_name: str, *args: Any, **kwargs: Any) -> None:
        _Patched.change(resource_name, kwargs)
        super().__init__(resource_name, *args, **kwargs)


@pytest.fixture
def patched_containers(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[_Patched]]:
    monkeypatch.setattr(pulumi_docker, "Container", _Patched)
    yield _Patched
    _Patched.change = None


def test_a_component_that_drops_read_only_is_caught(patched_containers: type[_Patched]) -> None:
    def drop_read_only(name: str, kwargs: dict[str, Any]) -> None:
        if name == "platform-order-container":
            kwargs.pop("read_only", None)

    patched_containers.change = drop_read_only
    graph = run_program("prod")  # the stack file still says readOnlyRoot: true
    assert rules_broken(graph) == {"read-only-root": {"platform-order-container"}}


def _leak_into_command(seed_suffix: str, container: str, flag: str) -> Any:
    """A component that also passes its own password on the command line."""
    seen: dict[str, pulumi.Input[str]] = {}

    def change(name: str, kwargs: dict[str, Any]) -> None:
        if name.endswith(seed_suffix):
            by_file = {u.file: u.content for u in kwargs["uploads"]}
            seen["password"] = next(c for f, c in by_file.items() if f.endswith("password"))
        if name == container:
            kwargs["command"] = [
                *kwargs["command"],
                flag,
                pulumi.Output.concat("x=", seen["password"]),
            ]

    return change


@pytest.mark.parametrize(
    ("seed", "container", "flag"),
    [
        ("redis-secrets-seed", "platform-redis-container", "--requirepass"),
        ("order-db-secrets-seed", "platform-order-db-container", "-c"),
    ],
    ids=["redis-password-in-argv", "database-password-in-options"],
)
def test_a_secret_on_a_command_line_is_caught(
    patched_containers: type[_Patched], seed: str, container: str, flag: str
) -> None:
    patched_containers.change = _leak_into_command(seed, container, flag)
    graph = run_program("prod")
    (leak,) = check(subjects(graph), [r for r in RULES if r.name == "secrets-only-in-files"])
    assert leak.name == container and "input 'command." in leak.message
    # The unit test of secrets catches it too (it once skipped exactly the keys a leak marks).
    assert secrets_outside_files(graph) != []
    # And the pack, which sees plain values only, finds it by value.
    plain = [Subject(r.type, r.name, r.urn, r.inputs, r.protect) for r in graph.resources]
    assert [v.name for v in secret_values_leaked(plain)] == [container]


# ----------------------------------------------------------------------------------------------
# The pack's policies


def _opts(resource: Resource) -> PolicyResourceOptions:
    return PolicyResourceOptions(resource.protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def _args(resource: Resource) -> ResourceValidationArgs:
    return ResourceValidationArgs(
        resource.type, resource.inputs, resource.urn, resource.name, _opts(resource), None
    )


def pack_violations(graph: Graph) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for policy in policies():
        if not isinstance(policy, ResourceValidationPolicy):
            continue

        def report(message: str, urn: str | None = None, name: str = policy.name) -> None:
            found.append((name, str(urn)))

        for resource in graph.resources:
            assert callable(policy.validate)
            policy.validate(_args(resource), report)
    return found


def test_the_pack_reports_what_the_rules_find(dev_graph: Graph, prod_graph: Graph) -> None:
    assert pack_violations(prod_graph) == []
    expected = {(v.rule, v.urn) for v in check(subjects(dev_graph))}
    assert set(pack_violations(dev_graph)) == expected
    assert {p.name for p in policies()} == {r.name for r in RULES} | {r.name for r in STACK_RULES}


def test_the_packs_secret_policy_runs_on_the_whole_stack(
    patched_containers: type[_Patched],
) -> None:
    patched_containers.change = _leak_into_command(
        "redis-secrets-seed", "platform-redis-container", "--requirepass"
    )
    graph = run_program("prod")

    stack = StackValidationArgs(
        [
            PolicyResource(r.type, r.inputs, r.urn, r.name, _opts(r), None, None, [], {})
            for r in graph.resources
        ]
    )
    reported: list[str] = []

    def report(message: str, urn: str | None = None) -> None:
        reported.append(str(urn))

    validate_secrets(stack, report)
    assert reported == [graph.container("shop-redis").urn]


# ----------------------------------------------------------------------------------------------
# Each rule fires on what it forbids, and on nothing else


def _order_container(graph: Graph) -> Subject:
    (subject,) = [s for s in subjects(graph) if s.name == "platform-order-container"]
    return subject


def _edited(subject: Subject, **inputs: Any) -> Subject:
    return replace(subject, inputs={**subject.inputs, **inputs})


SOCKET = {"hostPath": "/var/run/docker.sock", "containerPath": "/var/run/docker.sock"}

BREAKS: list[tuple[str, dict[str, Any]]] = [
    ("read-only-root", {"readOnly": False}),
    ("drop-all-capabilities", {"capabilities": {"drops": ["NET_RAW"]}}),
    ("drop-all-capabilities", {"capabilities": {"drops": ["ALL"], "adds": ["NET_ADMIN"]}}),
    ("no-new-privileges", {"securityOpts": []}),
    ("memory-limit", {"memory": 0}),
    ("restart-policy", {"restart": "no"}),
    ("rotated-logs", {"logOpts": {"max-size": "10m"}}),
    ("rotated-logs", {"logDriver": "syslog"}),
    ("pinned-image", {"image": "registry.example.com/ecommerce/order-service:latest"}),
    ("pinned-image", {"image": "registry.example.com:5000/ecommerce/order-service"}),
    ("no-privileged", {"privileged": True}),
    ("no-host-network", {"networkMode": "host"}),
    ("no-docker-socket", {"volumes": [SOCKET]}),
    ("only-edge-published", {"ports": [{"internal": 3000, "external": 13003, "ip": "127.0.0.1"}]}),
    ("database-networks-closed", {"networksAdvanced": [{"name": "shop-customer-db"}]}),
]


@pytest.mark.parametrize(
    ("rule", "inputs"), BREAKS, ids=[f"{r}-{i}" for i, (r, _) in enumerate(BREAKS)]
)
def test_each_rule_catches_what_it_forbids(
    prod_graph: Graph, rule: str, inputs: dict[str, Any]
) -> None:
    broken = _edited(_order_container(prod_graph), **inputs)
    assert {v.rule for v in check([broken], stack_rules=())} == {rule}


def test_a_pinned_digest_or_version_passes(prod_graph: Graph) -> None:
    order = _order_container(prod_graph)
    for image in ("shop/api@sha256:" + "a" * 64, "registry.example.com:5000/shop/api:2.1"):
        assert check([_edited(order, image=image)], stack_rules=()) == []


def test_an_unprotected_data_volume_and_a_secret_in_envs_are_caught(prod_graph: Graph) -> None:
    (volume,) = [s for s in subjects(prod_graph) if s.name == "platform-order-db-data"]
    assert {v.rule for v in check([replace(volume, protect=False)])} == {"data-volumes-protected"}
    leaky = replace(_order_container(prod_graph), secret_paths=frozenset({"envs.3"}))
    assert {v.rule for v in check([leaky], stack_rules=())} == {"secrets-only-in-files"}


def test_a_container_without_a_pids_limit_is_caught_in_the_plan_and_the_pack(
    prod_graph: Graph,
) -> None:
    everything = subjects(prod_graph)
    without = [s for s in everything if s.name != "platform-order-pids"]
    (missing,) = check(without)
    assert (missing.rule, missing.name) == ("pids-limit", "platform-order-container")
    zero = [_edited(s, pidsLimit=0) if s.name == "platform-cart-pids" else s for s in everything]
    assert [v.name for v in check(zero)] == ["platform-cart-container"]
    # The pack's stack policy reports the same container.
    (pack_rule,) = [p for p in policies() if p.name == "pids-limit"]
    assert isinstance(pack_rule, StackValidationPolicy)
    reported: list[str] = []
    stack = StackValidationArgs(
        [
            PolicyResource(
                s.type, s.inputs, s.urn, s.name, _opts(prod_graph.by_urn(s.urn)), None, None, [], {}
            )
            for s in without
        ]
    )

    def report(message: str, urn: str | None = None) -> None:
        reported.append(str(urn))

    assert callable(pack_rule.validate)
    pack_rule.validate(stack, report)
    assert reported == [prod_graph.container("shop-order").urn]


# ----------------------------------------------------------------------------------------------
# The same rules on a swarm: a service's task spec says the same things in other names.


@pytest.fixture(scope="module")
def swarm_graph() -> Graph:
    return run_program("swarm")


def _order_service(graph: Graph) -> Subject:
    (subject,) = [s for s in subjects(graph) if s.name == "platform-order-service"]
    return subject


def _with_task(subject: Subject, **container_spec: Any) -> Subject:
    task = dict(subject.inputs["taskSpec"])
    task["containerSpec"] = {**task["containerSpec"], **container_spec}
    return _edited(subject, taskSpec=task)


def test_the_swarm_stack_passes_every_rule(swarm_graph: Graph) -> None:
    assert rules_broken(swarm_graph) == {}
    assert pack_violations(swarm_graph) == []


SERVICE_BREAKS: list[tuple[str, Any]] = [
    ("read-only-root", lambda s: _with_task(s, readOnly=False)),
    ("drop-all-capabilities", lambda s: _with_task(s, capDrops=[])),
    ("drop-all-capabilities", lambda s: _with_task(s, capAdds=["NET_ADMIN"])),
    ("pinned-image", lambda s: _with_task(s, image="registry.example.com/order:latest")),
    (
        "no-docker-socket",
        lambda s: _with_task(
            s,
            mounts=[
                {"type": "bind", "source": "/var/run/docker.sock", "target": "/var/run/docker.sock"}
            ],
        ),
    ),
    (
        "only-edge-published",
        lambda s: _edited(
            s, endpointSpec={"mode": "vip", "ports": [{"targetPort": 3003, "publishedPort": 3003}]}
        ),
    ),
    ("memory-limit", lambda s: _edited(s, taskSpec={**s.inputs["taskSpec"], "resources": {}})),
    (
        "restart-policy",
        lambda s: _edited(
            s, taskSpec={**s.inputs["taskSpec"], "restartPolicy": {"condition": "none"}}
        ),
    ),
    (
        "rotated-logs",
        lambda s: _edited(s, taskSpec={**s.inputs["taskSpec"], "logDriver": {"name": "json-file"}}),
    ),
]


@pytest.mark.parametrize(
    ("rule", "breaking"),
    SERVICE_BREAKS,
    ids=[f"{r}-{i}" for i, (r, _) in enumerate(SERVICE_BREAKS)],
)
def test_each_rule_catches_a_service_that_breaks_it(
    swarm_graph: Graph, rule: str, breaking: Any
) -> None:
    assert check([_order_service(swarm_graph)], stack_rules=()) == []
    assert {v.rule for v in check([breaking(_order_service(swarm_graph))], stack_rules=())} == {
        rule
    }


def test_a_swarm_secret_value_in_a_service_env_is_caught_by_the_pack(swarm_graph: Graph) -> None:
    everything = subjects(swarm_graph)
    order = _order_service(swarm_graph)
    password = swarm_graph.outputs["databases"]["order"]["password"]
    leaky = _with_task(
        order,
        env={**order.inputs["taskSpec"]["containerSpec"]["env"], "DATABASE_PASSWORD": password},
    )
    found = secret_values_leaked([leaky if s.name == order.name else s for s in everything])
    assert [(v.rule, v.name) for v in found] == [("secrets-only-in-files", order.name)]


# ----------------------------------------------------------------------------------------------
# What the engine hands the pack: values a preview cannot know, and outputs at `up`


def test_unknown_values_are_judged_at_up_not_refused(prod_graph: Graph) -> None:
    # The policy SDK raises on reading a value a preview cannot know; the pack reads around
    # it, and each rule judges only what it sees.
    from pulumi_policy.proxy import unknown_checking_proxy

    from policies.pack import plain
    from policies.rules import UNKNOWN

    unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # the engine's unknown string
    inputs = {
        "name": "x",
        "readOnly": unknown,
        "securityOpts": unknown,
        "capabilities": {"drops": [unknown]},
        "memory": unknown,
        "restart": unknown,
        "logDriver": unknown,
        "image": unknown,
        "ports": unknown,
        "labels": unknown,
        "uploads": [{"file": "/run/secrets/p", "content": unknown}],
    }
    seen = plain(unknown_checking_proxy(inputs))
    assert seen["readOnly"] is UNKNOWN and seen["capabilities"] == {"drops": [UNKNOWN]}
    order = _order_container(prod_graph)
    subject = replace(order, inputs=seen)
    assert check([subject], stack_rules=()) == []
    assert secret_values_leaked([subject]) == []
    # What is known is still judged: a known writable root next to unknowns is caught.
    writable = replace(order, inputs={**seen, "readOnly": False})
    assert [v.rule for v in check([writable], stack_rules=())] == ["read-only-root"]


def test_a_secret_belongs_in_its_generator_and_the_stacks_secret_outputs(
    prod_graph: Graph,
) -> None:
    # At `up` the engine hands a stack policy every resource's outputs: a password's generator
    # holds it, and so do the stack's outputs for the backup tool and the operators.
    password = _seed_secret(prod_graph, "platform-customer-db-secrets-seed")
    everything = [Subject(r.type, r.name, r.urn, r.inputs, r.protect) for r in prod_graph.resources]
    generator = Subject(
        "random:index/randomPassword:RandomPassword",
        "pw",
        "urn:pw",
        {"length": 32, "result": password},
    )
    stack = Subject(
        "pulumi:pulumi:Stack",
        "ecommerce-prod",
        "urn:stack",
        {
            "databases": {"customer": {"password": password}},
            "pitrPassphrases": {"customer": password},
        },
    )
    dynamic = Subject(
        "pulumi:providers:pulumi-python",
        "default",
        "urn:dyn",
        {"ecommerce:customerDbPassword": password},
    )
    assert secret_values_leaked([*everything, generator, stack, dynamic]) == []
    # Anywhere else among the outputs, it is a leak.
    exported = Subject(
        "pulumi:pulumi:Stack", "ecommerce-prod", "urn:stack", {"debug": {"password": password}}
    )
    assert [v.message for v in secret_values_leaked([*everything, exported])] == [
        "input 'debug.password' holds a secret; secrets may reach a container only as files"
    ]


def _seed_secret(graph: Graph, seed: str) -> str:
    (resource,) = [r for r in graph.resources if r.name == seed]
    contents = [u["content"] for u in resource.inputs["uploads"]]
    return str(next(c for c in contents if "\n" not in c.strip()))


def test_a_monitoring_part_on_a_database_network_is_caught(prod_graph: Graph) -> None:
    # Prometheus reaches exporters, never a database; another database's exporter neither.
    everything = {s.name: s for s in subjects(prod_graph)}
    prometheus = everything["platform-monitoring-prometheus-container"]
    exporter = everything["platform-monitoring-order-db-exporter-container"]
    onto = [{"name": "shop-order-db"}, {"name": "shop-monitoring"}]
    caught = check(
        [
            _edited(prometheus, networksAdvanced=onto),
            _edited(exporter, networksAdvanced=[{"name": "shop-customer-db"}]),
        ],
        stack_rules=(),
    )
    assert [(v.rule, v.name) for v in caught] == [
        ("database-networks-closed", "platform-monitoring-prometheus-container"),
        ("database-networks-closed", "platform-monitoring-order-db-exporter-container"),
    ]
    assert "as prometheus prometheus" in caught[0].message
