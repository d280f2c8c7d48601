"""The production rules, checked on the resources the program builds (not on its settings).

Pure functions over `Subject`s, so three callers share them: the CrossGuard pack
(`policies/__main__.py`, under `pulumi preview`/`up`), the offline plan (`python -m plan`) and
the unit tests (on the mock-recorded graph). A component that silently dropped `read_only`
is caught here even while the stack file still says `readOnlyRoot: true`.

Inputs are in Pulumi's names (`readOnly`, `securityOpts`, ...), as the engine hands them to
providers and to policy packs alike; rules read them as `Mapping`s and `Sequence`s, since the
policy SDK wraps them in proxies that are neither dicts nor lists.

Most rules look at one resource. A PIDs limit is its own resource (pulumi-docker's container
has no input for it: components/pids_limit.py), so its rule looks at the whole stack: every
running container `<name>-container` needs a `<name>-pids` with a limit.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from stacks.images import is_pinned

CONTAINER = "docker:index/container:Container"
VOLUME = "docker:index/volume:Volume"
SWARM_SECRET = "docker:index/secret:Secret"
DOCKER_PROVIDER = "pulumi:providers:docker"
RANDOM_ID = "random:index/randomId:RandomId"
PIDS_LIMIT = "pulumi-python:dynamic/ecommerce:PidsLimit"

ROLE_LABEL = "com.ecommerce.role"
EDGE_ROLE = "edge"
"""The role of the one container that may publish host ports: the edge proxy."""
SECRETS_ROLE = "secrets"
SCRATCH_ROLE = "scratch"
"""Volumes with nothing to keep: a socket directory, a restore drill's throwaway copy."""
RESTART_POLICIES = frozenset({"always", "unless-stopped", "on-failure"})
ROTATING_LOG_DRIVERS = frozenset({"json-file", "local"})
DOCKER_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")

# Where a secret may be: the file contents a secrets seed copies into its volume; the
# registry login of the stack's Docker provider; the keepers that draw a new secrets revision
# (they never reach Docker). Anywhere else, a secret would be readable in `docker inspect`,
# `ps` or the provider's plain state.
ALLOWED_SECRET_PATHS: Mapping[str, re.Pattern[str]] = {
    CONTAINER: re.compile(r"uploads\.\d+\.content"),
    SWARM_SECRET: re.compile(r"data"),  # a swarm's secret store: files in its services
    DOCKER_PROVIDER: re.compile(r"registryAuth(\..*)?"),
    RANDOM_ID: re.compile(r"keepers(\..*)?"),
}

Enforcement = Literal["mandatory", "advisory"]


def enforcement_for(profile: str | None) -> Enforcement:
    """Prod profiles must pass; dev ones are told."""
    return "mandatory" if profile == "prod" else "advisory"


@dataclass(frozen=True)
class Subject:
    """One resource as a rule sees it."""

    type: str
    name: str
    urn: str
    inputs: Mapping[str, Any]
    protect: bool = False
    secret_paths: frozenset[str] | None = None
    """Dotted input paths holding secrets; None where the caller cannot tell (the pack)."""


@dataclass(frozen=True)
class Violation:
    rule: str
    urn: str
    name: str
    message: str


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    check: Callable[[Subject], Iterable[str]]
    """The problems of one resource, each a sentence; nothing when it complies."""


# ----------------------------------------------------------------------------------------------
# Containers that run. A secrets seed is created and never started, with no network: the
# runtime rules do not apply to it; the host-access rules do.


def _runs(subject: Subject) -> bool:
    return subject.type == CONTAINER and subject.inputs.get("start", True) is not False


def role_of(inputs: Mapping[str, Any]) -> str | None:
    """A container's or volume's `com.ecommerce.role` label (`secrets` for secret volumes)."""
    labels = inputs.get("labels") or []
    return next((str(lb.get("value")) for lb in labels if lb.get("label") == ROLE_LABEL), None)


def _role(subject: Subject) -> str | None:
    return role_of(subject.inputs)


def read_only_root(s: Subject) -> Iterable[str]:
    if _runs(s) and s.inputs.get("readOnly") is not True:
        yield "the root filesystem is writable (set readOnly, with tmpfs where it must write)"


def all_capabilities_dropped(s: Subject) -> Iterable[str]:
    if not _runs(s):
        return
    capabilities = s.inputs.get("capabilities") or {}
    if "ALL" not in (capabilities.get("drops") or []):
        yield "capabilities are not all dropped (capabilities.drops must hold ALL)"
    if capabilities.get("adds"):
        yield f"capabilities are added back: {sorted(capabilities['adds'])}"


def no_new_privileges(s: Subject) -> Iterable[str]:
    options = s.inputs.get("securityOpts") or []
    if _runs(s) and not {"no-new-privileges", "no-new-privileges:true"} & set(options):
        yield "no-new-privileges is not set (securityOpts)"


def memory_limit(s: Subject) -> Iterable[str]:
    if _runs(s) and not s.inputs.get("memory"):
        yield "no memory limit"


def restart_policy(s: Subject) -> Iterable[str]:
    restart = s.inputs.get("restart") or "no"
    if _runs(s) and restart not in RESTART_POLICIES:
        yield f"restart policy is {restart!r}: the container stays down after a crash or reboot"


def rotated_logs(s: Subject) -> Iterable[str]:
    if not _runs(s):
        return
    driver, options = s.inputs.get("logDriver"), s.inputs.get("logOpts") or {}
    if driver not in ROTATING_LOG_DRIVERS or not {"max-size", "max-file"} <= set(options):
        yield "logs are not rotated (logDriver json-file or local, with max-size and max-file)"


def pinned_image(s: Subject) -> Iterable[str]:
    if not _runs(s):
        return
    image = str(s.inputs.get("image", ""))
    # A built image runs by its ID (`sha256:...`): pinned too.
    if not (image.startswith("sha256:") or is_pinned(image)):
        yield f"image {image!r} is not pinned (use a version tag or a digest)"


def not_privileged(s: Subject) -> Iterable[str]:
    if s.type == CONTAINER and s.inputs.get("privileged"):
        yield "runs privileged"


def no_host_network(s: Subject) -> Iterable[str]:
    if s.type == CONTAINER and s.inputs.get("networkMode") == "host":
        yield "shares the host's network"


def no_docker_socket(s: Subject) -> Iterable[str]:
    if s.type != CONTAINER:
        return
    sources = [str(v.get("hostPath", "")) for v in s.inputs.get("volumes") or []]
    sources += [str(m.get("source", "")) for m in s.inputs.get("mounts") or []]
    for source in sources:
        if source.endswith("docker.sock") or source in ("/var/run", "/run"):
            yield f"mounts the Docker socket ({source}): that is root on the host"


def only_edge_published(s: Subject) -> Iterable[str]:
    if s.type != CONTAINER:
        return
    published = [p for p in s.inputs.get("ports") or [] if p.get("external")]
    if published and _role(s) != EDGE_ROLE:
        ports = ", ".join(str(p["external"]) for p in published)
        yield f"publishes host port {ports} though its role is {_role(s)!r}, not the edge"


def data_volume_protected(s: Subject) -> Iterable[str]:
    if s.type == VOLUME and _role(s) not in (SECRETS_ROLE, SCRATCH_ROLE) and not s.protect:
        yield "holds data but is not protected: `pulumi destroy` or a rename would delete it"


def secrets_only_in_files(s: Subject) -> Iterable[str]:
    """Exact where secret paths are known (offline); the pack uses `secret_values_leaked`."""
    if s.secret_paths is None:
        return
    allowed = ALLOWED_SECRET_PATHS.get(s.type)
    for path in sorted(s.secret_paths):
        if allowed is None or not allowed.fullmatch(path):
            yield f"a secret reaches input {path!r}; secrets may reach a container only as files"


RULES: Sequence[Rule] = (
    Rule("read-only-root", "Containers run with a read-only root filesystem.", read_only_root),
    Rule("drop-all-capabilities", "Containers drop every Linux capability.",
         all_capabilities_dropped),
    Rule("no-new-privileges", "Containers cannot gain privileges (setuid, file capabilities).",
         no_new_privileges),
    Rule("memory-limit", "Containers have a memory limit.", memory_limit),
    Rule("restart-policy", "Containers come back after a crash or a reboot.", restart_policy),
    Rule("rotated-logs", "Container logs are rotated.", rotated_logs),
    Rule("pinned-image", "Images are pinned to a version tag or a digest.", pinned_image),
    Rule("no-privileged", "No container runs privileged.", not_privileged),
    Rule("no-host-network", "No container shares the host's network.", no_host_network),
    Rule("no-docker-socket", "No container mounts the Docker socket.", no_docker_socket),
    Rule("only-edge-published", "Only the edge proxy publishes host ports.",
         only_edge_published),
    Rule("data-volumes-protected", "Data volumes are protected from deletion.",
         data_volume_protected),
    Rule("secrets-only-in-files", "A secret reaches a container only as file content.",
         secrets_only_in_files),
)  # fmt: skip


@dataclass(frozen=True)
class StackRule:
    name: str
    description: str
    check: Callable[[Sequence[Subject]], Iterable[tuple[Subject, str]]]
    """The resources that break it, each with a sentence."""


def pids_limited(subjects: Sequence[Subject]) -> Iterable[tuple[Subject, str]]:
    limits = {s.name.removesuffix("-pids"): s for s in subjects if s.type == PIDS_LIMIT}
    for s in subjects:
        if not _runs(s):
            continue
        limit = limits.get(s.name.removesuffix("-container"))
        value = limit.inputs.get("pidsLimit") if limit is not None else None
        if not isinstance(value, int | float) or value <= 0:
            yield s, f"no PIDs limit: a `{s.name.removesuffix('-container')}-pids` resource sets it"


STACK_RULES: Sequence[StackRule] = (
    StackRule("pids-limit", "Every running container has a PIDs limit.", pids_limited),
)


def check(
    subjects: Iterable[Subject],
    rules: Sequence[Rule] = RULES,
    stack_rules: Sequence[StackRule] = STACK_RULES,
) -> list[Violation]:
    """Every violation of `rules` and `stack_rules` among `subjects`, rule by rule."""
    subjects = list(subjects)
    found = [Violation(rule.name, s.urn, s.name, message)
             for rule in rules for s in subjects for message in rule.check(s)]  # fmt: skip
    found += [Violation(rule.name, s.urn, s.name, message)
              for rule in stack_rules for s, message in rule.check(subjects)]  # fmt: skip
    return found


# ----------------------------------------------------------------------------------------------
# Secrets by value, for the pack: the policy SDK hands rules plain values with no secret marks.
# The secrets are then known by where they are allowed: a seed's file that holds one value (a
# password file) holds a secret; that value found in any other input is a leak.

MIN_SECRET_LENGTH = 8


def secret_values_leaked(subjects: Iterable[Subject]) -> list[Violation]:
    subjects = list(subjects)
    secrets: set[str] = set()
    for s in subjects:
        if s.type == CONTAINER:
            for upload in s.inputs.get("uploads") or []:
                value = str(upload.get("content") or "").strip()
                if len(value) >= MIN_SECRET_LENGTH and not any(c.isspace() for c in value):
                    secrets.add(value)
    violations = []
    for s in subjects:
        allowed = ALLOWED_SECRET_PATHS.get(s.type)
        for path, text in _plain_strings(s.inputs, ""):
            if allowed is not None and allowed.fullmatch(path):
                continue
            if any(secret in text for secret in secrets):
                violations.append(Violation(
                    "secrets-only-in-files", s.urn, s.name,
                    f"input {path!r} holds a secret; secrets may reach a container only as files",
                ))  # fmt: skip
    return violations


def _plain_strings(value: Any, path: str) -> Iterable[tuple[str, str]]:
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield from _plain_strings(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, str):
        yield path, value
    elif isinstance(value, Sequence):  # the policy SDK's list proxies are not lists
        for i, v in enumerate(value):
            yield from _plain_strings(v, f"{path}.{i}")
