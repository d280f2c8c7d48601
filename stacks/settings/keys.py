"""The stack's config keys: `ecommerce:platform`, which holds the settings, and the keys beside
it that the settings decide about (the secrets an operator sets, the Docker provider's own)."""

from __future__ import annotations

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
