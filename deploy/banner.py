#!/usr/bin/env python3
"""After `make up`: where the platform answers and how to follow it.

    pulumi stack output --json | scripts/up_banner.py STACK

Reads the stack's outputs on stdin (secrets stay hidden: they are shown only with
--show-secrets) and prints the published URLs and the log commands.
"""

import json
import sys


def main() -> int:
    stack = sys.argv[1] if len(sys.argv) > 1 else ""
    outputs = json.load(sys.stdin)
    urls: dict[str, str] = outputs.get("urls", {})
    containers: dict[str, str] = outputs.get("containers", {})
    published = {n: u for n, u in sorted(urls.items()) if not u.startswith(f"http://{n}:")}
    print("\nThe platform is up. It answers on:")
    for name, url in published.items():
        print(f"  {name:<12} {url}   (health: {url}/health)")
    private = sorted(set(urls) - set(published))
    if private:
        print(f"  through the gateway only: {', '.join(private)}")
    if containers:
        example = containers.get("gateway") or next(iter(containers.values()))
        print("\nFollow a service's logs:   docker logs -f " + example)
        print(f"Every container of it:     docker ps --filter label=com.ecommerce.stack={stack}")
    print("Everything it exported:    pulumi stack output")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
