"""Private images pull on a fresh host: the stack's registry login reaches the Docker provider."""

from __future__ import annotations

from typing import Any

import pytest

from stacks.loader import StackConfigError
from tests.graph import Graph, Resource, run_program
from tests.unit.conftest import edited

PASSWORD_KEY = "ecommerce:registryPassword"


def docker_providers(graph: Graph) -> list[Resource]:
    return graph.of_type("pulumi:providers:docker")


def test_prod_pulls_with_the_login_of_its_stack_file(prod_graph: Graph) -> None:
    (provider,) = docker_providers(prod_graph)
    # Provider inputs reach the engine as JSON text; the password stays a secret inside it.
    assert provider.inputs["registryAuth"] == (
        '[{"address": "registry.example.com", "password": "registry-password-for-tests", '
        '"username": "deploy"}]'
    )
    assert provider.is_secret("registryAuth")
    docker_resources = [r for r in prod_graph.resources if r.type.startswith("docker:")]
    assert docker_resources
    for r in docker_resources:
        assert r.provider.startswith(provider.urn + "::"), r.name


def test_dev_with_local_images_needs_no_login(dev_graph: Graph) -> None:
    assert docker_providers(dev_graph) == []
    assert {r.provider for r in dev_graph.resources} == {""}


def test_without_a_username_the_provider_uses_docker_login() -> None:
    def docker_login(platform: dict[str, Any]) -> None:
        platform["registry"] = {"address": "registry.example.com"}

    config = edited("prod", docker_login)
    config.pop(PASSWORD_KEY)
    (provider,) = docker_providers(run_program("prod", config))
    assert provider.inputs["registryAuth"] == '[{"address": "registry.example.com"}]'


def test_the_stacks_docker_host_reaches_the_programs_provider() -> None:
    config = edited("prod", lambda p: None)
    config["docker:host"] = "ssh://deploy@shop-host"
    (provider,) = docker_providers(run_program("prod", config))
    assert provider.inputs["host"] == "ssh://deploy@shop-host"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.pop(PASSWORD_KEY),
         r"ecommerce:registryPassword is missing: registry\.username is set.*pulumi config set "
         r"--secret ecommerce:registryPassword"),
        (lambda c: c["ecommerce:platform"]["registry"].pop("username"),
         r"ecommerce:registryPassword is set but ecommerce:platform\.registry\.username is not"),
        (lambda c: c.update({"docker:sshOpts": '["-i", "key"]'}),
         r"docker:sshOpts does not reach the program's Docker provider"),
    ],
    ids=["username-without-password", "password-without-username", "docker-option-dropped"],
)  # fmt: skip
def test_an_incomplete_login_is_refused(change: Any, message: str) -> None:
    config = edited("prod", lambda p: None)
    change(config)
    with pytest.raises(StackConfigError, match=message):
        run_program("prod", config)
