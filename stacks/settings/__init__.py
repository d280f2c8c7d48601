"""Typed, frozen settings of one stack: everything that differs between environments.

A stack file holds one object under the key `ecommerce:platform`; `validate_settings` judges it
against the service catalogue. Unknown keys and wrong types are errors (strict models,
`extra="forbid"`); every broken rule is reported by the key that is wrong. Defaults are the
secure choice: a stack relaxes them explicitly (dev does), never by omission.

The rules live in two places. Each domain's module holds its settings and the rules that need
nothing else, run as pydantic validates them (the catalogue, where a rule needs it, comes from
the validation context): `common` (the base model, limits, hardening, logs, health checks,
builds), `services`, `databases` (PostgreSQL, Redis, PITR), `edge`, `swarm`, `backup`,
`monitoring`, `registry`, and `platform` (the top level, made of them). `rules` holds every rule
that needs more than one domain, the production profile's, and those between the settings and
the stack's other config keys (named in `keys`); it builds on the models, which never import it
(tests/unit/stacks/settings/test_settings_imports.py). Every key is listed in
docs/settings.md, generated from these models.
"""

from stacks.settings.backup import BackupSettings
from stacks.settings.common import BuildSettings, Hardening, HealthCheck, Logs, Resources
from stacks.settings.databases import (
    OFF_HOST_HOME,
    DatabaseTuning,
    OffHostSettings,
    PitrSettings,
    RedisSettings,
    database_home,
)
from stacks.settings.edge import EdgeSettings, EdgeTls, edge_apps
from stacks.settings.platform import PlatformSettings
from stacks.settings.registry import RegistrySettings
from stacks.settings.rules import PROD_REFUSES, production_problems, validate_settings
from stacks.settings.services import ServiceSettings
from stacks.settings.swarm import SwarmSettings

__all__ = [
    "OFF_HOST_HOME",
    "PROD_REFUSES",
    "BackupSettings",
    "BuildSettings",
    "DatabaseTuning",
    "EdgeSettings",
    "EdgeTls",
    "Hardening",
    "HealthCheck",
    "Logs",
    "OffHostSettings",
    "PitrSettings",
    "PlatformSettings",
    "RedisSettings",
    "RegistrySettings",
    "Resources",
    "ServiceSettings",
    "SwarmSettings",
    "database_home",
    "edge_apps",
    "production_problems",
    "validate_settings",
]
