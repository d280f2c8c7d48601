"""A new environment is one new stack file, not new code."""

from __future__ import annotations

from typing import Any

import pytest

from plan.recorder import run_program
from stacks.loader import StackConfigError
from tests.unit.conftest import edited


def as_staging(platform: dict[str, Any]) -> None:
    platform["namePrefix"] = "shop-staging"
    platform["corsOrigins"] = ["https://staging.shop.example.com"]
    platform["edge"]["hosts"] = {
        "frontend": "staging.shop.example.com",
        "gateway": "api.staging.shop.example.com",
    }
    platform["edge"]["tls"] = {"certificates": "internal"}


def test_a_staging_stack_file_is_all_it_takes() -> None:
    graph = run_program("staging", edited("prod", as_staging))
    names = {c.service_name for c in graph.running_containers()}
    assert "shop-staging-gateway" in names and "shop-staging-order-db" in names
    # As prod: 8 services, 4 databases and their PITR agents, the off-host repository, Redis,
    # the backup job, the edge, Prometheus, Alertmanager, Grafana, 5 exporters and the apps'
    # health probe.
    assert len(names) == 29
    assert graph.outputs["urls"]["gateway"] == "https://api.staging.shop.example.com"
    assert graph.outputs["urls"]["backoffice"] == "http://backoffice:3009"  # no host: private
    labels = graph.container("shop-staging-gateway").inputs["labels"]
    assert {"label": "com.ecommerce.stack", "value": "staging"} in labels


def test_redis_password_without_require_password_is_refused() -> None:
    config = edited("dev", lambda p: None)
    config["ecommerce:redisPassword"] = "chosen"
    with pytest.raises(
        StackConfigError, match=r"redisPassword is set but redis\.requirePassword is false"
    ):
        run_program("dev", config, secret_keys=["ecommerce:redisPassword"])


def test_prod_redis_password_override_reaches_its_config_file() -> None:
    config = edited("prod", lambda p: None)
    config["ecommerce:redisPassword"] = "chosen-redis-pass"
    graph = run_program("prod", config, secret_keys=["ecommerce:redisPassword"])
    seed = graph.container("shop-redis-secrets-seed")
    files = {u["file"]: u["content"] for u in seed.inputs["uploads"]}
    assert files == {
        "/run/secrets/redis.conf": "requirepass chosen-redis-pass\n",
        "/run/secrets/redis-password": "chosen-redis-pass",
    }
    assert seed.is_secret("uploads.0.content") and seed.is_secret("uploads.1.content")
