"""The private registry the stack's images are pulled from, which registry an image names,
and the rule that some image of the stack is on it."""

from __future__ import annotations

from collections.abc import Iterable

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


def registry_problems(registry: RegistrySettings, images: Iterable[str]) -> list[str]:
    """Given every image of the stack: whether any is pulled from this registry."""
    if registry.address not in {registry_of(i) for i in images}:
        return [
            f"registry.address: no image of the stack is on {registry.address}; images name "
            "their registry first, as in registry.example.com/shop/api:1.0"
        ]
    return []
