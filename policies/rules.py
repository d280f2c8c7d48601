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

import base64
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from stacks.images import is_pinned

CONTAINER = "docker:index/container:Container"
SERVICE = "docker:index/service:Service"
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
# What runs: a container, or a Swarm service's tasks. A secrets seed is created and never
# started, with no network: the runtime rules do not apply to it; the host-access rules do.


@dataclass(frozen=True)
class Process:
    """The inputs the rules look at, the same for a container and a Swarm service."""

    runs: bool
    read_only: bool
    cap_drops: Sequence[str]
    cap_adds: Sequence[str]
    no_new_privileges: bool | None
    """None for a service: its spec cannot say; dockerd's own setting decides (README)."""
    memory: int
    restarts: bool
    restart: str
    log_driver: str | None
    log_options: Mapping[str, Any]
    image: str
    published: Sequence[int]
    sources: Sequence[str]
    privileged: bool
    host_network: bool


def process_of(s: Subject) -> Process | None:
    """A container's or a service's process as the rules see it; None for anything else."""
    i = s.inputs
    if s.type == CONTAINER:
        capabilities = i.get("capabilities") or {}
        options = set(i.get("securityOpts") or [])
        restart = str(i.get("restart") or "no")
        return Process(
            runs=i.get("start", True) is not False,
            read_only=i.get("readOnly") is True,
            cap_drops=list(capabilities.get("drops") or []),
            cap_adds=list(capabilities.get("adds") or []),
            no_new_privileges=bool({"no-new-privileges", "no-new-privileges:true"} & options),
            memory=int(i.get("memory") or 0),
            restarts=restart in RESTART_POLICIES,
            restart=restart,
            log_driver=i.get("logDriver"),
            log_options=i.get("logOpts") or {},
            image=str(i.get("image", "")),
            published=[int(p["external"]) for p in i.get("ports") or [] if p.get("external")],
            sources=[str(v.get("hostPath", "")) for v in i.get("volumes") or []]
            + [str(m.get("source", "")) for m in i.get("mounts") or []],
            privileged=bool(i.get("privileged")),
            host_network=i.get("networkMode") == "host",
        )
    if s.type == SERVICE:
        task = i.get("taskSpec") or {}
        spec = task.get("containerSpec") or {}
        log = task.get("logDriver") or {}
        condition = str((task.get("restartPolicy") or {}).get("condition") or "any")
        endpoint = i.get("endpointSpec") or {}
        return Process(
            runs=True,
            read_only=spec.get("readOnly") is True,
            cap_drops=list(spec.get("capDrops") or []),
            cap_adds=list(spec.get("capAdds") or []),
            no_new_privileges=None,
            memory=int(((task.get("resources") or {}).get("limits") or {}).get("memoryBytes") or 0),
            restarts=condition in ("any", "on-failure"),
            restart=condition,
            log_driver=log.get("name"),
            log_options=log.get("options") or {},
            image=str(spec.get("image", "")),
            published=[
                int(p["publishedPort"])
                for p in endpoint.get("ports") or []
                if p.get("publishedPort")
            ],
            sources=[
                str(m.get("source", ""))
                for m in spec.get("mounts") or []
                if m.get("type") == "bind"
            ],
            privileged=False,  # a service spec has no such option
            host_network=False,  # nor the host's network
        )
    return None


def _running(s: Subject) -> Process | None:
    p = process_of(s)
    return p if p is not None and p.runs else None


def role_of(inputs: Mapping[str, Any]) -> str | None:
    """A container's, service's or volume's `com.ecommerce.role` label."""
    labels = inputs.get("labels") or []
    return next((str(lb.get("value")) for lb in labels if lb.get("label") == ROLE_LABEL), None)


def _role(subject: Subject) -> str | None:
    return role_of(subject.inputs)


def read_only_root(s: Subject) -> Iterable[str]:
    if (p := _running(s)) and not p.read_only:
        yield "the root filesystem is writable (set readOnly, with tmpfs where it must write)"


def all_capabilities_dropped(s: Subject) -> Iterable[str]:
    if not (p := _running(s)):
        return
    if "ALL" not in p.cap_drops:
        yield "capabilities are not all dropped (capabilities.drops must hold ALL)"
    if p.cap_adds:
        yield f"capabilities are added back: {sorted(p.cap_adds)}"


def no_new_privileges(s: Subject) -> Iterable[str]:
    if (p := _running(s)) and p.no_new_privileges is False:
        yield "no-new-privileges is not set (securityOpts)"


def memory_limit(s: Subject) -> Iterable[str]:
    if (p := _running(s)) and not p.memory:
        yield "no memory limit"


def restart_policy(s: Subject) -> Iterable[str]:
    if (p := _running(s)) and not p.restarts:
        yield f"restart policy is {p.restart!r}: it stays down after a crash or reboot"


def rotated_logs(s: Subject) -> Iterable[str]:
    p = _running(s)
    if p and (p.log_driver not in ROTATING_LOG_DRIVERS
              or not {"max-size", "max-file"} <= set(p.log_options)):  # fmt: skip
        yield "logs are not rotated (logDriver json-file or local, with max-size and max-file)"


def pinned_image(s: Subject) -> Iterable[str]:
    # A built image runs by its ID (`sha256:...`): pinned too.
    if (p := _running(s)) and not (p.image.startswith("sha256:") or is_pinned(p.image)):
        yield f"image {p.image!r} is not pinned (use a version tag or a digest)"


def not_privileged(s: Subject) -> Iterable[str]:
    if (p := process_of(s)) and p.privileged:
        yield "runs privileged"


def no_host_network(s: Subject) -> Iterable[str]:
    if (p := process_of(s)) and p.host_network:
        yield "shares the host's network"


def no_docker_socket(s: Subject) -> Iterable[str]:
    for source in p.sources if (p := process_of(s)) else []:
        if source.endswith("docker.sock") or source in ("/var/run", "/run"):
            yield f"mounts the Docker socket ({source}): that is root on the host"


def only_edge_published(s: Subject) -> Iterable[str]:
    if (p := process_of(s)) and p.published and _role(s) != EDGE_ROLE:
        ports = ", ".join(str(port) for port in p.published)
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
    """Containers only: a Swarm service spec has no PIDs limit (README, "Swarm")."""
    limits = {s.name.removesuffix("-pids"): s for s in subjects if s.type == PIDS_LIMIT}
    for s in subjects:
        if s.type != CONTAINER or not _running(s):
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
        files = [str(u.get("content") or "") for u in s.inputs.get("uploads") or []]
        if s.type == SWARM_SECRET:
            files.append(base64.b64decode(str(s.inputs.get("data") or "")).decode(errors="replace"))
        for content in files:
            value = content.strip()
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
