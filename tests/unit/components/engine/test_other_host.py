"""A home placed on another Docker host (the off-host backup repository's): its container, its
PIDs limit, its volumes and its files go there, through that host's provider; nothing else
does. The engine layer decides it alone (components/engine/containers.py, `elsewhere`)."""

from __future__ import annotations

import json

import pulumi
import pulumi_docker as docker

from components.engine import engine_for
from components.engine.containers import ContainerEngine, OtherHost
from components.engine.files import SecretFiles, SecretFilesArgs
from components.engine.profile import RuntimeProfile
from components.engine.workload import ImageNeeds, Mount, Workload
from plan.recorder import Graph, Resource, run_under_mocks
from stacks.catalogue import PLATFORM
from stacks.settings import OFF_HOST_HOME, PlatformSettings
from tests.unit.conftest import SETTINGS_KEY, edited

STACK_HOST = "tcp://shop-1:2376"
BACKUP_HOST = "tcp://backup-1:2376"
PROFILE = RuntimeProfile(
    hardening=PlatformSettings.model_fields["hardening"].default,
    logs=PlatformSettings.model_fields["logs"].default,
    restart="unless-stopped",
    health=PlatformSettings.model_fields["health_check"].default,
    wait_timeout_seconds=120,
)


def workload(name: str, home: str | None, volume: docker.Volume, files: SecretFiles) -> Workload:
    return Workload(
        name=name,
        docker_name=f"shop-{name}",
        image="ecommerce/postgres-pitr:16",
        needs=ImageNeeds(non_root_user="postgres"),
        resources=PlatformSettings.model_fields["pitr"].default.resources,
        health_test=["CMD", "true"],
        labels={},
        stop_grace_seconds=10,
        pids_limit=128,
        mounts=[Mount(volume.name, "/data"), files.mount()],
        home=home,
    )


def placed_graph() -> Graph:
    def program() -> None:
        parent = pulumi.ComponentResource("test:index:Holder", "holder")
        backup_docker = docker.Provider("backup-docker", host=BACKUP_HOST)
        engine = ContainerEngine(
            PROFILE, STACK_HOST, elsewhere={OFF_HOST_HOME: OtherHost(BACKUP_HOST, backup_docker)}
        )
        for name, home in (("repository", OFF_HOST_HOME), ("order-db", "order-db")):
            volume = engine.volume(f"{name}-data", f"shop-{name}-data", {}, parent, home=home)
            files = SecretFiles(
                f"{name}-files",
                SecretFilesArgs(f"shop-{name}-files", "img", {"key": "s"}, {}, engine, home=home),
                opts=pulumi.ResourceOptions(parent=parent),
            )
            engine.run(workload(name, home, volume, files), parent)

    return run_under_mocks(program, "prod", {})


def provider_of(resource: Resource) -> str:
    """The URN of the resource's explicit provider (recorded as `urn::id`); "" for none."""
    return resource.provider.rsplit("::", 1)[0]


def test_a_home_on_another_host_runs_there_and_nothing_else_does() -> None:
    graph = placed_graph()
    (backup_docker,) = graph.of_type("pulumi:providers:docker")
    assert backup_docker.inputs["host"] == BACKUP_HOST
    docker_objects = [
        r
        for r in graph.resources
        if r.type in ("docker:index/container:Container", "docker:index/volume:Volume")
    ]
    on_backup_host = {r.name for r in docker_objects if provider_of(r) == backup_docker.urn}
    assert on_backup_host == {
        "repository-data",
        "repository-container",
        "repository-files-volume",
        "repository-files-seed",
    }
    assert {provider_of(r) for r in docker_objects if r.name not in on_backup_host} == {""}
    # The program's own Docker calls (the PIDs limit) go to the host the container is on.
    limits = {
        r.name: r.inputs.get("dockerHost")
        for r in graph.resources
        if r.type == "pulumi-python:dynamic/ecommerce:PidsLimit"
    }
    assert limits == {"repository-pids": BACKUP_HOST, "order-db-pids": STACK_HOST}


def settings_with(off_host: dict[str, object]) -> PlatformSettings:
    """Prod's settings with `pitr.offHost`, each object judged by its own rules only (the
    stack-wide rules refuse an enabled one until the program deploys it)."""
    raw = edited("prod", lambda p: p["pitr"].update(offHost=off_host))[SETTINGS_KEY]
    return PlatformSettings.model_validate_json(json.dumps(raw), context={"catalogue": PLATFORM})


def test_the_engine_gets_a_provider_of_the_off_host_repositorys_host() -> None:
    def engines_of(off_host: dict[str, object]) -> Graph:
        def program() -> None:
            parent = pulumi.ComponentResource("test:index:Holder", "holder")
            engine_for("platform", settings_with(off_host), {}, None, parent)

        return run_under_mocks(program, "prod", {})

    on = {"enabled": True, "dockerHost": BACKUP_HOST, "address": "backup-1"}
    providers = {r.name: r.inputs for r in engines_of(on).of_type("pulumi:providers:docker")}
    backup = providers[f"platform-{OFF_HOST_HOME}-docker"]
    assert backup["host"] == BACKUP_HOST
    # It pulls the stack's images with the stack's registry login, as the stack's own provider.
    assert json.loads(backup["registryAuth"]) == [{"address": "registry.example.com"}]
    assert backup["registryAuth"] == providers["platform-docker"]["registryAuth"]
    off = {**on, "enabled": False}
    providers = {r.name: r.inputs for r in engines_of(off).of_type("pulumi:providers:docker")}
    assert f"platform-{OFF_HOST_HOME}-docker" not in providers
