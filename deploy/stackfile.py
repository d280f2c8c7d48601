"""What `make up`, `make preview` and `make destroy` need to know about a stack, from its file.

    scripts/stack.py profile STACK      prints the stack file's profile (dev, prod, or nothing)
    scripts/stack.py passphrase STACK   prints the passphrase file to give Pulumi, or nothing

`passphrase` prints nothing when PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE is
set (even empty: an empty passphrase is a valid one). A stack with a prod profile must be given
its passphrase: never made up here. Any other stack gets a random one on first use, kept in
.pulumi-state/<stack>.passphrase (git-ignored, readable by its owner only), so the first
`make up` asks nothing. The passphrase itself is never printed.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

import yaml

from plan.report import profile_of

STATE_DIR = Path(".pulumi-state")
PASSPHRASE_VARIABLES = ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE")


class StackFileError(Exception):
    pass


def profile(stack: str) -> str | None:
    """The `profile` of `Pulumi.<stack>.yaml`, parsed as YAML (any quoting or style)."""
    path = Path(f"Pulumi.{stack}.yaml")
    if not path.exists():
        return None
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError:
        raise StackFileError(f"{path} is not valid YAML; fix it and retry") from None
    return profile_of(document.get("config"))


def passphrase_file(stack: str) -> Path | None:
    if any(name in os.environ for name in PASSPHRASE_VARIABLES):
        return None
    if profile(stack) == "prod":
        raise StackFileError(
            f"stack {stack} has a prod profile and no passphrase: set "
            "PULUMI_CONFIG_PASSPHRASE_FILE (or PULUMI_CONFIG_PASSPHRASE) to the one it was made "
            "with; make never makes one up for prod"
        )
    path = STATE_DIR / f"{stack}.passphrase"
    if not path.exists() or path.stat().st_size == 0:
        STATE_DIR.mkdir(exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_hex(32))
        print(f"note: created a random passphrase for stack {stack} in {path}; keep it, it "
              "opens the stack's secrets", file=sys.stderr)  # fmt: skip
    return path.resolve()


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("profile", "passphrase"):
        print("usage: scripts/stack.py profile|passphrase STACK", file=sys.stderr)
        return 2
    command, stack = argv
    try:
        found = profile(stack) if command == "profile" else passphrase_file(stack)
    except StackFileError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if found is not None:
        print(found)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
