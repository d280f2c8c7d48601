"""The recovery of a lost host (deploy/recovery.py): the order of its engine commands, what it
asks Docker on the new host, and what it refuses. The engine and Docker are recording stand-ins
here; the real ones run the drill in tests/integration/test_off_host_repository.py."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from pulumi import automation as auto

from deploy import recovery
from deploy.recovery import Docker, RecoveryError, database_servers, recover
from pitr.pgbackrest import RestoreTarget

URN = "urn:pulumi:prod::ecommerce::ecommerce:index:Database$docker:index/container:Container::"


def server(name: str, *, stanza: bool = True, image: str = "sha256:pitr") -> dict[str, Any]:
    """A database server's container as the engine shows it."""
    return {
        "type": "docker:index/container:Container",
        "urn": f"{URN}{name}-container",
        "inputs": {
            "name": f"shop-{name}",
            "image": image,
            "envs": ["POSTGRES_DB=x", *([f"PITR_STANZA={name[:-3]}"] if stanza else [])],
            "labels": [{"label": "com.ecommerce.role", "value": "database"}],
            "volumes": [
                {
                    "volumeName": f"shop-{name}-secrets",
                    "containerPath": "/run/secrets",
                    "readOnly": True,
                },
                {"volumeName": f"shop-{name}-data", "containerPath": "/var/lib/postgresql/data"},
            ],
            "networksAdvanced": [{"name": f"shop-{name}"}, {"name": f"shop-{name}-pitr-link"}],
        },
    }


APP = {
    "type": "docker:index/container:Container",
    "urn": f"{URN}order-app-container",
    "inputs": {"name": "shop-order", "labels": [{"label": "com.ecommerce.role", "value": "app"}]},
}


def test_database_servers_are_the_containers_with_the_database_role() -> None:
    volume = {"type": "docker:index/volume:Volume", "urn": "v", "inputs": {"name": "shop-x"}}
    (found,) = database_servers([server("order-db"), APP, volume])
    assert found.name == "shop-order-db" and found.stanza == "order"
    assert found.data_volume == "shop-order-db-data" and found.image == "sha256:pitr"
    assert found.urn.endswith("::order-db-container")
    # Before the image is built, a preview does not know it yet.
    unknown = server("order-db", image="04da6b54-80e4-46f7-96ec-b56ff0331ba9")
    assert database_servers([unknown])[0].image is None


def step(resource: dict[str, Any], op: auto.OpType) -> auto.EngineEvent:
    metadata = SimpleNamespace(
        op=op,
        type=resource["type"],
        urn=resource["urn"],
        new=SimpleNamespace(inputs=resource["inputs"]),
    )
    return cast(
        auto.EngineEvent, SimpleNamespace(resource_pre_event=SimpleNamespace(metadata=metadata))
    )


@dataclass
class RecordedStack:
    """The engine: what a preview would create on the new host, what the state still holds."""

    creates: list[dict[str, Any]]
    state: list[dict[str, Any]] = field(default_factory=list)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    op: auto.OpType = auto.OpType.CREATE

    def _record(self, command: str, options: dict[str, Any]) -> None:
        self.calls.append((command, {k: v for k, v in options.items() if not k.startswith("on_")}))

    def refresh(self, **options: Any) -> None:
        self._record("refresh", options)

    def export_stack(self) -> Any:
        return SimpleNamespace(deployment={"resources": self.state})

    def preview(self, **options: Any) -> None:
        self._record("preview", options)
        for resource in self.creates:
            options["on_event"](step(resource, self.op))

    def up(self, **options: Any) -> None:
        self._record("up", options)


@dataclass
class RecordedDocker(Docker):
    """Docker on the new host: answers, and says `refuse` to the commands naming that word."""

    calls: list[tuple[str, ...]] = field(default_factory=list)
    refuse: str | None = None
    running: bool = False
    """Whether the servers' containers run (a host that is not lost) or restart (refused)."""

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        self.calls.append(args)
        if self.refuse is not None and self.refuse in args:
            return subprocess.CompletedProcess(args, 1, "", f"no: {self.refuse}\n")
        out = "f" if "SELECT pg_is_in_recovery()" in args else ""
        if args[0] == "inspect":
            out = "true false" if self.running else "false true"
            if "{{.State.Running}}" in args:
                out = "true"
        if "/var/lib/pgbackrest/work/agent-status.json" in args:
            out = '{"check": {"ok": true}, "backup": {"ok": null}}'

        if "check-here" in args:
            out = "order_db: 1 tables, 5 rows, 1 indexes checked\n"
        return subprocess.CompletedProcess(args, 0, out, "")


def run(stack: RecordedStack, docker: RecordedDocker, **options: Any) -> list[Any]:
    engine = cast(auto.Stack, stack)
    return recover(engine, docker, RestoreTarget.parse("latest"), lambda _line: None, options)


def test_the_servers_are_left_out_then_restored_at_their_first_start() -> None:
    stack = RecordedStack([server("order-db"), APP])
    docker = RecordedDocker("unix:///new.sock")
    policies = {"policy_packs": ["policies/analyzer"]}
    (recovered,) = run(stack, docker, **policies)
    assert [c for c, _ in stack.calls] == ["refresh", "preview", "up", "preview", "up"]
    # The refresh runs the program: its providers reach the new host, not the lost one.
    assert stack.calls[0][1] == {"run_program": True}
    # The first up leaves the servers and what needs them out; the policies apply to all.
    assert stack.calls[2][1] == {
        "exclude": [f"{URN}order-db-container"], "exclude_dependents": True, **policies
    }  # fmt: skip
    assert stack.calls[4][1] == policies
    # The request: in the server's own data volume, as its user, with no network.
    (request,) = [c for c in docker.calls if c[0] == "run"]
    assert "shop-order-db-data:/var/lib/postgresql/data" in request
    assert request[request.index("--user") + 1] == "postgres"
    assert request[request.index("--network") + 1] == "none"
    assert "latest" in request and "sha256:pitr" in request
    # Then the restore: the guard in a one-off with the server's image, volumes (as they are
    # mounted there) and both its networks, before the server itself is created.
    (create,) = [c for c in docker.calls if c[0] == "create"]
    assert create[-7:] == ("sha256:pitr", "python3", "-m", "pitr", "guard", "--stanza", "order")
    assert create[create.index("--env") + 1] == "PGDATA=/var/lib/postgresql/data/pgdata"
    assert "shop-order-db-secrets:/run/secrets:ro" in create
    assert "shop-order-db-data:/var/lib/postgresql/data" in create
    assert create[create.index("--network") + 1] == "shop-order-db"
    steps = [c[:3] for c in docker.calls if c[0] in ("create", "network", "start")]
    assert steps == [
        ("create", "--name", "shop-order-db-recovery"),
        ("network", "connect", "shop-order-db-pitr-link"),
        ("start", "--attach", "shop-order-db-recovery"),
    ]
    assert docker.calls.index(request) < docker.calls.index(create)
    # After the last up: a checkpoint, the agent's first check (the new timeline archived), the
    # drill's checks.
    execs = [" ".join(c) for c in docker.calls if c[0] == "exec"]
    assert [e for e in execs if "CHECKPOINT" in e or "status" in e or "check-here" in e] == [
        "exec -u postgres shop-order-db psql -XAtq -c CHECKPOINT",
        "exec shop-order-db-pitr cat /var/lib/pgbackrest/work/agent-status.json",
        "exec -u postgres shop-order-db python3 -m pitr check-here",
    ]
    assert recovered.server == "shop-order-db" and "5 rows" in recovered.checks


def test_a_host_that_still_runs_the_servers_is_not_recovered() -> None:
    stack = RecordedStack([], state=[server("order-db")])
    with pytest.raises(RecoveryError, match=r"shop-order-db still run on unix:///old\.sock: "):
        run(stack, RecordedDocker("unix:///old.sock", running=True))
    assert [c for c, _ in stack.calls] == ["refresh"]


def test_a_swarm_stack_is_refused_before_anything_is_asked_of_the_engine() -> None:
    service = {**server("order-db"), "type": "docker:index/service:Service"}
    stack = RecordedStack([], state=[service])
    docker = RecordedDocker("unix:///manager.sock")
    with pytest.raises(RecoveryError, match=r"databases are swarm services: .*swarm_recovery"):
        run(stack, docker)
    assert stack.calls == [] and docker.calls == []


def test_a_server_a_failed_recovery_left_refusing_is_made_again() -> None:
    # Recorded, restarting (its guard refuses), replaced by the next up: recovered again.
    left = server("order-db")
    stack = RecordedStack([left], state=[left])
    stack.op = auto.OpType.REPLACE
    (recovered,) = run(stack, RecordedDocker("unix:///new.sock"))
    assert recovered.server == "shop-order-db"
    assert stack.calls[2][1]["exclude"] == [f"{URN}order-db-container"]


def test_a_host_that_does_not_answer_changes_nothing() -> None:
    stack = RecordedStack([server("order-db")])
    with pytest.raises(RecoveryError, match=r"Docker host tcp://new:2376 does not answer \(no"):
        run(stack, RecordedDocker("tcp://new:2376", refuse="version"))
    assert stack.calls == []


def test_servers_without_pitr_cannot_be_recovered() -> None:
    stack = RecordedStack([server("order-db"), server("cart-db", stanza=False)])
    with pytest.raises(RecoveryError, match=r"shop-cart-db run without PITR: no repository"):
        run(stack, RecordedDocker("unix:///new.sock"))
    assert [c for c, _ in stack.calls] == ["refresh", "preview"]


def test_a_data_volume_the_request_cannot_be_written_into_is_refused() -> None:
    stack = RecordedStack([server("order-db")])
    with pytest.raises(RecoveryError, match=r"no recovery request written into shop-order-db-data"):
        run(stack, RecordedDocker("unix:///new.sock", refuse="run"))
    # Nothing started over it.
    assert [c for c, _ in stack.calls] == ["refresh", "preview", "up", "preview"]


def test_a_restore_that_fails_stops_the_recovery_and_keeps_its_request() -> None:
    stack = RecordedStack([server("order-db")])
    with pytest.raises(RecoveryError) as stopped:
        run(stack, RecordedDocker("unix:///new.sock", refuse="start"))
    assert str(stopped.value) == (
        "shop-order-db: the restore failed (no: start); its request stays in shop-order-db-data: "
        "fix the cause and run the recovery again"
    )
    # The servers are never created over a volume that was not restored.
    assert [c for c, _ in stack.calls] == ["refresh", "preview", "up", "preview"]


@pytest.mark.parametrize(
    ("held", "written"),
    [
        ((), True),  # an empty volume
        (("pgdata/PG_VERSION", "pgdata/base/1/1"), True),  # a restore cut off midway
        (("pgdata/PG_VERSION", "pgdata/global/pg_control"), False),  # a database
    ],
)
def test_the_request_is_written_into_a_volume_without_a_database_only(
    tmp_path: Path, held: tuple[str, ...], written: bool
) -> None:
    for name in held:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    request = tmp_path / "pitr-recovery-request"
    done = subprocess.run(
        ["sh", "-c", recovery.REQUEST_SCRIPT, "latest", str(tmp_path), str(request)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert (done.returncode == 0) is written, done.stderr
    assert request.exists() is written
    if written:
        assert request.read_text() == "latest\n"
    else:
        assert done.stderr == "it holds a database\n" and done.returncode == 3
