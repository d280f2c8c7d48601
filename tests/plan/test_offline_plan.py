"""The offline plan on real git history: a temporary repository made from this working tree,
one throwaway commit per scenario, and `python -m plan` run in it as CI runs it.

Each scenario is one change a pull request could bring, and what the reviewer must be told.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from plan.recorder import ROOT

PLATFORM = "ecommerce:platform"
CIPHERTEXT = "v1:Zm9yLXRlc3RzLW9ubHk=:bm90LWEtcmVhbC1jaXBoZXJ0ZXh0LWp3dA=="
"""What `pulumi config set --secret` leaves in a stack file (the plan cannot, and need not,
decrypt it)."""


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str

    def json(self) -> dict[str, Any]:
        report: dict[str, Any] = json.loads(self.stdout)
        return report

    def stack(self, name: str = "prod") -> dict[str, Any]:
        found: dict[str, Any] = self.json()["stacks"][name]
        return found

    def changes(self, name: str = "prod") -> dict[str, dict[str, Any]]:
        return {c["name"]: c for c in self.stack(name)["changes"]}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This working tree (tracked and new files, nothing ignored) as a fresh repository."""
    repo = tmp_path_factory.mktemp("plan-repo")
    listed = git(ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repo / name)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(
        repo,
        "-c",
        "user.name=tests",
        "-c",
        "user.email=tests@localhost",
        "commit",
        "-q",
        "-m",
        "base",
    )
    git(repo, "tag", "base")
    return repo


@pytest.fixture
def change(repo: Path) -> Iterator[Callable[..., Outcome]]:
    """Commit an edit on a throwaway branch from `base`, then plan it against `base`."""

    def run(
        edit: Callable[[Path], None], *, fmt: str = "json", stack: str = "prod", base: str = "base"
    ) -> Outcome:
        edit(repo)
        git(repo, "add", "-A")
        git(
            repo,
            "-c",
            "user.name=tests",
            "-c",
            "user.email=tests@localhost",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "scenario",
        )
        result = subprocess.run(
            [sys.executable, "-m", "plan", "--base", base, "--stack", stack, "--format", fmt],
            cwd=repo,
            capture_output=True,
            text=True,
            check=False,
        )
        return Outcome(result.returncode, result.stdout, result.stderr)

    git(repo, "checkout", "-q", "-B", "scenario", "base")
    yield run
    git(repo, "checkout", "-q", "--force", "main")
    git(repo, "clean", "-q", "-fdx")


def edit_stack(stack: str, edit: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    def apply(repo: Path) -> None:
        path = repo / f"Pulumi.{stack}.yaml"
        document = yaml.safe_load(path.read_text())
        edit(document["config"])
        path.write_text(yaml.safe_dump(document, sort_keys=False))

    return apply


def edit_platform(edit: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    return edit_stack("prod", lambda config: edit(config[PLATFORM]))


def replace_text(path: str, old: str, new: str) -> Callable[[Path], None]:
    def apply(repo: Path) -> None:
        text = (repo / path).read_text()
        assert old in text
        (repo / path).write_text(text.replace(old, new))

    return apply


# ----------------------------------------------------------------------------------------------


def test_an_image_bump_replaces_one_container(change: Callable[..., Outcome]) -> None:
    def bump(platform: dict[str, Any]) -> None:
        platform["services"]["order"]["image"] = (
            "registry.example.com/ecommerce/order-service:1.0.1"
        )

    outcome = change(edit_platform(bump))
    assert outcome.code == 2, outcome.stderr
    stack = outcome.stack()
    # One container, replaced side by side: a new generation gives it a new name, and the new
    # container its PIDs limit.
    assert stack["summary"] == {"create": 0, "update": 0, "replace": 4, "delete": 0, "same": 290}
    generation, order, pids, gate = stack["changes"]
    # A new container is a new traffic gate: it gets the service's alias once healthy.
    assert (gate["name"], gate["replace_reasons"]) == ("platform-order-traffic", ["containerId"])
    assert (pids["name"], pids["replace_reasons"]) == ("platform-order-pids", ["containerId"])
    assert (generation["name"], generation["action"]) == ("platform-order-generation", "replace")
    assert (order["name"], order["action"], order["replace_reasons"]) == (
        "platform-order-container",
        "replace",
        ["image", "name"],
    )
    assert order["delete_before_replace"] is False
    assert {
        "path": "image",
        "old": "registry.example.com/ecommerce/order-service:1.0.0",
        "new": "registry.example.com/ecommerce/order-service:1.0.1",
    } in order["values"]
    # Replaced side by side: reported, but not as a restart.
    assert [w["kind"] for w in stack["warnings"]] == ["rolled"]
    assert stack["warnings"][0]["message"].endswith(": shop-order")
    assert stack["policy"] == []


def test_a_memory_change_is_an_update_in_place(change: Callable[..., Outcome]) -> None:
    def more_memory(platform: dict[str, Any]) -> None:
        platform["databases"]["order"]["resources"]["memoryMb"] = 3072

    outcome = change(edit_platform(more_memory))
    assert outcome.code == 2, outcome.stderr
    (database,) = outcome.stack()["changes"]
    assert (database["name"], database["action"]) == ("platform-order-db-container", "update")
    assert database["paths"] == ["memory", "memorySwap"]
    assert outcome.stack()["warnings"] == []


def test_an_extra_environment_variable_replaces_the_container(
    change: Callable[..., Outcome],
) -> None:
    def log_level(platform: dict[str, Any]) -> None:
        platform["services"]["cart"]["env"] = {"LOG_LEVEL": "debug"}

    outcome = change(edit_platform(log_level))
    cart = outcome.changes()["platform-cart-container"]
    assert (cart["action"], cart["replace_reasons"]) == ("replace", ["envs", "name"])
    envs = next(v for v in cart["values"] if v["path"] == "envs")
    assert "LOG_LEVEL=debug" in envs["new"] and "LOG_LEVEL=debug" not in envs["old"]
    assert set(outcome.changes()) == {
        "platform-cart-container",
        "platform-cart-generation",
        "platform-cart-pids",
        "platform-cart-traffic",
    }


def test_a_new_name_prefix_loses_the_data_and_hits_protected_volumes(
    change: Callable[..., Outcome],
) -> None:
    outcome = change(edit_platform(lambda platform: platform.update(namePrefix="store")))
    assert outcome.code == 2, outcome.stderr
    stack = outcome.stack()
    warnings = stack["warnings"]
    data_loss = [w["message"] for w in warnings if w["kind"] == "data-loss"]
    assert "volume shop-order-db-data is replaced by an empty one: its data is lost" in data_loss
    assert not any("secrets" in m for m in data_loss)  # secret volumes are written again
    protected = [w["message"] for w in warnings if w["kind"] == "protected"]
    # 4 databases and their PITR repositories, the off-host one, Redis, backups, certificates;
    # not the scratch volumes (a socket directory, the drills' copies).
    assert len(protected) == len(data_loss) == 15  # with Prometheus's, Alertmanager's, Grafana's
    assert not any("-socket" in m or "-drill" in m for m in data_loss)
    markdown = change(lambda repo: None, fmt="markdown").stdout
    assert markdown.index("[!CAUTION]") < markdown.index("| create |")  # the banner first


def test_a_secret_override_replaces_its_consumers_and_shows_no_secret(
    change: Callable[..., Outcome],
) -> None:
    def set_jwt_secret(config: dict[str, Any]) -> None:
        config["ecommerce:jwtSecret"] = {"secure": CIPHERTEXT}

    outcome = change(edit_stack("prod", set_jwt_secret))
    assert outcome.code == 2, outcome.stderr
    changes = outcome.changes()
    assert changes["platform-jwt-secret"]["action"] == "delete"  # no longer generated
    gateway = changes["platform-gateway-container"]
    # Side by side: a new generation, so a new name too.
    assert gateway["action"] == "replace" and gateway["replace_reasons"] == ["labels", "name"]
    assert gateway["secret_changed"]  # through its secrets revision
    seed = changes["platform-gateway-secrets-seed"]
    assert seed["secret_changed"] and seed["action"] == "replace"
    assert {"path": "uploads", "old": "[secret]", "new": "[secret]"} in seed["values"]
    markdown = change(lambda repo: None, fmt="markdown").stdout
    assert "secret changed" in markdown
    for text in (outcome.stdout, outcome.stderr, markdown):
        assert CIPHERTEXT not in text and "offline-plan-secret" not in text
        assert "generated-" not in text  # the mocks' stand-ins for generated secrets
    # The same ciphertext at both revisions: nothing changes.
    assert change(lambda repo: None, base="HEAD~1").code == 0


def test_no_change_exits_zero(change: Callable[..., Outcome]) -> None:
    outcome = change(lambda repo: None)
    assert outcome.code == 0, outcome.stderr
    assert outcome.stack()["changes"] == []
    assert outcome.stack()["summary"]["same"] == 294


def test_a_bad_stack_file_at_head_is_an_error_naming_revision_and_key(
    change: Callable[..., Outcome],
) -> None:
    def typo(platform: dict[str, Any]) -> None:
        platform["redis"]["maxMemoryMB"] = 256

    outcome = change(edit_platform(typo))
    assert (outcome.code, outcome.stdout) == (1, "")
    assert outcome.stderr.startswith("error: head: stack prod: Pulumi.prod.yaml has 1 problem")
    assert "ecommerce:platform.redis.maxMemoryMB: unknown key" in outcome.stderr


def test_a_component_that_breaks_the_hardening_fails_the_plan(
    change: Callable[..., Outcome],
) -> None:
    writable = replace_text(
        "components/engine/containers.py",
        '{"read_only": hardening.read_only_root}',
        '{"read_only": False}',
    )
    outcome = change(writable)
    assert outcome.code == 1
    assert "mandatory policies are violated (prod: read-only-root (" in outcome.stderr
    policy = outcome.stack()["policy"]
    assert {p["rule"] for p in policy} == {"read-only-root"}
    assert all(p["enforcement"] == "mandatory" and p["new"] for p in policy)
    # The plan is still shown: the running containers are replaced with a writable root.
    assert outcome.stack()["summary"]["replace"] > 0


def test_every_stack_is_planned_when_none_is_named(repo: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "plan", "--base", "base", "--format", "json"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert set(json.loads(result.stdout)["stacks"]) == {"dev", "prod", "swarm"}


def test_a_change_of_outputs_only_is_a_change(change: Callable[..., Outcome]) -> None:
    # publicHost only feeds outputs: the URLs of dev's published ports and where an operator's
    # machine reaches the databases.
    def public_host(config: dict[str, Any]) -> None:
        config[PLATFORM]["publicHost"] = "127.0.0.1"

    outcome = change(edit_stack("dev", public_host), stack="dev")
    assert outcome.code == 2, outcome.stderr
    stack = outcome.stack("dev")
    # And the monitoring UIs' URLs (dev's Grafana and Prometheus answer on publicHost).
    assert stack["outputs"] == ["databases", "monitoring", "urls"] and stack["changes"] == []
