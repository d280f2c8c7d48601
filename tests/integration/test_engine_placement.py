"""A home placed on another Docker host, through the real Pulumi engine: the container engine
(components/engine/containers.py, `elsewhere`) puts that home's volume, file set, container and
PIDs limit on a second engine (a test host, tests/hosts/) through its own Docker provider, and
everything else on the stack's; a destroy removes both. What the off-host backup repository
builds on (docs/pitr.md)."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pulumi
import pulumi_docker
import pytest
from pulumi import automation as auto

from components.engine.containers import ContainerEngine, OtherHost
from components.engine.files import SecretFiles, SecretFilesArgs
from components.engine.profile import RuntimeProfile
from components.engine.workload import ImageNeeds, Mount, Workload
from deploy.workspace import ROOT
from stacks.settings import OFF_HOST_HOME, Hardening, HealthCheck, Logs, Resources
from tests.hosts import Host, TestHosts
from tests.integration.conftest import BASE_IMAGE
from tests.integration.engine import EngineHome
from tests.integration.stacks import RUN_LABEL, remove_run

pytestmark = [pytest.mark.integration, pytest.mark.docker]

PROFILE = RuntimeProfile(
    hardening=Hardening(read_only_root=False, drop_all_capabilities=False, run_as_non_root=False),
    logs=Logs(),
    restart="no",
    health=HealthCheck(interval="2s", timeout="5s", retries=5, start_period="1s"),
    wait_timeout_seconds=60,
)
SECRET_FILE = "token"


def program(prefix: str, other_host: str) -> None:
    labels = {"com.ecommerce.stack": "placement"}
    parent = pulumi.ComponentResource("test:index:Holder", "holder")
    other = pulumi_docker.Provider("other-docker", host=other_host)
    engine = ContainerEngine(PROFILE, elsewhere={OFF_HOST_HOME: OtherHost(other_host, other)})
    for name, home in (("repository", OFF_HOST_HOME), ("database", "order-db")):
        volume = engine.volume(f"{name}-data", f"{prefix}-{name}-data", labels, parent, home=home)
        files = SecretFiles(
            f"{name}-files",
            SecretFilesArgs(
                f"{prefix}-{name}-files",
                BASE_IMAGE,
                {SECRET_FILE: f"the {name}'s secret"},
                labels,
                engine,
                home=home,
            ),
            opts=pulumi.ResourceOptions(parent=parent),
        )
        engine.run(
            Workload(
                name=name,
                docker_name=f"{prefix}-{name}",
                image=BASE_IMAGE,
                command=["sleep", "infinity"],
                needs=ImageNeeds(non_root_user="nobody"),
                resources=Resources(memory_mb=64, cpus=0.25),
                # Healthy once its secret file is there: delivered on the host it runs on.
                health_test=["CMD", "test", "-s", f"/run/secrets/{SECRET_FILE}"],
                labels=labels,
                stop_grace_seconds=1,
                pids_limit=64,
                mounts=[Mount(volume.name, "/data"), files.mount()],
                home=home,
            ),
            parent,
        )


@pytest.fixture
def other_host(test_images: object) -> Iterator[Host]:
    with TestHosts(1, images=[BASE_IMAGE]) as (host,):
        yield host


def run_objects(client: docker.DockerClient, run_id: str) -> dict[str, set[str]]:
    label = {"label": f"{RUN_LABEL}={run_id}"}
    return {
        "containers": {c.name for c in client.containers.list(all=True, filters=label)},
        "volumes": {v.name for v in client.volumes.list(filters=label)},
    }


def test_a_home_on_another_host_runs_there_through_its_provider(
    docker_client: docker.DockerClient, engine_home: EngineHome, other_host: Host
) -> None:
    run_id = uuid.uuid4().hex[:8]
    prefix = f"ect{run_id}"
    # The stand-in provider labels what it makes with the run (engine.py), on either host.
    run_label = {RUN_LABEL: run_id}
    other = other_host.client()
    with tempfile.TemporaryDirectory(prefix=f"{prefix}-") as scratch:
        for part in ("state", "project"):
            (Path(scratch) / part).mkdir()
        env = engine_home.env(Path(scratch) / "state", run_label, Path(scratch) / "standin.log")
        stack = auto.create_stack(
            "dev",
            project_name="other-host",
            program=lambda: program(prefix, other_host.docker_host),
            opts=auto.LocalWorkspaceOptions(
                work_dir=str(Path(scratch) / "project"),
                # The dynamic providers (the PIDs limits) import the program's modules.
                env_vars={**env, "PYTHONPATH": str(ROOT)},
                pulumi_command=engine_home.command,
                project_settings=auto.ProjectSettings(name="other-host", runtime="python"),
            ),
        )
        try:
            stack.up(on_output=lambda _line: None)
            assert run_objects(other, run_id) == {
                "containers": {f"{prefix}-repository", f"{prefix}-repository-files-seed"},
                "volumes": {f"{prefix}-repository-data", f"{prefix}-repository-files"},
            }
            assert run_objects(docker_client, run_id) == {
                "containers": {f"{prefix}-database", f"{prefix}-database-files-seed"},
                "volumes": {f"{prefix}-database-data", f"{prefix}-database-files"},
            }
            # Each healthy (`up` waited for it) with its own file set, and its PIDs limit set
            # on its own host by the program's own Docker call.
            for client, name in ((other, "repository"), (docker_client, "database")):
                container = client.containers.get(f"{prefix}-{name}")
                assert container.attrs["State"]["Health"]["Status"] == "healthy", name
                assert container.attrs["HostConfig"]["PidsLimit"] == 64, name
                code, out = container.exec_run(["cat", f"/run/secrets/{SECRET_FILE}"])
                assert (code, out.decode()) == (0, f"the {name}'s secret"), name
            # A second run finds nothing to change on either host.
            preview = stack.preview(diff=True)
            assert set(preview.change_summary) == {"same"}, preview.stdout[-4000:]
            stack.destroy(on_output=lambda _line: None)
            assert run_objects(other, run_id) == {"containers": set(), "volumes": set()}
            assert run_objects(docker_client, run_id) == {"containers": set(), "volumes": set()}
        finally:
            other.close()
            left = remove_run(docker_client, run_id)
            stack.workspace.remove_stack("dev", force=True)
            assert not left, left
