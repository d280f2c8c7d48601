"""The databases to back up: the Pulumi stack output `databases`, from a JSON file or from the
Pulumi CLI. Shape: {service: {"host": str, "port": int, "database": str, "user": str,
"password": str}}."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backup.errors import UsageError
from backup.proc import base_env, redact, register_secret

SERVICE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
KEYS: dict[str, type] = {"host": str, "port": int, "database": str, "user": str, "password": str}


@dataclass(frozen=True)
class Target:
    service: str
    host: str
    port: int
    database: str
    user: str
    password: str = field(repr=False)

    def describe(self) -> str:
        return f"'{self.service}' ({self.database} on {self.host}:{self.port})"


def parse_targets(data: object, source: str) -> dict[str, Target]:
    """Validate the decoded JSON; a one-line UsageError names the bad service or key."""
    if not isinstance(data, dict) or not data:
        raise UsageError(f"{source}: expected a non-empty JSON object of service -> database")
    out: dict[str, Target] = {}
    for service, entry in data.items():
        if not SERVICE_RE.match(service):
            raise UsageError(f"{source}: service name {service!r} is not a simple name")
        if not isinstance(entry, dict):
            raise UsageError(f"{source}: service '{service}' must be an object with {list(KEYS)}")
        # register first, so no message below can ever show it
        if isinstance(entry.get("password"), str):
            register_secret(entry["password"])
        values: dict[str, Any] = {}
        for key, typ in KEYS.items():
            if key not in entry:
                raise UsageError(f"{source}: service '{service}' lacks key '{key}'")
            value = entry[key]
            if typ is int and isinstance(value, str) and value.isdigit():
                value = int(value)
            if not isinstance(value, typ) or isinstance(value, bool):
                raise UsageError(
                    f"{source}: service '{service}' key '{key}' must be a {typ.__name__}"
                )
            if isinstance(value, str) and key != "password" and not value.strip():
                raise UsageError(f"{source}: service '{service}' key '{key}' is empty")
            values[key] = value
        if not 0 < values["port"] < 65536:
            raise UsageError(f"{source}: service '{service}' key 'port' is out of range")
        if "\x00" in values["password"]:
            raise UsageError(f"{source}: service '{service}' key 'password' is not valid")
        extra = sorted(set(entry) - set(KEYS))
        if extra:
            raise UsageError(f"{source}: service '{service}' has unknown key '{extra[0]}'")
        out[service] = Target(service=service, **values)
    return out


def load_targets_file(path: Path) -> dict[str, Target]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(
            f"targets file {path} not found: write it with "
            "`pulumi stack output databases --json --show-secrets > targets.json`"
        ) from None
    except OSError as exc:
        raise UsageError(f"cannot read targets file {path}: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"targets file {path} is not valid JSON (line {exc.lineno})") from None
    return parse_targets(data, str(path))


def load_targets_from_stack(stack: str, pulumi: str | None = None) -> dict[str, Target]:
    exe = pulumi or shutil.which("pulumi")
    if exe is None:
        raise UsageError(
            "--stack needs the Pulumi CLI, which is not on PATH: install it, or pass "
            "--targets FILE written by `pulumi stack output databases --json --show-secrets`"
        )
    argv = [exe, "stack", "output", "databases", "--json", "--show-secrets", "--stack", stack]
    try:
        proc = subprocess.run(
            argv, env=base_env(), capture_output=True, text=True, timeout=120, check=False
        )
    except OSError as exc:
        raise UsageError(f"cannot run {exe}: {exc.strerror}") from None
    if proc.returncode != 0:
        # never echo stdout (it may hold secrets); stderr is the CLI's own message
        last = redact(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "")
        raise UsageError(f"`pulumi stack output databases --stack {stack}` failed: {last}")
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise UsageError(f"stack {stack}: output 'databases' is not JSON") from None
    return parse_targets(data, f"stack {stack} output 'databases'")


def select(targets: dict[str, Target], only: Sequence[str] | None) -> list[Target]:
    """The chosen services, in a stable order; an unknown name is a usage error."""
    if not only:
        return [targets[s] for s in sorted(targets)]
    unknown = [s for s in only if s not in targets]
    if unknown:
        raise UsageError(f"unknown service '{unknown[0]}' (known: {', '.join(sorted(targets))})")
    return [targets[s] for s in _unique(only)]


def _unique(items: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        seen.setdefault(item, None)
    return list(seen)
