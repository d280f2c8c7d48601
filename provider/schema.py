"""What a change of each input does, per resource type, as the provider decides it.

Source: kreuzwerker/terraform-provider-docker v4.5.0 (the version pulumi-docker 5.x bridges;
its container code is unchanged up to that project's July 2026 head):
- internal/provider/resource_docker_container.go: `ForceNew` (a change replaces the
  container), `Computed` (left out, the provider's value stands), `Default`, `DiffSuppressFunc`;
- internal/provider/resource_docker_container_funcs.go, `resourceDockerContainerUpdate`: the
  only inputs an update applies to a running container (`restart`, `max_retry_count`,
  `cpu_shares`, `memory`, `memory_reservation`, `cpu_set`, `memory_swap`, the block-device
  limits, and `must_run`, which starts a stopped container). Every other input that is not
  `ForceNew` is recorded and nothing more;
- resource_docker_network.go and resource_docker_volume.go for networks and volumes;
- resource_docker_service.go (schema) with resource_docker_service_structures.go (what Read
  writes back) for Swarm services, and resource_docker_secret.go for Swarm secrets. A service
  has an update: `ServiceUpdate` sends the whole spec and Docker rolls the tasks by the
  service's `update_config`; only the few `ForceNew` inputs replace it.
Names are Pulumi's (pulumi-docker's SDK: `envs`, `networksAdvanced`, `uploads`, `tests`, ...).

Only the inputs this program sets, or the provider fills in, are listed; `diff` refuses any
other, so a new input is added here (from the files above) before the program may use it. To
refresh after a provider upgrade: re-read those files at the version pulumi-docker's
`provider/go.mod` pins and compare each entry (pulumi-docker 5.2.0's SDK also lists
`deviceCgroupRules`, newer than v4.5.0: the program does not use it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

CONTAINER = "docker:index/container:Container"
NETWORK = "docker:index/network:Network"
VOLUME = "docker:index/volume:Volume"
SERVICE = "docker:index/service:Service"
SECRET = "docker:index/secret:Secret"
IMAGE = "docker:index/image:Image"
DOCKER_PROVIDER = "pulumi:providers:docker"
RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"
RANDOM_ID = "random:index/randomId:RandomId"

OnChange = Literal["replace", "update", "record", "ignored"]
"""What the provider does when the input changes:
- replace: `ForceNew`, a new resource;
- update: applied to the running container in place;
- record: kept in the state only; it steers the provider itself (`wait`, the stop grace);
- ignored: kept in the state only, though it shapes the container: the change never reaches
  the running container (a program that changes it must ask for a replacement)."""

Kind = Literal["str", "int", "bool", "list", "set", "map", "block", "block_list", "block_set"]
"""How values compare: scalars by value (absent equals the type's zero, as in the provider's
SDK), `list` in order, `set` and `block_set` in any order, `block` a single nested object."""


@dataclass(frozen=True)
class Input:
    on_change: OnChange
    kind: Kind = "str"
    computed: bool = False
    """Left out of the program, the provider's (or the engine's) value stands: no change."""
    default: Any = None
    """The provider's default, filled in when the program leaves the input out."""
    fields: Mapping[str, Input] = field(default_factory=dict)
    """Nested inputs of a block."""


def _block(on_change: OnChange, kind: Kind, computed: bool = False, **fields: Input) -> Input:
    return Input(on_change, kind, computed, fields=fields)


_REPLACE_STR = Input("replace")
_LABELS = _block("replace", "block_set", label=_REPLACE_STR, value=_REPLACE_STR)

CONTAINER_INPUTS: Mapping[str, Input] = {
    "name": _REPLACE_STR,
    "image": _REPLACE_STR,
    "command": Input("replace", "list", computed=True),
    "entrypoints": Input("replace", "list", computed=True),
    # DiffSuppressFunc: left out (""), whatever the image's USER is, nothing changes.
    "user": Input("replace", computed=True),
    "workingDir": Input("replace", computed=True),
    "envs": Input("replace", "set", computed=True),
    "labels": Input("replace", "block_set", computed=True, fields=_LABELS.fields),
    "hostname": Input("replace", computed=True),
    "readOnly": Input("replace", "bool", default=False),
    "privileged": Input("replace", "bool"),
    "capabilities": _block(
        "replace", "block", adds=Input("replace", "set"), drops=Input("replace", "set")
    ),
    "securityOpts": Input("replace", "set", computed=True),
    "networkMode": Input("replace", default="bridge"),
    "networksAdvanced": _block(
        "replace",
        "block_set",
        name=_REPLACE_STR,
        aliases=Input("replace", "set"),
        ipv4Address=_REPLACE_STR,
        ipv6Address=_REPLACE_STR,
    ),
    "ports": _block(
        "replace",
        "block_list",
        internal=Input("replace", "int"),
        external=Input("replace", "int", computed=True),
        ip=Input("replace", default="0.0.0.0"),  # noqa: S104 (the provider's default, not a bind)
        protocol=Input("replace", default="tcp"),
    ),
    "volumes": _block(
        "replace",
        "block_set",
        volumeName=_REPLACE_STR,
        containerPath=_REPLACE_STR,
        hostPath=_REPLACE_STR,
        fromContainer=_REPLACE_STR,
        readOnly=Input("replace", "bool"),
    ),
    "uploads": _block(
        "replace",
        "block_set",
        file=_REPLACE_STR,
        content=_REPLACE_STR,
        contentBase64=_REPLACE_STR,
        source=_REPLACE_STR,
        permissions=_REPLACE_STR,
        executable=Input("replace", "bool", default=False),
    ),
    "logDriver": Input("replace", computed=True),
    "logOpts": Input("replace", "map"),
    "shmSize": Input("replace", "int", computed=True),
    "cpus": _REPLACE_STR,
    "stopSignal": Input("replace", computed=True),
    "stopTimeout": Input("replace", "int", computed=True),
    "ipcMode": Input("replace", computed=True),
    "runtime": Input("replace", computed=True),
    "platform": Input("replace", computed=True),
    "restart": Input("update", default="no"),
    "maxRetryCount": Input("update", "int"),
    "memory": Input("update", "int"),
    "memorySwap": Input("update", "int"),
    "memoryReservation": Input("update", "int", default=0),
    "cpuShares": Input("update", "int"),
    "mustRun": Input("update", "bool", default=True),
    "start": Input("ignored", "bool", default=True),
    "rm": Input("ignored", "bool", default=False),
    "init": Input("ignored", "bool", computed=True),
    "tmpfs": Input("ignored", "map"),
    "healthcheck": _block(
        "ignored",
        "block",
        computed=True,
        tests=Input("ignored", "list"),
        interval=Input("ignored", default="0s"),
        timeout=Input("ignored", default="0s"),
        startPeriod=Input("ignored", default="0s"),
        startInterval=Input("ignored", default="0s"),
        retries=Input("ignored", "int", default=0),
    ),
    "wait": Input("record", "bool", default=False),
    "waitTimeout": Input("record", "int", default=60),
    "destroyGraceSeconds": Input("record", "int"),
    "removeVolumes": Input("record", "bool", default=True),
}

NETWORK_INPUTS: Mapping[str, Input] = {
    "name": _REPLACE_STR,
    "labels": _LABELS,
    "driver": Input("replace", computed=True),
    "internal": Input("replace", "bool", computed=True),
    "options": Input("replace", "map", computed=True),
    "attachable": Input("replace", "bool"),
    "ingress": Input("replace", "bool"),
    "ipv6": Input("replace", "bool"),
    "ipamDriver": Input("replace", default="default"),
    "ipamConfigs": Input("replace", "block_set", computed=True),
}

VOLUME_INPUTS: Mapping[str, Input] = {
    "name": Input("replace", computed=True),
    "labels": _LABELS,
    "driver": Input("replace", computed=True),
    "driverOpts": Input("replace", "map"),
}

_UPDATE_STR = Input("update")
_UPDATE_INT = Input("update", "int")


# `update_config` and `rollback_config`: the provider's defaults, all applied in place.
_ROLLOUT = _block(
    "update",
    "block",
    parallelism=Input("update", "int", default=1),
    delay=Input("update", default="0s"),
    failureAction=Input("update", default="pause"),
    monitor=Input("update", default="5s"),
    maxFailureRatio=Input("update", default="0.0"),
    order=Input("update", default="stop-first"),
)

_SERVICE_CONTAINER = _block(
    "update",
    "block",
    image=_UPDATE_STR,
    commands=Input("update", "list"),
    args=Input("update", "list"),
    env=Input("update", "map"),
    user=_UPDATE_STR,
    dir=_UPDATE_STR,
    hostname=_UPDATE_STR,
    readOnly=Input("update", "bool"),
    capAdds=Input("update", "list"),
    capDrops=Input("update", "list"),
    # Optional+Computed; the provider sends `Init: false` when left out (API >= 1.37).
    init=Input("update", "bool", computed=True),
    isolation=Input("update", default="default"),
    stopSignal=_UPDATE_STR,
    # Optional+Computed, but left out it is sent as 0 (SIGKILL at once): the program sets it.
    stopGracePeriod=Input("update", computed=True),
    mounts=_block(
        "update",
        "block_set",
        target=_UPDATE_STR,
        source=_UPDATE_STR,
        type=_UPDATE_STR,
        readOnly=Input("update", "bool"),
        tmpfsOptions=_block("update", "block", sizeBytes=_UPDATE_INT, mode=_UPDATE_INT),
        volumeOptions=_block(
            "update",
            "block",
            noCopy=Input("update", "bool"),
            labels=_block("update", "block_set", label=_UPDATE_STR, value=_UPDATE_STR),
            driverName=_UPDATE_STR,
        ),
    ),
    healthcheck=_block(
        "update",
        "block",
        computed=True,
        tests=Input("update", "list"),
        interval=Input("update", default="0s"),
        timeout=Input("update", default="0s"),
        startPeriod=Input("update", default="0s"),
        retries=Input("update", "int", default=0),
    ),
    secrets=_block(
        "update",
        "block_set",
        secretId=_UPDATE_STR,
        secretName=_UPDATE_STR,
        fileName=_UPDATE_STR,
        fileUid=Input("update", default="0"),
        fileGid=Input("update", default="0"),
        fileMode=Input("update", "int", default=0o444),
    ),
)

_LIMITS = _block("update", "block", nanoCpus=_UPDATE_INT, memoryBytes=_UPDATE_INT)

SERVICE_INPUTS: Mapping[str, Input] = {
    "name": _REPLACE_STR,
    # labelSchemaUpdatable: a service's own labels change in place (its container's do not).
    "labels": _block("update", "block_set", computed=True, label=_UPDATE_STR, value=_UPDATE_STR),
    "taskSpec": _block(
        "update",
        "block",
        containerSpec=_SERVICE_CONTAINER,
        resources=_block(
            "update",
            "block",
            computed=True,
            limits=_LIMITS,
            reservation=_block(
                "update",
                "block",
                nanoCpus=_UPDATE_INT,
                memoryBytes=_UPDATE_INT,
                # A block of at most one item: an object in Pulumi's names.
                genericResources=_block(
                    "update",
                    "block",
                    discreteResourcesSpecs=Input("update", "set"),
                    namedResourcesSpecs=Input("update", "set"),
                ),
            ),
        ),
        restartPolicy=_block(
            "update",
            "block",
            computed=True,
            condition=_UPDATE_STR,
            delay=_UPDATE_STR,
            maxAttempts=_UPDATE_INT,
            window=_UPDATE_STR,
        ),
        placement=_block(
            "update",
            "block",
            computed=True,
            constraints=Input("update", "set"),
            prefs=Input("update", "set"),
            maxReplicas=_UPDATE_INT,
            platforms=Input("update", "block_set", computed=True),
        ),
        logDriver=_block("update", "block", name=_UPDATE_STR, options=Input("update", "map")),
        # Every field of a network attachment is ForceNew: joining or leaving a network
        # replaces the service.
        networksAdvanceds=_block(
            "replace",
            "block_set",
            id=_REPLACE_STR,
            name=_REPLACE_STR,
            aliases=Input("replace", "set"),
            driverOpts=Input("replace", "set"),
        ),
        forceUpdate=Input("update", "int", computed=True),
        runtime=Input("update", computed=True),
    ),
    # ForceNew applies to the block's count only: the program always sets it, and a new
    # replica count is an update.
    "mode": _block(
        "update",
        "block",
        computed=True,
        replicated=_block("update", "block", replicas=Input("update", "int", default=1)),
        **{"global": Input("update", "bool")},
    ),
    "updateConfig": _ROLLOUT,
    "rollbackConfig": _ROLLOUT,
    "endpointSpec": _block(
        "update",
        "block",
        computed=True,
        mode=Input("update", computed=True),
        ports=_block(
            "update",
            "block_list",
            name=_UPDATE_STR,
            protocol=Input("update", default="tcp"),
            targetPort=_UPDATE_INT,
            publishedPort=_UPDATE_INT,
            publishMode=Input("update", default="ingress"),
        ),
    ),
    # Steers the provider only: how long create and update wait for the tasks.
    "convergeConfig": _block(
        "record",
        "block",
        delay=Input("record", default="7s"),
        timeout=Input("record", default="3m"),
    ),
}

# No update and no import: every input is ForceNew, and Read sets only `name` (the data is not
# readable back, so a secret changed on the engine is never noticed).
SECRET_INPUTS: Mapping[str, Input] = {
    "name": _REPLACE_STR,
    "data": _REPLACE_STR,
    "labels": _LABELS,
}

# The program's own dynamic resource (components/pids_limit.py, `PidsLimitProvider.diff`): a
# new container gets a new limit resource, an edited limit is applied in place. Its serialized
# provider (`__provider`) is left out of the recording and of its diff.
PIDS_LIMIT = "pulumi-python:dynamic/ecommerce:PidsLimit"
PIDS_LIMIT_INPUTS: Mapping[str, Input] = {
    "containerId": _REPLACE_STR,
    "pidsLimit": Input("update", "int"),
    "dockerHost": Input("update"),
}

# The program's traffic gate (components/traffic_gate.py, `TrafficGateProvider.diff`): a new
# container gets a new gate (it waits and joins it again); new aliases join the same container
# again in place; the wait and the name change nothing on the engine.
TRAFFIC_GATE = "pulumi-python:dynamic/ecommerce:TrafficGate"
TRAFFIC_GATE_INPUTS: Mapping[str, Input] = {
    "containerId": _REPLACE_STR,
    "containerName": Input("record"),
    "networks": Input("update", "list"),
    "waitSeconds": Input("record", "int"),
    "dockerHost": Input("update"),
}

INPUTS: Mapping[str, Mapping[str, Input]] = {
    CONTAINER: CONTAINER_INPUTS,
    NETWORK: NETWORK_INPUTS,
    VOLUME: VOLUME_INPUTS,
    SERVICE: SERVICE_INPUTS,
    SECRET: SECRET_INPUTS,
    PIDS_LIMIT: PIDS_LIMIT_INPUTS,
    TRAFFIC_GATE: TRAFFIC_GATE_INPUTS,
}

# Resources whose every change is an update, never a replacement. pulumi-docker's `Image` is
# its own native resource, not the Terraform provider's (provider/provider.go, `Diff`): any
# change of its inputs (including `build.contextDigest`, the hash of the build context and the
# Dockerfile that its `Check` adds) is an update, which builds again; an unchanged context is
# not built at all. A provider's configuration is updated too (`DiffConfig`).
UPDATED_ONLY = {IMAGE, DOCKER_PROVIDER}

# pulumi-docker's provider/resources.go sets `DeleteBeforeReplace: true` for docker_container:
# the provider asks for every container replacement to delete the old one first (an explicit
# `delete_before_replace` resource option on the container overrides it).
DELETE_BEFORE_REPLACE = {CONTAINER}


def container_inputs_never_applied() -> list[str]:
    """Inputs that shape a container but that an update never applies: changing one must
    replace the container (Docker applies them only when it creates one)."""
    return sorted(name for name, spec in CONTAINER_INPUTS.items() if spec.on_change == "ignored")
