"""Private images pull on a fresh host: the stack's registry login reaches the Docker provider."""

from __future__ import annotations

from typing import Any

import pytest

from plan.recorder import Graph, Resource, run_program
from stacks.loader import StackConfigError
from stacks.settings import OFF_HOST_HOME
from tests.unit.conftest import edited

PASSWORD_KEY = "ecommerce:registryPassword"


def docker_providers(graph: Graph) -> list[Resource]:
    """The stack's own host's provider: not the off-host repository's (prod has one)."""
    return [p for p in graph.of_type("pulumi:providers:docker") if OFF_HOST_HOME not in p.name]


def repository_host_provider(graph: Graph) -> Resource:
    (provider,) = [p for p in graph.of_type("pulumi:providers:docker") if OFF_HOST_HOME in p.name]
    return provider


def with_deploy_user(platform: dict[str, Any]) -> None:
    platform["registry"]["username"] = "deploy"


def deploy_user_config() -> dict[str, Any]:
    """Prod with a deploy user, and its password as `pulumi config set --secret` leaves it."""
    config = edited("prod", with_deploy_user)
    config[PASSWORD_KEY] = "registry-token-for-tests"
    return config


def test_prod_pulls_with_the_docker_login_of_the_deploying_machine(prod_graph: Graph) -> None:
    (provider,) = docker_providers(prod_graph)
    # Provider inputs reach the engine as JSON text. No username: the provider reads the
    # credentials `docker login registry.example.com` stored.
    assert provider.inputs["registryAuth"] == '[{"address": "registry.example.com"}]'
    # The off-host repository's host pulls the same way, with a provider of its own.
    other = repository_host_provider(prod_graph)
    assert other.inputs["registryAuth"] == provider.inputs["registryAuth"]
    docker_resources = [r for r in prod_graph.resources if r.type.startswith("docker:")]
    assert docker_resources
    for r in docker_resources:
        assert r.provider.startswith((provider.urn + "::", other.urn + "::")), r.name


def test_a_deploy_user_pulls_with_its_password_kept_secret() -> None:
    graph = run_program("prod", deploy_user_config(), secret_keys=[PASSWORD_KEY])
    (provider,) = docker_providers(graph)
    assert provider.inputs["registryAuth"] == (
        '[{"address": "registry.example.com", "password": "registry-token-for-tests", '
        '"username": "deploy"}]'
    )
    assert provider.is_secret("registryAuth")
    assert repository_host_provider(graph).is_secret("registryAuth")


def test_dev_with_local_images_needs_no_login(dev_graph: Graph) -> None:
    assert docker_providers(dev_graph) == []
    assert {r.provider for r in dev_graph.resources} == {""}


def test_the_stacks_docker_host_reaches_the_programs_provider() -> None:
    config = edited("prod", lambda p: None)
    config["docker:host"] = "tcp://shop-host:2376"
    (provider,) = docker_providers(run_program("prod", config))
    assert provider.inputs["host"] == "tcp://shop-host:2376"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda c: c.pop(PASSWORD_KEY),
            r"ecommerce:registryPassword is missing: registry\.username is set.*pulumi config set "
            r"--secret ecommerce:registryPassword",
        ),
        (
            lambda c: c["ecommerce:platform"]["registry"].pop("username"),
            r"ecommerce:registryPassword is set but ecommerce:platform\.registry\.username is not",
        ),
        (
            lambda c: c.update({"docker:sshOpts": '["-i", "key"]'}),
            r"docker:sshOpts does not reach the registry's Docker provider and the containers' "
            r"PIDs limits",
        ),
    ],
    ids=["username-without-password", "password-without-username", "docker-option-dropped"],
)
def test_an_incomplete_login_is_refused(change: Any, message: str) -> None:
    config = deploy_user_config()
    change(config)
    with pytest.raises(StackConfigError, match=message):
        run_program("prod", config, secret_keys=[PASSWORD_KEY] if PASSWORD_KEY in config else [])
