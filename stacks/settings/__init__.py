"""Typed, frozen settings of one stack: everything that differs between environments.

A stack file holds one object under the key `ecommerce:platform`; it is validated in one
`model_validate_json` against the service catalogue. Unknown keys and wrong types are errors
(strict models, `extra="forbid"`); the cross-field rules name the key that is wrong. Defaults
are the secure choice: a stack relaxes them explicitly (dev does), never by omission.

One module per domain, each with its settings and the rules that judge them: `common` (the base
model, limits, hardening, logs, health checks, builds), `services`, `databases` (PostgreSQL,
Redis, PITR), `edge`, `ports`, `swarm`, `backup`, `registry`, and `platform` (the top level, the
rules across domains and the production profile's). Every key is listed in docs/settings.md,
generated from these models.
"""

from stacks.settings.backup import BackupSettings
from stacks.settings.common import BuildSettings, Hardening, HealthCheck, Logs, Resources
from stacks.settings.databases import DatabaseTuning, PitrSettings, RedisSettings
from stacks.settings.edge import EdgeSettings, EdgeTls, edge_apps
from stacks.settings.platform import PROD_REFUSES, PlatformSettings, production_problems
from stacks.settings.registry import RegistrySettings
from stacks.settings.services import ServiceSettings
from stacks.settings.swarm import SwarmSettings

__all__ = [
    "PROD_REFUSES",
    "BackupSettings",
    "BuildSettings",
    "DatabaseTuning",
    "EdgeSettings",
    "EdgeTls",
    "Hardening",
    "HealthCheck",
    "Logs",
    "PitrSettings",
    "PlatformSettings",
    "RedisSettings",
    "RegistrySettings",
    "Resources",
    "ServiceSettings",
    "SwarmSettings",
    "edge_apps",
    "production_problems",
]
