"""What a deploy needs to know about a stack from its file: its profile, its passphrase and
the commands of its engine.

A stack with a prod profile must be given its passphrase (PULUMI_CONFIG_PASSPHRASE or
PULUMI_CONFIG_PASSPHRASE_FILE, even empty: an empty passphrase is a valid one): it is never made
up here. Any other stack gets a random one on first use, kept in
`.pulumi-state/<stack>.passphrase` (git-ignored, readable by its owner only), so the first
`make up` asks nothing. The passphrase itself is never printed.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path

import yaml

from components.engine.commands import OperatorCommands, operator_commands
from plan.report import profile_of

STATE_DIR = ".pulumi-state"
PASSPHRASE_VARIABLES = ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE")


class StackFileError(Exception):
    pass


def profile(project: Path, stack: str) -> str | None:
    """The `profile` of `Pulumi.<stack>.yaml`, parsed as YAML (any quoting or style)."""
    config = _config(project, stack)
    return None if config is None else profile_of(config)


def engine_commands(project: Path, stack: str) -> OperatorCommands:
    """The operator's commands of the stack's engine (`engine`, one Docker host by default)."""
    platform = (_config(project, stack) or {}).get("ecommerce:platform")
    if isinstance(platform, str):  # the JSON text `pulumi config set` stores
        try:
            platform = json.loads(platform)
        except ValueError:
            platform = None
    engine = platform.get("engine", "containers") if isinstance(platform, dict) else "containers"
    try:
        return operator_commands(str(engine))
    except ValueError as err:
        raise StackFileError(f"Pulumi.{stack}.yaml: ecommerce:platform.{err}") from None


def _config(project: Path, stack: str) -> dict[str, object] | None:
    """The `config` of `Pulumi.<stack>.yaml` (None when there is no such file)."""
    path = project / f"Pulumi.{stack}.yaml"
    if not path.exists():
        return None
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError:
        raise StackFileError(f"{path.name} is not valid YAML; fix it and retry") from None
    config = document.get("config")
    return config if isinstance(config, dict) else {}


def passphrase_file(project: Path, stack: str) -> Path | None:
    """The passphrase file to give Pulumi, or None when the environment already gives one."""
    if any(name in os.environ for name in PASSPHRASE_VARIABLES):
        return None
    if profile(project, stack) == "prod":
        raise StackFileError(
            f"stack {stack} has a prod profile and no passphrase: set "
            "PULUMI_CONFIG_PASSPHRASE_FILE (or PULUMI_CONFIG_PASSPHRASE) to the one it was made "
            "with; make never makes one up for prod"
        )
    folder = project / STATE_DIR
    path = folder / f"{stack}.passphrase"
    if not path.exists() or path.stat().st_size == 0:
        folder.mkdir(exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_hex(32))
        print(
            f"note: created a random passphrase for stack {stack} in {STATE_DIR}/{path.name}; "
            "keep it, it opens the stack's secrets",
            file=sys.stderr,
        )
    return path.resolve()
