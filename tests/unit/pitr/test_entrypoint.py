"""The PITR image's server entrypoint (pitr/entrypoint.sh): the start guard before the official
entrypoint, as the server's own user, only for the server; a refusal stops the start."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from deploy.workspace import ROOT

ENTRYPOINT = ROOT / "pitr" / "entrypoint.sh"
# Stand-ins for what the image has: each says how it was called, in order, in $CALLS.
STUBS = {
    "docker-entrypoint.sh": 'echo "entrypoint $*" >> "$CALLS"',
    "python3": 'echo "python3 $*" >> "$CALLS"; exit "${GUARD_EXIT:-0}"',
    "gosu": 'echo "gosu $1" >> "$CALLS"; shift; exec "$@"',
    "id": 'echo "$FAKE_UID"',
}


def run(
    tmp_path: Path,
    argv: list[str],
    uid: int,
    stanza: str | None,
    guard_exit: int = 0,
    keys: bool = False,
) -> tuple[int, list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, body in STUBS.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    calls = tmp_path / "calls"
    calls.write_text("")
    config = tmp_path / "config"
    config.mkdir(exist_ok=True)
    (config / "pgbackrest.conf").write_text("")
    if keys:  # beside an off-host repository
        (config / "client.key").write_text("")
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "CALLS": str(calls),
        "FAKE_UID": str(uid),
        "GUARD_EXIT": str(guard_exit),
        "PITR_CONFIG_DIR": str(config),
        **({"PITR_STANZA": stanza} if stanza else {}),
    }
    done = subprocess.run(["/bin/sh", str(ENTRYPOINT), *argv], env=env, check=False)
    return done.returncode, calls.read_text().splitlines()


GUARD = "python3 -m pitr guard --stanza order"


@pytest.mark.parametrize(
    ("uid", "expected"),
    [(0, ["gosu postgres", GUARD]), (999, [GUARD])],
    ids=["root-drops-to-postgres", "already-postgres"],
)
def test_the_server_starts_after_the_guard_as_its_own_user(
    tmp_path: Path, uid: int, expected: list[str]
) -> None:
    code, calls = run(tmp_path, ["postgres", "-c", "archive_mode=on"], uid, "order")
    assert code == 0
    assert calls == [*expected, "entrypoint postgres -c archive_mode=on"]


def test_a_refused_start_never_reaches_the_official_entrypoint(tmp_path: Path) -> None:
    code, calls = run(tmp_path, ["postgres"], 999, "order", guard_exit=3)
    assert (code, calls) == (3, [GUARD])


@pytest.mark.parametrize(
    ("argv", "stanza"),
    [(["python3", "-m", "pitr", "agent"], "order"), (["postgres"], None)],
    ids=["not-the-server", "no-stanza-given"],
)
def test_other_commands_and_servers_without_a_stanza_go_straight_through(
    tmp_path: Path, argv: list[str], stanza: str | None
) -> None:
    code, calls = run(tmp_path, argv, 999, stanza)
    assert (code, calls) == (0, [f"entrypoint {' '.join(argv)}"])


KEYS = "python3 -m pitr install-keys"


@pytest.mark.parametrize(
    ("argv", "uid", "expected"),
    [
        (["postgres"], 0, ["gosu postgres", KEYS, "gosu postgres", GUARD]),
        (["postgres"], 999, [KEYS, GUARD]),
        (["python3", "-m", "pitr", "agent"], 999, [KEYS]),
    ],
    ids=["server-as-root", "server-as-postgres", "agent"],
)
def test_tls_keys_are_installed_first_as_the_servers_user(
    tmp_path: Path, argv: list[str], uid: int, expected: list[str]
) -> None:
    code, calls = run(tmp_path, argv, uid, "order", keys=True)
    assert code == 0
    assert calls == [*expected, f"entrypoint {' '.join(argv)}"]
