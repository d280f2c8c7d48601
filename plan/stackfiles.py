"""A stack file's config as the CLI would hand it to the program, without any passphrase.

A `secure:` value is ciphertext only the stack's passphrase opens, and the offline plan has
none. It does not need the plain text: each distinct ciphertext becomes a placeholder, the same
one at both revisions, so a secret left alone compares equal and a secret set or changed
differs. The program sees the key as a secret, as under the CLI, so whatever the placeholder
reaches is recorded as secret and shown only as "secret changed". Re-encrypting the same value
(`pulumi config set --secret` again) gives a new ciphertext: the plan shows it as changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

STACK_FILE_GLOB = "Pulumi.*.yaml"


class PlanError(Exception):
    """What stops a plan, said in one message that names the revision and what to fix."""


@dataclass(frozen=True)
class StackFile:
    stack: str
    config: dict[str, Any]
    """The `config:` block, every `secure:` value replaced by its placeholder."""
    secret_keys: list[str]
    """Keys that held a `secure:` value (anywhere inside them, as the CLI marks them)."""


@dataclass
class SecretPlaceholders:
    """One placeholder per distinct ciphertext, shared by both revisions of one plan."""

    by_ciphertext: dict[str, str] = field(default_factory=dict)

    def placeholder(self, ciphertext: str) -> str:
        if ciphertext not in self.by_ciphertext:
            number = len(self.by_ciphertext) + 1
            self.by_ciphertext[ciphertext] = f"offline-plan-secret-{number:04d}"
        return self.by_ciphertext[ciphertext]


def stack_names(root: Path) -> list[str]:
    """The stacks that have a file in `root`: `Pulumi.<stack>.yaml`."""
    return sorted(
        p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in root.glob(STACK_FILE_GLOB)
    )


def read_stack_file(
    root: Path, stack: str, revision: str, placeholders: SecretPlaceholders
) -> StackFile | None:
    """The stack's config at `root`, or None when that revision has no file for it.

    `revision` names the checkout in errors ("base origin/main", "head").
    """
    path = root / f"Pulumi.{stack}.yaml"
    if not path.exists():
        return None
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise PlanError(f"{revision}: {path.name}{where} is not valid YAML") from None
    if document is None:
        document = {}
    if not isinstance(document, dict) or not isinstance(document.get("config", {}), dict):
        raise PlanError(f"{revision}: {path.name} must be a mapping with a `config:` mapping")
    config: dict[str, Any] = {}
    secret_keys: list[str] = []
    for key, value in (document.get("config") or {}).items():
        found: list[bool] = []
        config[str(key)] = _without_ciphertext(value, placeholders, found)
        if found:
            secret_keys.append(str(key))
    return StackFile(stack, config, secret_keys)


def _without_ciphertext(value: Any, placeholders: SecretPlaceholders, found: list[bool]) -> Any:
    if isinstance(value, dict):
        if set(value) == {"secure"} and isinstance(value["secure"], str):
            found.append(True)
            return placeholders.placeholder(value["secure"])
        return {k: _without_ciphertext(v, placeholders, found) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_ciphertext(v, placeholders, found) for v in value]
    return value
