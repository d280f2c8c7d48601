"""Files a workload reads (secrets, and the configuration beside them), written before it starts.

Why not environment variables: a secret inside a container's `envs` turns the whole list into a
secret, so a preview no longer shows which ordinary settings change, and `docker inspect`
prints them. Why not `uploads` on the consuming container: Docker refuses any copy into a
container whose root filesystem is read-only, even into a mounted volume (prod roots are).

So the engine writes them where the consumer mounts them read-only: on one Docker host a named
volume filled by a "seed" container that is created but never started (writable root, no
network, no capabilities); on a swarm a Swarm secret per file. The consumer reads `*_FILE`-style
paths under its mount (/run/secrets unless it reads them elsewhere).

Changing a file draws a new random revision (a `RandomId` kept by the contents); the consumer
carries the revision as a label, so it is replaced too and starts with the new file. The label
reveals nothing about the secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_random as random

from components.engine.base import Delivery, Engine, FileContents
from components.engine.workload import FileMount

MOUNT_PATH = "/run/secrets"
REVISION_LABEL = "com.ecommerce.secrets-revision"


@dataclass(frozen=True)
class SecretFilesArgs:
    docker_name: str
    """Base of the Docker names of what holds the files (on one host the volume; its seed is
    `<docker_name>-seed`)."""
    image: pulumi.Input[str]
    """Any image already on the host (the consumer's); the seed never runs it."""
    files: Mapping[str, pulumi.Input[str]]
    """File name -> content. Every content is kept a Pulumi secret."""
    labels: Mapping[str, str]
    engine: Engine
    plain_files: Mapping[str, str] = field(default_factory=dict)
    """Files that are not secret (a configuration the secrets sit beside): shown in previews
    and plans, so a reviewer sees what changes."""
    home: str | None = None
    """The consumer's home (`Workload.home`): the files are written where it runs."""


class SecretFiles(pulumi.ComponentResource):
    """One consumer's files, written by the stack's engine."""

    delivered: Delivery
    """How the engine wrote them: only that engine reads it (`Engine.run`)."""
    revision: pulumi.Output[str]
    """Changes whenever any file's content changes; not derived from the contents."""

    def __init__(
        self, name: str, args: SecretFilesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ecommerce:index:SecretFiles", name, None, opts)
        contents = _contents(args)
        revision = random.RandomId(
            f"{name}-revision",
            byte_length=8,
            keepers=contents,
            opts=pulumi.ResourceOptions(parent=self),
        )
        # Seeds, their volumes and Swarm secrets are listed apart from what they serve.
        labels = {**args.labels, "com.ecommerce.role": "secrets"}
        self.delivered = args.engine.deliver_files(
            name,
            FileContents(args.docker_name, args.image, contents, labels, args.home),
            revision.hex,
            self,
        )
        self.revision = revision.hex
        self.register_outputs({"volume_name": self.delivered.volume_name})

    def revision_label(self, suffix: str = "") -> dict[str, pulumi.Input[str]]:
        """The label a consumer carries so that a changed file replaces it; a consumer of
        several sets names each further one by a suffix."""
        return {REVISION_LABEL + (f"-{suffix}" if suffix else ""): self.revision}

    def mount(self, container_path: str = MOUNT_PATH) -> FileMount:
        """The consumer's read-only mount of the files (at /run/secrets unless it reads them
        elsewhere); the consumer starts after they are written."""
        return FileMount(self, container_path)


def _contents(args: SecretFilesArgs) -> dict[str, pulumi.Input[str]]:
    """Every file by name: the secret ones as Pulumi secrets, the plain ones as they are."""
    overlap = set(args.files) & set(args.plain_files)
    assert not overlap, f"files both secret and plain: {sorted(overlap)}"
    secret = {name: pulumi.Output.secret(content) for name, content in args.files.items()}
    return {**secret, **args.plain_files}


def secret_path(file_name: str) -> str:
    """Where a consumer reads a file of its set mounted at /run/secrets."""
    return f"{MOUNT_PATH}/{file_name}"
