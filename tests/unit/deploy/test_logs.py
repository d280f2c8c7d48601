"""`make logs` (deploy/logs.py): what a line is prefixed with, and the one-line errors; the
integration tests follow a real stack's logs."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.engine.commands import CONTAINERS, SWARM
from deploy.logs import LogsError, main, name_in_stack, stack_file


def test_a_container_is_named_without_the_stacks_prefix_and_generation() -> None:
    assert name_in_stack("shop-order--3fa2c1", "shop") == "order"
    assert name_in_stack("shop-order-db-pitr", "shop") == "order-db-pitr"
    assert name_in_stack("shop-dev-order", "shop") == "dev-order"  # another stack's prefix
    assert name_in_stack("other-order", "shop") is None


def test_the_stack_file_gives_prefix_and_engine() -> None:
    root = Path(__file__).resolve().parents[3]
    assert stack_file(root, "dev") == ("shop-dev", CONTAINERS)
    assert stack_file(root, "swarm") == ("shop", SWARM)


def test_a_missing_stack_file_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--stack", "qa"], folder=tmp_path) == 2
    assert capsys.readouterr().err == (
        "error: no Pulumi.qa.yaml here: run from the project folder\n"
    )
    (tmp_path / "Pulumi.qa.yaml").write_text("config: {ecommerce:platform: {profile: dev}}\n")
    with pytest.raises(LogsError, match=r"namePrefix is missing"):
        stack_file(tmp_path, "qa")
