"""The private registry the stack's images are pulled from, and which registry an image
names."""

from __future__ import annotations

from pydantic import Field

from stacks.settings.common import StrictModel


class RegistrySettings(StrictModel):
    """The private registry the stack's images are pulled from."""

    address: str = Field(pattern=r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?$")
    """Host (and port) as it starts the image names, e.g. `registry.example.com`."""
    username: str | None = Field(default=None, min_length=1)
    """Login; its password is the secret `ecommerce:registryPassword`. Left out, the Docker
    provider uses what `docker login <address>` stored on the machine that runs Pulumi."""


def registry_of(image: str) -> str | None:
    """The registry host an image is pulled from, when its name gives one (Docker's rule: a
    first component with a dot or a port, or `localhost`); None for Docker Hub."""
    first, slash, _ = image.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first
    return None
