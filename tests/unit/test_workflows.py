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
WORKFLOWS = sorted(
    p for p in (ROOT / ".github" / "workflows").iterdir() if p.suffix in (".yml", ".yaml")
)
PREVIEW_STEP = ("jobs", "preview", "steps", "pulumi preview")
"""Where the stacks' secrets may be read: the env of the step that runs `make preview`."""
SECRET = re.compile(r"\bsecrets\b(\s*\.\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*))?", re.IGNORECASE)
"""Any use of the `secrets` context (GitHub reads context names in any case): by a literal name,
or whole (`secrets[...]`, `toJSON(secrets)`, `secrets: inherit`), which sends every secret."""
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
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
    """(where, secret name or "[all]") of every use of the `secrets` context in the workflow:
    in expressions, and as a key (`secrets: inherit` passes them all on)."""
    found = []
    for where, text in strings(workflow):
        if text.lower() == "secrets":  # a key: `secrets: inherit`, or secrets passed on by name
            found.append((where, "[all]"))
            continue
        for expression in EXPRESSION.findall(text):
            found += [(where, m["name"] or "[all]") for m in SECRET.finditer(expression)]
    return found


def test_there_are_workflows_to_check() -> None:
    assert [p.name for p in WORKFLOWS] == ["pull-request.yml"]


def test_the_secret_reads_are_found_however_they_are_spelled() -> None:
    def reads(text: str) -> list[str]:
        return [name for _, name in secret_reads({"env": {"X": text}})]

    assert reads("${{ secrets.DOCKER_HOST }}") == ["DOCKER_HOST"]
    assert reads("${{ SECRETS.DOCKER_HOST }}") == ["DOCKER_HOST"]
    assert reads("${{ secrets['DOCKER_HOST'] }}") == ["[all]"]
    assert reads("${{ toJSON(secrets) }}") == ["[all]"]
    assert reads("${{ format('{0}', Secrets) }}") == ["[all]"]
    assert [name for _, name in secret_reads({"jobs": {"x": {"secrets": "inherit"}}})] == ["[all]"]
    assert reads("the preview's secrets are in its environment") == []


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_only_the_preview_step_reads_a_secret_and_by_its_literal_name(path: Path) -> None:
    reads = secret_reads(load(path))
    outside = [(".".join(where), name) for where, name in reads if where[:4] != PREVIEW_STEP]
    assert outside == [], f"secrets read outside the step '{PREVIEW_STEP[-1]}': {outside}"
    # A computed name (`secrets[...]`) or the whole context makes GitHub send every secret.
    whole = [".".join(where) for where, name in reads if name == "[all]"]
    assert whole == [], f"secrets used whole or by a computed name: {whole}"
    # And there, only as the step's environment variables (never in its command line).
    assert {where[4] for where, _ in reads} <= {"env"}, reads


def test_the_preview_reads_the_stack_credentials_through_the_stack_environment() -> None:
    workflow = load(ROOT / ".github" / "workflows" / "pull-request.yml")
    preview = workflow["jobs"]["preview"]
    # One step of that name: the place the other checks allow the secrets in.
    names = [step.get("name") for step in preview["steps"]]
    assert names.count(PREVIEW_STEP[-1]) == 1, names
    # Dependabot's runs get no secret: its pull requests are not previewed.
    assert "github.actor != 'dependabot[bot]'" in preview["if"]
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
