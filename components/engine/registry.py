"""The program's own Docker provider, made when the stack pulls from a private registry.

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
    registry: RegistrySettings,
    password: pulumi.Input[str] | None,
    docker_config: Mapping[str, str],
    parent: pulumi.Resource,
) -> docker.Provider:
    login = docker.ProviderRegistryAuthArgs(address=registry.address)
    if registry.username is not None:
        login = docker.ProviderRegistryAuthArgs(
            address=registry.address,
            username=registry.username,
            password=pulumi.Output.secret(password) if password is not None else None,
        )
    return docker.Provider(
        name,
        registry_auth=[login],
        # The stack's `docker:host`/`docker:context`, which only the default provider reads by
        # itself; unset, both providers fall back to DOCKER_HOST / DOCKER_CONTEXT.
        host=docker_config.get("host"),
        context=docker_config.get("context"),
        opts=pulumi.ResourceOptions(parent=parent),
    )
