"""The production profile's rules (`profile: prod`), and what they refuse by key for the
settings reference."""

from __future__ import annotations

from stacks.catalogue import Catalogue
from stacks.images import is_pinned, names_its_digest
from stacks.settings.edge import edge_apps
from stacks.settings.platform import PlatformSettings
from stacks.settings.rules.inventory import host_ports, images

_UNPINNED = "an image without a version tag (with a digit) or a digest"
_BUILT = "any: prod runs pinned published images, built and pushed in CI"
PROD_REFUSES: dict[str, str] = {
    "services.<name>.build": _BUILT,
    "services.<name>.image": _UNPINNED,
    "services.<name>.hostPort": "any: only the edge proxy publishes ports (`edge.hosts`)",
    "postgres.image": _UNPINNED,
    "databases.<name>.hostPort": "any: databases are never published",
    "redis.image": _UNPINNED,
    "redis.hostPort": "any: Redis is never published",
    "redis.requirePassword": "`false`",
    "edge.image": _UNPINNED,
    "edge.build": _BUILT,
    "edge.tls": "unset: prod serves HTTPS",
    "backup.image": _UNPINNED,
    "pitr.image": _UNPINNED,
    "pitr.build": _BUILT,
    "monitoring.prometheus.image": _UNPINNED,
    "monitoring.alertmanager.image": _UNPINNED,
    "monitoring.postgresExporter.image": _UNPINNED,
    "monitoring.redisExporter.image": _UNPINNED,
    "monitoring.grafana.image": _UNPINNED,
    "monitoring.healthProbe.image": _UNPINNED,
    "monitoring.grafana.hostPort": "any: Grafana is served by its host name",
    "monitoring.prometheus.hostPort": "any: it is served by its host name, behind basic auth",
    "hardening.readOnlyRoot": "`false`",
    "hardening.dropAllCapabilities": "`false`",
    "hardening.noNewPrivileges": "`false`",
    "hardening.runAsNonRoot": "`false`",
    "networks.internal": "`false`",
    "corsOrigins": "an origin that is not `https://`",
}
"""What the prod profile refuses, by key (`<name>`: any service or database), for the settings
reference (stacks/reference.py); a unit test holds it to `production_problems` below."""


def production_problems(s: PlatformSettings, catalogue: Catalogue) -> list[str]:
    problems = [
        f"services.{name}.build: prod runs pinned published images; build and push them in CI, "
        f"then set services.{name}.image"
        for name, svc in s.services.items()
        if svc.build is not None
    ]
    for key, image in images(s).items():
        if not is_pinned(image):
            problems.append(
                f"{key}: {image!r} is not pinned; prod needs a version tag (with a digit, e.g. "
                "1.4.2) or a digest"
            )
    if s.pitr.build is not None:
        problems.append(
            "pitr.build: prod runs a pinned published image; build pitr/Dockerfile in CI on "
            "postgres.image, push it and set pitr.image"
        )
    if s.edge.build is not None:
        problems.append(
            "edge.build: prod runs a pinned published image; build images/edge-proxy in CI, "
            "push it and set edge.image"
        )
    if s.edge.tls is None:
        problems.append(
            "edge.tls: must be set in prod: the edge serves HTTPS for edge.hosts (certificates: "
            "auto, files or internal)"
        )
    apps = edge_apps(catalogue)
    for key in host_ports(s):
        if key.startswith("databases.") or key == "redis.hostPort":
            problems.append(f"{key}: databases and Redis are never published in prod")
        elif key == "monitoring.prometheus.hostPort":
            problems.append(
                f"{key}: prod never publishes Prometheus; remove it (serve it by "
                "monitoring.prometheus.host, behind basic auth)"
            )
        elif key == "monitoring.grafana.hostPort":
            problems.append(
                f"{key}: prod serves Grafana by host name over HTTPS only; remove "
                "it and set monitoring.grafana.host"
            )
        elif key.startswith("services.") and key.split(".")[1] in apps:
            app = key.split(".")[1]
            problems.append(
                f"{key}: prod serves the edge apps by host name over HTTPS only; remove it and "
                f"set edge.hosts.{app}"
            )
        elif key.startswith("services."):
            problems.append(
                f"{key}: only the edge proxy publishes ports in prod (edge.hosts, edge.tls)"
            )
    for flag, on in s.hardening.model_dump(by_alias=True).items():
        if not on:
            problems.append(f"hardening.{flag}: must be true in prod")
    if not s.networks.internal:
        problems.append("networks.internal: must be true in prod")
    if not s.redis.require_password:
        problems.append("redis.requirePassword: must be true in prod")
    problems += [
        f"corsOrigins: {o!r} must use https in prod"
        for o in s.cors_origins
        if not o.startswith("https://")
    ]
    return problems


def digest_problems(s: PlatformSettings) -> list[str]:
    """`requireImageDigests`: every published image of the stack named by its digest, in any
    profile that turns it on."""
    if not s.require_image_digests:
        return []
    return [
        f"{key}: {image!r} names no digest, and requireImageDigests asks every published image "
        f"for one; append @sha256:<digest> (after a pull, `docker image inspect --format "
        "'{{index .RepoDigests 0}}' <image>` prints it), or set requireImageDigests: false"
        for key, image in images(s).items()
        if not names_its_digest(image)
    ]
