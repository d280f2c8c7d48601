"""Faults: killed dumps, corrupt files, bad credentials, unreachable servers, bad input,
unwritable destinations, concurrent runs, restores over data and failed restores. Each must
give one clear line, the documented exit code, and lose nothing."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from backup import errors
from tests.backup.conftest import (
    ROOT,
    SERVICES,
    Env,
    copy_backup,
    fingerprint,
    restore_args,
    run_tool,
)
from tests.backup.pgserver import free_port

pytestmark = pytest.mark.integration


def _one_error_line(text: str) -> str:
    """The tool's own failure line: exactly one, `ecommerce-backup: error: ...`."""
    lines = [line for line in text.splitlines() if line.startswith("ecommerce-backup:")]
    assert len(lines) == 1, text
    assert lines[0].startswith("ecommerce-backup: error: "), text
    return lines[0]


# A wait, not a speed bound: on a loaded machine the tool can take long to reach pg_dump.
SHIM_WAIT_SECONDS = 300
# The shimmed pg_dump sleeps until the test kills it; this only bounds a test gone wrong.
SHIM_DUMP_SLEEP = str(2 * SHIM_WAIT_SECONDS)


def _wait_for_shim(proc: subprocess.Popen[str], pids: Path) -> tuple[int, int]:
    """The pids of the shimmed pg_dump and its sleep, once `create` has started it.

    Fails at once with the tool's output if `create` ends before it gets there."""
    deadline = time.monotonic() + SHIM_WAIT_SECONDS
    while not (pids.exists() and pids.read_text().strip()):
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"create ended ({proc.returncode}) before pg_dump started: {out}{err}")
        assert time.monotonic() < deadline, f"pg_dump not started in {SHIM_WAIT_SECONDS} s"
        time.sleep(0.05)
    shim_pid, sleep_pid = map(int, pids.read_text().split()[:2])
    return shim_pid, sleep_pid


@pytest.fixture
def filled_target(pgenv: Env, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A copy of customer_db (same user, with data) and a targets file that points at it."""
    name = "customer_db_live_" + tmp_path.name[-6:].replace("-", "_").lower()
    name = "".join(c if c.isalnum() else "_" for c in name)
    pgenv.server.psql(f'CREATE DATABASE "{name}" OWNER customer_user')
    pgenv.psql(
        "customer",
        "CREATE TABLE keep_me (id int PRIMARY KEY, note text);"
        "INSERT INTO keep_me SELECT g, 'precious ' || g FROM generate_series(1, 500) g;",
        name,
    )
    path = pgenv.write_targets(tmp_path / "live.json", pgenv.targets({"customer": name}))
    yield path, name
    pgenv.server.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_flipped_byte_fails_verify_naming_the_file_and_restore_refuses(
    pgenv: Env, backup_dir: Path, tmp_path: Path, filled_target: tuple[Path, str]
) -> None:
    dest = tmp_path / "b"
    copy = copy_backup(backup_dir, dest)
    manifest = json.loads((copy / "manifest.json").read_text())
    victim = max(manifest["databases"]["customer"]["files"], key=lambda f: f["size"])["path"]
    assert victim.endswith(".dat.zst")  # the default: zstd-compressed table data
    data = bytearray((copy / victim).read_bytes())
    data[len(data) // 2] ^= 0x01
    (copy / victim).write_bytes(bytes(data))

    r = run_tool("verify", "--dest", dest, copy.name)
    assert r.code == errors.VERIFY_FAILED
    line = _one_error_line(r.err)
    assert victim in line and "sha256" in line
    assert json.loads((copy / "verified.json").read_text())["ok"] is False
    listed = run_tool("list", "--dest", dest)
    assert "FAILED" in listed.out

    targets, live = filled_target
    before = fingerprint(pgenv, "customer", live)
    r = run_tool(
        "restore",
        "--dest",
        dest,
        copy.name,
        "--targets",
        targets,
        "--only",
        "customer",
        "--force",
        env=pgenv.admin_env(),
    )
    assert r.code == errors.VERIFY_FAILED
    assert victim in _one_error_line(r.err) and "refused" in r.err
    assert fingerprint(pgenv, "customer", live) == before


def test_missing_file_fails_verify(backup_dir: Path, tmp_path: Path) -> None:
    dest = tmp_path / "b"
    copy = copy_backup(backup_dir, dest)
    (copy / "product" / "toc.dat").unlink()
    r = run_tool("verify", "--dest", dest)
    assert r.code == errors.VERIFY_FAILED
    assert "product/toc.dat: missing" in r.err


def test_wrong_password_is_a_connect_error_without_the_password(pgenv: Env, tmp_path: Path) -> None:
    bad = "wrong-" + pgenv.passwords["customer"][::-1]
    targets = pgenv.write_targets(tmp_path / "t.json", pgenv.targets(customer={"password": bad}))
    r = run_tool("create", "--targets", targets, "--dest", tmp_path / "b", "--verbose")
    assert r.code == errors.CANNOT_CONNECT
    line = _one_error_line(r.err)
    assert "password authentication failed" in line and "'customer'" in line
    assert bad not in r.text
    for password in pgenv.passwords.values():
        assert password not in r.text
    assert [p.name for p in (tmp_path / "b").iterdir()] == [".lock"]


def test_unreachable_host_is_a_connect_error(pgenv: Env, tmp_path: Path) -> None:
    targets = pgenv.write_targets(tmp_path / "t.json", pgenv.targets(order={"port": free_port()}))
    r = run_tool("create", "--targets", targets, "--dest", tmp_path / "b")
    assert r.code == errors.CANNOT_CONNECT
    line = _one_error_line(r.err)
    assert "cannot connect to 'order'" in line and "refused" in line.lower()


def test_bad_input_is_a_usage_error(pgenv: Env, tmp_path: Path) -> None:
    r = run_tool("list", "--dest", tmp_path / "nope")
    assert r.code == errors.USAGE
    assert "does not exist" in _one_error_line(r.err)

    r = run_tool(
        "create", "--targets", pgenv.targets_file, "--dest", tmp_path / "b", "--only", "nope"
    )
    assert r.code == errors.USAGE
    assert "unknown service 'nope'" in _one_error_line(r.err)

    data = pgenv.targets()
    del data["product"]["port"]
    bad = pgenv.write_targets(tmp_path / "bad.json", data)
    r = run_tool("create", "--targets", bad, "--dest", tmp_path / "b")
    assert r.code == errors.USAGE
    assert "service 'product' lacks key 'port'" in _one_error_line(r.err)
    assert pgenv.passwords["customer"] not in r.text

    (tmp_path / "junk.json").write_text("{not json")
    r = run_tool("create", "--targets", tmp_path / "junk.json", "--dest", tmp_path / "b")
    assert r.code == errors.USAGE and "not valid JSON" in r.err

    r = run_tool("create", "--dest", tmp_path / "b")
    assert r.code == errors.USAGE and "--targets FILE or --stack NAME" in r.err

    r = run_tool("prune", "--dest", tmp_path, "--keep-last", "0")
    assert r.code == errors.USAGE  # argparse


def test_unwritable_destination(pgenv: Env, tmp_path: Path) -> None:
    a_file = tmp_path / "plain-file"
    a_file.write_text("not a directory")
    r = run_tool("create", "--targets", pgenv.targets_file, "--dest", a_file / "backups")
    assert r.code == errors.FAILED
    line = _one_error_line(r.err)
    assert "cannot create backup directory" in line and "Not a directory" in line
    assert a_file.read_text() == "not a directory"


def _unprivileged_python() -> list[str] | None:
    """A command prefix running the system python3 as `nobody` (the tool is stdlib-only)."""
    python = shutil.which("python3", path="/usr/bin:/bin")
    if os.geteuid() != 0 or python is None or shutil.which("runuser") is None:
        return None
    return ["runuser", "-u", "nobody", "--", python]


@pytest.mark.skipif(_unprivileged_python() is None, reason="needs root, runuser and python3")
def test_destination_not_writable_by_the_user(pgenv: Env) -> None:
    """As an unprivileged user, a root-owned 0755 directory cannot be written: one clear line,
    exit code FAILED, nothing written."""
    prefix = _unprivileged_python()
    assert prefix is not None
    work = Path(tempfile.mkdtemp(prefix="backup-nobody-"))
    try:
        work.chmod(0o755)
        dest = work / "root-owned"
        dest.mkdir(mode=0o755)
        targets = pgenv.write_targets(work / "t.json", pgenv.targets())
        targets.chmod(0o644)  # readable by nobody, for this test only
        proc = subprocess.run(
            [*prefix, "-m", "backup", "create", "--targets", str(targets), "--dest", str(dest)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={"PATH": os.environ["PATH"], "HOME": "/tmp"},
        )
        assert proc.returncode == errors.FAILED, proc.stderr
        assert "is not writable by this user" in _one_error_line(proc.stderr)
        assert list(dest.iterdir()) == []
    finally:
        shutil.rmtree(work)


def start_create(
    pgenv: Env, dest: Path, bin_dir: Path, env: dict[str, str], *, new_session: bool = False
) -> subprocess.Popen[str]:
    """`create` in the background through the recording shims, to be killed midway."""
    command = [
        sys.executable,
        "-m",
        "backup",
        "create",
        "--targets",
        str(pgenv.targets_file),
        "--dest",
        str(dest),
        "--pg-bin",
        str(bin_dir),
    ]
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=new_session,
    )


def test_killed_pg_dump_fails_the_backup_and_leaves_nothing(
    pgenv: Env, tmp_path: Path, shim_bin: tuple[Path, Path]
) -> None:
    bin_dir, argv_log = shim_bin
    dest = tmp_path / "b"
    env = {"SHIM_LOG": str(argv_log), "SHIM_DUMP_SLEEP": SHIM_DUMP_SLEEP}
    proc = start_create(pgenv, dest, bin_dir, env)
    pids = Path(f"{argv_log}.pids")
    try:
        shim_pid, sleep_pid = _wait_for_shim(proc, pids)
        os.kill(shim_pid, signal.SIGKILL)
        os.kill(sleep_pid, signal.SIGKILL)
        _out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == errors.FAILED, err
    line = _one_error_line(err)
    assert "pg_dump of" in line and "killed by signal 9" in line
    assert sorted(p.name for p in dest.iterdir()) == [".lock"]
    r = run_tool("list", "--dest", dest, "--json")
    assert json.loads(r.out) == {"backups": [], "ignored": []}


def test_killed_tool_leaves_no_complete_backup_and_holds_the_lock_while_running(
    pgenv: Env, backup_dir: Path, tmp_path: Path, shim_bin: tuple[Path, Path]
) -> None:
    bin_dir, argv_log = shim_bin
    dest = tmp_path / "b"
    older = copy_backup(backup_dir, dest, "20200101_000000")
    env = {"SHIM_LOG": str(argv_log), "SHIM_DUMP_SLEEP": SHIM_DUMP_SLEEP}
    proc = start_create(pgenv, dest, bin_dir, env, new_session=True)
    pids = Path(f"{argv_log}.pids")
    try:
        _wait_for_shim(proc, pids)
        # a second run is refused while the first holds the lock, naming the holder
        second = run_tool("create", "--targets", pgenv.targets_file, "--dest", dest)
        assert second.code == errors.LOCK_HELD
        line = _one_error_line(second.err)
        assert f"pid {proc.pid}" in line and "create" in line
        pruned = run_tool("prune", "--dest", dest, "--keep-last", "1")
        assert pruned.code == errors.LOCK_HELD
        # now the tool dies abruptly, with its children (power-cut style)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
    incomplete = [p.name for p in dest.iterdir() if p.name.startswith(".incomplete-")]
    assert len(incomplete) == 1
    listed = json.loads(run_tool("list", "--dest", dest, "--json").out)
    assert [b["name"] for b in listed["backups"]] == [older.name]
    assert listed["ignored"][0]["name"] == incomplete[0]
    assert "incomplete" in listed["ignored"][0]["reason"]

    r = run_tool("prune", "--dest", dest, "--keep-last", "1")
    assert r.code == 0, r.err
    assert f"kept {older.name}" in r.out
    assert sorted(p.name for p in dest.iterdir()) == [".lock", older.name]


def test_restore_over_data_is_refused_without_force(
    pgenv: Env, backup_dir: Path, filled_target: tuple[Path, str]
) -> None:
    targets, live = filled_target
    before = fingerprint(pgenv, "customer", live)
    r = run_tool(
        *restore_args(backup_dir, targets),
        "--only",
        "customer",
        env=pgenv.admin_env(),
    )
    assert r.code == errors.REFUSED
    line = _one_error_line(r.err)
    assert "already has 1 table(s), 1 with rows" in line and "--force" in line
    assert fingerprint(pgenv, "customer", live) == before


def test_restore_force_replaces_the_data(
    pgenv: Env, backup_dir: Path, filled_target: tuple[Path, str]
) -> None:
    targets, live = filled_target
    pgenv.psql("customer", "SELECT 1", live)
    r = run_tool(
        *restore_args(backup_dir, targets),
        "--only",
        "customer",
        "--force",
        "--keep-old",
        env=pgenv.admin_env(),
    )
    assert r.code == 0, r.err
    assert fingerprint(pgenv, "customer", live) == fingerprint(pgenv, "customer")
    kept = [d for d in pgenv.databases() if d.startswith(f"{live}_old_")]
    assert len(kept) == 1 and f"kept as {kept[0]}" in r.out
    assert "public.keep_me" in fingerprint(pgenv, "customer", kept[0])
    pgenv.server.psql(f'DROP DATABASE "{kept[0]}"')


def test_failed_restore_keeps_the_old_data(
    pgenv: Env,
    backup_dir: Path,
    filled_target: tuple[Path, str],
    shim_bin: tuple[Path, Path],
) -> None:
    bin_dir, argv_log = shim_bin
    targets, live = filled_target
    before = fingerprint(pgenv, "customer", live)
    r = run_tool(
        *restore_args(backup_dir, targets),
        "--only",
        "customer",
        "--force",
        "--pg-bin",
        bin_dir,
        env={**pgenv.admin_env(), "SHIM_LOG": str(argv_log), "SHIM_RESTORE_FAIL": "1"},
    )
    assert r.code == errors.FAILED
    line = _one_error_line(r.err)
    assert "no database was changed" in line and "injected failure" in line
    assert fingerprint(pgenv, "customer", live) == before
    assert [d for d in pgenv.databases() if "_restore_" in d or "_old_" in d] == []


def test_passwords_never_in_argv_nor_output(
    pgenv: Env, tmp_path: Path, shim_bin: tuple[Path, Path], backup_dir: Path
) -> None:
    bin_dir, argv_log = shim_bin
    dest = tmp_path / "b"
    names = {s: f"{db}_pw" for s, (_u, db) in SERVICES.items()}
    for service, name in names.items():
        pgenv.server.psql(f'CREATE DATABASE "{name}" OWNER {SERVICES[service][0]}')
    try:
        restore_targets = pgenv.write_targets(tmp_path / "rt.json", pgenv.targets(names))
        env = {**pgenv.admin_env(), "SHIM_LOG": str(argv_log)}
        common: list[str | Path] = ["--pg-bin", bin_dir, "--verbose"]
        runs = [
            run_tool("create", "--targets", pgenv.targets_file, "--dest", dest, *common, env=env),
            run_tool(
                "verify",
                "--dest",
                dest,
                "--deep",
                "--targets",
                pgenv.targets_file,
                *common,
                env=env,
            ),
        ]
        name = json.loads(run_tool("list", "--dest", dest, "--json").out)["backups"][0]["name"]
        runs.append(
            run_tool(
                "restore", "--dest", dest, name, "--targets", restore_targets, *common, env=env
            )
        )
        for r in runs:
            assert r.code == 0, r.err
        recorded = argv_log.read_text()
        for prog in ("pg_dump", "pg_restore", "psql"):
            assert f"/{prog}\n" in recorded, f"{prog} never ran through the shim"
        secrets = [*pgenv.passwords.values(), pgenv.server.password]
        for secret in secrets:
            assert secret not in recorded
            for r in runs:
                assert secret not in r.text
        assert "run: " in runs[0].err  # --verbose did log the commands
    finally:
        for name in names.values():
            pgenv.server.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_service_user_without_createdb_needs_an_admin(
    pgenv: Env, backup_dir: Path, filled_target: tuple[Path, str]
) -> None:
    targets, _live = filled_target
    r = run_tool(
        *restore_args(backup_dir, targets),
        "--only",
        "customer",
        "--force",
    )
    assert r.code == errors.CANNOT_CONNECT
    line = _one_error_line(r.err)
    assert "may not create databases" in line and "--admin-user" in line


def test_corrupt_zstd_stream_with_matching_checksum_fails_deep_verify(
    pgenv: Env, backup_dir: Path, tmp_path: Path
) -> None:
    """A damaged .zst whose manifest checksum was updated too (so only decompression can
    tell): deep verify fails naming the database, and no scratch directory is left."""
    dest = tmp_path / "b"
    copy = copy_backup(backup_dir, dest)
    manifest = json.loads((copy / "manifest.json").read_text())
    entry = max(manifest["databases"]["order"]["files"], key=lambda f: f["size"])
    path = copy / entry["path"]
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 64):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    entry["sha256"] = hashlib.sha256(bytes(data)).hexdigest()
    (copy / "manifest.json").write_text(json.dumps(manifest))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    r = run_tool(
        "verify",
        "--dest",
        dest,
        copy.name,
        "--deep",
        "--targets",
        pgenv.targets_file,
        env={**pgenv.admin_env(), "TMPDIR": str(scratch)},
    )
    assert r.code == errors.VERIFY_FAILED, r.err
    line = _one_error_line(r.err)
    assert f"{copy.name}/order" in line and "zstd" in line
    assert list(scratch.iterdir()) == []
    assert not [d for d in pgenv.databases() if "_verify_" in d]


def test_missing_zstd_is_one_clear_error(
    pgenv: Env, backup_dir: Path, tmp_path: Path, filled_target: tuple[Path, str]
) -> None:
    no_zstd = {"PATH": str(tmp_path / "empty-path")}
    (tmp_path / "empty-path").mkdir()
    pg_bin = ("--pg-bin", str(pgenv.server.bin_dir))
    dest = tmp_path / "b"
    r = run_tool("create", "--targets", pgenv.targets_file, "--dest", dest, *pg_bin, env=no_zstd)
    assert r.code == errors.CANNOT_CONNECT
    line = _one_error_line(r.err)
    assert "zstd" in line and "install" in line
    assert not dest.exists() or not [p for p in dest.iterdir() if p.name != ".lock"]
    r = run_tool(
        "create",
        "--targets",
        pgenv.targets_file,
        "--dest",
        dest,
        *pg_bin,
        "--compress",
        "gzip:1",
        "--only",
        "customer",
        env=no_zstd,
    )
    assert r.code == 0, r.err

    targets, live = filled_target
    before = fingerprint(pgenv, "customer", live)
    r = run_tool(
        *restore_args(backup_dir, targets),
        "--only",
        "customer",
        "--force",
        *pg_bin,
        env={**pgenv.admin_env(), **no_zstd},
    )
    assert r.code == errors.CANNOT_CONNECT
    assert "zstd" in _one_error_line(r.err)
    assert fingerprint(pgenv, "customer", live) == before
    assert not [d for d in pgenv.databases() if "_restore_" in d]
