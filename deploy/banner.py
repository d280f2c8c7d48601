"""After `make up`: where the platform answers and how to follow it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from components.engine.commands import OperatorCommands


def banner(stack: str, outputs: Mapping[str, Any], commands: OperatorCommands) -> str:
    """The published URLs, from the stack's outputs (plain values), and the commands that
    follow it on its engine."""
    urls: dict[str, str] = dict(outputs.get("urls") or {})
    containers: dict[str, str] = dict(outputs.get("containers") or {})
    published = {n: u for n, u in sorted(urls.items()) if not u.startswith(f"http://{n}:")}
    lines = ["", "The platform is up. It answers on:"]
    lines += [f"  {name:<12} {url}   (health: {url}/health)" for name, url in published.items()]
    private = sorted(set(urls) - set(published))
    if private:
        lines.append(f"  through the gateway only: {', '.join(private)}")
    if containers:
        example = containers.get("gateway") or next(iter(containers.values()))
        every = f"Every {commands.kind} of it:"
        lines += [
            "",
            f"Follow a service's logs:   {commands.follow_logs(example)}",
            f"{every:<26} {' '.join(commands.list_stack(stack))}",
        ]
    lines.append(f"Everything it exported:    pulumi stack output --stack {stack}")
    return "\n".join(lines)
