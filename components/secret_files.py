"""Secrets as files in a volume, written before the consuming container starts.

Why not environment variables: a secret inside a container's `envs` turns the whole list into a
secret, so a preview no longer shows which ordinary settings change, and `docker inspect`
prints them. Why not `uploads` on the consuming container: Docker refuses any copy into a
container whose root filesystem is read-only, even into a mounted volume (prod roots are).

So: a named volume, and a "seed" container that is created but never started, with a writable
root, no network and no capabilities, whose `uploads` the provider copies into the volume. The
consumer mounts the volume read-only at `/run/secrets` and reads `*_FILE`-style paths.

Changing a secret replaces the seed, which rewrites the file, and draws a new random revision
(a `RandomId` kept by the secret contents); the consumer carries the revision as a label, so it
is replaced too and starts with the new file. The label reveals nothing about the secret.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_docker as docker
import pulumi_random as random

from components.runtime import labelled_volume
from components.workload import FileMount
from provider.diff import INIT_ERROR

MOUNT_PATH = "/run/secrets"
REVISION_LABEL = "com.ecommerce.secrets-revision"


@dataclass(frozen=True)
class SecretFilesArgs:
    docker_name: str
    """Name of the volume in Docker; the seed container is `<docker_name>-seed`."""
    image: pulumi.Input[str]
    """Any image already on the host (the consumer's); the seed never runs it."""
    files: Mapping[str, pulumi.Input[str]]
    """File name under /run/secrets -> content. Every content is kept a Pulumi secret."""
    labels: Mapping[str, str]
    plain_files: Mapping[str, str] = field(default_factory=dict)
    """Files that are not secret (a configuration the secrets sit beside): shown in previews
    and plans, so a reviewer sees what changes."""
    swarm: bool = False
    """Swarm secrets instead of a volume (the stack runs on a swarm)."""


class SecretFiles(pulumi.ComponentResource):
    """One consumer's secret files: a read-only-mountable volume on one Docker host, Swarm
    secrets on a swarm."""

    volume_name: pulumi.Output[str] | None
    seed: docker.Container | None
    """Consumers depend on it so the files exist before they start (one Docker host)."""
    secrets: dict[str, docker.Secret]
    """File name -> its Swarm secret (on a swarm)."""
    revision: pulumi.Output[str]
    """Changes whenever any file's content changes; not derived from the contents."""

    def __init__(
        self, name: str, args: SecretFilesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ecommerce:index:SecretFiles", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # Seeds, their volumes and Swarm secrets are listed apart from what they serve.
        labels = {**args.labels, "com.ecommerce.role": "secrets"}
        self.volume_name, self.seed, self.secrets = None, None, {}
        if args.swarm:
            revision = _revision(name, args, child)
            self.secrets = _swarm_secrets(name, args, labels, revision.hex, child)
        else:
            volume = labelled_volume(f"{name}-volume", args.docker_name, labels, child)
            self.seed = _seed(name, args, labels, volume, self)
            revision = _revision(name, args, child)
            self.volume_name = volume.name
        self.revision = revision.hex
        self.register_outputs({"volume_name": self.volume_name})

    def revision_label(self, suffix: str = "") -> dict[str, pulumi.Input[str]]:
        """The label a consumer carries so that a changed secret replaces it; a consumer of
        several sets names each further one by a suffix."""
        return {REVISION_LABEL + (f"-{suffix}" if suffix else ""): self.revision}

    def mount(self, container_path: str = MOUNT_PATH) -> FileMount:
        """The consumer's read-only mount of the files (at /run/secrets unless it reads them
        elsewhere); the consumer starts after they are written."""
        return FileMount(self, container_path)


def _seed(
    name: str,
    args: SecretFilesArgs,
    labels: Mapping[str, str],
    volume: docker.Volume,
    parent: pulumi.Resource,
) -> docker.Container:
    """The container, never started, whose uploads write the files into the volume."""
    return docker.Container(
        f"{name}-seed",
        name=f"{args.docker_name}-seed",
        image=args.image,
        start=False,
        must_run=False,
        network_mode="none",
        capabilities=docker.ContainerCapabilitiesArgs(drops=["ALL"]),
        volumes=[docker.ContainerVolumeArgs(volume_name=volume.name, container_path=MOUNT_PATH)],
        uploads=[
            docker.ContainerUploadArgs(
                file=f"{MOUNT_PATH}/{file_name}",
                content=content,
                # World-readable inside the one container that mounts the volume, so the
                # image's unprivileged user can read it whatever its uid.
                permissions="0444",
            )
            for file_name, content in sorted(_contents(args).items())
        ],
        labels=[docker.ContainerLabelArgs(label=k, value=v) for k, v in labels.items()],
        # A seed whose uploads failed after it was created is recorded with an initialisation
        # error: the next `pulumi up` writes the files again instead of a no-op update.
        # Its image only has to exist when the seed is created (it never runs), so a new
        # image of the consumer does not rewrite the secrets: Docker keeps an image a
        # container was created from, and a replaced seed reuses it.
        opts=pulumi.ResourceOptions(
            parent=parent,
            delete_before_replace=True,
            replace_on_changes=[INIT_ERROR],
            ignore_changes=["image"],
        ),
    )


def _revision(name: str, args: SecretFilesArgs, opts: pulumi.ResourceOptions) -> random.RandomId:
    return random.RandomId(f"{name}-revision", byte_length=8, keepers=_contents(args), opts=opts)


def _swarm_secrets(
    name: str,
    args: SecretFilesArgs,
    labels: Mapping[str, str],
    revision: pulumi.Output[str],
    opts: pulumi.ResourceOptions,
) -> dict[str, docker.Secret]:
    """A Swarm secret per file. Swarm secrets never change: a new content is a new secret
    under a new name (the revision is in it), created before the services move to it, and
    the old one deleted after them (Pulumi's create-before-delete)."""
    return {
        file_name: docker.Secret(
            f"{name}-{file_name}",
            name=pulumi.Output.from_input(revision).apply(
                functools.partial(swarm_secret_name, args.docker_name, file_name)
            ),
            # Standard base64 with padding: the provider's validator and create both decode
            # with Go's StdEncoding, whatever its documentation says.
            data=pulumi.Output.from_input(content).apply(
                lambda text: base64.b64encode(text.encode()).decode()
            ),
            labels=[docker.SecretLabelArgs(label=k, value=v) for k, v in labels.items()],
            opts=opts,
        )
        for file_name, content in sorted(_contents(args).items())
    }


SWARM_NAME_MAX = 64
"""Swarm refuses a longer secret name (swarmkit's validateName: 64 of [a-zA-Z0-9-_.])."""


def swarm_secret_name(docker_name: str, file_name: str, revision: str) -> str:
    """`<consumer>-<file>-<revision>` within Swarm's 64 characters: a long consumer and file
    name is cut and ends in a digest of what was cut, so that two never meet. The revision
    is kept whole: it is what makes a new value a new name."""
    base = f"{docker_name}-{_slug(file_name)}"
    room = SWARM_NAME_MAX - 1 - len(revision)
    if len(base) > room:
        digest = hashlib.sha256(base.encode()).hexdigest()[:6]
        base = f"{base[: room - 7].rstrip('-')}-{digest}"
    return f"{base}-{revision}"


def _slug(file_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", file_name).strip("-")


def _contents(args: SecretFilesArgs) -> dict[str, pulumi.Input[str]]:
    """Every file by name: the secret ones as Pulumi secrets, the plain ones as they are."""
    overlap = set(args.files) & set(args.plain_files)
    assert not overlap, f"files both secret and plain: {sorted(overlap)}"
    secret = {name: pulumi.Output.secret(content) for name, content in args.files.items()}
    return {**secret, **args.plain_files}


def secret_path(file_name: str) -> str:
    return f"{MOUNT_PATH}/{file_name}"
