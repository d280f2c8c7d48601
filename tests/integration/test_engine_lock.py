"""One integration session at a time on an engine: a second one fails at once instead of
removing the first one's stacks as leftovers (conftest.py, `engine_lock`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import EngineBusyError, engine_lock, engine_lock_path

HOLDER = """
import sys
from pathlib import Path
from tests.integration.conftest import engine_lock
with engine_lock(Path(sys.argv[1])):
    print("held", flush=True)
    sys.stdin.read()
"""


def test_a_second_session_is_refused_while_the_first_holds_the_engine(tmp_path: Path) -> None:
    lock = tmp_path / "engine.lock"
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        busy = rf"\(pid {holder.pid}\) is using this Docker"
        with pytest.raises(EngineBusyError, match=busy), engine_lock(lock):
            pass
        assert holder.stdin is not None
        holder.stdin.close()  # the holder ends, and the kernel drops its lock
    with engine_lock(lock):
        assert lock.read_text() == str(os.getpid())


def test_each_engine_has_a_lock_of_its_own() -> None:
    local = engine_lock_path("unix:///var/run/docker.sock")
    host = engine_lock_path("unix:///tmp/ecommerce-test-hosts/ecth-0a1b2c/h1/docker.sock")
    assert local != host and local.parent == host.parent
    assert engine_lock_path("unix:///var/run/docker.sock") == local
