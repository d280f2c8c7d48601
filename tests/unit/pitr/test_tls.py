"""The TLS keys copied where pgBackRest accepts them (pitr/tls.py): readable by their owner only,
from configuration files that everyone may read."""

from __future__ import annotations

import stat
from pathlib import Path

from pitr.tls import install_keys


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_every_key_is_copied_readable_by_its_owner_only(tmp_path: Path) -> None:
    config, keys = tmp_path / "config", tmp_path / "tmp" / "keys"
    config.mkdir()
    for name, text in (("server.key", "S"), ("client.key", "C"), ("server.crt", "cert")):
        (config / name).write_text(text)
        (config / name).chmod(0o444)  # as the platform's file sets write them
    assert install_keys(config, keys) == ["client.key", "server.key"]
    assert sorted(p.name for p in keys.iterdir()) == ["client.key", "server.key"]
    assert (keys / "server.key").read_text() == "S"
    assert mode(keys) == 0o700
    assert {mode(p) for p in keys.iterdir()} == {0o600}


def test_a_copy_left_by_an_earlier_start_is_replaced_and_made_private(tmp_path: Path) -> None:
    config, keys = tmp_path / "config", tmp_path / "keys"
    config.mkdir()
    keys.mkdir(mode=0o755)
    (config / "client.key").write_text("new")
    (keys / "client.key").write_text("old")
    (keys / "client.key").chmod(0o644)
    install_keys(config, keys)
    assert (keys / "client.key").read_text() == "new"
    assert (mode(keys), mode(keys / "client.key")) == (0o700, 0o600)


def test_no_key_no_folder(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    assert install_keys(tmp_path / "config", tmp_path / "keys") == []
    assert not (tmp_path / "keys").exists()
