"""The real Pulumi engine for the integration tests.

- The CLI: the pinned one `make pulumi-cli` builds into the virtualenv, else `pulumi` on PATH.
- A plugin cache of the session's own (`PULUMI_HOME`) holding the stand-in provider plugins
  (tests/standin/): `pulumi-resource-docker` and `pulumi-resource-random` at the versions the
  program's SDKs ask for, installed with `pulumi plugin install --file`, so the engine starts
  and drives them as it would the real ones.
- A stack per run in a folder of its own: the project's files (linked, so build contexts and
  the policy pack are found where the program names them) with the run's own stack file, and a
  state backend of the run's own. The program is `deploy.workspace`'s, run inline, as `make up`
  runs it.
- `Run`: what one engine command did, resource by resource, from the engine's own events.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pulumi import automation as auto

from deploy.workspace import PROJECT_NAME, ROOT, program, sdk_plugin
from tests.standin.docker_provider import LABELS_VARIABLE, LOG_VARIABLE

STANDINS = {
    "pulumi_docker": "tests.standin.docker_provider",
    "pulumi_random": "tests.standin.random_provider",
}
PASSPHRASE = "integration-tests-only"
# Not part of a run's project view: other stacks' files, state, caches.
NOT_LINKED = {
    ".git",
    ".pulumi-state",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".benchmarks",
    "__pycache__",
}


def cli() -> Path | None:
    """The pinned CLI (`make pulumi-cli`), else one on PATH; None when there is none."""
    built = Path(sys.prefix) / "bin" / "pulumi"
    if built.exists():
        return built
    found = shutil.which("pulumi")
    return Path(found) if found else None


@dataclass(frozen=True)
class EngineHome:
    """The CLI and a plugin cache with the stand-in providers."""

    cli: Path
    home: Path

    @property
    def command(self) -> auto.PulumiCommand:
        return auto.PulumiCommand(root=str(self.cli.parent.parent))

    @contextlib.contextmanager
    def scratch_stack(
        self, stack: str, project: str, program: Callable[[], None], run_labels: Mapping[str, str]
    ) -> Iterator[auto.Stack]:
        """A stack of an inline `program` with its state and project folder in a scratch
        folder, removed after the block (destroy the stack in it first)."""
        with tempfile.TemporaryDirectory(prefix=f"{project}-") as scratch:
            for part in ("state", "project"):
                (Path(scratch) / part).mkdir()
            env = self.env(Path(scratch) / "state", run_labels, Path(scratch) / "standin.log")
            yield auto.create_stack(
                stack,
                project_name=project,
                program=program,
                opts=auto.LocalWorkspaceOptions(
                    work_dir=str(Path(scratch) / "project"),
                    env_vars={**env, "PYTHONPATH": str(ROOT)},
                    pulumi_command=self.command,
                    project_settings=auto.ProjectSettings(name=project, runtime="python"),
                ),
            )

    def env(self, state: Path, run_labels: Mapping[str, str], log: Path) -> dict[str, str]:
        """For the CLI and its plugins: this cache, a state backend, the run's labels."""
        return {
            "PULUMI_HOME": str(self.home),
            "PULUMI_BACKEND_URL": f"file://{state}",
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_RUNTIME_VIRTUALENV": sys.prefix,
            # The engine's own bundled plugins (the dynamic provider launcher) sit by the CLI.
            "PATH": f"{self.cli.parent}:{os.environ['PATH']}",
            LABELS_VARIABLE: json.dumps(dict(run_labels)),
            LOG_VARIABLE: str(log),
        }


def engine_home(folder: Path) -> EngineHome:
    """For scripts (benchmarks): the CLI with the stand-ins in a plugin cache in `folder`."""
    found = cli()
    if found is None:
        raise SystemExit("no Pulumi CLI: build the pinned one with `make pulumi-cli` (needs Go)")
    return install_standins(found, folder)


def install_standins(cli_path: Path, home: Path) -> EngineHome:
    """A plugin cache in `home` with the stand-ins installed as the SDKs' provider versions."""
    launchers = home / "launchers"
    launchers.mkdir(parents=True, exist_ok=True)
    for package, module in STANDINS.items():
        name, version = sdk_plugin(package)
        launcher = launchers / f"pulumi-resource-{name}"
        # The engine runs the plugin from the project folder: the module is found from here.
        launcher.write_text(
            f'#!/bin/sh\nPYTHONPATH="{ROOT}" exec "{sys.executable}" -u -m {module} "$@"\n'
        )
        launcher.chmod(0o755)
        subprocess.run(
            [
                str(cli_path),
                "plugin",
                "install",
                "resource",
                name,
                version,
                "--file",
                str(launcher),
                "--reinstall",
            ],
            env={**os.environ, "PULUMI_HOME": str(home), "PULUMI_SKIP_UPDATE_CHECK": "true"},
            check=True,
            capture_output=True,
            text=True,
        )
    return EngineHome(cli_path, home)


def project_view(folder: Path, stack: str, config: Mapping[str, Any]) -> Path:
    """`folder` as the project with its own `Pulumi.<stack>.yaml`: every other file of the
    project linked, so paths the program names (build contexts, the policy pack) resolve."""
    folder.mkdir(parents=True, exist_ok=True)
    for entry in ROOT.iterdir():
        if entry.name in NOT_LINKED or entry.name.startswith("Pulumi."):
            continue
        (folder / entry.name).symlink_to(entry)
    shutil.copy2(ROOT / "Pulumi.yaml", folder / "Pulumi.yaml")
    write_stack_file(folder, stack, config)
    return folder


def write_stack_file(folder: Path, stack: str, config: Mapping[str, Any]) -> None:
    """The plain part of `config` written into the stack file as an operator writes it (the
    settings as a YAML object); what the engine keeps there (secrets, their salt) is kept."""
    path = folder / f"Pulumi.{stack}.yaml"
    document = yaml.safe_load(path.read_text()) if path.exists() else {}
    kept = {k: v for k, v in (document.get("config") or {}).items() if is_secret_key(k)}
    plain = {k: v for k, v in config.items() if not is_secret_key(k)}
    path.write_text(yaml.safe_dump(document | {"config": kept | plain}, sort_keys=False))


def is_secret_key(key: str) -> bool:
    """Every `ecommerce:` key but the settings is a secret (`pulumi config set --secret`)."""
    return key.startswith("ecommerce:") and key != "ecommerce:platform"


def open_stack(folder: Path, stack: str, home: EngineHome, env: Mapping[str, str]) -> auto.Stack:
    options = auto.LocalWorkspaceOptions(
        work_dir=str(folder), env_vars=dict(env), pulumi_command=home.command
    )
    return auto.create_or_select_stack(
        stack, project_name=PROJECT_NAME, program=program(folder), opts=options
    )


def set_config(stack: auto.Stack, folder: Path, config: Mapping[str, Any]) -> None:
    """The stack's whole config: the plain part in its file, the secrets (changed ones only)
    set through the engine, which encrypts them there."""
    write_stack_file(folder, stack.name, config)
    current = stack.get_all_config()
    secrets = {
        key: auto.ConfigValue(str(value), secret=True)
        for key, value in config.items()
        if is_secret_key(key) and (key not in current or current[key].value != value)
    }
    if secrets:
        stack.set_all_config(secrets)


# ----------------------------------------------------------------------------------------------
# What the engine did


@dataclass
class Step:
    urn: str
    type: str
    name: str
    action: str
    """same, create, update, replace, delete (the engine's ops summed up per resource)."""
    paths: tuple[str, ...] = ()
    replace_reasons: tuple[str, ...] = ()
    delete_before_replace: bool = False

    def describe(self) -> str:
        how = f" ({', '.join(self.replace_reasons)})" if self.replace_reasons else ""
        return f"{self.action} {self.name}{how}: {', '.join(self.paths)}"


REPLACING = {"replace", "create-replacement", "delete-replaced"}


@dataclass
class Run:
    """One engine command: its events, and the ops per resource."""

    events: list[auto.EngineEvent] = field(default_factory=list)
    output: list[str] = field(default_factory=list)

    def on_event(self, event: auto.EngineEvent) -> None:
        self.events.append(event)

    def on_output(self, line: str) -> None:
        self.output.append(line)

    @property
    def text(self) -> str:
        return "\n".join(self.output)

    def steps(self) -> dict[str, Step]:
        """By URN, every resource the engine stepped through (components and the stack
        excepted: they hold no state of a provider)."""
        ops: dict[str, list[Any]] = {}
        for event in self.events:
            pre = event.resource_pre_event
            if pre is not None and not pre.metadata.type.startswith(("ecommerce:", "pulumi:")):
                ops.setdefault(pre.metadata.urn, []).append(pre.metadata)
        return {urn: _step(urn, found) for urn, found in ops.items()}

    def changes(self) -> dict[str, Step]:
        """By resource name, the steps that change something."""
        return {s.name: s for s in self.steps().values() if s.action != "same"}

    def policy_violations(self) -> list[auto.PolicyEvent]:
        return [e.policy_event for e in self.events if e.policy_event is not None]

    def diagnostics(self, severity: str | None = None) -> list[auto.DiagnosticEvent]:
        found = [e.diagnostic_event for e in self.events if e.diagnostic_event is not None]
        return [d for d in found if severity is None or d.severity == severity]

    def summary(self) -> dict[str, int]:
        for event in reversed(self.events):
            if event.summary_event is not None:
                return {
                    str(k.value if hasattr(k, "value") else k): v
                    for k, v in event.summary_event.resource_changes.items()
                }
        raise AssertionError("the engine reported no summary")


def _step(urn: str, found: Iterable[Any]) -> Step:
    metas = list(found)
    ops = [str(m.op.value if hasattr(m.op, "value") else m.op) for m in metas]
    action = "replace" if REPLACING & set(ops) else ops[-1]
    paths = sorted({d for m in metas for d in (m.diffs or [])})
    keys = sorted({k for m in metas for k in (m.keys or [])})
    dbr = (
        "delete-replaced" in ops
        and "create-replacement" in ops
        and ops.index("delete-replaced") < ops.index("create-replacement")
    )
    return Step(
        urn,
        metas[0].type,
        urn.rsplit("::", 1)[-1],
        action,
        tuple(paths),
        tuple(keys) if action == "replace" else (),
        dbr,
    )
