"""The settings layer has no import cycle: each domain's module stands alone (with what it
shares in `common`), the top-level model (`platform`) is made of them, and the rules that need
the whole stack (`rules/`) build on that. A domain module that needed PlatformSettings, even for
a type hint, would hold a rule across domains: it belongs in `rules/`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from plan.recorder import ROOT

SETTINGS = ROOT / "stacks" / "settings"
PACKAGE = "stacks.settings"
DOMAINS = sorted(p for p in SETTINGS.glob("*.py") if p.name not in {"__init__.py", "platform.py"})
ABOVE_THE_DOMAINS = (f"{PACKAGE}.platform", f"{PACKAGE}.rules")


def imported(path: Path) -> set[str]:
    """Every module a file imports, type-checking imports included, as absolute names (and
    `package.name` for each `from package import name`, which may be a module)."""
    here = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = here.rsplit(".", node.level)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names}
    return found


def above_the_domains(path: Path) -> list[str]:
    return sorted(
        module
        for module in imported(path)
        # The package itself re-exports PlatformSettings and the rules.
        if module == PACKAGE
        or any(module == top or module.startswith(f"{top}.") for top in ABOVE_THE_DOMAINS)
    )


def test_the_domain_modules_are_found() -> None:
    assert {p.stem for p in DOMAINS} >= {"common", "services", "databases", "edge", "monitoring"}


@pytest.mark.parametrize("module", DOMAINS, ids=[p.stem for p in DOMAINS])
def test_a_domain_module_imports_neither_the_top_level_nor_the_rules(module: Path) -> None:
    assert above_the_domains(module) == [], (
        f"{module.name}: move that rule to stacks/settings/rules/"
    )


def test_the_top_level_model_does_not_import_the_rules() -> None:
    rules = [m for m in imported(SETTINGS / "platform.py") if m.startswith(f"{PACKAGE}.rules")]
    assert rules == [] and PACKAGE not in imported(SETTINGS / "platform.py")
