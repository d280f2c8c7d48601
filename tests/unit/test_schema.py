"""The editor schema of the stack files is generated from the settings model, and current."""

from __future__ import annotations

import json

from plan.recorder import ROOT
from stacks.schema import stack_file_schema


def test_committed_schema_is_up_to_date() -> None:
    committed = json.loads((ROOT / "stacks" / "stack.schema.json").read_text())
    assert committed == stack_file_schema(), "run: make schema"


def test_schema_knows_every_top_level_setting() -> None:
    config = stack_file_schema()["properties"]["config"]
    platform = config["properties"]["ecommerce:platform"]
    assert platform["additionalProperties"] is False
    assert {"profile", "namePrefix", "services", "postgres", "redis", "hardening"} <= set(
        platform["properties"]
    )
    assert set(platform["required"]) == {"profile", "namePrefix", "corsOrigins", "services",
                                         "postgres", "redis", "edge"}  # fmt: skip


def test_stack_files_point_editors_at_the_schema() -> None:
    for stack in ("dev", "prod"):
        first = (ROOT / f"Pulumi.{stack}.yaml").read_text().splitlines()[0]
        assert first == "# yaml-language-server: $schema=./stacks/stack.schema.json"
