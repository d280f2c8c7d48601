"""The editor schema of the stack files and the settings reference are generated from the settings
model, and current."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from plan.recorder import ROOT
from stacks.catalogue import PLATFORM
from stacks.loader import parse_settings
from stacks.reference import reference
from stacks.schema import stack_file_schema
from stacks.settings import PROD_REFUSES, PlatformSettings, production_problems
from tests.unit.conftest import SETTINGS_KEY, edited


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
    assert set(platform["required"]) == {
        "profile",
        "namePrefix",
        "corsOrigins",
        "services",
        "postgres",
        "redis",
        "edge",
    }


def test_stack_files_point_editors_at_the_schema() -> None:
    for stack in ("dev", "prod"):
        first = (ROOT / f"Pulumi.{stack}.yaml").read_text().splitlines()[0]
        assert first == "# yaml-language-server: $schema=./stacks/stack.schema.json"


def test_committed_settings_reference_is_up_to_date() -> None:
    committed = (ROOT / "docs" / "settings.md").read_text()
    assert committed == reference(), "run: make schema"


def test_every_setting_says_what_it_does() -> None:
    # Its docstring is its line in docs/settings.md and its hover text in an editor.
    schema = PlatformSettings.model_json_schema(by_alias=True)
    models = {**schema.pop("$defs"), "PlatformSettings": schema}
    undescribed = [name for name, model in models.items() if not model.get("description")]
    undescribed += [
        f"{name}.{key}"
        for name, model in models.items()
        for key, prop in model["properties"].items()
        if not prop.get("description")
    ]
    assert undescribed == [], "give each a docstring in stacks/settings/"


def relaxed(edit: Callable[[dict[str, Any]], None]) -> PlatformSettings:
    """The dev stack with every production rule broken that dev allows, and `edit`."""

    def everything(platform: dict[str, Any]) -> None:
        platform["hardening"]["noNewPrivileges"] = False
        edit(platform)

    raw = json.dumps(edited("dev", everything)[SETTINGS_KEY])
    return parse_settings(raw, PLATFORM, "Pulumi.dev.yaml").model_copy(update={"profile": "prod"})


def published_images(platform: dict[str, Any]) -> None:
    """Unpinned published images where dev builds, and the backup job."""
    platform["services"]["order"] = {"image": "shop/order:latest"}
    platform["postgres"]["image"] = "postgres"
    platform["redis"]["image"] = "redis:bookworm"
    platform["edge"] = {"image": "shop/edge"}
    platform["pitr"] = {"enabled": True, "image": "shop/pitr:latest"}
    platform["backup"] = {"enabled": True, "image": "shop/backup"}
    platform["monitoring"] = {
        "prometheus": {"image": "prom/prometheus"},
        "alertmanager": {"image": "prom/alertmanager:latest"},
        "postgresExporter": {"image": "postgres-exporter"},
        "redisExporter": {"image": "redis_exporter:alpine"},
        "grafana": {"image": "grafana/grafana", "hostPort": 13010},
        "healthProbe": {"image": "python:alpine"},
    }


def test_the_reference_says_what_prod_refuses() -> None:
    # The reference's last column and the rules that refuse a prod stack file agree: every key
    # a rule names is in PROD_REFUSES, and every entry there is a key some rule names.
    problems = [
        *production_problems(relaxed(lambda _platform: None), PLATFORM),
        *production_problems(relaxed(published_images), PLATFORM),
    ]
    keys = {
        re.sub(r"^(services|databases)\.[a-z]+\.", r"\1.<name>.", p.split(":")[0]) for p in problems
    }
    assert keys == set(PROD_REFUSES)
    documented = reference()
    for key, refused in PROD_REFUSES.items():
        assert f"| {refused} |" in documented, key
