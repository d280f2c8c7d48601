"""After `make up`: where the platform answers and how to follow it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def banner(stack: str, outputs: Mapping[str, Any]) -> str:
    """The published URLs and the log commands, from the stack's outputs (plain values)."""
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
        lines += [
            "",
            f"Follow a service's logs:   docker logs -f {example}",
            f"Every container of it:     docker ps --filter label=com.ecommerce.stack={stack}",
        ]
    lines.append(f"Everything it exported:    pulumi stack output --stack {stack}")
    return "\n".join(lines)
