"""One stack's plan with its policy results: what the Markdown and the JSON are made from."""

from __future__ import annotations

import json
from dataclasses import dataclass

from plan.compare import StackPlan
from plan.recorder import Graph
from policies.rules import Enforcement, Subject, Violation, check, enforcement_for


@dataclass(frozen=True)
class Finding:
    violation: Violation
    enforcement: Enforcement
    new: bool
    """Not a violation at the base revision: this change brings it."""


@dataclass
class StackReport:
    plan: StackPlan
    findings: list[Finding]
    enforcement: Enforcement
    note: str = ""
    """Said above the plan: a stack file that is new, or gone."""

    def blocking(self) -> list[Finding]:
        return [f for f in self.findings if f.enforcement == "mandatory"]


def subjects(graph: Graph) -> list[Subject]:
    return [
        Subject(r.type, r.name, r.urn, r.inputs, r.protect, frozenset(r.secret_paths))
        for r in graph.resources
    ]


def policy_findings(base: Graph | None, head: Graph | None, profile: str | None) -> list[Finding]:
    """The rules on the head's resources; the ones the base already broke are not new."""
    if head is None:
        return []
    enforcement = enforcement_for(profile)
    before = {(v.rule, v.urn) for v in check(subjects(base))} if base is not None else set()
    return [Finding(v, enforcement, (v.rule, v.urn) not in before) for v in check(subjects(head))]


def profile_of(config: dict[str, object] | None) -> str | None:
    """The stack's profile (dev, prod) as its file says (the settings as a YAML object, or as
    the JSON text `pulumi config set` stores); None when it cannot be read."""
    platform = (config or {}).get("ecommerce:platform")
    if isinstance(platform, str):
        try:
            platform = json.loads(platform)
        except ValueError:
            return None
    profile = platform.get("profile") if isinstance(platform, dict) else None
    return str(profile) if profile is not None else None
