"""`make preview STACK=prod` on a clean clone, as a new user runs it: the real Pulumi engine, the
real prod stack file, the policy pack with every rule mandatory, and no pack virtualenv yet."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import docker
import pytest

from deploy.workspace import ROOT
from tests.integration.engine import PASSPHRASE, EngineHome

pytestmark = [pytest.mark.integration, pytest.mark.docker]


def clean_clone(folder: Path) -> Path:
    """The project's files as a commit of the working tree would hold them: nothing git ignores
    (no state, no virtualenv)."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, folder / name)
    return folder


def test_make_preview_of_prod_completes_on_a_clean_clone(
    tmp_path: Path, pulumi_home: EngineHome, answering_engine: docker.DockerClient
) -> None:
    # A preview of a new stack creates nothing on the engine (make asks only that it answers),
    # so this runs beside the session that holds the engine.
    clone = clean_clone(tmp_path / "clone")
    assert not (clone / "policies" / "venv").exists()
    # The project's Python environment stands in for `make install`, the one step not repeated.
    (clone / ".venv").symlink_to(ROOT / ".venv")
    env = {
        **os.environ,
        "PATH": f"{pulumi_home.cli.parent}:{os.environ['PATH']}",
        "PULUMI_HOME": str(pulumi_home.home),
        "PULUMI_BACKEND_URL": f"file://{tmp_path}",
        "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
        "PULUMI_SKIP_UPDATE_CHECK": "true",
    }

    def make_preview() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["make", "--no-print-directory", "-o", "install", "preview", "STACK=prod"],
            cwd=clone,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )

    # As shipped, prod's off-host repository names example hosts: the preview stops at them,
    # in one line, before anything is asked of any host.
    result = make_preview()
    said = result.stdout + result.stderr
    assert result.returncode != 0, said[-4000:]
    lines = [ln for ln in said.splitlines() if "still the stack file's example" in ln]
    # The engine says it again as "an unhandled error occurred: <the same line>".
    assert lines and lines[0].startswith("error: pitr.offHost."), said[-4000:]
    assert "Traceback" not in said, said[-4000:]
    line = lines[0]
    assert "pitr.offHost.dockerHost (tcp://backup-1.example.com:2376)" in line, line
    assert "set pitr.offHost.enabled: false" in line and "nothing was changed" in line, line
    # With it off (or filled in), the whole preview.
    stack_file = clone / "Pulumi.prod.yaml"
    text = stack_file.read_text()
    off_host = text[text.index("      offHost:\n") : text.index("    # Metrics and alerts")]
    stack_file.write_text(text.replace(off_host, "      offHost: { enabled: false }\n"))
    result = make_preview()
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    # make prepared the pack's environment from its hash-pinned lock before the engine ran it.
    assert (clone / "policies" / "venv" / "bin" / "python").exists()
    assert "--require-hashes -r policies/requirements.txt" in said + output
    # The pack ran, mandatory, on a stack where nothing is known yet, and judged every rule.
    assert "Loading policy packs...: done" in output or "ecommerce-production-rules" in output
    assert "can't run policy" not in output, output[-4000:]
    assert "mandatory" not in output, output[-4000:]
    assert "to create" in output
    # Quiet: no warning in the whole preview (a diagnostic line `warning: ...`; the word alone
    # is in the plan, as the severity of the alert rules the preview shows).
    assert not re.search(r"(?im)^\s*warning\b", output), output[-4000:]
