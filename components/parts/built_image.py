"""A service image built from source on the Docker host, for stacks that say `build:`.

pulumi-docker's `Image` builds it (never pushed) and gives the local image ID as `repo_digest`.
The container runs that ID, not the tag: a rebuild that changes the image replaces the
container, and an unchanged context is not rebuilt at all (the provider hashes the context and
the Dockerfile when it checks the inputs), so it changes nothing.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Protocol

import pulumi
import pulumi_docker as docker

from stacks.settings import BuildSettings

LOCAL_TAG = "local"


class ImageSource(Protocol):
    """Settings that name exactly one of a published image and a build (a service, the edge)."""

    @property
    def image(self) -> str | None: ...
    @property
    def build(self) -> BuildSettings | None: ...


def service_image(
    name: str,
    settings: ImageSource,
    docker_name: str,
    parent: pulumi.Resource,
    provider: pulumi.ProviderResource | None = None,
) -> pulumi.Input[str]:
    """The image a container runs: its published image, or the ID of the one built on the host
    `provider` reaches (None: the stack's)."""
    if settings.image is not None:
        return settings.image
    assert settings.build is not None  # the settings require exactly one of the two
    return _build(name, settings.build, docker_name, parent, provider)


def _build(
    name: str,
    build: BuildSettings,
    docker_name: str,
    parent: pulumi.Resource,
    provider: pulumi.ProviderResource | None,
) -> pulumi.Output[str]:
    # The stack file names the Dockerfile within the context, as Compose does; pulumi-docker
    # reads a `dockerfile` it is given from the project folder (its default is
    # <context>/Dockerfile), so it gets the path from here.
    dockerfile = str(PurePosixPath(build.context) / build.dockerfile) if build.dockerfile else None
    image = docker.Image(
        name,
        image_name=f"{docker_name}:{LOCAL_TAG}",
        build=docker.DockerBuildArgs(
            context=build.context,
            dockerfile=dockerfile,
            args=dict(build.args) or None,
            platform=build.platform,
        ),
        skip_push=True,
        opts=pulumi.ResourceOptions(parent=parent, provider=provider),
    )
    return image.repo_digest
