"""The offline plan's comparison of two recorded graphs, where the engine or the provider
decide something the per-input table does not say: a provider moving, a build context."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from plan.compare import compare
from plan.recorder import Graph, _ignored, context_digest, run_program
from tests.unit.conftest import edited


def test_moving_to_the_default_provider_replaces_every_docker_resource(prod_graph: Graph) -> None:
    without_registry = run_program("prod", edited("prod", lambda p: p.pop("registry")))
    plan = compare("prod", prod_graph, without_registry)
    docker = {c.name: c for c in plan.changes if c.type.startswith("docker:")}
    # The off-host repository's host keeps a provider of its own (no default reaches it).
    elsewhere = {n: c for n, c in docker.items() if n.startswith("platform-pitr-repository-")}
    assert elsewhere and all(c.action == "same" for c in elsewhere.values())
    docker = {n: c for n, c in docker.items() if n not in elsewhere}
    assert docker and all(c.action == "replace" for c in docker.values())
    assert {c.replace_reasons for c in docker.values()} == {("provider",)}
    kinds = {w.kind for w in plan.warnings}
    assert {"data-loss", "protected", "restart"} <= kinds
    # Generated secrets stay (they come from no Docker resource).
    passwords = [c for c in plan.changes if c.type == "random:index/randomPassword:RandomPassword"]
    assert passwords and all(c.action == "same" for c in passwords)


@pytest.mark.parametrize(
    ("name", "ignored"),
    [
        ("node_modules/a/b.js", True),
        ("debug.log", True),
        ("keep.log", False),
        ("src/deep/secret.txt", True),
        ("secret.txt", True),
        ("dist/app.js", True),
        ("src/app.js", False),
    ],
)
def test_ignore_rules_follow_docker(name: str, ignored: bool) -> None:
    patterns = ["node_modules", "*.log", "!keep.log", "**/secret.txt", "/dist/"]
    assert _ignored(name, [p.removeprefix("/") for p in patterns]) is ignored


def test_the_context_digest_changes_with_the_source_only(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "app.js").write_text("v1")
    (tmp_path / ".dockerignore").write_text("*.log\n")
    first = context_digest(tmp_path, None)
    (tmp_path / "debug.log").write_text("noise")
    assert context_digest(tmp_path, None) == first  # ignored: no rebuild
    (tmp_path / "app.js").write_text("v2")
    second = context_digest(tmp_path, None)
    assert second != first
    (tmp_path / "Dockerfile").write_text("FROM scratch\nUSER 1000\n")
    assert context_digest(tmp_path, None) != second
    assert context_digest(tmp_path / "missing", None) == "missing"


def test_a_rolling_app_gets_a_new_generation_only_when_it_is_replaced(prod_graph: Graph) -> None:
    def memory(platform: dict[str, Any]) -> None:
        platform["services"]["order"]["resources"] = {"memoryMb": 1024, "cpus": 1.0}

    def image(platform: dict[str, Any]) -> None:
        platform["services"]["order"]["image"] += "-next"

    in_place = {
        c.name: c
        for c in compare("prod", prod_graph, run_program("prod", edited("prod", memory))).changed()
    }
    assert {n: c.action for n, c in in_place.items()} == {"platform-order-container": "update"}
    replaced = {
        c.name: c
        for c in compare("prod", prod_graph, run_program("prod", edited("prod", image))).changed()
    }
    assert replaced["platform-order-generation"].action == "replace"
    container = replaced["platform-order-container"]
    assert (container.replace_reasons, container.delete_before_replace) == (
        ("image", "name"),
        False,
    )


def test_protected_volumes_block_what_the_engine_blocks(prod_graph: Graph) -> None:
    def kinds(plan_edit: Any) -> dict[str, int]:
        plan = compare("prod", prod_graph, run_program("prod", edited("prod", plan_edit)))
        found: dict[str, int] = {}
        for w in plan.warnings:
            found[w.kind] = found.get(w.kind, 0) + 1
        return found

    # A new prefix replaces the volumes: data loss, and the engine refuses (still protected).
    # Four databases and their PITR repositories, the off-host repository, Redis, the backup
    # job, the edge's certificates, Prometheus's, Alertmanager's and Grafana's data.
    assert kinds(lambda p: p.update(namePrefix="store"))["protected"] == 15
    # The same change that also unprotects them: the engine replaces them; the loss remains.
    unprotected = kinds(lambda p: p.update(namePrefix="store", protectData=False))
    assert "protected" not in unprotected and unprotected["data-loss"] == 15
    # Deleting a volume the state protects is refused whatever the program now says.
    assert kinds(lambda p: p["backup"].update(enabled=False))["protected"] == 1


def test_a_change_reads_the_same_whatever_order_the_program_registered_in(
    prod_graph: Graph,
) -> None:
    # The PIDs limit and the traffic gate both come from the order container's outputs: which
    # registers first depends on which callback runs first (it flipped on a busy machine).
    def image(platform: dict[str, Any]) -> None:
        platform["services"]["order"]["image"] += "-next"

    head = run_program("prod", edited("prod", image))
    registered_otherwise = dataclasses.replace(head, resources=list(reversed(head.resources)))
    names = [c.name for c in compare("prod", prod_graph, head).changed()]
    assert names == [c.name for c in compare("prod", prod_graph, registered_otherwise).changed()]
    # Each after what it is made from; the two made from the container by name.
    assert names == [
        "platform-order-generation",
        "platform-order-container",
        "platform-order-pids",
        "platform-order-traffic",
    ]
