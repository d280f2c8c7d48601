"""The program's own certificates (components/dynamic/certificates.py) through the real Pulumi
engine and its Python dynamic provider: created, kept by a second `up` and a refresh, renewed
by the `up` that finds one within its renewal window, removed by a destroy; their private keys
never in plain text in the state. No Docker: these resources live in the state only."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pulumi
import pytest
from pulumi import automation as auto

from components.dynamic.certificates import CertificateAuthority, IssuedCertificate
from deploy.workspace import ROOT
from tests.integration.engine import PASSPHRASE, cli

pytestmark = pytest.mark.integration

RENEW_BEFORE_DAYS = {"client": 30}
"""What the program says this run (the test changes it between previews)."""


def program() -> None:
    authority = CertificateAuthority("ca", "test CA", 3650, 365)
    client = IssuedCertificate(
        "client", authority, "order", "client", 365, RENEW_BEFORE_DAYS["client"]
    )
    pulumi.export("cert", client.cert_pem)
    pulumi.export("key", client.key_pem)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[auto.Stack]:
    found = cli()
    if found is None:
        message = "no Pulumi CLI: build the pinned one with `make pulumi-cli` (needs Go)"
        if os.environ.get("REQUIRE_INTEGRATION") == "1":
            pytest.fail(f"REQUIRE_INTEGRATION=1 but {message}")
        pytest.skip(message)
    folder = tmp_path_factory.mktemp("certificates")
    env = {
        "PULUMI_HOME": str(folder / "home"),
        "PULUMI_BACKEND_URL": f"file://{folder / 'state'}",
        "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_RUNTIME_VIRTUALENV": sys.prefix,
        # The dynamic provider's launcher sits by the CLI; it imports the program's modules.
        "PATH": f"{found.parent}:{os.environ['PATH']}",
        "PYTHONPATH": str(ROOT),
    }
    # A project folder of its own: the workspace writes its Pulumi.yaml and stack file there.
    for part in ("state", "project"):
        (folder / part).mkdir()
    made = auto.create_stack(
        "certificates",
        project_name="certificates",
        program=program,
        opts=auto.LocalWorkspaceOptions(
            work_dir=str(folder / "project"),
            env_vars=env,
            pulumi_command=auto.PulumiCommand(root=str(found.parent.parent)),
            project_settings=auto.ProjectSettings(name="certificates", runtime="python"),
        ),
    )
    try:
        yield made
    finally:
        made.destroy()


def test_certificates_through_the_engine(stack: auto.Stack) -> None:
    created = stack.up()
    assert created.summary.resource_changes == {"create": 3}
    assert created.outputs["key"].secret
    assert created.outputs["cert"].value.startswith("-----BEGIN CERTIFICATE-----")
    state = Path(stack.workspace.env_vars["PULUMI_BACKEND_URL"].removeprefix("file://"))
    written = [p for p in state.rglob("*") if p.is_file()]
    assert written and not [p for p in written if b"PRIVATE KEY" in p.read_bytes()]

    assert stack.up().summary.resource_changes == {"same": 3}
    assert stack.refresh().summary.resource_changes == {"same": 3}
    try:
        # A window as long as the certificate's life: renewal is due, a new certificate.
        RENEW_BEFORE_DAYS["client"] = 400
        assert stack.preview().change_summary == {"replace": 1, "same": 2}
        # A wider window that is not reached yet: the same certificate, the new window kept.
        RENEW_BEFORE_DAYS["client"] = 60
        assert stack.preview().change_summary == {"update": 1, "same": 2}
    finally:
        RENEW_BEFORE_DAYS["client"] = 30
    assert stack.destroy().summary.resource_changes == {"delete": 3}
