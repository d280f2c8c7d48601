"""The exporter's role made in a running server through the Engine API's exec: what a deploy
does on a server whose volume was initialised before monitoring was on (its entrypoint never
runs init scripts again). A real PostgreSQL container, a real Docker engine."""

from __future__ import annotations

from typing import Any

import pytest

from components.dynamic.exporter_role import COMMAND, CONTAINER_ID, ExporterRoleError, run_script
from components.engine.files import secret_path
from components.parts.exporter_login import PASSWORD_FILE, SCRIPT_FILE, role_script
from tests.integration.conftest import Harness, exec_in, wait_postgres_ready
from tests.integration.stacks import IMAGES

pytestmark = [pytest.mark.integration, pytest.mark.docker]


def exporter_login(server: Any, password: str) -> tuple[int, str]:
    return exec_in(
        server,
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-U",
            "exporter",
            "-d",
            "postgres",
            "-tAc",
            "SELECT pg_has_role('pg_monitor', 'member')",
        ],
        env={"PGPASSWORD": password},
    )


def test_the_role_is_made_in_a_server_that_never_had_it(dock: Harness) -> None:
    password = "Ex" + "p0rter" * 6
    secrets = dock.seed_secrets(
        "secrets",
        {
            PASSWORD_FILE: password,
            SCRIPT_FILE: role_script(secret_path(PASSWORD_FILE)),
            "admin": "admin-password-of-the-test",
        },
    )
    server = dock.run(
        IMAGES["postgres"],
        "db",
        environment={"POSTGRES_USER": "postgres", "POSTGRES_PASSWORD_FILE": "/run/secrets/admin"},
        volumes={secrets: {"bind": "/run/secrets", "mode": "ro"}},
    )
    wait_postgres_ready(server, "postgres", "postgres")
    assert exporter_login(server, password)[0] != 0  # no such role yet
    props = {CONTAINER_ID: server.id, COMMAND: ["sh", secret_path(SCRIPT_FILE)]}
    run_script(props)
    assert exporter_login(server, password) == (0, "t\n")
    run_script(props)  # again: the same role, nothing refused
    assert exporter_login(server, password) == (0, "t\n")
    with pytest.raises(ExporterRoleError) as failed:
        run_script({CONTAINER_ID: server.id, COMMAND: ["sh", "/run/secrets/missing.sh"]})
    message = str(failed.value)
    assert message.startswith(
        f"exporter role in container {server.id[:12]}: the role script exited with 2: "
    )
    assert "missing.sh" in message and message.endswith("run the deploy again)")
