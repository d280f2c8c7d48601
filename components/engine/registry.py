"""The program's own Docker providers: the stack's, made when it pulls from a private
registry, and one per other Docker host (the off-host backup repository's), with the same login.

pulumi-docker pulls a missing image only with the credentials of its provider's `registryAuth`
(kreuzwerker provider.go, `providerSetToRegistryAuth`; `pullImage` picks them by the image's
registry host); the default provider has none unless `docker:registryAuth` is set by hand. So a
stack whose file names a registry gets an explicit provider carrying it:
- with `registry.username`, the password from the secret `ecommerce:registryPassword`;
- without, the provider reads what `docker login <address>` stored (`~/.docker/config.json`,
  or `$DOCKER_CONFIG`, credential helpers included) on the machine that runs Pulumi.
Stacks without a registry (dev, local images) keep the default provider.
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_docker as docker

from stacks.settings import RegistrySettings


def docker_provider(
    name: str,
    registry: RegistrySettings | None,
    password: pulumi.Input[str] | None,
    docker_config: Mapping[str, str],
    parent: pulumi.Resource,
) -> docker.Provider:
    """A Docker provider of the host `docker_config` names, pulling with the registry's login
    (None: local images only)."""
    return docker.Provider(
        name,
        registry_auth=None if registry is None else [_login(registry, password)],
        # The stack's `docker:host`/`docker:context`, which only the default provider reads by
        # itself; unset, both providers fall back to DOCKER_HOST / DOCKER_CONTEXT.
        host=docker_config.get("host"),
        context=docker_config.get("context"),
        opts=pulumi.ResourceOptions(parent=parent),
    )


def _login(
    registry: RegistrySettings, password: pulumi.Input[str] | None
) -> docker.ProviderRegistryAuthArgs:
    if registry.username is None:
        return docker.ProviderRegistryAuthArgs(address=registry.address)
    return docker.ProviderRegistryAuthArgs(
        address=registry.address,
        username=registry.username,
        password=pulumi.Output.secret(password) if password is not None else None,
    )
