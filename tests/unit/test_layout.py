"""The house's rules, read from the code: which package may import which, and that nothing but
the engine layer asks which engine runs (docs/design.md#layout)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = ("components", "stacks", "provider", "sdk")

# Package -> the project packages it may import (itself always). The flow is one way:
# platform -> parts -> engine -> dynamic; parts -> renderers; everything -> stacks, provider.
# A part makes its certificates as it makes its random passwords: they are no engine's concern
# (no Docker call), so the parts reach that one dynamic module directly.
MAY_IMPORT = {
    "components.platform": {"components.engine", "components.parts", "components.renderers"},
    "components.outputs": {"components.platform", "components.parts"},
    "components.parts": {
        "components.engine",
        "components.renderers",
        "components.dynamic.certificates",
    },
    "components.renderers": set(),
    "components.engine": {"components.dynamic"},
    "components.dynamic": set(),
    "stacks": set(),
    "provider": set(),
    "sdk": set(),
}
BELOW_EVERYTHING = {"stacks", "provider", "sdk", "pitr", "probe"}
"""What any package of the program may import: the settings, the provider's rules, the SDK's
internals, and the layout constants of the deployed tools."""
ENGINE_INTERFACE = {
    "components.engine",
    "components.engine.base",
    "components.engine.files",
    "components.engine.workload",
}
"""What the parts see of the engine layer: how each engine does it stays behind them."""
SHIMS = {"components.pids_limit", "components.traffic_gate", "components.exporter_role"}
"""Re-exports at the dynamic providers' former places, for states that name them."""


def modules() -> list[tuple[str, Path]]:
    found = []
    for top in PROGRAM:
        for path in sorted((ROOT / top).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found.append((name.removesuffix(".__init__"), path))
    return found


def package_of(module: str) -> str:
    """The MAY_IMPORT key a module belongs to (its longest prefix there)."""
    keys = [k for k in MAY_IMPORT if module == k or module.startswith(f"{k}.")]
    return max(keys, key=len) if keys else module


def imported(path: Path) -> set[str]:
    """The project modules a file imports, at any depth of the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return {m for m in found if m.split(".")[0] in (*PROGRAM, "pitr", "probe")}


@pytest.mark.parametrize(("module", "path"), modules(), ids=[m for m, _ in modules()])
def test_imports_run_one_way(module: str, path: Path) -> None:
    if module in SHIMS or module == "components":
        return
    own = package_of(module)
    allowed = {own, *MAY_IMPORT.get(own, set()), *BELOW_EVERYTHING}
    wrong = sorted(
        m
        for m in imported(path)
        if not any(m == a or m.startswith(f"{a}.") for a in allowed)
        # `from components.engine import files` names a module of an allowed package
        and package_of(m.rsplit(".", 1)[0]) not in allowed
    )
    assert not wrong, f"{module} ({own}) imports {wrong}: against the house's flow"
    if own != "components.engine":
        inside = sorted(
            m
            for m in imported(path)
            if m.startswith("components.engine.")
            and m not in ENGINE_INTERFACE
            and m.rsplit(".", 1)[0] not in ENGINE_INTERFACE
        )
        assert not inside, f"{module} reaches into the engine layer: {inside}"


ENGINE_TEST = re.compile(
    r"\bengine\s*[!=]=|\.swarm\b|isinstance\([^)]*docker\.(Container|Service)\b"
    r"|\bdocker\.(Service|Secret)\(|\bSwarmEngine\b|\bContainerEngine\b"
)


@pytest.mark.parametrize(
    "path",
    [
        p
        for m, p in modules()
        if m.startswith("components") and package_of(m) != "components.engine"
    ],
    ids=lambda p: p.relative_to(ROOT).as_posix(),
)
def test_nothing_outside_the_engine_asks_which_engine_runs(path: Path) -> None:
    found = [
        f"{number}: {line.strip()}"
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if ENGINE_TEST.search(line)
    ]
    assert not found, f"{path.relative_to(ROOT)} tests the engine: {found}"
