"""How long the program takes to build its resource graph under Pulumi mocks, and how it grows.

Measures the real dev and prod stacks, then synthetic catalogues of N business services (each
with its own database) built from the prod stack's settings. Prints a table; asserts nothing.

    .venv/bin/python -m benchmarks.graph_build [--repeat 5] [--sizes 50 200]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from components.platform import Platform, PlatformArgs
from plan.recorder import Graph, run_program, run_under_mocks, stack_config
from stacks.catalogue import PLATFORM, Catalogue, DatabaseSpec, Role, ServiceSpec
from stacks.loader import SecretOverrides, parse_settings


def synthetic_catalogue(size: int) -> Catalogue:
    """The gateway and web apps of the real catalogue plus `size` business services."""
    fixed = tuple(s for s in PLATFORM.services if s.role is not Role.BUSINESS)
    business = tuple(
        ServiceSpec(f"svc{i}", Role.BUSINESS, 4000 + i, DatabaseSpec(f"svc{i}_db", f"svc{i}_user"))
        for i in range(size)
    )
    return Catalogue(services=fixed + business)


def synthetic_settings(catalogue: Catalogue) -> dict[str, Any]:
    platform: dict[str, Any] = copy.deepcopy(stack_config("prod")["ecommerce:platform"])
    template = platform["services"]["customer"]
    platform["services"] = {
        name: cfg for name, cfg in platform["services"].items() if name in catalogue.names()
    }
    for spec in catalogue.services:
        if spec.role is Role.BUSINESS:
            platform["services"][spec.name] = {
                **template,
                "image": f"registry.example.com/{spec.name}:1.0.0",
            }
    platform["databases"] = {}
    return platform


def build_synthetic(size: int) -> Callable[[], Graph]:
    catalogue = synthetic_catalogue(size)
    platform = synthetic_settings(catalogue)

    def program() -> None:
        settings = parse_settings(json.dumps(platform), catalogue, "synthetic")
        Platform("platform", PlatformArgs(settings, catalogue, SecretOverrides(), "bench"))

    return lambda: run_under_mocks(program, "bench", {"ecommerce:platform": platform})


def measure(build: Callable[[], Graph], repeat: int) -> tuple[float, float, int]:
    build()  # warm-up: imports and first-call caches
    times = []
    resources = 0
    for _ in range(repeat):
        start = time.perf_counter()
        graph = build()
        times.append(time.perf_counter() - start)
        resources = len(graph.resources)
    return statistics.median(times), min(times), resources


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="*", default=[50, 200])
    args = parser.parse_args(argv)
    cases: list[tuple[str, Callable[[], Graph]]] = [
        ("dev stack", lambda: run_program("dev")),
        ("prod stack", lambda: run_program("prod")),
    ]
    cases += [(f"synthetic, {n} services", build_synthetic(n)) for n in args.sizes]
    print(f"{'case':<28} {'resources':>9} {'median s':>9} {'min s':>7} {'ms/resource':>11}")
    for name, build in cases:
        median, fastest, resources = measure(build, args.repeat)
        per = 1000 * median / resources
        print(f"{name:<28} {resources:>9} {median:>9.3f} {fastest:>7.3f} {per:>11.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
