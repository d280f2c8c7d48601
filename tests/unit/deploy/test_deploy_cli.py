"""`python -m deploy` (what `make up|preview|refresh|destroy` run): what it asks, which
passphrase and policy pack it gives the engine, and its errors. The engine here is a recording
stand-in for the Automation API's stack; the real one runs in tests/integration/test_deploy.py.
"""

from __future__ import annotations

import secrets
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from pulumi import automation as auto

from deploy import cli, recovery, swarm_recovery
from deploy.workspace import ROOT


@dataclass
class Output:
    value: Any
    secret: bool = False


@dataclass
class Result:
    outputs: dict[str, Output]


@dataclass
class RecordedStack:
    """Records each engine command with its options; `up` answers with the dev outputs."""

    env: dict[str, str]
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    fail: str | None = None

    def export_stack(self) -> Any:
        return SimpleNamespace(deployment={"resources": []})

    def _record(self, command: str, options: dict[str, Any]) -> None:
        self.calls.append((command, {k: v for k, v in options.items() if k != "on_output"}))
        if self.fail == command:
            raise auto.CommandError(auto.CommandResult(stdout="", stderr="error: boom", code=1))

    def preview(self, **options: Any) -> None:
        self._record("preview", options)

    def up(self, **options: Any) -> Result:
        self._record("up", options)
        return Result(
            {
                "urls": Output(
                    {"gateway": "http://localhost:13000", "customer": "http://customer:3001"}
                ),
                "containers": Output({"gateway": "shop-dev-gateway"}),
                "databases": Output({"customer": {"password": "p"}}, secret=True),
            }
        )

    def preview_refresh(self, **options: Any) -> None:
        self._record("preview_refresh", options)

    def refresh(self, **options: Any) -> None:
        self._record("refresh", options)

    def preview_destroy(self, **options: Any) -> None:
        self._record("preview_destroy", options)

    def destroy(self, **options: Any) -> None:
        self._record("destroy", options)

    def get_all_config(self) -> dict[str, auto.ConfigValue]:
        return {"docker:host": auto.ConfigValue("tcp://new-host:2376")}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The project's stack files and policy pack in a folder of their own."""
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml"):
        shutil.copy2(ROOT / name, tmp_path / name)
    (tmp_path / "policies" / "venv" / "bin").mkdir(parents=True)
    (tmp_path / "policies" / "venv" / "bin" / "python").touch()
    for name in ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE", "PULUMI_BACKEND_URL"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def run(project: Path, *argv: str, answer: str = "") -> tuple[int, list[RecordedStack]]:
    opened: list[RecordedStack] = []

    def opener(stack: str, folder: Path, env: dict[str, str]) -> Any:
        assert folder == project
        opened.append(RecordedStack(env))
        return opened[-1]

    code = cli.main(list(argv), project=project, opener=opener, ask=lambda _question: answer)
    return code, opened


def test_a_first_up_asks_nothing_and_says_where_things_are(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, (stack,) = run(project, "up", "--stack", "dev")
    assert code == cli.OK
    passphrase = project / ".pulumi-state" / "dev.passphrase"
    assert stat.S_IMODE(passphrase.stat().st_mode) == 0o600
    assert len(passphrase.read_text()) == 64
    out = capsys.readouterr()
    assert "created a random passphrase for stack dev in .pulumi-state/dev.passphrase" in out.err
    assert passphrase.read_text() not in out.out + out.err  # the path, never the value
    assert stack.env["PULUMI_CONFIG_PASSPHRASE_FILE"] == str(passphrase)
    assert stack.env["PULUMI_BACKEND_URL"] == f"file://{project / '.pulumi-state'}"
    # Dev deploys at once, without the policy pack.
    assert stack.calls == [("up", {"color": "never"})]
    assert "gateway      http://localhost:13000" in out.out
    assert "Follow a service's logs:   docker logs -f shop-dev-gateway" in out.out
    assert "Every container of it:     docker ps --filter label=com.ecommerce.stack=dev" in out.out
    # The next run keeps the same passphrase.
    kept = passphrase.read_text()
    assert run(project, "up")[0] == cli.OK and passphrase.read_text() == kept


def test_the_closing_words_follow_the_engine(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy2(ROOT / "Pulumi.swarm.yaml", project / "Pulumi.swarm.yaml")
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "a passphrase")
    assert run(project, "up", "--stack", "swarm", "--yes")[0] == cli.OK
    out = capsys.readouterr().out
    assert "Follow a service's logs:   docker service logs -f shop-dev-gateway" in out
    every = "Every service of it:       docker service ls --filter label=com.ecommerce.stack=swarm"
    assert every in out
    # Neither `docker logs` nor `docker ps` sees a swarm's services.
    assert "docker logs" not in out and "docker ps" not in out


def test_a_prod_profile_is_never_given_a_made_up_passphrase(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, opened = run(project, "up", "--stack", "prod", "--yes")
    assert code == cli.USAGE and opened == []
    assert "stack prod has a prod profile and no passphrase" in capsys.readouterr().err
    assert not (project / ".pulumi-state" / "prod.passphrase").exists()


def prod_passphrase(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    secret = project / "prod.passphrase"
    secret.write_text(secrets.token_hex(16))  # made up per run, as an operator's would be
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE_FILE", str(secret))
    return secret


MANDATORY_PACK = {
    "policy_packs": ["policies/analyzer"],
    "policy_pack_configs": ["policies/prod.json"],
}


def with_pack(project: Path, **options: Any) -> dict[str, Any]:
    return options | {k: [str(project / p) for p in v] for k, v in MANDATORY_PACK.items()}


def test_prod_shows_its_plan_under_the_mandatory_pack_and_asks_before_deploying(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prod_passphrase(project, monkeypatch)
    code, (stack,) = run(project, "up", "--stack", "prod", answer="n")
    assert code == cli.DECLINED
    assert stack.calls == [("preview", with_pack(project, color="never"))]
    code, (stack,) = run(project, "up", "--stack", "prod", answer="yes")
    assert code == cli.OK
    assert stack.calls == [
        ("preview", with_pack(project, color="never")),
        ("up", with_pack(project, color="never")),
    ]
    # The passphrase came from the environment: no file of ours.
    assert "PULUMI_CONFIG_PASSPHRASE_FILE" not in stack.env


def test_nobody_to_ask_is_a_refusal_unless_told_yes(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    prod_passphrase(project, monkeypatch)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    code = cli.main(
        ["destroy", "--stack", "dev"],
        project=project,
        opener=lambda *_: cast(auto.Stack, RecordedStack({})),
    )
    assert code == cli.USAGE
    assert "Nobody can answer here: pass --yes" in capsys.readouterr().err
    code, (stack,) = run(project, "up", "--stack", "prod", "--yes")
    assert code == cli.OK and [c for c, _ in stack.calls] == ["up"]


def test_the_pack_needs_its_virtualenv(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Without it the engine would wait on a pack that never starts: a line says what to run.
    prod_passphrase(project, monkeypatch)
    shutil.rmtree(project / "policies" / "venv")
    code, opened = run(project, "preview", "--stack", "prod")
    assert (code, opened) == (cli.USAGE, [])
    assert "run `make policy-env`" in capsys.readouterr().err


@pytest.mark.parametrize("style", ['profile: "prod"', "{ profile: prod, namePrefix: shop }"])
def test_a_prod_profile_is_recognised_in_any_yaml_style(
    project: Path, style: str, capsys: pytest.CaptureFixture[str]
) -> None:
    stack_file = project / "Pulumi.edge.yaml"
    if style.startswith("{"):
        stack_file.write_text(f"config:\n  ecommerce:platform: {style}\n")
    else:
        stack_file.write_text(f"config:\n  ecommerce:platform:\n    {style}\n")
    code, opened = run(project, "up", "--stack", "edge")
    assert code == cli.USAGE and opened == []
    assert "stack edge has a prod profile and no passphrase" in capsys.readouterr().err


def test_an_empty_passphrase_is_a_passphrase(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pulumi accepts an empty one; a stack made with it must not get a random one instead.
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "")
    code, (stack,) = run(project, "up")
    assert code == cli.OK
    assert not (project / ".pulumi-state" / "dev.passphrase").exists()
    assert "PULUMI_CONFIG_PASSPHRASE_FILE" not in stack.env


def test_an_engine_failure_is_its_own_message_and_exit_1(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def failing(stack: str, folder: Path, env: dict[str, str]) -> Any:
        return RecordedStack(env, fail="preview")

    code = cli.main(["preview"], project=project, opener=failing)
    assert code == cli.FAILED
    assert capsys.readouterr().err.splitlines()[-1] == "error: boom"


def test_a_stack_without_a_file_is_refused_before_the_engine_starts(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, opened = run(project, "preview", "--stack", "staging")
    assert (code, opened) == (cli.USAGE, [])
    assert "there is no Pulumi.staging.yaml" in capsys.readouterr().err
    assert not (project / ".pulumi-state").exists()


def test_a_recovery_asks_first_then_runs_on_the_stacks_host_under_the_pack(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    prod_passphrase(project, monkeypatch)
    asked: list[tuple[Any, ...]] = []

    def recover(*args: Any) -> list[recovery.Recovered]:
        asked.append(args)
        return [recovery.Recovered("shop-order-db", "order_db: 1 tables, 3 rows, 1 indexes")]

    monkeypatch.setattr(recovery, "recover", recover)
    assert run(project, "recover", "--stack", "prod", answer="n")[0] == cli.DECLINED
    assert asked == []
    code, _ = run(project, "recover", "--stack", "prod", "--to", "time:2026-12-02 14:02:30+00",
                  answer="y")  # fmt: skip
    assert code == cli.OK
    ((_, docker, target, _, policies),) = asked
    assert docker.host == "tcp://new-host:2376"
    assert target.text() == "time:2026-12-02 14:02:30+00"
    assert policies == with_pack(project)
    out = capsys.readouterr().out
    assert "shop-order-db: back\n  order_db: 1 tables, 3 rows" in out
    assert "recovery: stack prod back on tcp://new-host:2376 in " in out


def test_a_swarm_stacks_recovery_brings_back_a_lost_nodes_databases(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prod_passphrase(project, monkeypatch)
    chosen: list[str] = []

    def on_a_node(*_args: Any) -> list[recovery.Recovered]:
        chosen.append("swarm")
        return []

    def on_a_host(*_args: Any) -> list[recovery.Recovered]:
        chosen.append("host")
        return []

    monkeypatch.setattr(recovery, "recover", on_a_host)
    monkeypatch.setattr(swarm_recovery, "recover_node", on_a_node)
    for swarm in (True, False):  # what the state shows: database services or containers
        monkeypatch.setattr(recovery, "on_a_swarm", lambda _resources, swarm=swarm: swarm)
        assert run(project, "recover", "--stack", "prod", "--yes")[0] == cli.OK
    assert chosen == ["swarm", "host"]


def test_a_recovery_that_stops_says_why_in_one_line(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def recover(*_args: Any) -> list[recovery.Recovered]:
        raise recovery.RecoveryError("shop-order-db still run on tcp://new-host:2376: ...")

    monkeypatch.setattr(recovery, "recover", recover)
    assert run(project, "recover", "--stack", "dev", "--yes")[0] == cli.FAILED
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == "error: recovery stopped: shop-order-db still run on tcp://new-host:2376: ..."
    with pytest.raises(SystemExit):  # argparse's usage error, exit 2
        run(project, "recover", "--to", "yesterday")
    assert "restore target 'yesterday': use latest" in capsys.readouterr().err
