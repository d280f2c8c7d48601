"""A stack of this project, opened through Pulumi's Automation API with the program run inline.

The engine is the Pulumi CLI; the program (`__main__.py`) runs in this Python process, which
serves the language runtime to the CLI itself, so no Python language host is needed: the same
commands work with Pulumi's own release (which has one) and with a CLI built from its Go module
(`make pulumi-cli`, which has none). The project folder is the workspace: `Pulumi.yaml` and
`Pulumi.<stack>.yaml` are read from it as `pulumi` would read them.

Inline programs get no automatic plugin install, so the provider plugins the SDKs ask for are
installed here (a no-op when the plugin cache already has them). Dynamic providers (the PIDs
limits) are started by the engine with this virtualenv (`PULUMI_RUNTIME_VIRTUALENV`).

A prod profile runs the policy pack (policies/) with every rule mandatory. The pack is given
as its executable (`policies/analyzer`), which runs it with its own hash-pinned virtualenv
(`make policy-env`): the same for every CLI, with or without a language host.
"""

from __future__ import annotations

import json
import os
import runpy
import shutil
import sys
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from pulumi import automation as auto

from deploy import stackfile

ROOT = Path(__file__).resolve().parent.parent
PROJECT_NAME = "ecommerce"
PROVIDER_SDKS = ("pulumi_docker", "pulumi_random")
POLICY_PACK = "policies/analyzer"
POLICY_PACK_VIRTUALENV = "policies/venv"
PROD_POLICY_CONFIG = "policies/prod.json"


class DeployError(Exception):
    """Something a deploy needs is missing or wrong; the message says what to do."""


def pulumi_command() -> auto.PulumiCommand:
    """`pulumi` on PATH, else the pinned CLI `make pulumi-cli` built into this virtualenv."""
    on_path = shutil.which("pulumi")
    built = Path(sys.prefix) / "bin" / "pulumi"
    if on_path is not None:
        root = Path(on_path).parent.parent
    elif built.exists():
        root = Path(sys.prefix)
    else:
        raise DeployError(
            "the Pulumi CLI is not installed: install it (https://www.pulumi.com/docs/install/) "
            "or build the pinned one with `make pulumi-cli` (needs Go), then retry"
        )
    return auto.PulumiCommand(root=str(root))


def program(project: Path) -> Callable[[], None]:
    """The project's own `__main__.py`, as `pulumi up` would run it."""

    def run() -> None:
        runpy.run_path(str(project / "__main__.py"), run_name="__main__")

    return run


def engine_env(project: Path, stack: str) -> dict[str, str]:
    """What the CLI and its plugins need beyond this process's environment."""
    if not (project / f"Pulumi.{stack}.yaml").exists():
        raise DeployError(
            f"there is no Pulumi.{stack}.yaml in {project}; copy Pulumi.dev.yaml as a start"
        )
    env: dict[str, str] = {}
    if not os.environ.get("PULUMI_BACKEND_URL"):
        # The local file backend in the project folder (git-ignored): no account needed.
        (project / stackfile.STATE_DIR).mkdir(exist_ok=True)
        env["PULUMI_BACKEND_URL"] = f"file://{project / stackfile.STATE_DIR}"
    try:
        passphrase = stackfile.passphrase_file(project, stack)
    except stackfile.StackFileError as err:
        raise DeployError(str(err)) from None
    if passphrase is not None:
        env["PULUMI_CONFIG_PASSPHRASE_FILE"] = str(passphrase)
    if sys.prefix != sys.base_prefix:  # the dynamic providers' Python: this virtualenv
        env["PULUMI_RUNTIME_VIRTUALENV"] = sys.prefix
    return env


def sdk_plugin(package: str) -> tuple[str, str]:
    """The provider plugin an installed SDK asks the engine for: (name, version)."""
    meta = json.loads(resources.files(package).joinpath("pulumi-plugin.json").read_text())
    return str(meta["name"]), str(meta["version"])


def open_stack(stack: str, project: Path, env: Mapping[str, str]) -> auto.Stack:
    """The stack, selected (created on first use), with its provider plugins installed; `env`
    (see `engine_env`) is added to this process's environment for the CLI."""
    options = auto.LocalWorkspaceOptions(
        work_dir=str(project),
        env_vars=dict(env),
        pulumi_command=pulumi_command(),
    )
    found = auto.create_or_select_stack(
        stack, project_name=PROJECT_NAME, program=program(project), opts=options
    )
    for package in PROVIDER_SDKS:
        name, version = sdk_plugin(package)
        found.workspace.install_plugin(name, f"v{version}")
    return found


def policy_options(project: Path, stack: str) -> dict[str, Any]:
    """For a prod profile, the policy pack with every rule mandatory; nothing otherwise."""
    if stackfile.profile(project, stack) != "prod":
        return {}
    if not (project / POLICY_PACK_VIRTUALENV / "bin" / "python").exists():
        raise DeployError(
            f"the policy pack's virtualenv ({POLICY_PACK_VIRTUALENV}) is missing: run "
            "`make policy-env`, then retry"
        )
    return {
        "policy_packs": [str(project / POLICY_PACK)],
        "policy_pack_configs": [str(project / PROD_POLICY_CONFIG)],
    }
