"""The one place that reads stack config: hands it to the settings layer to judge, and returns
frozen settings and secret overrides.

Components never call `pulumi.Config()`; `__main__.py` calls `load()` once and hands the
result down. The loader reads: `ecommerce:platform`, the secrets beside it (refusing unknown
keys and secrets stored in plain text, which it cannot read as secrets), the `docker:` keys and
the Docker environment. Every rule is judged in `stacks/settings/`: each settings object's own
and those across them (`validate_settings`), and those between the settings and the other keys
(`other_config_problems`). Every failure becomes a `StackConfigError`, which Pulumi reports as
a clean one-message error (a `RunError`) before any resource is registered.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pulumi
from pulumi.runtime import config as runtime_config
from pydantic import ValidationError

from sdk.internals import config_keys
from stacks.catalogue import Catalogue
from stacks.settings import PlatformSettings, validate_settings
from stacks.settings.keys import (
    ALERT_SMTP_PASSWORD_KEY,
    ALERT_WEBHOOK_URL_KEY,
    DOCKER_KEYS_PASSED_ON,
    DOCKER_NAMESPACE,
    EDGE_TLS_CERTIFICATE_KEY,
    EDGE_TLS_KEY_KEY,
    JWT_SECRET_KEY,
    NAMESPACE,
    REDIS_PASSWORD_KEY,
    REGISTRY_PASSWORD_KEY,
    SETTINGS_KEY,
    database_password_key,
)
from stacks.settings.rules.other_config import OtherConfig, other_config_problems


class StackConfigError(pulumi.RunError):
    """The stack file is wrong; the message names the key and what to do."""


@dataclass(frozen=True)
class SecretOverrides:
    """Secrets an operator set with `pulumi config set --secret`; generated where absent."""

    jwt_secret: pulumi.Output[str] | None = None
    redis_password: pulumi.Output[str] | None = None
    database_passwords: dict[str, pulumi.Output[str]] = field(default_factory=dict)
    registry_password: pulumi.Output[str] | None = None
    edge_tls_certificate: pulumi.Output[str] | None = None
    """PEM chain of the edge's certificate (`edge.tls.certificates: files`)."""
    edge_tls_key: pulumi.Output[str] | None = None
    """PEM private key of that certificate."""
    alert_webhook_url: pulumi.Output[str] | None = None
    """Where Alertmanager posts alerts (`monitoring.alerts.webhook`): it may hold a token."""
    alert_smtp_password: pulumi.Output[str] | None = None
    """The SMTP relay's password (`monitoring.alerts.email.username`)."""


@dataclass(frozen=True)
class StackConfig:
    settings: PlatformSettings
    secrets: SecretOverrides
    docker: dict[str, str] = field(default_factory=dict)
    """The stack's `docker:host` and `docker:context`, for the program's own Docker provider
    and the containers' PIDs limits."""


def load(catalogue: Catalogue) -> StackConfig:
    """Read this stack's whole config; the settings layer judges it."""
    source = f"Pulumi.{pulumi.get_stack()}.yaml"
    _reject_unknown_keys(catalogue, source)
    config = pulumi.Config(NAMESPACE)
    raw = config.get(SETTINGS_KEY)
    if raw is None:
        raise StackConfigError(
            f"{source}: {NAMESPACE}:{SETTINGS_KEY} is missing; copy Pulumi.dev.yaml as a start"
        )
    settings = parse_settings(raw, catalogue, source)
    secrets = _secret_overrides(config, catalogue, source)
    other = _other_config(config, catalogue)
    problems = other_config_problems(settings, other)
    if problems:
        # The first only, on one line: each names the one key to set or remove.
        raise StackConfigError(f"{source}: {problems[0]}")
    return StackConfig(settings=settings, secrets=secrets, docker=other.docker)


def _other_config(config: pulumi.Config, catalogue: Catalogue) -> OtherConfig:
    docker = pulumi.Config(DOCKER_NAMESPACE)
    split = (full_key.partition(":") for full_key in config_keys())
    return OtherConfig(
        secrets_set=frozenset(
            key for key in _known_keys(catalogue) - {SETTINGS_KEY} if config.get(key) is not None
        ),
        # Read for its shape only; no message shows it.
        alert_webhook_url=config.get(ALERT_WEBHOOK_URL_KEY),
        docker_keys=tuple(key for namespace, _, key in split if namespace == DOCKER_NAMESPACE),
        docker={
            key: value for key in DOCKER_KEYS_PASSED_ON if (value := docker.get(key)) is not None
        },
        docker_host_env=os.environ.get("DOCKER_HOST"),
        docker_context_env=os.environ.get("DOCKER_CONTEXT"),
    )


def parse_settings(raw_json: str, catalogue: Catalogue, source: str) -> PlatformSettings:
    """Validate the JSON text of `ecommerce:platform` (the CLI hands objects over as JSON)."""
    try:
        return validate_settings(raw_json, catalogue)
    except ValidationError as err:
        raise StackConfigError(format_validation_error(err, source)) from None


def format_validation_error(err: ValidationError, source: str) -> str:
    """One line per problem, each naming its key as it is written in the stack file."""
    prefix = f"{NAMESPACE}:{SETTINGS_KEY}"
    lines = []
    for detail in err.errors(include_url=False):
        key = ".".join(str(part) for part in detail["loc"])
        message = detail["msg"].removeprefix("Value error, ")
        if detail["type"] == "extra_forbidden":
            message = "unknown key (check its spelling and nesting)"
        # An error with no location is about the whole object (JSON that is not one, say).
        lines += [
            f"{prefix}.{key}: {part}" if key else f"{prefix}.{part}"
            for part in message.splitlines()
        ]
    noun = "problem" if len(lines) == 1 else "problems"
    return f"{source} has {len(lines)} {noun}:\n  " + "\n  ".join(lines)


def _known_keys(catalogue: Catalogue) -> set[str]:
    keys = {
        SETTINGS_KEY,
        JWT_SECRET_KEY,
        REDIS_PASSWORD_KEY,
        REGISTRY_PASSWORD_KEY,
        EDGE_TLS_CERTIFICATE_KEY,
        EDGE_TLS_KEY_KEY,
        ALERT_WEBHOOK_URL_KEY,
        ALERT_SMTP_PASSWORD_KEY,
    }
    keys |= {database_password_key(spec.name) for spec in catalogue.with_database()}
    return keys


def _reject_unknown_keys(catalogue: Catalogue, source: str) -> None:
    # A misspelt secret override would otherwise be ignored and a generated secret used instead.
    known = _known_keys(catalogue)
    for full_key in config_keys():
        namespace, _, key = full_key.partition(":")
        if namespace == NAMESPACE and key not in known:
            raise StackConfigError(
                f"{source}: {full_key} is not a known key; known: "
                + ", ".join(f"{NAMESPACE}:{k}" for k in sorted(known))
            )


def _secret_overrides(config: pulumi.Config, catalogue: Catalogue, source: str) -> SecretOverrides:
    def secret(key: str) -> pulumi.Output[str] | None:
        if config.get(key) is None:
            return None
        if not runtime_config.is_config_secret(f"{NAMESPACE}:{key}"):
            raise StackConfigError(
                f"{source}: {NAMESPACE}:{key} is stored in plain text; set it with "
                f"`pulumi config set --secret {NAMESPACE}:{key}` (and rotate it, it was exposed)"
            )
        return config.require_secret(key)

    passwords = {}
    for spec in catalogue.with_database():
        value = secret(database_password_key(spec.name))
        if value is not None:
            passwords[spec.name] = value
    return SecretOverrides(
        jwt_secret=secret(JWT_SECRET_KEY),
        redis_password=secret(REDIS_PASSWORD_KEY),
        database_passwords=passwords,
        registry_password=secret(REGISTRY_PASSWORD_KEY),
        # The certificate is public, but it travels with its key: one rule for both.
        edge_tls_certificate=secret(EDGE_TLS_CERTIFICATE_KEY),
        edge_tls_key=secret(EDGE_TLS_KEY_KEY),
        alert_webhook_url=secret(ALERT_WEBHOOK_URL_KEY),
        alert_smtp_password=secret(ALERT_SMTP_PASSWORD_KEY),
    )
