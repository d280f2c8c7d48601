"""The rules no single settings object can judge alone: those across domains (`across`,
`swarm`, `off_host`) and the production profile's (`production`), run on the whole stack once
every object has passed its own; and those between the settings and the stack's other config keys
(`other_config`), on what the loader read beside them.

Every message names the key it is about, as the stack file spells it. The models
(`stacks/settings/*.py`) never import this package: it builds on them.
"""

from __future__ import annotations

from stacks.catalogue import Catalogue
from stacks.settings.common import reject_if_any
from stacks.settings.platform import PlatformSettings
from stacks.settings.rules import across
from stacks.settings.rules.off_host import off_host_problems
from stacks.settings.rules.other_config import OtherConfig, other_config_problems
from stacks.settings.rules.production import PROD_REFUSES, digest_problems, production_problems
from stacks.settings.rules.swarm import pinned_workloads, swarm_problems

__all__ = [
    "PROD_REFUSES",
    "OtherConfig",
    "other_config_problems",
    "pinned_workloads",
    "production_problems",
    "stack_problems",
    "validate_settings",
]


def validate_settings(raw_json: str, catalogue: Catalogue) -> PlatformSettings:
    """`ecommerce:platform` from its JSON text, judged: every settings object by its own rules
    as pydantic validates it, then the whole by the rules across domains. Raises pydantic's
    `ValidationError`, one error per problem at its key."""
    settings = PlatformSettings.model_validate_json(raw_json, context={"catalogue": catalogue})
    # Each problem line starts with its key: that is where the error goes.
    reject_if_any([_at_its_key(problem) for problem in stack_problems(settings, catalogue)])
    return settings


def stack_problems(s: PlatformSettings, catalogue: Catalogue) -> list[str]:
    """Every rule across domains the stack breaks, and the production profile's in prod."""
    problems = across.app_graces_within_the_wait(s)
    problems += across.postgres_process_room(s, catalogue)
    problems += across.archiving_overridden(s, catalogue)
    problems += across.acme_unreachable(s)
    problems += across.edge_grace_within_the_wait(s)
    problems += across.monitoring_hosts_taken(s)
    problems += swarm_problems(s, catalogue)
    problems += off_host_problems(s, catalogue)
    problems += across.duplicate_host_ports(s)
    problems += across.unpublishable_ports(s, catalogue)
    problems += across.registry_unused(s)
    problems += digest_problems(s)
    if s.profile == "prod":
        problems += production_problems(s, catalogue)
    return problems


def _at_its_key(problem: str) -> tuple[str, str]:
    key, _, text = problem.partition(": ")
    return key, text
