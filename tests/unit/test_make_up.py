"""`make up` on a fresh clone: no prompt, no prior step. The Pulumi CLI and Docker are stand-ins
here (scripts that record how they were called); the Makefile, its scripts and the stack files
are the project's own, run in a copy of the project.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from plan.recorder import ROOT

FAKE_PULUMI = """#!/bin/sh
# Records each call: its arguments and the passphrase file it was given.
echo "$* | passphrase-file=${PULUMI_CONFIG_PASSPHRASE_FILE:-}" >> "$CALLS"
case "$1 $2" in
  "stack output") cat "$OUTPUTS" ;;
esac
"""
OUTPUTS = {"urls": {"gateway": "http://localhost:13000", "customer": "http://customer:3001"},
           "containers": {"gateway": "shop-dev-gateway", "customer": "shop-dev-customer"}}  # fmt: skip


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The project's Makefile, scripts and stack files, its .venv, and stand-in CLIs."""
    for name in ("Makefile", "Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml"):
        shutil.copy2(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "scripts", tmp_path / "scripts")
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (("pulumi", FAKE_PULUMI), ("docker", "#!/bin/sh\nexit 0\n")):
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(0o755)
    (tmp_path / "outputs.json").write_text(json.dumps(OUTPUTS))
    return tmp_path


def make(project: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_CONFIG_PASSPHRASE")}
    clean |= {"PATH": f"{project / 'bin'}:{os.environ['PATH']}",
              "CALLS": str(project / "calls.log"), "OUTPUTS": str(project / "outputs.json")}  # fmt: skip
    # `install` is the venv this test runs in; everything else runs as it is.
    return subprocess.run(["make", "--no-print-directory", "-o", "install", *args],
                          cwd=project, env=clean | env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, check=False)  # fmt: skip


def calls(project: Path) -> list[str]:
    log = project / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def test_a_first_make_up_asks_nothing_and_says_where_things_are(project: Path) -> None:
    result = make(project, "up")
    assert result.returncode == 0, result.stderr
    passphrase = project / ".pulumi-state" / "dev.passphrase"
    assert stat.S_IMODE(passphrase.stat().st_mode) == 0o600
    assert len(passphrase.read_text()) == 64
    assert f"created a random passphrase for stack dev in {passphrase.relative_to(project)}" in (
        result.stderr
    )
    assert passphrase.read_text() not in result.stdout + result.stderr  # the path, never the value
    assert calls(project) == [
        f"stack select --create dev | passphrase-file={passphrase}",
        f"up --stack dev --yes | passphrase-file={passphrase}",
        f"stack output --json --stack dev | passphrase-file={passphrase}",
    ]
    assert "gateway      http://localhost:13000" in result.stdout
    assert "docker logs -f shop-dev-gateway" in result.stdout
    # The next run keeps the same passphrase.
    kept = passphrase.read_text()
    assert make(project, "up").returncode == 0 and passphrase.read_text() == kept


def test_a_prod_profile_is_never_given_a_made_up_passphrase(project: Path) -> None:
    result = make(project, "up", "STACK=prod")
    assert result.returncode != 0
    assert "stack prod has a prod profile and no passphrase" in result.stderr
    assert calls(project) == [] and not (project / ".pulumi-state" / "prod.passphrase").exists()


def test_prod_asks_before_deploying_and_runs_the_policy_pack_mandatory(project: Path) -> None:
    secret = project / "prod.passphrase"
    secret.write_text(secrets.token_hex(16))  # made up per run, as an operator's would be
    assert (
        make(project, "up", "STACK=prod", PULUMI_CONFIG_PASSPHRASE_FILE=str(secret)).returncode == 0
    )
    assert calls(project)[1] == (
        "up --stack prod --policy-pack policies --policy-pack-config policies/prod.json"
        f" | passphrase-file={secret}"
    )


@pytest.mark.parametrize("style", ['profile: "prod"', "{ profile: prod, namePrefix: shop }"])
def test_a_prod_profile_is_recognised_in_any_yaml_style(project: Path, style: str) -> None:
    stack_file = project / "Pulumi.edge.yaml"
    if style.startswith("{"):
        stack_file.write_text(f"config:\n  ecommerce:platform: {style}\n")
    else:
        stack_file.write_text(f"config:\n  ecommerce:platform:\n    {style}\n")
    result = make(project, "up", "STACK=edge")
    assert "stack edge has a prod profile and no passphrase" in result.stderr
    assert calls(project) == []


def test_an_empty_passphrase_is_a_passphrase(project: Path) -> None:
    # Pulumi accepts an empty one; a stack made with it must not get a random one instead.
    empty_passphrase = {"PULUMI_CONFIG_PASSPHRASE": ""}  # set, and empty
    assert make(project, "up", **empty_passphrase).returncode == 0
    assert not (project / ".pulumi-state" / "dev.passphrase").exists()
    assert calls(project)[1] == "up --stack dev --yes | passphrase-file="
