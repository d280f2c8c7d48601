"""The one place that reads stack config: validates it into frozen settings and secret overrides.

Components never call `pulumi.Config()`; `__main__.py` calls `load()` once and hands the
result down. Every failure becomes a `StackConfigError`, which Pulumi reports as a clean
one-message error (a `RunError`) before any resource is registered.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import pulumi
from pulumi.runtime import config as runtime_config
from pydantic import ValidationError

from stacks.catalogue import Catalogue
from stacks.settings import PlatformSettings, validate_settings

NAMESPACE = "ecommerce"
SETTINGS_KEY = "platform"
JWT_SECRET_KEY = "jwtSecret"
REDIS_PASSWORD_KEY = "redisPassword"
REGISTRY_PASSWORD_KEY = "registryPassword"
EDGE_TLS_CERTIFICATE_KEY = "edgeTlsCertificate"
EDGE_TLS_KEY_KEY = "edgeTlsKey"
ALERT_WEBHOOK_URL_KEY = "alertWebhookUrl"
ALERT_SMTP_PASSWORD_KEY = "alertSmtpPassword"
# The Docker provider's own stack config (`pulumi config set docker:host ...`). The default
# provider reads it; the program's explicit provider (made when a registry is set) takes these
# two over and refuses the others rather than silently dropping them.
DOCKER_NAMESPACE = "docker"
DOCKER_KEYS_PASSED_ON = ("host", "context")


def database_password_key(service: str) -> str:
    """Config key that overrides a database's generated password, e.g. `customerDbPassword`."""
    return f"{service}DbPassword"


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
    """Read and validate this stack's whole config."""
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
    if secrets.redis_password is not None and not settings.redis.require_password:
        raise StackConfigError(
            f"{source}: {NAMESPACE}:{REDIS_PASSWORD_KEY} is set but redis.requirePassword is "
            "false; turn requirePassword on or remove the key"
        )
    _check_registry_login(settings, secrets, source)
    _check_edge_certificate(settings, secrets, source)
    _check_alert_receivers(settings, config, source)
    docker = _docker_config(source, provider_made=settings.registry is not None)
    return StackConfig(settings=settings, secrets=secrets, docker=docker)


def _check_registry_login(
    settings: PlatformSettings, secrets: SecretOverrides, source: str
) -> None:
    key = f"{NAMESPACE}:{REGISTRY_PASSWORD_KEY}"
    username = settings.registry.username if settings.registry is not None else None
    if username is not None and secrets.registry_password is None:
        raise StackConfigError(
            f"{source}: {key} is missing: registry.username is set, so its password is needed; "
            f"set it with `pulumi config set --secret {key}`, or remove registry.username to use "
            "the credentials of `docker login`"
        )
    if username is None and secrets.registry_password is not None:
        raise StackConfigError(
            f"{source}: {key} is set but {NAMESPACE}:{SETTINGS_KEY}.registry.username is not; "
            "set the username, or remove the password"
        )


def _check_edge_certificate(
    settings: PlatformSettings, secrets: SecretOverrides, source: str
) -> None:
    tls = settings.edge.tls
    from_files = tls is not None and tls.certificates == "files"
    for key, value in (
        (EDGE_TLS_CERTIFICATE_KEY, secrets.edge_tls_certificate),
        (EDGE_TLS_KEY_KEY, secrets.edge_tls_key),
    ):
        full_key = f"{NAMESPACE}:{key}"
        if from_files and value is None:
            raise StackConfigError(
                f"{source}: {full_key} is missing: edge.tls.certificates is files; set it from "
                f"the PEM file with `pulumi config set --secret {full_key} < FILE`"
            )
        if not from_files and value is not None:
            raise StackConfigError(
                f"{source}: {full_key} is set but edge.tls.certificates is not files; "
                "set certificates: files or remove the key"
            )


def _check_alert_receivers(settings: PlatformSettings, config: pulumi.Config, source: str) -> None:
    """Each receiver's secret is set exactly when the receiver uses it; the webhook URL is one
    Alertmanager can post to (the value itself is never printed)."""
    alerts = settings.monitoring.alerts
    email = alerts.email
    receivers = (
        (ALERT_WEBHOOK_URL_KEY, alerts.webhook, "monitoring.alerts.webhook"),
        (
            ALERT_SMTP_PASSWORD_KEY,
            email is not None and email.username is not None,
            "monitoring.alerts.email.username",
        ),
    )
    for key, used, setting in receivers:
        full_key = f"{NAMESPACE}:{key}"
        value = config.get(key)
        if used and settings.monitoring.enabled and value is None:
            raise StackConfigError(
                f"{source}: {full_key} is missing: {setting} needs it; set it with "
                f"`pulumi config set --secret {full_key}`"
            )
        if not used and value is not None:
            raise StackConfigError(
                f"{source}: {full_key} is set but nothing uses it ({setting} is not set); "
                "set that, or remove the key"
            )
    url = config.get(ALERT_WEBHOOK_URL_KEY)
    if url is not None and not re.match(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/\S*)?$", url):
        raise StackConfigError(
            f"{source}: {NAMESPACE}:{ALERT_WEBHOOK_URL_KEY} is not an http(s) URL like "
            "https://hooks.example.com/T0/B0 (its value is not shown: it is a secret)"
        )


def _docker_config(source: str, provider_made: bool) -> dict[str, str]:
    """The stack's `docker:host` and `docker:context`, for the program's own Docker connections:
    its Docker provider (`provider_made`, when a registry is set) and the containers' PIDs
    limits, which it sends Docker itself (components/pids_limit.py) over `unix://` or
    `tcp://`, with TLS from the environment as the Docker CLI reads it. Anything those cannot
    follow is refused here, rather than half-way through a deploy."""
    config = pulumi.Config(DOCKER_NAMESPACE)
    for full_key in _config_keys():
        namespace, _, key = full_key.partition(":")
        if namespace == DOCKER_NAMESPACE and key not in DOCKER_KEYS_PASSED_ON:
            made = "the registry's Docker provider and " if provider_made else ""
            raise StackConfigError(
                f"{source}: {full_key} does not reach {made}the containers' PIDs limits, which "
                "the program sends Docker itself; use the environment instead "
                "(DOCKER_CERT_PATH, DOCKER_TLS_VERIFY)"
            )
    found = {key: value for key in DOCKER_KEYS_PASSED_ON if (value := config.get(key)) is not None}
    if "host" not in found and ("context" in found or os.environ.get("DOCKER_CONTEXT")):
        raise StackConfigError(
            f"{source}: a Docker context is in use (docker:context or DOCKER_CONTEXT) without "
            f"{DOCKER_NAMESPACE}:host; the containers' PIDs limits reach Docker by host only: "
            "set docker:host to the context's endpoint (`docker context inspect`)"
        )
    host = found.get("host") or os.environ.get("DOCKER_HOST", "")
    if host and not host.startswith(("unix://", "tcp://")):
        raise StackConfigError(
            f"{source}: Docker host {host!r} is not supported by the containers' PIDs limits, "
            "which the program sends Docker itself: use unix:// or tcp:// (with TLS from "
            "DOCKER_CERT_PATH and DOCKER_TLS_VERIFY)"
        )
    return found


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


def _config_keys() -> list[str]:
    """Every config key of the stack, `namespace:key`."""
    return sorted(set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env()))


def _reject_unknown_keys(catalogue: Catalogue, source: str) -> None:
    # A misspelt secret override would otherwise be ignored and a generated secret used instead.
    known = _known_keys(catalogue)
    for full_key in _config_keys():
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
