"""The rules between the settings and the stack's other config keys: each secret is set exactly
when the settings use it, the alert webhook's URL is one Alertmanager can post to, and the
Docker connection is one the program's own Docker calls can follow.

The loader reads the stack and hands over what it found (`OtherConfig`); each message names a
key as `pulumi config set` spells it, and never shows a secret's value."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from stacks.settings.keys import (
    ALERT_SMTP_PASSWORD_KEY,
    ALERT_WEBHOOK_URL_KEY,
    DOCKER_KEYS_PASSED_ON,
    DOCKER_NAMESPACE,
    EDGE_TLS_CERTIFICATE_KEY,
    EDGE_TLS_KEY_KEY,
    NAMESPACE,
    REDIS_PASSWORD_KEY,
    REGISTRY_PASSWORD_KEY,
    SETTINGS_KEY,
)
from stacks.settings.platform import PlatformSettings
from stacks.settings.rules.off_host import off_host_is_the_stacks_host


@dataclass(frozen=True)
class OtherConfig:
    """What the loader read beside `ecommerce:platform`: the stack's other config keys, and the
    Docker environment they fall back to."""

    secrets_set: frozenset[str] = frozenset()
    """The `ecommerce:` secrets the stack sets, by key (`registryPassword`, `edgeTlsKey`, ...)."""
    alert_webhook_url: str | None = None
    """The value of `ecommerce:alertWebhookUrl`, for its shape only: it may hold a token."""
    docker_keys: tuple[str, ...] = ()
    """Every `docker:` key the stack sets, by key (`host`, `certPath`, ...), sorted."""
    docker: dict[str, str] = field(default_factory=dict)
    """The values of `docker:host` and `docker:context`, where set."""
    docker_host_env: str | None = None
    """DOCKER_HOST of the environment."""
    docker_context_env: str | None = None
    """DOCKER_CONTEXT of the environment."""


def other_config_problems(s: PlatformSettings, other: OtherConfig) -> list[str]:
    """Every rule between the settings and the other config keys the stack breaks, in the order
    the loader has always checked them."""
    return [
        *_redis_password(s, other),
        *_registry_login(s, other),
        *_edge_certificate(s, other),
        *_alert_receivers(s, other),
        *_docker_connection(s, other),
        *off_host_is_the_stacks_host(s, other.docker.get("host") or other.docker_host_env),
    ]


def _redis_password(s: PlatformSettings, other: OtherConfig) -> list[str]:
    if REDIS_PASSWORD_KEY in other.secrets_set and not s.redis.require_password:
        return [
            f"{NAMESPACE}:{REDIS_PASSWORD_KEY} is set but redis.requirePassword is false; turn "
            "requirePassword on or remove the key"
        ]
    return []


def _registry_login(s: PlatformSettings, other: OtherConfig) -> list[str]:
    key = f"{NAMESPACE}:{REGISTRY_PASSWORD_KEY}"
    username = s.registry.username if s.registry is not None else None
    password_set = REGISTRY_PASSWORD_KEY in other.secrets_set
    if username is not None and not password_set:
        return [
            f"{key} is missing: registry.username is set, so its password is needed; set it "
            f"with `pulumi config set --secret {key}`, or remove registry.username to use the "
            "credentials of `docker login`"
        ]
    if username is None and password_set:
        return [
            f"{key} is set but {NAMESPACE}:{SETTINGS_KEY}.registry.username is not; set the "
            "username, or remove the password"
        ]
    return []


def _edge_certificate(s: PlatformSettings, other: OtherConfig) -> list[str]:
    tls = s.edge.tls
    from_files = tls is not None and tls.certificates == "files"
    problems = []
    for key in (EDGE_TLS_CERTIFICATE_KEY, EDGE_TLS_KEY_KEY):
        full_key = f"{NAMESPACE}:{key}"
        if from_files and key not in other.secrets_set:
            problems.append(
                f"{full_key} is missing: edge.tls.certificates is files; set it from the PEM "
                f"file with `pulumi config set --secret {full_key} < FILE`"
            )
        if not from_files and key in other.secrets_set:
            problems.append(
                f"{full_key} is set but edge.tls.certificates is not files; set certificates: "
                "files or remove the key"
            )
    return problems


def _alert_receivers(s: PlatformSettings, other: OtherConfig) -> list[str]:
    """Each receiver's secret is set exactly when the receiver uses it; the webhook URL is one
    Alertmanager can post to (the value itself is never shown)."""
    alerts = s.monitoring.alerts
    email = alerts.email
    receivers = (
        (ALERT_WEBHOOK_URL_KEY, alerts.webhook, "monitoring.alerts.webhook"),
        (
            ALERT_SMTP_PASSWORD_KEY,
            email is not None and email.username is not None,
            "monitoring.alerts.email.username",
        ),
    )
    problems = []
    for key, used, setting in receivers:
        full_key = f"{NAMESPACE}:{key}"
        is_set = key in other.secrets_set
        if used and s.monitoring.enabled and not is_set:
            problems.append(
                f"{full_key} is missing: {setting} needs it; set it with "
                f"`pulumi config set --secret {full_key}`"
            )
        if not used and is_set:
            problems.append(
                f"{full_key} is set but nothing uses it ({setting} is not set); set that, or "
                "remove the key"
            )
    url = other.alert_webhook_url
    if url is not None and not re.match(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/\S*)?$", url):
        problems.append(
            f"{NAMESPACE}:{ALERT_WEBHOOK_URL_KEY} is not an http(s) URL like "
            "https://hooks.example.com/T0/B0 (its value is not shown: it is a secret)"
        )
    return problems


def _docker_connection(s: PlatformSettings, other: OtherConfig) -> list[str]:
    """The program's own Docker connections: its Docker provider (when a registry is set) and
    the containers' PIDs limits, which it sends Docker itself (components/pids_limit.py) over
    `unix://` or `tcp://`, with TLS from the environment as the Docker CLI reads it. Anything
    those cannot follow is refused here, rather than half-way through a deploy."""
    made = "the registry's Docker provider and " if s.registry is not None else ""
    problems = [
        f"{DOCKER_NAMESPACE}:{key} does not reach {made}the containers' PIDs limits, which the "
        "program sends Docker itself; use the environment instead (DOCKER_CERT_PATH, "
        "DOCKER_TLS_VERIFY)"
        for key in other.docker_keys
        if key not in DOCKER_KEYS_PASSED_ON
    ]
    found = other.docker
    if "host" not in found and ("context" in found or other.docker_context_env):
        problems.append(
            f"a Docker context is in use (docker:context or DOCKER_CONTEXT) without "
            f"{DOCKER_NAMESPACE}:host; the containers' PIDs limits reach Docker by host only: "
            "set docker:host to the context's endpoint (`docker context inspect`)"
        )
    host = found.get("host") or other.docker_host_env or ""
    if host and not host.startswith(("unix://", "tcp://")):
        problems.append(
            f"Docker host {host!r} is not supported by the containers' PIDs limits, which the "
            "program sends Docker itself: use unix:// or tcp:// (with TLS from "
            "DOCKER_CERT_PATH and DOCKER_TLS_VERIFY)"
        )
    return problems
