"""The health checks that run every few seconds in their containers start lean: `python3 -m pitr
health` and `python3 -m backup status` do not import the metrics' HTTP server (about a third of
their CPU; docs/testing.md#where-the-time-goes)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["pitr.cli", "backup.cli"])
def test_the_command_line_imports_no_http_server(module: str) -> None:
    probe = f"import sys, {module}; print(sorted(m for m in sys.modules if m.startswith('http')))"
    # A fresh interpreter: this one has imported everything already.
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert found == "[]", f"{module} imports {found}"
