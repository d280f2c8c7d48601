"""Round trip against a real PostgreSQL server: create, list, verify, deep verify, restore into
empty databases, and the restored data is identical (row-for-row hashes, sequences, owners)."""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from backup import errors
from backup.cli import main
from tests.backup.conftest import (
    SERVICES,
    Env,
    copy_backup,
    fingerprint,
    restore_args,
    run_tool,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def empty_targets(pgenv: Env, tmp_path: Path) -> Iterator[Path]:
    """A targets file pointing at new empty databases, each owned by its service user."""
    names = {
        service: f"{db}_rt_{tmp_path.name[-8:]}".lower() for service, (_u, db) in SERVICES.items()
    }
    names = {s: "".join(c if c.isalnum() else "_" for c in n) for s, n in names.items()}
    for service, name in names.items():
        pgenv.server.psql(f'CREATE DATABASE "{name}" OWNER {SERVICES[service][0]}')
    yield pgenv.write_targets(tmp_path / "restore-targets.json", pgenv.targets(names))
    for name in names.values():
        pgenv.server.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_manifest_describes_every_file_and_table(pgenv: Env, backup_dir: Path) -> None:
    manifest = json.loads((backup_dir / "manifest.json").read_text())
    assert manifest["format"] == "ecommerce-backup"
    assert manifest["name"] == backup_dir.name
    assert set(manifest["databases"]) == set(SERVICES)
    for service, db in manifest["databases"].items():
        assert db["database"] == SERVICES[service][1]
        assert db["server_version"].startswith(f"{pgenv.server.major}.")
        assert db["tables"] == {
            f"public.{service}_groups": 50,
            f"public.{service}_items": 3000,
            f"public.{service}_events": 6000,
            f"public.{service}_empty": 0,
        }
        on_disk = {
            str(p.relative_to(backup_dir))
            for p in (backup_dir / db["dir"]).rglob("*")
            if p.is_file()
        }
        assert on_disk == {f["path"] for f in db["files"]}
        assert f"{service}/toc.dat" in on_disk
        for f in db["files"]:
            data = (backup_dir / f["path"]).read_bytes()
            assert len(data) == f["size"]
            assert hashlib.sha256(data).hexdigest() == f["sha256"]
    # nothing of the build left behind, and no secret written anywhere
    assert not [p for p in backup_dir.parent.iterdir() if p.name.startswith(".incomplete")]
    for p in backup_dir.rglob("*"):
        if p.is_file():
            content = p.read_bytes()
            for password in pgenv.passwords.values():
                assert password.encode() not in content, p


def test_list_shows_the_backup(backup_dir: Path) -> None:
    r = run_tool("list", "--dest", backup_dir.parent, "--json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    [entry] = [b for b in data["backups"] if b["name"] == backup_dir.name]
    assert entry["databases"] == sorted(SERVICES)
    assert entry["size"] > 10_000
    text = run_tool("list", "--dest", backup_dir.parent)
    assert backup_dir.name in text.out and "customer" in text.out


def test_verify_then_deep_verify_records_the_result(
    pgenv: Env, backup_dir: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "b"
    copy = copy_backup(backup_dir, dest)
    r = run_tool("verify", "--dest", dest, copy.name)
    assert r.code == 0, r.err
    verified = json.loads((copy / "verified.json").read_text())
    assert verified["ok"] is True and verified["deep"] is False

    before = pgenv.databases()
    r = run_tool(
        "verify", "--dest", dest, "--deep", "--targets", pgenv.targets_file, env=pgenv.admin_env()
    )
    assert r.code == 0, r.err
    verified = json.loads((copy / "verified.json").read_text())
    assert verified == {**verified, "ok": True, "deep": True, "errors": []}
    assert pgenv.databases() == before, "scratch databases must be dropped"
    listed = json.loads(run_tool("list", "--dest", dest, "--json").out)
    assert listed["backups"][0]["verification"]["deep"] is True


def test_restore_into_empty_databases_gives_identical_data(
    pgenv: Env, backup_dir: Path, empty_targets: Path
) -> None:
    targets = json.loads(empty_targets.read_text())
    r = run_tool(
        *restore_args(backup_dir, empty_targets),
        env=pgenv.admin_env(),
    )
    assert r.code == 0, r.err
    for service in SERVICES:
        assert f"restored '{service}'" in r.out
        original = fingerprint(pgenv, service)
        restored = fingerprint(pgenv, service, targets[service]["database"])
        assert restored == original
        assert f"owner={SERVICES[service][0]}" in restored[f"public.{service}_items"]
        assert f"public.{service}_number_seq=4242" in restored["sequences"]
    leftovers = [d for d in pgenv.databases() if "_restore_" in d or "_old_" in d]
    assert leftovers == []


def test_a_role_without_createdb_restores_into_its_own_empty_database(
    pgenv: Env, backup_dir: Path, empty_targets: Path
) -> None:
    # The service roles here may not create databases, as the stack makes them in a fresh
    # deployment's empty databases: no admin role is given.
    targets = json.loads(empty_targets.read_text())
    r = run_tool(*restore_args(backup_dir, empty_targets), "--only", "order", "customer")
    assert r.code == 0, r.err
    assert "restored 'order'" in r.out and "(database was new or empty)" in r.out
    for service in ("order", "customer"):
        restored = fingerprint(pgenv, service, targets[service]["database"])
        assert restored == fingerprint(pgenv, service)
    assert [d for d in pgenv.databases() if "_restore_" in d or "_old_" in d] == []


def test_a_restore_into_an_empty_database_is_one_transaction(
    pgenv: Env, backup_dir: Path, empty_targets: Path
) -> None:
    # A view in the way of one of the dump's tables: pg_restore fails midway, and nothing it
    # created before that stays.
    database = json.loads(empty_targets.read_text())["order"]["database"]
    pgenv.psql("order", "CREATE VIEW order_events AS SELECT 1 AS x", database)
    r = run_tool(*restore_args(backup_dir, empty_targets), "--only", "order")
    assert r.code != 0
    assert "'order': restore into " in r.err and " rolled back, it is as it was (empty)" in r.err
    assert "the databases after it are unchanged" in r.err, r.err
    objects = pgenv.psql(
        "order",
        "SELECT relname FROM pg_class c JOIN pg_namespace n ON "
        "n.oid = c.relnamespace WHERE nspname = 'public' ORDER BY 1",
        database,
    )
    assert objects.split() == ["order_events"]


def test_a_failed_restore_into_an_empty_database_swaps_nothing_in(
    pgenv: Env, backup_dir: Path, empty_targets: Path, tmp_path: Path
) -> None:
    # 'content' replaces live data (beside, then a swap); 'order' fills an empty database and
    # fails. The empty ones go first: the live content database is still the same database.
    order_db = json.loads(empty_targets.read_text())["order"]["database"]
    pgenv.psql("order", "CREATE VIEW order_events AS SELECT 1 AS x", order_db)
    targets = pgenv.write_targets(tmp_path / "mixed.json", pgenv.targets({"order": order_db}))
    oid = "SELECT oid FROM pg_database WHERE datname = current_database()"
    before = pgenv.psql("content", oid)
    r = run_tool(
        *restore_args(backup_dir, targets),
        "--only",
        "content",
        "order",
        "--force",
        env=pgenv.admin_env(),
    )
    assert r.code != 0 and "the databases after it are unchanged" in r.err, r.err
    assert pgenv.psql("content", oid) == before
    assert [d for d in pgenv.databases() if "_restore_" in d or "_old_" in d] == []


def test_replacing_data_needs_a_role_that_may_create_databases(
    pgenv: Env, backup_dir: Path
) -> None:
    # Over the live data (--force): restored beside and swapped in, which needs CREATEDB.
    r = run_tool(*restore_args(backup_dir, pgenv.targets_file), "--only", "content", "--force")
    assert r.code == errors.CANNOT_CONNECT
    assert "user 'content_user' of 'content' may not create databases: pass --admin-user" in r.err


def test_restore_and_deep_verify_decompress_beside_the_backups_not_in_tmp(
    pgenv: Env,
    backup_dir: Path,
    empty_targets: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # In the hardened backup container /tmp is a 64 MB tmpfs: a zstd dump is decompressed in a
    # scratch folder of the backup directory instead. Here any scratch folder made elsewhere
    # (tempfile's default: $TMPDIR) fails the run.
    made: list[Path] = []
    real_mkdtemp = tempfile.mkdtemp

    def beside_only(
        suffix: str | None = None, prefix: str | None = None, dir: str | Path | None = None
    ) -> str:
        if dir is None:
            raise AssertionError("scratch space asked of $TMPDIR")
        made.append(Path(real_mkdtemp(suffix, prefix, dir)))
        return str(made[-1])

    monkeypatch.setattr(tempfile, "mkdtemp", beside_only)
    for key, value in pgenv.admin_env().items():
        monkeypatch.setenv(key, value)
    dest = tmp_path / "b"
    copy = copy_backup(backup_dir, dest)
    verify = ["verify", "--dest", str(dest), "--deep", "--targets", str(pgenv.targets_file)]
    assert main(verify) == 0
    assert main([str(a) for a in restore_args(copy, empty_targets)] + ["--only", "order"]) == 0
    assert made and all(m.parent == dest and m.name.startswith(".scratch-") for m in made)
    assert not any(m.exists() for m in made)  # removed afterwards
    assert {p.name for p in dest.iterdir()} >= {copy.name}
    assert not [p for p in dest.iterdir() if p.name.startswith(".scratch-")]


def test_restore_only_one_service(pgenv: Env, backup_dir: Path, empty_targets: Path) -> None:
    targets = json.loads(empty_targets.read_text())
    r = run_tool(
        *restore_args(backup_dir, empty_targets),
        "--only",
        "order",
        env=pgenv.admin_env(),
    )
    assert r.code == 0, r.err
    assert "restored 'order'" in r.out and "customer" not in r.out
    assert fingerprint(pgenv, "order", targets["order"]["database"]) == fingerprint(pgenv, "order")
    assert fingerprint(pgenv, "customer", targets["customer"]["database"]) == {"sequences": ""}


def test_archive_is_written_beside_the_backup(pgenv: Env, tmp_path: Path) -> None:
    dest = tmp_path / "b"
    r = run_tool(
        "create", "--targets", pgenv.targets_file, "--dest", dest, "--only", "content", "--archive"
    )
    assert r.code == 0, r.err
    backup, archive = (Path(line) for line in r.out.split())
    assert archive == dest / f"{backup.name}.tar.gz"
    import tarfile

    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert f"{backup.name}/manifest.json" in names
    assert f"{backup.name}/content/toc.dat" in names
    assert sorted(p.name for p in dest.iterdir()) == sorted([".lock", backup.name, archive.name])


def test_two_creates_in_the_same_second_get_distinct_names(pgenv: Env, tmp_path: Path) -> None:
    dest = tmp_path / "b"
    names = set()
    for _ in range(3):
        r = run_tool(
            "create",
            "--targets",
            pgenv.targets_file,
            "--dest",
            dest,
            "--only",
            "content",
            "--quiet",
        )
        assert r.code == 0, r.err
        assert r.err == "", "--quiet prints nothing on success"
        names.add(Path(r.out.strip()).name)
    assert len(names) == 3
    listed = json.loads(run_tool("list", "--dest", dest, "--json").out)
    assert [b["name"] for b in listed["backups"]] == sorted(names, reverse=True)


def test_default_backup_is_zstd_format_2(backup_dir: Path) -> None:
    manifest = json.loads((backup_dir / "manifest.json").read_text())
    assert manifest["format_version"] == 2
    for db in manifest["databases"].values():
        assert db["compression"] == "zstd:3"
        names = {Path(f["path"]).name for f in db["files"]}
        assert "toc.dat" in names
        data = names - {"toc.dat"}
        assert data and all(n.endswith(".dat.zst") for n in data), names


def test_gzip_backup_format_1_still_verifies_and_restores(
    pgenv: Env, tmp_path: Path, empty_targets: Path
) -> None:
    """pg_dump's own gzip (the format of the backups made before zstd): written as format
    version 1, and verify, deep verify and restore read it as before."""
    dest = tmp_path / "gz"
    r = run_tool("create", "--targets", pgenv.targets_file, "--dest", dest, "--compress", "gzip:1")
    assert r.code == 0, r.err
    backup = Path(r.out.strip())
    manifest = json.loads((backup / "manifest.json").read_text())
    assert manifest["format_version"] == 1
    for db in manifest["databases"].values():
        assert db["compression"] == "gzip:1"
        assert not [f for f in db["files"] if f["path"].endswith(".zst")]
        assert [f for f in db["files"] if f["path"].endswith(".dat.gz")]
    r = run_tool(
        "verify", "--dest", dest, "--deep", "--targets", pgenv.targets_file, env=pgenv.admin_env()
    )
    assert r.code == 0, r.err
    r = run_tool(
        "restore", "--dest", dest, backup.name, "--targets", empty_targets, env=pgenv.admin_env()
    )
    assert r.code == 0, r.err
    targets = json.loads(empty_targets.read_text())
    for service in SERVICES:
        restored = fingerprint(pgenv, service, targets[service]["database"])
        assert restored == fingerprint(pgenv, service)
