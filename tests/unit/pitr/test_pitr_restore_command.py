"""`python -m pitr restore` and `inspect` around the containers, with a stand-in for the docker
CLI that records every call: what runs in which order, what is refused before anything stops,
and what state a failure leaves. (tests/integration/test_stacks.py runs the real thing.)"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Sequence

import pytest

from pitr import docker_host
from pitr.cli import main
from pitr.errors import EXIT_FAILED, EXIT_VERIFY, PitrError, RefusedError, UsageError
from pitr.pgbackrest import RestoreTarget
from plan.recorder import ROOT

DB = "shop-order-db"
MOUNTS = [
    {"Type": "volume", "Name": f"{DB}-data", "Destination": "/var/lib/postgresql/data"},
    {"Type": "volume", "Name": f"{DB}-pitr", "Destination": "/var/lib/pgbackrest"},
    {"Type": "volume", "Name": f"{DB}-pitr-config", "Destination": "/etc/pgbackrest"},
]


class FakeDocker:
    """Answers like the docker CLI for one stack; `restore_exit` is the one-off's exit."""

    def __init__(
        self,
        *,
        holds_data: bool = True,
        restore_exit: int = 0,
        pitr: bool = True,
        swarm: bool = False,
        server_exit: str = "0",
    ) -> None:
        self.calls: list[list[str]] = []
        self.stdin: list[str | None] = []
        self.holds_data, self.restore_exit, self.swarm = holds_data, restore_exit, swarm
        self.server_exit = server_exit
        """The server's exit code once stopped (3: its start guard had refused it)."""
        # On a swarm the configuration is a Swarm secret: a file, not a volume.
        self.mounts = (MOUNTS[:2] if swarm else MOUNTS) if pitr else MOUNTS[:1]

    def __call__(
        self, args: Sequence[str], stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        args = list(args)
        self.calls.append(args)
        self.stdin.append(stdin)
        out, code = "", 0
        if args[:2] == ["service", "inspect"]:
            code = 0 if self.swarm else 1
        elif args[0] == "ps" and "status=running" in args:
            out = (
                "task2\n"
                if any("scale" in c and f"{DB}=1" in c for c in self.calls)
                else ("task1\n")
            )
        elif args[0] == "ps" and "status=exited" in args:
            out = "task1\n"
        elif args[0] == "exec" and "cat" in args:
            out = "[global]\nrepo1-cipher-pass=secret-passphrase\n"
        elif args[0] == "inspect" and args[1] == "--type":
            out = json.dumps(
                [
                    {
                        "Name": f"/{DB}",
                        "Image": "sha256:pitr",
                        "State": {"Running": True},
                        "Mounts": self.mounts,
                        "Config": {"Env": ["POSTGRES_DB=order_db"]},
                    }
                ]
            )
        elif args[:2] == ["inspect", "-f"]:
            out = {
                "{{.State.ExitCode}}": self.server_exit,
                "{{.State.Running}}": "true",
                "{{.State.Health.Status}}": "healthy",
            }[args[2]]
        elif args[0] == "run" and "test" in args:
            code = 0 if self.holds_data else 1
        elif args[0] == "run" and "restore-here" in args:
            code = self.restore_exit
        elif args[0] == "exec" and "SELECT pg_is_in_recovery()" in args:
            out = "f\n"
        return subprocess.CompletedProcess(args, code, out, "pitr: reason\n" if code else "")

    def verbs(self) -> list[str]:
        """Each call as `verb target`, e.g. `stop shop-order-db`, `run shop-order-db-restore`."""
        named = []
        for call in self.calls:
            if call[0] == "run" and "--name" not in call:
                named.append("run (configuration)")
            elif call[0] == "run":
                named.append("run " + call[call.index("--name") + 1])
            elif call[0] == "exec":
                named.append(
                    "exec "
                    + next(
                        a
                        for a in call
                        if a in ("archive-now", "CHECKPOINT", "SELECT pg_is_in_recovery()", "cat")
                    )
                )
            elif call[0] in ("stop", "start"):
                named.append(f"{call[0]} {call[1]}")
            elif call[:2] == ["service", "scale"]:
                named.append(f"scale {call[-1]}")
        return named


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Callable[..., FakeDocker]:
    def install(**kwargs: object) -> FakeDocker:
        docker = FakeDocker(**kwargs)  # type: ignore[arg-type]
        monkeypatch.setattr(docker_host, "_docker_run", docker)
        monkeypatch.setattr("pitr.docker_host.time.sleep", lambda _s: None)
        return docker

    return install


TIME = RestoreTarget.parse("time:2026-12-02 14:02:30+00")


def test_a_restore_stops_restores_starts_and_resumes_archiving(
    fake: Callable[..., FakeDocker],
) -> None:
    docker = fake()
    docker_host.restore("shop", "order", TIME, force=True)
    assert docker.verbs() == [
        f"stop {DB}-pitr",
        f"stop {DB}",
        f"run {DB}-restore",
        f"start {DB}",
        "exec SELECT pg_is_in_recovery()",
        "exec CHECKPOINT",
        "exec archive-now",
        f"start {DB}-pitr",
    ]
    (restore,) = [c for c in docker.calls if "restore-here" in c]
    # The server's own image and volumes, hardened, and nothing else.
    for flag in (["--network", "none"], ["--user", "postgres"], ["--cap-drop", "ALL"]):
        assert any(restore[i : i + 2] == flag for i in range(len(restore))), flag
    assert "--read-only" in restore and "sha256:pitr" in restore
    assert restore[-6:] == [
        "restore-here",
        "--stanza",
        "order",
        "--to",
        "time:2026-12-02 14:02:30+00",
        "--force",
    ]
    assert f"{DB}-pitr-config:/etc/pgbackrest:ro" in restore


def test_without_force_a_database_with_data_is_refused_before_anything_stops(
    fake: Callable[..., FakeDocker],
) -> None:
    docker = fake(holds_data=True)
    with pytest.raises(RefusedError, match=r"discards what it holds after that.*pass --force"):
        docker_host.restore("shop", "order", TIME, force=False)
    assert not [v for v in docker.verbs() if v.startswith(("stop", "start"))]


def test_an_empty_volume_is_restored_without_force(fake: Callable[..., FakeDocker]) -> None:
    docker = fake(holds_data=False)
    docker_host.restore("shop", "order", RestoreTarget.parse("latest"), force=False)
    assert docker.verbs()[:2] == [f"run {DB}-probe", f"stop {DB}-pitr"]  # looked, then went on


def test_a_server_that_refused_to_start_empty_is_named_as_such(
    fake: Callable[..., FakeDocker], capsys: pytest.CaptureFixture[str]
) -> None:
    # A lost data directory: the server's start guard refused it (exit 3), so nothing of it
    # went unarchived, which the unclean-stop warning would have said.
    fake(holds_data=False, server_exit="3")
    docker_host.restore("shop", "order", RestoreTarget.parse("latest"), force=False)
    said = capsys.readouterr().out
    assert f"order: {DB} had refused to start on an empty data directory" in said
    assert "did not stop cleanly" not in said
    fake(holds_data=True, server_exit="1")
    docker_host.restore("shop", "order", RestoreTarget.parse("latest"), force=True)
    assert f"{DB} did not stop cleanly (exit 1)" in capsys.readouterr().out


def test_a_refused_or_unverified_restore_starts_the_server_again(
    fake: Callable[..., FakeDocker],
) -> None:
    docker = fake(restore_exit=EXIT_VERIFY)
    with pytest.raises(PitrError, match="the server runs as it was"):
        docker_host.restore("shop", "order", TIME, force=True)
    assert docker.verbs()[-2:] == [f"start {DB}", f"start {DB}-pitr"]


def test_a_restore_that_fails_midway_leaves_the_server_stopped(
    fake: Callable[..., FakeDocker],
) -> None:
    docker = fake(restore_exit=EXIT_FAILED)
    with pytest.raises(PitrError, match=f"{DB} is left stopped"):
        docker_host.restore("shop", "order", TIME, force=True)
    assert docker.verbs()[-1] == f"run {DB}-restore"  # nothing started on half-restored data


def test_a_database_without_pitr_is_named(fake: Callable[..., FakeDocker]) -> None:
    fake(pitr=False)
    with pytest.raises(UsageError, match=f"{DB} runs without PITR: turn `pitr` on"):
        docker_host.restore("shop", "order", TIME, force=True)


def test_inspect_archives_first_and_serves_a_copy_with_no_network(
    fake: Callable[..., FakeDocker],
) -> None:
    docker = fake()
    docker_host.inspect("shop", "order", TIME)
    verbs = docker.verbs()
    assert verbs.index("exec archive-now") < verbs.index(f"run {DB}-scratch")
    (serve,) = [c for c in docker.calls if "serve-copy" in c]
    assert "-d" in serve and serve[serve.index("--network") :][:2] == ["--network", "none"]
    assert f"{DB}-scratch:/var/lib/postgresql/data" in serve  # its own volume
    assert f"{DB}-pitr:/var/lib/pgbackrest:ro" in serve  # the repository, read-only


def test_the_stack_file_names_the_prefix(
    fake: Callable[..., FakeDocker], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)  # the operator runs it from the project folder
    assert docker_host.stack_prefix("prod") == "shop"
    assert docker_host.stack_prefix("dev") == "shop-dev"
    with pytest.raises(UsageError, match=r"no Pulumi\.staging\.yaml here: .*pass --prefix"):
        docker_host.stack_prefix("staging")
    # The CLI takes either; --stack prod reaches prod's containers.
    docker = fake(holds_data=False)
    assert main(["restore", "order", "--stack", "prod", "--to", "latest"]) == 0
    assert f"stop {DB}" in docker.verbs()


def test_on_a_swarm_the_services_are_scaled_and_the_task_on_this_node_is_used(
    fake: Callable[..., FakeDocker],
) -> None:
    docker = fake(swarm=True)
    docker_host.restore("shop", "order", TIME, force=True)
    assert docker.verbs() == [
        "exec cat",
        "run (configuration)",  # the Swarm secret, copied for the one-off
        f"scale {DB}-pitr=0",
        f"scale {DB}=0",
        f"run {DB}-restore",
        f"scale {DB}=1",
        "exec SELECT pg_is_in_recovery()",
        "exec CHECKPOINT",
        "exec archive-now",
        f"scale {DB}-pitr=1",
    ]
    # The configuration (the passphrase) went through stdin, never argv, onto a volume of
    # its own that the one-off mounts read-only and that is removed afterwards.
    (write,) = [i for i, c in enumerate(docker.calls) if c[:2] == ["run", "--rm"] and "-i" in c]
    assert "secret-passphrase" in str(docker.stdin[write])
    assert not any("secret-passphrase" in " ".join(c) for c in docker.calls)
    (restore,) = [c for c in docker.calls if "restore-here" in c]
    assert f"{DB}-restore-config:/etc/pgbackrest:ro" in restore
    volume_calls = [c[:2] for c in docker.calls if c[0] == "volume"]
    # A copy left by an interrupted run goes first (it holds a read-only file), and this one
    # goes at the end.
    assert volume_calls == [["volume", "rm"], ["volume", "create"], ["volume", "rm"]]
    assert docker.calls[-1] == ["volume", "rm", f"{DB}-restore-config"]
    # The server's work is done in the new task, not the stopped one.
    (checkpoint,) = [c for c in docker.calls if "CHECKPOINT" in c]
    assert "task2" in checkpoint


def test_on_a_swarm_a_node_without_the_task_is_told_where_to_run(
    fake: Callable[..., FakeDocker], monkeypatch: pytest.MonkeyPatch
) -> None:
    docker = fake(swarm=True)
    answer = docker.__call__

    def no_task_here(
        args: Sequence[str], stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        if args[0] == "ps":
            return subprocess.CompletedProcess(list(args), 0, "", "")
        return answer(args, stdin)

    monkeypatch.setattr(docker_host, "_docker_run", no_task_here)
    with pytest.raises(UsageError, match="run the command on the node that holds its volumes"):
        docker_host.restore("shop", "order", TIME, force=True)
