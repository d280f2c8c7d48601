"""The GitHub workflows keep the stacks' credentials in one step, and their actions pinned.

The preview runs a branch's code with a stack's credentials (docs/reviewing.md): whatever else
the workflow runs (actions, `make install`, the lint and tests) must not see them. zizmor
(`make lint-workflows`) audits the workflows too; these checks hold the layout the docs describe.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
PREVIEW_STEP = ("jobs", "preview", "steps", "pulumi preview")
"""Where the stacks' secrets may be read: the env of the step that runs `make preview`."""
SECRET = re.compile(r"\bsecrets\s*(\.\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)|\[)")
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+){2}$")


def load(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text())
    assert isinstance(loaded, dict), path
    return loaded


def strings(node: Any, where: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], str]]:
    """Every string in a workflow (keys and values), with where it is: a step is named by its
    `name`, else its place in the list."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield where, str(key)
            yield from strings(value, (*where, str(key)))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            label = item.get("name", str(index)) if isinstance(item, dict) else str(index)
            yield from strings(item, (*where, str(label)))
    elif isinstance(node, str):
        yield where, node


def secret_reads(workflow: dict[str, Any]) -> list[tuple[tuple[str, ...], str]]:
    """(where, secret name or "[computed]") of every `secrets` expression in the workflow."""
    return [
        (where, match["name"] or "[computed]")
        for where, text in strings(workflow)
        for match in SECRET.finditer(text)
    ]


def test_there_are_workflows_to_check() -> None:
    assert [p.name for p in WORKFLOWS] == ["pull-request.yml"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_only_the_preview_step_reads_a_secret_and_by_its_literal_name(path: Path) -> None:
    reads = secret_reads(load(path))
    outside = [(".".join(where), name) for where, name in reads if where[:4] != PREVIEW_STEP]
    assert outside == [], f"secrets read outside the step '{PREVIEW_STEP[-1]}': {outside}"
    # A computed name (`secrets[...]`) makes GitHub send the runner every secret it has.
    computed = [".".join(where) for where, name in reads if name == "[computed]"]
    assert computed == [], f"secrets looked up by a computed name: {computed}"
    # And there, only as the step's environment variables (never in its command line).
    assert {where[4] for where, _ in reads} <= {"env"}, reads


def test_the_preview_reads_the_stack_credentials_through_the_stack_environment() -> None:
    workflow = load(ROOT / ".github" / "workflows" / "pull-request.yml")
    preview = workflow["jobs"]["preview"]
    assert preview["environment"] == "${{ matrix.stack }}"
    assert preview["strategy"]["matrix"]["stack"] == "${{ fromJSON(vars.PREVIEW_STACKS) }}"
    assert "vars.PREVIEW_STACKS != ''" in preview["if"]
    read = {name for _, name in secret_reads(workflow)}
    assert read == {"PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "DOCKER_HOST"}
    # No job or workflow environment carries anything to every step.
    assert "env" not in workflow and "env" not in preview


def test_the_docs_name_what_the_workflow_reads() -> None:
    workflow = load(ROOT / ".github" / "workflows" / "pull-request.yml")
    setup = (ROOT / "docs" / "reviewing.md").read_text().split("## Setting up the preview")[1]
    for name in {name for _, name in secret_reads(workflow)} | {"PREVIEW_STACKS"}:
        assert f"`{name}`" in setup, name


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_commit_with_its_version_said(path: Path) -> None:
    uses = [
        line.split("uses:", 1)[1].strip()
        for line in path.read_text().splitlines()
        if re.match(r"^\s*(- )?uses:", line)
    ]
    assert uses, path
    loose = [u for u in uses if not u.startswith("./") and not PINNED.match(u)]
    assert loose == [], f"pin these to a full commit hash, with `# vX.Y.Z` after: {loose}"
