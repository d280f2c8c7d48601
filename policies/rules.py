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

In a preview some values are not known yet (an input made from a resource still to be created:
a generated password, a built image's ID; an output the provider computes): the pack hands
them to the rules as `UNKNOWN`, and a rule judges only what is known. The rest is judged at
`pulumi up`, when every value is known. A rule never fails on a value it cannot see.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from stacks.images import is_pinned
from stacks.outputs import SECRET_OUTPUTS

CONTAINER = "docker:index/container:Container"
SERVICE = "docker:index/service:Service"
VOLUME = "docker:index/volume:Volume"
SWARM_SECRET = "docker:index/secret:Secret"
DOCKER_PROVIDER = "pulumi:providers:docker"
RANDOM_ID = "random:index/randomId:RandomId"
RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"
STACK = "pulumi:pulumi:Stack"
DYNAMIC_PROVIDER = "pulumi:providers:pulumi-python"
PIDS_LIMIT = "pulumi-python:dynamic/ecommerce:PidsLimit"
ISSUED_CERTIFICATE = "pulumi-python:dynamic/ecommerce:IssuedCertificate"

ROLE_LABEL = "com.ecommerce.role"
SERVICE_LABEL = "com.ecommerce.service"
DATABASE_NETWORK_MEMBERS = frozenset({"database", "business", "exporter"})
"""Roles that join the database network of their own service (the backup job joins them all)."""
EDGE_ROLE = "edge"
"""The role of the one container that may publish host ports for the shop: the edge proxy."""
TLS_SERVER_PORTS: Mapping[str, int] = {"pitr": 8433, "pitr-repository": 8432}
"""Beside an off-host backup repository, pgBackRest's TLS servers publish a port too, each that
one port inside its container (components/parts/pitr_tls.py): the repository's, and each
database agent's, which the repository takes backups through. Both accept only clients with a
certificate of the stack's own CA, each for its own stanza."""
SECRETS_ROLE = "secrets"
SCRATCH_ROLE = "scratch"
"""Volumes with nothing to keep: a socket directory, a restore drill's throwaway copy."""
RESTART_POLICIES = frozenset({"always", "unless-stopped", "on-failure"})
ROTATING_LOG_DRIVERS = frozenset({"json-file", "local"})

# Where a secret may be: the file contents a secrets seed copies into its volume; the
# registry login of the stack's Docker provider; the keepers that draw a new secrets revision
# (they never reach Docker); the generator's own result (a password is born there); the
# stack's outputs that hold one by design (stacks/outputs.py); the stack's config (a secret an
# operator set), which the engine hands the provider of dynamic resources (the PIDs limits) as
# its inputs; the CA's key, which the certificates it signs read on the machine that runs
# Pulumi (components/dynamic/certificates.py). Pulumi keeps all of those encrypted. Anywhere
# else, a secret would be readable in `docker inspect`, `ps` or the provider's plain state.
ALLOWED_SECRET_PATHS: Mapping[str, re.Pattern[str]] = {
    CONTAINER: re.compile(r"uploads\.\d+\.content"),
    SWARM_SECRET: re.compile(r"data"),  # a swarm's secret store: files in its services
    DOCKER_PROVIDER: re.compile(r"registryAuth(\..*)?"),
    RANDOM_ID: re.compile(r"keepers(\..*)?"),
    RANDOM_PASSWORD: re.compile(r"result|bcryptHash"),
    STACK: SECRET_OUTPUTS,
    DYNAMIC_PROVIDER: re.compile(r"[^.:]+:[^.]+"),  # `namespace:key`, the config's own keys
    ISSUED_CERTIFICATE: re.compile(r"caKeyPem"),
}

Enforcement = Literal["mandatory", "advisory"]


class Unknown:
    """A value a preview cannot know yet; `UNKNOWN` is the one instance."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = Unknown()


def known(*values: Any) -> bool:
    """Whether none of `values`, nor anything inside them, is `UNKNOWN`."""
    return not any(_holds_unknown(v) for v in values)


def _holds_unknown(value: Any) -> bool:
    if value is UNKNOWN:
        return True
    if isinstance(value, Mapping):
        return any(_holds_unknown(v) for v in value.values())
    if isinstance(value, Sequence) and not isinstance(value, str):
        return any(_holds_unknown(v) for v in value)
    return False


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
    """The inputs the rules look at, the same for a container and a Swarm service; any of them
    `UNKNOWN` in a preview that cannot know it yet."""

    runs: bool | Unknown
    read_only: bool | Unknown
    cap_drops: Sequence[str] | Unknown
    cap_adds: Sequence[str] | Unknown
    no_new_privileges: bool | Unknown | None
    """None for a service: its spec cannot say; dockerd's own setting decides (docs/swarm.md)."""
    memory: int | Unknown
    restarts: bool | Unknown
    restart: str | Unknown
    log_driver: str | Unknown | None
    log_options: Mapping[str, Any] | Unknown
    image: str | Unknown
    published: Sequence[int] | Unknown
    published_inside: Sequence[int] | Unknown
    """The container's side of each published port."""
    sources: Sequence[str] | Unknown
    privileged: bool | Unknown
    host_network: bool | Unknown


def _at(value: Any, *keys: str) -> Any:
    """`value[key]...`: None where absent, `UNKNOWN` where a preview cannot know it yet."""
    for key in keys:
        if value is UNKNOWN or not isinstance(value, Mapping):
            return value if value is UNKNOWN else None
        value = value.get(key)
    return value


def _known_or(value: Any, convert: Callable[[Any], Any]) -> Any:
    """`convert(value)`, or `UNKNOWN` when the value, or anything in it, is not known yet."""
    return convert(value) if known(value) else UNKNOWN


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value or []]


def process_of(s: Subject) -> Process | None:
    """A container's or a service's process as the rules see it; None for anything else."""
    i = s.inputs
    if s.type == CONTAINER:
        restart = _known_or(_at(i, "restart"), lambda v: str(v or "no"))
        return Process(
            runs=_known_or(_at(i, "start"), lambda v: v is not False),
            read_only=_known_or(_at(i, "readOnly"), lambda v: v is True),
            cap_drops=_known_or(_at(i, "capabilities", "drops"), _strings),
            cap_adds=_known_or(_at(i, "capabilities", "adds"), _strings),
            no_new_privileges=_known_or(
                _at(i, "securityOpts"),
                lambda v: bool({"no-new-privileges", "no-new-privileges:true"} & set(v or [])),
            ),
            memory=_known_or(_at(i, "memory"), lambda v: int(v or 0)),
            restarts=_known_or(restart, lambda v: v in RESTART_POLICIES),
            restart=restart,
            log_driver=_at(i, "logDriver"),
            log_options=_known_or(_at(i, "logOpts"), lambda v: v or {}),
            image=_known_or(_at(i, "image"), lambda v: str(v or "")),
            published=_known_or(
                _at(i, "ports"),
                lambda ports: [int(p["external"]) for p in ports or [] if p.get("external")],
            ),
            published_inside=_known_or(
                _at(i, "ports"),
                lambda ports: [int(p["internal"]) for p in ports or [] if p.get("external")],
            ),
            sources=_known_or(
                (_at(i, "volumes"), _at(i, "mounts")),
                lambda both: (
                    [str(v.get("hostPath", "")) for v in both[0] or []]
                    + [str(m.get("source", "")) for m in both[1] or []]
                ),
            ),
            privileged=_known_or(_at(i, "privileged"), bool),
            host_network=_known_or(_at(i, "networkMode"), lambda v: v == "host"),
        )
    if s.type == SERVICE:
        spec = _at(i, "taskSpec", "containerSpec")
        condition = _known_or(
            _at(i, "taskSpec", "restartPolicy", "condition"), lambda v: str(v or "any")
        )
        return Process(
            runs=True,
            read_only=_known_or(_at(spec, "readOnly"), lambda v: v is True),
            cap_drops=_known_or(_at(spec, "capDrops"), _strings),
            cap_adds=_known_or(_at(spec, "capAdds"), _strings),
            no_new_privileges=None,
            memory=_known_or(
                _at(i, "taskSpec", "resources", "limits", "memoryBytes"), lambda v: int(v or 0)
            ),
            restarts=_known_or(condition, lambda v: v in ("any", "on-failure")),
            restart=condition,
            log_driver=_at(i, "taskSpec", "logDriver", "name"),
            log_options=_known_or(_at(i, "taskSpec", "logDriver", "options"), lambda v: v or {}),
            image=_known_or(_at(spec, "image"), lambda v: str(v or "")),
            published=_known_or(
                _at(i, "endpointSpec", "ports"),
                lambda ports: [
                    int(p["publishedPort"]) for p in ports or [] if p.get("publishedPort")
                ],
            ),
            published_inside=_known_or(
                _at(i, "endpointSpec", "ports"),
                lambda ports: [int(p["targetPort"]) for p in ports or [] if p.get("publishedPort")],
            ),
            sources=_known_or(
                _at(spec, "mounts"),
                lambda mounts: [
                    str(m.get("source", "")) for m in mounts or [] if m.get("type") == "bind"
                ],
            ),
            privileged=False,  # a service spec has no such option
            host_network=False,  # nor the host's network
        )
    return None


def _running(s: Subject) -> Process | None:
    """The process when it is known to run (a secrets seed never starts)."""
    p = process_of(s)
    return p if p is not None and p.runs is True else None


def role_of(inputs: Mapping[str, Any]) -> str | Unknown | None:
    """A container's, service's or volume's `com.ecommerce.role` label."""
    labels = inputs.get("labels") or []
    if not known(labels):
        return UNKNOWN
    return next((str(lb.get("value")) for lb in labels if lb.get("label") == ROLE_LABEL), None)


def _role(subject: Subject) -> str | Unknown | None:
    return role_of(subject.inputs)


def read_only_root(s: Subject) -> Iterable[str]:
    if (p := _running(s)) and p.read_only is False:
        yield "the root filesystem is writable (set readOnly, with tmpfs where it must write)"


def all_capabilities_dropped(s: Subject) -> Iterable[str]:
    if not (p := _running(s)):
        return
    if not isinstance(p.cap_drops, Unknown) and "ALL" not in p.cap_drops:
        yield "capabilities are not all dropped (capabilities.drops must hold ALL)"
    if not isinstance(p.cap_adds, Unknown) and p.cap_adds:
        yield f"capabilities are added back: {sorted(p.cap_adds)}"


def no_new_privileges(s: Subject) -> Iterable[str]:
    if (p := _running(s)) and p.no_new_privileges is False:
        yield "no-new-privileges is not set (securityOpts)"


def memory_limit(s: Subject) -> Iterable[str]:
    if (p := _running(s)) and p.memory == 0:
        yield "no memory limit"


def restart_policy(s: Subject) -> Iterable[str]:
    if (p := _running(s)) and p.restarts is False:
        yield f"restart policy is {p.restart!r}: it stays down after a crash or reboot"


def rotated_logs(s: Subject) -> Iterable[str]:
    p = _running(s)
    if p is None or isinstance(p.log_driver, Unknown) or isinstance(p.log_options, Unknown):
        return
    if p.log_driver not in ROTATING_LOG_DRIVERS or not {"max-size", "max-file"} <= set(
        p.log_options
    ):
        yield "logs are not rotated (logDriver json-file or local, with max-size and max-file)"


def pinned_image(s: Subject) -> Iterable[str]:
    # A built image runs by its ID (`sha256:...`): pinned too.
    p = _running(s)
    if p and isinstance(p.image, str) and not (p.image.startswith("sha256:") or is_pinned(p.image)):
        yield f"image {p.image!r} is not pinned (use a version tag or a digest)"


def not_privileged(s: Subject) -> Iterable[str]:
    if (p := process_of(s)) and p.privileged is True:
        yield "runs privileged"


def no_host_network(s: Subject) -> Iterable[str]:
    if (p := process_of(s)) and p.host_network is True:
        yield "shares the host's network"


def no_docker_socket(s: Subject) -> Iterable[str]:
    p = process_of(s)
    for source in [] if p is None or isinstance(p.sources, Unknown) else p.sources:
        if source.endswith("docker.sock") or source in ("/var/run", "/run"):
            yield f"mounts the Docker socket ({source}): that is root on the host"


def only_edge_published(s: Subject) -> Iterable[str]:
    p, role = process_of(s), _role(s)
    if p is None or isinstance(p.published, Unknown) or isinstance(role, Unknown):
        return
    if not p.published or role == EDGE_ROLE:
        return
    tls_port = TLS_SERVER_PORTS.get(str(role))
    inside = p.published_inside
    if tls_port is not None and not isinstance(inside, Unknown) and set(inside) <= {tls_port}:
        return  # a TLS server of the off-host backups, its own port only
    ports = ", ".join(str(port) for port in p.published)
    yield f"publishes host port {ports} though its role is {role!r}, not the edge"


def data_volume_protected(s: Subject) -> Iterable[str]:
    role = _role(s)
    if s.type != VOLUME or isinstance(role, Unknown):
        return
    if role not in (SECRETS_ROLE, SCRATCH_ROLE) and not s.protect:
        yield "holds data but is not protected: `pulumi destroy` or a rename would delete it"


def secrets_only_in_files(s: Subject) -> Iterable[str]:
    """Exact where secret paths are known (offline); the pack uses `secret_values_leaked`."""
    if s.secret_paths is None:
        return
    allowed = ALLOWED_SECRET_PATHS.get(s.type)
    for path in sorted(s.secret_paths):
        if allowed is None or not allowed.fullmatch(path):
            yield f"a secret reaches input {path!r}; secrets may reach a container only as files"


def database_networks_closed(s: Subject) -> Iterable[str]:
    """A database network (`<prefix>-<service>-db`) holds that database's server, its service,
    its exporter and the backup job: nothing else reaches a database. Containers only: a Swarm
    service joins networks by ID (the swarm stack's unit tests check its isolation)."""
    if s.type != CONTAINER or not _running(s):
        return
    networks, labels = s.inputs.get("networksAdvanced"), s.inputs.get("labels")
    if not known(networks) or not known(labels):
        return
    values = {str(lb.get("label")): str(lb.get("value")) for lb in labels or []}
    role, service = values.get(ROLE_LABEL), values.get(SERVICE_LABEL, "")
    owner = service.removesuffix("-db-exporter")
    for network in networks or []:
        name = network.get("name")
        if not known(name) or not str(name).endswith("-db") or role == "backup":
            continue
        if role in DATABASE_NETWORK_MEMBERS and str(name).endswith(f"-{owner}-db"):
            continue
        yield (
            f"joins the database network {name} as {role} {service}: only that database's "
            "server, its service, its exporter and the backup job may"
        )


RULES: Sequence[Rule] = (
    Rule("read-only-root", "Containers run with a read-only root filesystem.", read_only_root),
    Rule(
        "drop-all-capabilities", "Containers drop every Linux capability.", all_capabilities_dropped
    ),
    Rule(
        "no-new-privileges",
        "Containers cannot gain privileges (setuid, file capabilities).",
        no_new_privileges,
    ),
    Rule("memory-limit", "Containers have a memory limit.", memory_limit),
    Rule("restart-policy", "Containers come back after a crash or a reboot.", restart_policy),
    Rule("rotated-logs", "Container logs are rotated.", rotated_logs),
    Rule("pinned-image", "Images are pinned to a version tag or a digest.", pinned_image),
    Rule("no-privileged", "No container runs privileged.", not_privileged),
    Rule("no-host-network", "No container shares the host's network.", no_host_network),
    Rule("no-docker-socket", "No container mounts the Docker socket.", no_docker_socket),
    Rule(
        "only-edge-published",
        "Only the edge proxy publishes host ports (and the off-host backups' TLS servers).",
        only_edge_published,
    ),
    Rule(
        "data-volumes-protected", "Data volumes are protected from deletion.", data_volume_protected
    ),
    Rule(
        "secrets-only-in-files",
        "A secret reaches a container only as file content.",
        secrets_only_in_files,
    ),
    Rule(
        "database-networks-closed",
        "Only a database's server, its service, its exporter and the backup job join its network.",
        database_networks_closed,
    ),
)


@dataclass(frozen=True)
class StackRule:
    name: str
    description: str
    check: Callable[[Sequence[Subject]], Iterable[tuple[Subject, str]]]
    """The resources that break it, each with a sentence."""


def pids_limited(subjects: Sequence[Subject]) -> Iterable[tuple[Subject, str]]:
    """Containers only: a Swarm service spec has no PIDs limit (docs/swarm.md)."""
    limits = {s.name.removesuffix("-pids"): s for s in subjects if s.type == PIDS_LIMIT}
    for s in subjects:
        if s.type != CONTAINER or not _running(s):
            continue
        limit = limits.get(s.name.removesuffix("-container"))
        value = limit.inputs.get("pidsLimit") if limit is not None else None
        if value is UNKNOWN:
            continue  # judged at `up`
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
    found = [
        Violation(rule.name, s.urn, s.name, message)
        for rule in rules
        for s in subjects
        for message in rule.check(s)
    ]
    found += [
        Violation(rule.name, s.urn, s.name, message)
        for rule in stack_rules
        for s, message in rule.check(subjects)
    ]
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
        uploads = s.inputs.get("uploads")
        files = [u.get("content") for u in uploads] if isinstance(uploads, Sequence) else []
        data = s.inputs.get("data")
        if s.type == SWARM_SECRET and isinstance(data, str):
            files.append(base64.b64decode(data).decode(errors="replace"))
        for content in (f for f in files if isinstance(f, str)):  # not known yet: at `up`
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
                violations.append(
                    Violation(
                        "secrets-only-in-files",
                        s.urn,
                        s.name,
                        f"input {path!r} holds a secret; "
                        "secrets may reach a container only as files",
                    )
                )
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
